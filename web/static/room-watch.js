// The watch room (purchaser, agency, supervisor): the anonymised ladder, a live chart of price
// over time with the extensions marked, the savings rate against the ceiling and, after the
// close, the result with identities. The auction's purchaser or agency also pauses, resumes
// and invites here; the page changes only when the server's event arrives.

import { api, ApiError, audienceOf, canManage } from './api.js';
import { clock, clockMs, percent, savingsBp, span, yuan } from './format.js';
import { lang, t } from './i18n.js';
import { auctionIdFromPath, el, initPage, orgName, showFatal } from './layout.js';
import { colourOf, drawChart } from './chart.js';
import { loadAuction, RoomPage, rulesText } from './room-common.js';

const $ = (id) => document.getElementById(id);
let page = null;
let auctionId = null;
let auction = null;
let user = null;
let suppliers = [];
let invitedIds = new Set();
let manageNote = null; // {id, kind, key, vars}: the answer to the last control action

function alias(n) {
  return t('alias', { n });
}

function renderStats() {
  const r = page.state.room;
  $('lowest').textContent = r.lowest_fen === null ? t('f.no_bids_yet') : yuan(r.lowest_fen);
  const bp = savingsBp(r.rules.ceiling_fen, r.lowest_fen);
  $('savings').textContent = bp === null ? '—'
    : `${percent(bp)}（${yuan(r.rules.ceiling_fen - r.lowest_fen)}）`;
  $('ceiling').textContent = yuan(r.rules.ceiling_fen);
  $('bidders').textContent = `${r.bidders} / ${r.invited}`;
  $('bid-count').textContent = String(r.bids.length);
  $('extensions').textContent = String(r.extensions);
  $('rules-line').textContent = rulesText(r.rules);
}

function renderLadder() {
  const r = page.state.room;
  const atOf = new Map(r.bids.map((b) => [b.seq, b.at_ms]));
  const tbody = document.querySelector('#ladder tbody');
  tbody.replaceChildren();
  for (const row of r.ladder) {
    const at = atOf.get(row.seq);
    tbody.append(el('tr', { 'data-alias': row.alias, class: row.rank === 1 ? 'winner' : null },
      el('td', { class: 'num' }, String(row.rank)),
      el('td', {}, el('span', { 'aria-hidden': 'true', class: 'dot' }, '● '), alias(row.alias)),
      el('td', { class: 'price num', title: at ? clockMs(at) : null }, yuan(row.price_fen)),
      el('td', { class: 'num' }, String(row.bids))));
    tbody.lastChild.querySelector('.dot').style.color = colourOf(row.alias);
  }
  $('ladder-empty').hidden = r.ladder.length > 0;
}

function renderLog() {
  const r = page.state.room;
  const tbody = document.querySelector('#bid-log tbody');
  tbody.replaceChildren();
  for (const b of [...r.bids].reverse().slice(0, 200)) {
    tbody.append(el('tr', { 'data-seq': b.seq },
      el('td', { class: 'num' }, String(b.seq)),
      el('td', { class: 'num' }, clockMs(b.at_ms)),
      el('td', {}, alias(b.alias)),
      el('td', { class: 'price num' }, yuan(b.price_fen))));
  }
}

function renderChart() {
  const st = page.state;
  const r = st.room;
  const phase = page.phase();
  const closed = phase === 'closed' || phase === 'failed';
  drawChart($('chart'), {
    bids: r.bids, start_ms: r.start_ms, end_ms: r.end_ms, original_end_ms: r.original_end_ms,
    ceiling_fen: r.rules.ceiling_fen, window_ms: r.rules.sniping_window_ms,
    extensions: st.extensions, now_ms: page.now(), closed,
    labels: {
      ceiling: t('chart.ceiling'), end: t('chart.end'), originalEnd: t('chart.original_end'),
      extension: (n) => t('chart.ext', { n }), empty: t('watch.no_bids'), alias,
      window: t('chart.window', { m: span(r.rules.sniping_window_ms, lang() === 'en') }),
    },
  });
  $('chart-title').textContent = t('watch.chart');
  $('chart-desc').textContent = t('chart.desc', {
    n: r.bids.length, lowest: r.lowest_fen === null ? '—' : yuan(r.lowest_fen), ext: r.extensions,
  });
}

function renderResultRanking() {
  const r = page.state.room;
  if (!r.result || r.result.failed || !r.result.ranking) return;
  const rows = r.result.ranking.map((x) => el('tr', { class: x.rank === 1 ? 'winner' : null },
    el('td', { class: 'num' }, String(x.rank)),
    el('td', {}, lang() === 'en' && x.supplier_name_en ? x.supplier_name_en : x.supplier_name),
    el('td', {}, alias(x.alias)),
    el('td', { class: 'price num' }, yuan(x.price_fen))));
  $('result-body').append(el('div', { class: 'table-wrap' }, el('table', { id: 'result-ranking' },
    el('caption', {}, t('result.ranking')),
    el('thead', {}, el('tr', {},
      el('th', { scope: 'col' }, t('col.rank')), el('th', { scope: 'col' }, t('col.supplier')),
      el('th', { scope: 'col' }, t('col.alias')), el('th', { scope: 'col', class: 'price' }, t('col.best')))),
    el('tbody', {}, rows))));
}

// -- managing: pause, resume, invite ----------------------------------------------------------

function renderManage() {
  if (!canManage(user, auction)) return;
  const phase = page.phase();
  $('manage').hidden = phase === 'closed' || phase === 'failed';
  const live = page.connection.state === 'live';
  const paused = phase === 'paused';
  const running = phase === 'open' || phase === 'extended';
  $('pause-button').hidden = paused;
  $('resume-button').hidden = !paused;
  $('pause-button').disabled = !running;
  $('resume-button').disabled = !paused;
  $('pause-label').textContent = t(paused ? 'manage.resume_note' : 'manage.reason');
  const ended = ['closing', 'closed', 'failed'].includes(phase);
  $('invite-button').disabled = ended || !live || suppliers.every((s) => invitedIds.has(s.id));
  for (const id of ['pause-status', 'invite-status']) {
    const node = $(id);
    if (manageNote && manageNote.id === id) {
      node.className = `notice ${manageNote.kind}`;
      node.textContent = t(manageNote.key, manageNote.vars);
    } else if (!manageNote || manageNote.id !== id) {
      node.textContent = '';
    }
  }
  renderInviteChoices();
}

function renderInviteChoices() {
  const box = $('invite-choices');
  const checked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
  box.replaceChildren();
  const open = suppliers.filter((s) => !invitedIds.has(s.id));
  if (!open.length) {
    box.append(el('p', { class: 'empty' }, t('manage.all_invited')));
    return;
  }
  for (const s of open) {
    box.append(el('label', {}, el('input', { type: 'checkbox', value: s.id, checked: checked.has(s.id) || null }),
      ` ${orgName(s)}`));
  }
}

async function onPause(event) {
  event.preventDefault();
  const reason = $('pause-reason').value.trim();
  if (!reason) {
    $('pause-error').textContent = t('manage.reason.required');
    $('pause-reason').setAttribute('aria-invalid', 'true');
    $('pause-reason').focus();
    return;
  }
  $('pause-error').textContent = '';
  $('pause-reason').removeAttribute('aria-invalid');
  manageNote = { id: 'pause-status', kind: 'info', key: 'manage.sent', vars: {} };
  renderManage();
  try {
    await api(`/api/auctions/${encodeURIComponent(auctionId)}/pause`, { method: 'POST', body: { reason } });
    $('pause-reason').value = '';
  } catch (err) {
    manageNote = { id: 'pause-status', kind: 'bad', key: 'manage.failed', vars: { message: errText(err) } };
  }
  renderManage();
}

async function onResume() {
  const note = $('pause-reason').value.trim();
  manageNote = { id: 'pause-status', kind: 'info', key: 'manage.sent', vars: {} };
  renderManage();
  try {
    await api(`/api/auctions/${encodeURIComponent(auctionId)}/resume`, {
      method: 'POST', body: note ? { reason: note } : {},
    });
    $('pause-reason').value = '';
  } catch (err) {
    manageNote = { id: 'pause-status', kind: 'bad', key: 'manage.failed', vars: { message: errText(err) } };
  }
  renderManage();
}

async function onInvite(event) {
  event.preventDefault();
  const ids = [...document.querySelectorAll('#invite-choices input:checked')].map((i) => i.value);
  if (!ids.length) {
    $('invite-error').textContent = t('manage.invite.none');
    return;
  }
  $('invite-error').textContent = '';
  try {
    const reply = await api(`/api/auctions/${encodeURIComponent(auctionId)}/invitations`, {
      method: 'POST', body: { supplier_ids: ids },
    });
    for (const id of reply.added) invitedIds.add(id);
    manageNote = { id: 'invite-status', kind: 'ok', key: 'manage.invited', vars: { n: reply.added.length } };
  } catch (err) {
    manageNote = { id: 'invite-status', kind: 'bad', key: 'manage.failed', vars: { message: errText(err) } };
  }
  renderManage();
}

function errText(err) {
  if (err instanceof ApiError) return t(`err.${err.code}`, {}, err.message);
  return String(err);
}

function onMessage(msg) {
  if (msg.type !== 'event') return;
  const kind = msg.event.kind;
  if (kind === 'paused' && manageNote && manageNote.id === 'pause-status') {
    manageNote = { id: 'pause-status', kind: 'ok', key: 'manage.paused', vars: { at: clock(msg.event.at_ms) } };
  } else if (kind === 'resumed' && manageNote && manageNote.id === 'pause-status') {
    manageNote = { id: 'pause-status', kind: 'ok', key: 'manage.resumed', vars: { end: clock(msg.event.end_ms) } };
  }
}

function render() {
  renderStats();
  renderLadder();
  renderChart();
  renderLog();
  renderResultRanking();
  renderManage();
}

async function main() {
  auctionId = auctionIdFromPath();
  user = await initPage();
  if (audienceOf(user) === 'supplier') {
    location.replace(`/app/auctions/${encodeURIComponent(auctionId)}/bid`);
    return;
  }
  auction = await loadAuction(auctionId);
  invitedIds = new Set(auction.invited_supplier_ids || []);
  page = new RoomPage({ auctionId, user, auction, render, onMessage });
  if (canManage(user, auction)) {
    $('pause-form').addEventListener('submit', onPause);
    $('resume-button').addEventListener('click', onResume);
    $('invite-form').addEventListener('submit', onInvite);
    api('/api/organisations?kind=supplier&limit=500').then((doc) => {
      suppliers = doc.items;
      if (page.state.ready) renderManage();
    }).catch(() => {});
  }
  page.start();
  setInterval(() => { if (page.state.ready && !document.hidden) renderChart(); }, 5000);
  let resizeTimer = null;
  new ResizeObserver(() => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (page.state.ready) renderChart(); }, 100);
  }).observe($('chart-box'));
}

main().catch(showFatal);
