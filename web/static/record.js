// The opening record (GET /api/openings/{id}/record): what was read out at 唱标, the
// objections and answers, the confirmation, and the platform's signature over all of it.

import { api, ApiError } from './api.js';
import { dateTime, yuan } from './format.js';
import { lang, onLangChange, t } from './i18n.js';
import { el, initPage, orgName, showFatal, titleOf } from './layout.js';

const $ = (id) => document.getElementById(id);
let doc = null;

function nameOf(entry) {
  return lang() === 'en' && entry.name_en ? entry.name_en : entry.name;
}

/** What became of a bid, in words: why it was not opened, its bond, the agency's ruling. */
function outcomeWords(entry) {
  const parts = [];
  if (entry.reason) parts.push(t(`hreason.${entry.reason}`, {}, entry.reason));
  // an opened bid's bond follows the ordinary rules: only a revoked or withdrawn one is news
  if (entry.bond && entry.bond !== 'ordinary') parts.push(t(`bond.${entry.bond}`, {}, entry.bond));
  if (entry.ruling && entry.ruling.reason) parts.push(t('hall.ruling', { reason: entry.ruling.reason }));
  return parts.join('；');
}

function render() {
  if (!doc) return;
  $('room-title').textContent = titleOf(doc);
  document.title = `${t('record.kicker')} · ${titleOf(doc)}`;
  const sub = [];
  if (doc.purchaser) sub.push(`${t('f.purchaser')}：${orgName(doc.purchaser)}`);
  if (doc.agency) sub.push(`${t('f.agency')}：${orgName(doc.agency)}`);
  sub.push(doc.opening_id);
  $('room-sub').textContent = sub.join(' · ');
  const status = doc.status === 'confirmed' ? 'concluded' : 'objections';
  $('record-status').className = `badge hphase-${status}`;
  $('record-status').textContent = t(`record.status.${doc.status}`);
  const facts = [
    [t('hall.deadline'), dateTime(doc.deadline_ms)],
    [t('record.opened_at'), dateTime(doc.opened_at_ms)],
    [t('record.revealed_at'), dateTime(doc.revealed_at_ms)],
    [t('record.confirmed_at'), dateTime(doc.confirmed_at_ms)],
    [t('record.bids_at_deadline'), String(doc.bids_at_deadline)],
    ['SHA-256', el('code', {}, doc.sha256)],
    [t('record.signature'), el('code', {}, `Ed25519 · ${doc.key_id} · ${doc.signature.slice(0, 24)}…`)],
  ];
  $('record-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  $('record').querySelector('tbody').replaceChildren(...doc.opened.map((entry) => {
    const form = entry.form || {};
    const items = (form.items || []).map((i) => `${i.name}：${i.value}`).join('；');
    return el('tr', {},
      el('td', { class: 'num' }, String(entry.order)),
      el('td', {}, nameOf(entry)),
      el('td', { class: 'price num' }, typeof form.total_price_fen === 'number' ? yuan(form.total_price_fen) : '—'),
      el('td', { class: 'num' }, String(form.delivery_days ?? '—')),
      el('td', { class: 'num' }, String(form.warranty_months ?? '—')),
      el('td', {}, items || '—'),
      el('td', { class: 'num' }, dateTime(entry.decrypted_at_ms)));
  }));
  $('not-opened').replaceChildren(...(doc.not_opened.length ? [
    el('h3', {}, t('hall.not_opened')),
    el('ul', {}, doc.not_opened.map((n) => el('li', { 'data-supplier': n.supplier_id },
      `${nameOf(n)}：${t(`bidstatus.${n.status}`)}（${outcomeWords(n)}）`))),
  ] : []));
  $('record-objections').replaceChildren(...(doc.objections.length
    ? doc.objections.map((o) => el('li', {}, `#${o.objection_id} ${o.name}：${o.text} — ${t('hall.answer')}：${o.answer || '—'}`))
    : [el('li', { class: 'empty' }, t('hall.objections.none'))]));
  $('deemed').textContent = doc.deemed_accepted.length
    ? t('record.deemed', { names: doc.deemed_accepted.map(nameOf).join('、') }) : '';
  const fault = doc.platform_fault || [];
  $('platform-fault').textContent = fault.length
    ? t('record.platform_fault', { names: fault.map(nameOf).join('、') }) : '';
}

function download() {
  const blob = new Blob([JSON.stringify(doc, null, 2) + '\n'], { type: 'application/json' });
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: `opening-record-${doc.opening_id}.json` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

async function main() {
  const m = /^\/app\/openings\/([^/]+)\/record/.exec(location.pathname);
  const openingId = decodeURIComponent(m[1]);
  await initPage();
  try {
    doc = await api(`/api/openings/${encodeURIComponent(openingId)}/record`);
    $('record-page').hidden = false;
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== 'not_revealed') throw err;
    $('record-error').replaceChildren(t('record.not_yet'), ' ',
      el('a', { href: `/app/openings/${encodeURIComponent(openingId)}` }, t('record.to_hall')));
  }
  $('download-record').addEventListener('click', () => { if (doc) download(); });
  $('print-record').addEventListener('click', () => window.print());
  render();
  $('main').removeAttribute('aria-busy');
  onLangChange(render);
}

main().catch(showFatal);
