// The supplier's view of a published project (/app/bids/{project_id}): per lot, its terms and
// deadline, the registration (报名) with its bid bond (a transfer of exactly the lot's bond from
// the supplier's account, or an electronic guarantee 电子保函: Reg 33), the withdrawal before
// the deadline, the tender documents with their SHA-256 and the download (recorded by the server
// with this browser's device fingerprint, fingerprint.js), and the way to the opening hall,
// where the bid is sealed and uploaded.

import { api, ApiError } from './api.js';
import { dateTime, yuan } from './format.js';
import { deviceFingerprint, sha256Hex } from './fingerprint.js';
import { onLangChange, t } from './i18n.js';
import { el, initPage, setBanner, showFatal } from './layout.js';
import { announcementItem, lotFacts, projectTitle, refusalText } from './procure.js';
import { bondText, documentsTable, downloadFile, refundText } from './tender.js';

const $ = (id) => document.getElementById(id);
const OPEN = new Set(['announced', 'bidding']);

let user = null;
let project = null;
let serverOffset = 0;
let fingerprint = null;
let openings = new Map(); // opening or auction id -> the supplier's list entry
const lots = new Map(); // lot id -> {regs, docs, error}
const notes = new Map();
const bondDrafts = new Map();

const projectId = decodeURIComponent(location.pathname.split('/')[3] || '');

function serverNow() {
  return Date.now() + serverOffset;
}

function current(lot) {
  const entry = lots.get(lot.id);
  const regs = entry && entry.regs ? entry.regs.filter((r) => r.round === lot.rounds) : [];
  return regs.length ? regs[regs.length - 1] : null;
}

function setNote(lot, kind, text) {
  notes.set(lot.id, { kind, text });
  const box = $(`status-${lot.id}`);
  if (box) {
    box.className = `notice ${kind}`;
    box.setAttribute('role', kind === 'bad' ? 'alert' : 'status');
    box.textContent = text();
  }
}

function statusBox(lot) {
  const n = notes.get(lot.id);
  return el('div', { class: `notice ${n ? n.kind : ''}`, id: `status-${lot.id}`,
    role: n && n.kind === 'bad' ? 'alert' : 'status' }, n ? n.text() : '');
}

/** The opening (or auction) the platform created for this lot's round: its id is derived from
 *  the lot and the round (market.feed core_id_for: SHA-256 of "lot#round"), and it counts only
 *  once it is in this supplier's own list of openings (it is invited when it registers). */
async function coreIdOf(lot) {
  const digest = await sha256Hex(new TextEncoder().encode(`${lot.id}#${lot.rounds}`));
  return `${lot.bid_mode === 'auction' ? 'auc' : 'opn'}_${digest.slice(0, 32)}`;
}

async function loadLot(lot) {
  const id = encodeURIComponent(lot.id);
  const entry = lots.get(lot.id) || {};
  try {
    const [regs, docs] = await Promise.all([
      api(`/api/lots/${id}/registrations`),
      api(`/api/lots/${id}/documents`).catch((err) => {
        if (err instanceof ApiError && err.status < 500) return { items: [], error: err };
        throw err;
      })]);
    Object.assign(entry, { regs: regs.items, docs: docs.items, docsError: docs.error || null,
      core: await coreIdOf(lot), error: null });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    entry.error = err;
  }
  lots.set(lot.id, entry);
  renderLot(lot);
}

function bondDraft(lot) {
  if (!bondDrafts.has(lot.id)) {
    bondDrafts.set(lot.id, { method: 'guarantee', reference: '', payer_account: '',
      guarantee_number: '', guarantee_issuer: '' });
  }
  return bondDrafts.get(lot.id);
}

function registerForm(lot) {
  const draft = bondDraft(lot);
  const input = (name, labelKey, attrs = {}) => el('div', { class: 'field' },
    el('label', { for: `${name}-${lot.id}` }, t(labelKey)),
    el('input', { id: `${name}-${lot.id}`, type: 'text', maxlength: 64, value: draft[name] || null,
      spellcheck: 'false', oninput: (e) => { draft[name] = e.target.value; }, ...attrs }));
  const choice = (value, key) => el('label', {}, el('input', {
    type: 'radio', name: `bond-${lot.id}`, value, checked: draft.method === value,
    onchange: () => { draft.method = value; renderLot(lot); },
  }), ` ${t(key)}`);
  const withBond = lot.bond_fen > 0;
  return el('form', { class: 'step-form', id: `register-${lot.id}`, novalidate: true,
    onsubmit: (event) => {
      event.preventDefault();
      let body;
      if (withBond) {
        const bond = { method: draft.method };
        const need = draft.method === 'transfer' ? ['reference', 'payer_account']
          : ['guarantee_number', 'guarantee_issuer'];
        for (const name of need) bond[name] = (draft[name] || '').trim();
        if (need.some((name) => !bond[name])) {
          setNote(lot, 'bad', () => t('reg.v.bond'));
          return;
        }
        if (draft.method === 'transfer') bond.amount_fen = lot.bond_fen;
        body = { bond };
      }
      register(lot, body);
    } },
    el('h4', {}, t('reg.form_heading')),
    withBond ? [
      el('p', { class: 'sub', id: `bond-rule-${lot.id}` }, t('reg.bond_intro', { amount: yuan(lot.bond_fen) })),
      el('div', { class: 'choices', role: 'radiogroup', 'aria-label': t('reg.bond') },
        choice('guarantee', 'bond.guarantee'), choice('transfer', 'bond.transfer')),
      draft.method === 'transfer' ? el('div', { class: 'cols' },
        input('reference', 'bond.reference'), input('payer_account', 'bond.payer_account', { maxlength: 34, inputmode: 'numeric' }))
        : el('div', { class: 'cols' },
          input('guarantee_number', 'bond.guarantee_number'),
          input('guarantee_issuer', 'bond.guarantee_issuer', { maxlength: 100, spellcheck: null })),
    ] : el('p', { class: 'sub' }, t('reg.no_bond')),
    el('div', { class: 'actions' }, el('button', { type: 'submit', id: `register-submit-${lot.id}` }, t('reg.submit'))));
}

async function register(lot, body) {
  setNote(lot, 'info', () => t('create.sending'));
  try {
    await api(`/api/lots/${encodeURIComponent(lot.id)}/registrations`, { method: 'POST', body });
    setNote(lot, 'ok', () => t('reg.done'));
    await loadLot(lot);
    watchOpenings();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    setNote(lot, 'bad', () => refusalText(err));
  }
}

async function withdraw(lot, reg) {
  try {
    await api(`/api/registrations/${encodeURIComponent(reg.id)}`, { method: 'DELETE' });
    setNote(lot, 'ok', () => t('reg.withdrawn_done'));
    await loadLot(lot);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    setNote(lot, 'bad', () => refusalText(err));
  }
}

async function download(lot, doc, version) {
  try {
    const got = await downloadFile(doc.id, version.version);
    setNote(lot, got.matches ? 'ok' : 'bad', () => t(got.matches ? 'doc.verified' : 'doc.mismatch',
      { name: got.filename, sha: got.actual }));
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    setNote(lot, 'bad', () => refusalText(err));
  }
}

function registrationBox(lot, reg) {
  const beforeDeadline = lot.deadline_ms && serverNow() < lot.deadline_ms;
  return el('div', { class: 'registration', id: `my-registration-${lot.id}`, 'data-status': reg.status },
    el('h4', {}, t('reg.mine')),
    el('dl', { class: 'lot-facts' },
      el('div', {}, el('dt', {}, t('reg.status')), el('dd', {}, el('b', {}, t(`reg.${reg.status}`)))),
      el('div', {}, el('dt', {}, t('reg.at')), el('dd', { class: 'num' }, dateTime(reg.registered_at_ms))),
      reg.withdrawn_at_ms ? el('div', {}, el('dt', {}, t('reg.withdrawn_at')), el('dd', { class: 'num' }, dateTime(reg.withdrawn_at_ms))) : null,
      el('div', {}, el('dt', {}, t('reg.bond')), el('dd', { class: 'bond' }, bondText(reg.bond))),
      refundText(reg.refund) ? el('div', {}, el('dt', {}, t('reg.refund')), el('dd', {}, refundText(reg.refund))) : null),
    reg.status === 'registered' && beforeDeadline ? el('details', { class: 'terminate' },
      el('summary', {}, t('reg.withdraw_heading')),
      el('p', { class: 'sub' }, t('reg.withdraw_hint')),
      el('button', { type: 'button', class: 'danger', id: `withdraw-${lot.id}`, onclick: () => withdraw(lot, reg) },
        t('reg.withdraw'))) : null);
}

function hallBox(lot, entry, reg) {
  if (!reg || reg.status !== 'registered') return null;
  const core = entry.core && openings.get(entry.core);
  const auction = lot.bid_mode === 'auction';
  const href = core ? (auction ? `/app/auctions/${encodeURIComponent(core.id)}/bid` : `/app/openings/${encodeURIComponent(core.id)}`)
    : '/app/auctions';
  return el('div', { class: 'next-step', id: `hall-${lot.id}` },
    el('h4', {}, t('next.heading')),
    el('p', {}, core ? t(auction ? 'bid.auction_ready' : 'bid.hall_ready', { deadline: dateTime(lot.deadline_ms) })
      : t('bid.hall_pending')),
    el('a', { class: 'button', href, id: `hall-link-${lot.id}` }, t(core ? (auction ? 'bid.to_auction' : 'bid.to_hall') : 'bids.hall_list')));
}

function lotBody(lot) {
  const entry = lots.get(lot.id);
  if (!entry || (!entry.regs && !entry.error)) return el('p', { class: 'sub' }, t('tender.loading'));
  if (entry.error) return el('p', { class: 'notice bad', role: 'alert' }, refusalText(entry.error));
  const reg = current(lot);
  const registered = reg && reg.status === 'registered';
  const canRegister = !reg && OPEN.has(lot.status) && lot.deadline_ms && serverNow() < lot.deadline_ms;
  return [
    reg ? registrationBox(lot, reg) : null,
    canRegister ? registerForm(lot) : null,
    !reg && !canRegister ? el('p', { class: 'sub' }, t('reg.closed')) : null,
    hallBox(lot, entry, reg),
    el('h4', {}, t('doc.heading')),
    entry.docsError ? el('p', { class: 'sub' }, refusalText(entry.docsError)) : null,
    registered ? null : el('p', { class: 'sub' }, t('doc.register_first')),
    documentsTable(entry.docs || [], { onDownload: registered ? (doc, v) => download(lot, doc, v) : null,
      idPrefix: `s-${lot.id}` }),
    statusBox(lot),
  ];
}

function renderLot(lot) {
  const box = $(`lot-body-${lot.id}`);
  if (box) box.replaceChildren(...[lotBody(lot)].flat(3).filter(Boolean));
}

function lotCard(lot) {
  return el('article', { class: 'card lot-card', 'data-lot': lot.id, 'aria-labelledby': `lot-h-${lot.id}` },
    el('div', { class: 'top' },
      el('h3', { id: `lot-h-${lot.id}` }, t('lot.heading', { n: lot.number, title: lot.title })),
      el('span', { class: `badge lot-${lot.status}`, 'data-status': lot.status }, t(`lot.${lot.status}`))),
    lotFacts(lot),
    el('div', { id: `lot-body-${lot.id}` }));
}

function render() {
  if (!project) return;
  $('project-title').textContent = projectTitle(project);
  $('project-sub').textContent = t('project.sub', {
    method: t(`method.${project.method}`), region: project.region_code,
    budget: yuan(project.budget_fen), id: project.id,
  });
  document.title = `${projectTitle(project)} · ${t('brand')} Bidroom`;
  $('server-time').textContent = t('project.server_time', { time: dateTime(serverNow()) });
  $('fingerprint-note').textContent = fingerprint ? t('bid.fingerprint', { fingerprint }) : t('bid.no_fingerprint');
  $('fingerprint-note').dataset.fingerprint = fingerprint || '';
  const shown = project.lots.filter((l) => l.announced_at_ms);
  $('lots').replaceChildren(...shown.map(lotCard));
  for (const lot of shown) renderLot(lot);
  $('announcements').replaceChildren(...project.announcements.map(announcementItem));
  $('ann-empty').hidden = project.announcements.length > 0;
}

async function loadOpenings() {
  const [opened, auctions] = await Promise.all([
    api('/api/openings').catch(() => ({ items: [] })),
    api('/api/auctions?limit=200').catch(() => ({ items: [] }))]);
  openings = new Map([...opened.items, ...(auctions.items || [])].map((o) => [o.id, o]));
}

/** While a registered lot's opening is not in the supplier's list yet (the platform creates it
 *  from the publication's event and invites the registration), look again every few seconds. */
let watching = null;
function watchOpenings() {
  const waiting = () => project.lots.some((lot) => {
    const reg = current(lot);
    const entry = lots.get(lot.id);
    return reg && reg.status === 'registered' && entry && entry.core && !openings.has(entry.core);
  });
  if (watching || !waiting()) return;
  watching = setInterval(async () => {
    await loadOpenings();
    for (const lot of project.lots.filter((l) => l.announced_at_ms)) renderLot(lot);
    if (!waiting()) {
      clearInterval(watching);
      watching = null;
    }
  }, 3000);
}

async function load() {
  const [doc, time] = await Promise.all([
    api(`/api/projects/${encodeURIComponent(projectId)}`), api('/api/time'), loadOpenings()]);
  project = doc;
  serverOffset = time.server_time_ms - Date.now();
  render();
  await Promise.all(project.lots.filter((l) => l.announced_at_ms).map(loadLot));
  watchOpenings();
}

async function main() {
  user = await initPage({ nav: 'bids' });
  if (!user.roles.includes('supplier')) setBanner('not-supplier', 'info', t('bid.not_supplier'));
  fingerprint = await deviceFingerprint();
  await load();
  $('main').removeAttribute('aria-busy');
  onLangChange(render);
}

main().catch(showFatal);
