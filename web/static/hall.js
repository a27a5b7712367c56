// The opening hall (开标大厅): every party watches the same hall over the WebSocket
// (join_opening → opening_snapshot, then every opening_event in order). A bidder signs in,
// uploads its sealed file before the deadline and, in the decryption window, decrypts its own
// bid: the content key is unwrapped here with its encryption key file (WebCrypto, the file never
// leaves the machine). The agency reads out the record (唱标), which reaches every open page in
// the same event; objections are raised and answered in the open; the agency confirms.

import { api, ApiError, canManage, getToken, signInUrl } from './api.js';
import { KeyFileError, unwrapContentKey } from './cacrypto.js';
import { clock, countdown, dateTime, yuan } from './format.js';
import { lang, onLangChange, t } from './i18n.js';
import {
  announce, clearBanner, el, initPage, orgName, setBanner, showFatal, titleOf,
} from './layout.js';
import { RoomSocket } from './socket.js';

const $ = (id) => document.getElementById(id);
let user = null;
let opening = null; // GET /api/openings/{id}: title, purchaser, agency, settings
let openingId = null;
let hall = null; // the hall as the server described it (snapshot + events)
let you = null; // opening_you (a supplier's own facts)
let socket = null;
let connection = { state: 'connecting' };
let wasDown = false;
let lastPhase = null;
let manageNote = null;

function openingIdFromPath() {
  const m = /^\/app\/openings\/([^/]+)/.exec(location.pathname);
  return m ? decodeURIComponent(m[1]) : null;
}

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

// -- the hall's state, from the server only -----------------------------------------------------

function bidder(supplierId) {
  return hall.bidders.find((b) => b.supplier_id === supplierId);
}

function applyEvent(ev) {
  hall.seq = ev.seq;
  switch (ev.kind) {
    case 'bid_activity':
      if (ev.bids !== undefined) hall.bids = ev.bids;
      break;
    case 'signed_in':
      if (ev.signed_in !== undefined) hall.signed_in = ev.signed_in;
      if (ev.supplier_id && bidder(ev.supplier_id)) bidder(ev.supplier_id).signed_in = true;
      break;
    case 'bids_closed':
      hall.closed = true;
      hall.bidders = ev.bidders;
      hall.bids = ev.bids;
      hall.window_ends_ms = ev.window_ends_ms;
      hall.signed_in = ev.bidders.filter((b) => b.signed_in).length;
      setBanner('phase', 'info', t('hall.banner.closed', { n: ev.bids, end: clock(ev.window_ends_ms) }));
      break;
    case 'opening_failed':
      hall.failed = true;
      hall.failure_reason = ev.reason;
      hall.closed = true;
      break;
    case 'bid_decrypted': {
      const b = bidder(ev.supplier_id);
      if (b) {
        b.status = 'decrypted'; b.status_zh = '已解密'; b.by_backup = ev.by_backup;
        b.reason = null; b.bond = 'ordinary';
      }
      break;
    }
    case 'decryption_failed': {
      const b = bidder(ev.supplier_id);
      if (b) { b.attempts = ev.attempts; b.last_failure = ev.reason; }
      break;
    }
    case 'platform_fault':
    case 'bid_revoked': {
      const b = bidder(ev.supplier_id);
      if (b) {
        b.status = ev.status; b.status_zh = ev.status_zh; b.reason = ev.reason; b.bond = ev.bond;
        if (ev.ruling) b.ruling = ev.ruling;
      }
      break;
    }
    case 'window_ended':
      hall.window_ended = true;
      break;
    case 'record_revealed':
      hall.record = ev.record;
      hall.revealed_at_ms = ev.at_ms;
      hall.objection_ends_ms = ev.objection_ends_ms;
      clearBanner('phase');
      setBanner('record', 'ok', t('hall.banner.revealed', { at: clock(ev.at_ms) }));
      announce(t('hall.banner.revealed', { at: clock(ev.at_ms) }));
      break;
    case 'objection_raised':
      hall.objections.push({ objection_id: ev.objection_id, supplier_id: ev.supplier_id,
        name: ev.name, name_en: ev.name_en, text: ev.text, raised_at_ms: ev.at_ms, answer: null });
      break;
    case 'objection_answered': {
      const o = hall.objections.find((x) => x.objection_id === ev.objection_id);
      if (o) { o.answer = ev.text; o.answered_at_ms = ev.at_ms; }
      break;
    }
    case 'record_confirmed':
      hall.confirmed_at_ms = ev.at_ms;
      clearBanner('record');
      setBanner('phase', 'ok', t('hall.banner.confirmed', { at: clock(ev.at_ms) }));
      break;
    case 'share_submitted':
      if (hall.backup) hall.backup.submitted = ev.submitted;
      break;
    case 'backup_rebuilt':
      if (hall.backup) hall.backup.rebuilt = true;
      break;
    case 'backup_ceremony_started': // a restart voids the earlier submissions
    case 'backup_rebuild_failed':
      if (hall.backup) hall.backup.submitted = 0;
      break;
    default:
      break;
  }
}

function applySnapshot(view) {
  hall = { ...view, objections: view.objections || [], bidders: view.bidders || [] };
  const p = view.phase;
  hall.closed = !['scheduled', 'sign_in'].includes(p);
  hall.window_ended = p === 'window_closed';
}

/** The server's phase rule (bidroom.opening.session.phase_at) on server time. */
function phase() {
  const now = socket.serverNow();
  if (hall.failed) return 'failed';
  if (hall.confirmed_at_ms) return 'concluded';
  if (hall.revealed_at_ms) return 'objections';
  if (hall.window_ended) return 'window_closed';
  if (hall.closed) return now >= hall.window_ends_ms ? 'window_closed' : 'decryption';
  if (now < hall.sign_in_opens_ms) return 'scheduled';
  if (now < hall.deadline_ms) return 'sign_in';
  return 'opening'; // the deadline has passed; the server is closing the bids
}

function target(p) {
  if (p === 'scheduled') return ['sign_in', hall.sign_in_opens_ms];
  if (p === 'sign_in') return ['deadline', hall.deadline_ms];
  if (p === 'decryption') return ['window', hall.window_ends_ms];
  if (p === 'objections' && hall.objection_ends_ms && socket.serverNow() < hall.objection_ends_ms) {
    return ['objections', hall.objection_ends_ms];
  }
  return null;
}

// -- rendering --------------------------------------------------------------------------------

function renderHeader() {
  $('room-title').textContent = titleOf(opening);
  document.title = `${titleOf(opening)} · ${t('hall.kicker')}`;
  const sub = [];
  if (opening.purchaser) sub.push(`${t('f.purchaser')}：${orgName(opening.purchaser)}`);
  if (opening.agency) sub.push(`${t('f.agency')}：${orgName(opening.agency)}`);
  sub.push(opening.id);
  $('room-sub').textContent = sub.join(' · ');
  $('conn-state').textContent = t(`conn.${connection.state}`);
}

function renderClock() {
  const p = phase();
  const badge = $('phase');
  badge.className = `badge hphase-${p}`;
  badge.textContent = t(`hphase.${p}`);
  if (p !== lastPhase) {
    if (lastPhase !== null) announce(t('announce.phase', { phase: t(`hphase.${p}`) }));
    lastPhase = p;
    render();
    return;
  }
  const tg = target(p);
  if (tg) {
    $('countdown-label').textContent = t(`hcountdown.${tg[0]}`);
    const text = countdown(tg[1] - socket.serverNow(), lang() === 'zh' ? '天' : 'd');
    if ($('countdown').textContent !== text) $('countdown').textContent = text;
  } else {
    $('countdown-label').textContent = t(`hcountdown.none.${p}`);
    $('countdown').textContent = '—';
  }
  $('end-line').textContent = `${t('hall.deadline')} ${dateTime(hall.deadline_ms)}`;
}

function renderFacts() {
  $('deadline').textContent = dateTime(hall.deadline_ms);
  $('window-ends').textContent = dateTime(hall.window_ends_ms);
  $('bid-count').textContent = hall.bids === null || hall.bids === undefined ? t('hall.hidden') : String(hall.bids);
  $('signed-count').textContent = hall.signed_in === null || hall.signed_in === undefined ? t('hall.hidden') : String(hall.signed_in);
  $('decrypted-count').textContent = hall.closed
    ? String(hall.bidders.filter((b) => b.status === 'decrypted').length) : '—';
  $('min-bids').textContent = String(hall.min_bids);
  if (hall.failed) setBanner('phase', 'bad', t('hall.banner.failed', { reason: t(`hreason.${hall.failure_reason}`, {}, hall.failure_reason || '') }));
}

function renderBidders() {
  const table = $('bidders');
  const tbody = table.querySelector('tbody');
  tbody.replaceChildren();
  if (!hall.closed || !hall.bidders.length) {
    table.hidden = true;
    $('bidders-empty').hidden = false;
    $('bidders-empty').textContent = t(hall.closed ? 'hall.bidders.none' : 'hall.bidders.sealed');
    return;
  }
  table.hidden = false;
  $('bidders-empty').hidden = true;
  for (const b of hall.bidders) {
    const outcome = outcomeWords(b);
    const status = t(`bidstatus.${b.status}`) + (b.attempts && b.status === 'sealed'
      ? ` ${t('hall.attempts', { n: b.attempts })}` : '') + (outcome ? `：${outcome}` : '');
    tbody.append(el('tr', { 'data-supplier': b.supplier_id, class: b.supplier_id === user.org_id ? 'me' : null },
      el('td', {}, nameOf(b)),
      el('td', {}, b.signed_in ? t('hall.yes') : t('hall.no')),
      el('td', { class: `bid-status status-${b.status}` }, status),
      el('td', { class: 'num' }, dateTime(b.uploaded_at_ms)),
      el('td', {}, el('code', { title: b.sha256 }, `${b.sha256.slice(0, 16)}…`))));
  }
}

function renderRecord() {
  const box = $('record-box');
  if (!hall.record) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  $('record-sub').textContent = t('hall.record.sub', { at: dateTime(hall.revealed_at_ms), n: hall.record.bids_at_deadline });
  const tbody = $('record').querySelector('tbody');
  tbody.replaceChildren(...hall.record.opened.map((entry) => {
    const form = entry.form || {};
    const items = (form.items || []).map((i) => `${i.name}：${i.value}`).join('；');
    return el('tr', { 'data-supplier': entry.supplier_id },
      el('td', { class: 'num' }, String(entry.order)),
      el('td', {}, nameOf(entry)),
      el('td', { class: 'price num' }, typeof form.total_price_fen === 'number' ? yuan(form.total_price_fen) : '—'),
      el('td', { class: 'num' }, String(form.delivery_days ?? '—')),
      el('td', { class: 'num' }, String(form.warranty_months ?? '—')),
      el('td', {}, items || '—'));
  }));
  const notOpened = hall.record.not_opened;
  $('not-opened').replaceChildren(...(notOpened.length ? [
    el('h3', {}, t('hall.not_opened')),
    el('ul', {}, notOpened.map((n) => el('li', { 'data-supplier': n.supplier_id },
      `${nameOf(n)}：${t(`bidstatus.${n.status}`)}（${outcomeWords(n)}）`))),
  ] : []));
  $('record-link').href = `/app/openings/${encodeURIComponent(openingId)}/record`;
}

function renderObjections() {
  const p = phase();
  const box = $('objections-box');
  box.hidden = !hall.revealed_at_ms;
  if (box.hidden) return;
  const list = $('objections');
  list.replaceChildren();
  const manager = canManage(user, opening);
  for (const o of hall.objections) {
    const item = el('li', { 'data-objection': o.objection_id },
      el('p', {}, el('b', {}, `#${o.objection_id} ${nameOf(o)}`), ` · ${clock(o.raised_at_ms)}`),
      el('p', {}, o.text),
      o.answer ? el('p', { class: 'notice ok' }, `${t('hall.answer')}：${o.answer}`) : null);
    if (!o.answer && manager && p === 'objections') {
      const input = el('input', { type: 'text', id: `answer-${o.objection_id}`, maxlength: '2000',
        placeholder: t('hall.answer.placeholder') });
      const form = el('form', { class: 'actions', novalidate: true },
        el('label', { for: `answer-${o.objection_id}`, class: 'sr-only' }, t('hall.answer.label', { n: o.objection_id })),
        input, el('button', { type: 'submit', class: 'small' }, t('hall.answer.submit')));
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        if (!input.value.trim()) return;
        post(`/objections/${o.objection_id}/answer`, { text: input.value.trim() });
      });
      item.append(form);
    }
    list.append(item);
  }
  if (!hall.objections.length) list.append(el('li', { class: 'empty' }, t('hall.objections.none')));
  const mayObject = user.roles.includes('supplier') && you && you.has_bid && p === 'objections'
    && hall.objection_ends_ms && socket.serverNow() < hall.objection_ends_ms;
  $('objection-form').hidden = !mayObject;
}

function renderMe() {
  const box = $('me');
  if (!user.roles.includes('supplier') || !you) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const p = phase();
  const status = you.status ? t(`bidstatus.${you.status}`) : t('hall.no_bid');
  const facts = [
    [t('hall.me.status'), el('span', { id: 'my-status' }, status)],
    [t('hall.me.digest'), you.sha256 ? el('code', {}, you.sha256) : '—'],
    [t('hall.me.uploaded'), you.uploaded_at_ms ? dateTime(you.uploaded_at_ms) : '—'],
    [t('hall.me.signed_in'), el('span', { id: 'my-signed-in' }, you.signed_in ? t('hall.yes') : t('hall.no'))],
  ];
  if (you.attempts) {
    const why = you.last_failure ? t(`hfail.${you.last_failure}`, {}, t('hreason.decryption_failed')) : '';
    facts.push([t('hall.me.attempts'), `${you.attempts}（${why}）`]);
  }
  $('me-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  const live = connection.state === 'live';
  $('upload-box').hidden = !(p === 'scheduled' || p === 'sign_in');
  $('upload-button').disabled = !live;
  const maySignIn = you.has_bid && !you.signed_in && ['sign_in', 'decryption', 'opening'].includes(p);
  $('signin-box').hidden = !maySignIn;
  $('hall-signin').disabled = !live;
  const mayDecrypt = you.has_bid && you.status === 'sealed' && p === 'decryption';
  $('decrypt-form').hidden = !mayDecrypt;
  $('decrypt-button').disabled = !live || !you.signed_in;
  if (mayDecrypt && !you.signed_in) {
    setStatus('decrypt-status', 'info', t('hall.decrypt.sign_in_first'));
  }
}

function renderManage() {
  const box = $('hall-manage');
  if (!canManage(user, opening)) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const p = phase();
  const live = connection.state === 'live';
  const sealed = hall.bidders.filter((b) => b.status === 'sealed');
  const mayReveal = (p === 'decryption' && sealed.length === 0 && hall.bidders.length > 0) || p === 'window_closed';
  $('reveal-button').disabled = !live || !mayReveal;
  const unanswered = hall.objections.some((o) => !o.answer);
  const mayConfirm = p === 'objections' && !unanswered && hall.objection_ends_ms
    && socket.serverNow() >= hall.objection_ends_ms;
  $('confirm-button').disabled = !live || !mayConfirm;
  $('fault-form').hidden = !(p === 'decryption' && sealed.length > 0);
  const select = $('fault-bidder');
  const current = select.value;
  select.replaceChildren(...sealed.map((b) => el('option', { value: b.supplier_id, selected: b.supplier_id === current || null }, nameOf(b))));
  if (manageNote) setStatus('manage-status', manageNote.kind, manageNote.text);
}

function setStatus(id, kind, text) {
  const node = $(id);
  node.className = `notice ${kind}`;
  node.textContent = text;
}

function render() {
  if (!hall) return;
  renderHeader();
  renderFacts();
  renderBidders();
  renderRecord();
  renderObjections();
  renderMe();
  renderManage();
  $('clock-note').textContent = t('room.clock_note', { offset: Math.round(socket.offsetMs / 100) / 10 });
  lastPhase = phase();
  const badge = $('phase');
  badge.className = `badge hphase-${lastPhase}`;
  badge.textContent = t(`hphase.${lastPhase}`);
}

// -- actions (the page changes when the server's event arrives, not before) ---------------------

/** Words for a server code: the opening's own (herr.*, hfail.*), the shared ones, the server's. */
function codeText(code, message) {
  return t(`herr.${code}`, {}, t(`hfail.${code}`, {}, t(`err.${code}`, {}, message)));
}

function errText(err) {
  if (err instanceof ApiError) return codeText(err.code, err.message);
  return String(err);
}

async function post(path, body) {
  manageNote = { kind: 'info', text: t('manage.sent') };
  renderManage();
  try {
    await api(`/api/openings/${encodeURIComponent(openingId)}${path}`, { method: 'POST', body });
    manageNote = { kind: 'ok', text: t('hall.done') };
  } catch (err) {
    manageNote = { kind: 'bad', text: t('manage.failed', { message: errText(err) }) };
  }
  renderManage();
}

async function onSignIn() {
  setStatus('signin-status', 'info', t('bid.signin.sending'));
  try {
    await api(`/api/openings/${encodeURIComponent(openingId)}/sign-in`, { method: 'POST' });
    setStatus('signin-status', 'ok', t('bid.signin.done'));
  } catch (err) {
    setStatus('signin-status', 'bad', errText(err));
  }
}

async function onUpload() {
  const file = $('bid-file').files[0];
  if (!file) {
    setStatus('upload-status', 'bad', t('hall.upload.none'));
    return;
  }
  setStatus('upload-status', 'info', t('hall.upload.sending', { size: file.size }));
  try {
    const response = await fetch(`/api/openings/${encodeURIComponent(openingId)}/bid`, {
      method: 'PUT', body: file,
      headers: { Authorization: `Bearer ${getToken()}`, 'Content-Type': 'application/octet-stream' },
    });
    const doc = await response.json();
    if (!response.ok) throw new ApiError(response.status, doc.error.code, doc.error.message, doc.error.details);
    setStatus('upload-status', 'ok', t('hall.upload.done', {
      at: dateTime(doc.receipt.server_time_ms), digest: doc.sha256.slice(0, 16),
    }));
  } catch (err) {
    setStatus('upload-status', 'bad', errText(err));
  }
}

async function onDecrypt(event) {
  event.preventDefault();
  const file = $('enc-key').files[0];
  if (!file) {
    setStatus('decrypt-status', 'bad', t('hall.decrypt.no_file'));
    return;
  }
  setStatus('decrypt-status', 'info', t('hall.decrypt.working'));
  try {
    const keyText = await file.text(); // read here; never sent anywhere
    const wrapped = await api(`/api/openings/${encodeURIComponent(openingId)}/bid/encrypted-key`);
    const contentKey = await unwrapContentKey(keyText, wrapped.encrypted_key_b64);
    await api(`/api/openings/${encodeURIComponent(openingId)}/decrypt`, {
      method: 'POST', body: { content_key_b64: contentKey },
    });
    setStatus('decrypt-status', 'ok', t('hall.decrypt.done'));
    $('enc-key').value = '';
  } catch (err) {
    const text = err instanceof KeyFileError ? t(`keyfile.${err.code}`) : errText(err);
    setStatus('decrypt-status', 'bad', t('hall.decrypt.failed', { message: text }));
  }
}

async function onObjection(event) {
  event.preventDefault();
  const text = $('objection-text').value.trim();
  if (!text) {
    $('objection-error').textContent = t('hall.objection.empty');
    return;
  }
  $('objection-error').textContent = '';
  try {
    await api(`/api/openings/${encodeURIComponent(openingId)}/objections`, { method: 'POST', body: { text } });
    $('objection-text').value = '';
  } catch (err) {
    $('objection-error').textContent = errText(err);
  }
}

async function onFault(event) {
  event.preventDefault();
  const supplier = $('fault-bidder').value;
  const reason = $('fault-reason').value.trim();
  if (!reason) {
    $('fault-error').textContent = t('hall.fault.required');
    return;
  }
  $('fault-error').textContent = '';
  await post(`/bids/${encodeURIComponent(supplier)}/platform-fault`, { reason });
  $('fault-reason').value = '';
}

// -- the socket -------------------------------------------------------------------------------

function onMessage(msg) {
  switch (msg.type) {
    case 'opening_snapshot':
      applySnapshot(msg.opening);
      break;
    case 'opening_event':
      if (hall) applyEvent(msg.event);
      break;
    case 'opening_you':
      you = msg;
      break;
    case 'opening_joined':
      $('main').removeAttribute('aria-busy');
      break;
    case 'error':
      if (msg.request === 'join_opening') {
        socket.stop();
        setBanner('conn', 'bad', codeText(msg.code, msg.message), { alert: true });
      }
      break;
    default:
      break;
  }
  if (hall && ['opening_snapshot', 'opening_event', 'opening_you', 'opening_joined', 'clock'].includes(msg.type)) render();
}

function onStatus(status) {
  connection = status;
  const main = $('main');
  if (status.state === 'live') {
    main.classList.remove('stale');
    if (wasDown) {
      setBanner('conn', 'ok', t('banner.reconnected'));
      setTimeout(() => clearBanner('conn'), 8000);
    } else clearBanner('conn');
    wasDown = false;
  } else if (status.state === 'reconnecting' || status.state === 'offline') {
    if (status.connecting && !wasDown) return;
    wasDown = true;
    main.classList.add('stale');
    setBanner('conn', 'bad', t(status.state === 'offline' ? 'banner.offline' : 'banner.disconnected',
      { n: Math.max(1, status.attempt) }), { alert: true });
  } else if (status.state === 'unauthorized') {
    setBanner('conn', 'bad', t('banner.unauthorized'), { alert: true });
    setTimeout(() => location.assign(signInUrl()), 4000);
  }
  if (hall) render();
  else $('conn-state').textContent = t(`conn.${status.state}`);
}

async function main() {
  openingId = openingIdFromPath();
  user = await initPage();
  opening = await api(`/api/openings/${encodeURIComponent(openingId)}`);
  renderHeader();
  socket = new RoomSocket({ openingId, token: getToken(), onMessage, onStatus });
  $('hall-signin').addEventListener('click', onSignIn);
  $('upload-button').addEventListener('click', onUpload);
  $('decrypt-form').addEventListener('submit', onDecrypt);
  $('objection-form').addEventListener('submit', onObjection);
  $('fault-form').addEventListener('submit', onFault);
  $('reveal-button').addEventListener('click', () => post('/reveal', {}));
  $('confirm-button').addEventListener('click', () => post('/confirm', {}));
  onLangChange(render);
  socket.start();
  setInterval(() => { if (hall) renderClock(); }, 250);
  window.bidroomHall = { get hall() { return hall; }, get you() { return you; }, socket };
}

main().catch(showFatal);
