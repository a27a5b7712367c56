// The supplier's auction room: the countdown, the lowest price (when the rules show it), the
// supplier's own rank and bids, a bid form that states the highest price allowed now and
// refuses a higher one before sending, and the platform-signed receipt of every accepted bid.
//
// Nothing changes on the page until the server says so: a bid shows as "sent" until the
// server's bid_accepted (with its receipt) or bid_rejected (with its reason) arrives.

import { api, audienceOf, newBidId } from './api.js';
import { clockMs, dateTime, parseYuan, yuan } from './format.js';
import { t } from './i18n.js';
import { auctionIdFromPath, el, initPage, showFatal } from './layout.js';
import { loadAuction, RoomPage, rulesText, stepText } from './room-common.js';

const $ = (id) => document.getElementById(id);
let page = null;
let auctionId = null;
let pendingBid = null; // {bid_id, price_fen} waiting for the server's answer
let lastOutcome = null; // {kind: 'ok'|'bad', key, vars}
let bidError = null; // () => text: worded at each render, so it follows the language
let signInOutcome = null; // {kind, text: () => text}
let refetching = false;

/** The server's code in words of the page's language (the server's own message if new). */
function codeText(code, message) {
  return t(`err.${code}`, {}, message || code || '');
}

/** The supplier's own count of a bid: 1 for its first, whatever the auction's sequence. */
function ownNumber(seq) {
  return page.state.ownBids.filter((b) => b.seq <= seq).length;
}

// -- receipts kept for this tab (they are signed documents, not secrets) ----------------------

function receiptKey() {
  return `bidroom.receipts.${auctionId}`;
}

function receipts() {
  try { return JSON.parse(sessionStorage.getItem(receiptKey()) || '{}'); } catch { return {}; }
}

function keepReceipt(receipt) {
  const all = receipts();
  all[receipt.bid_id] = receipt;
  sessionStorage.setItem(receiptKey(), JSON.stringify(all));
}

function downloadReceipt(receipt) {
  const blob = new Blob([JSON.stringify(receipt, null, 2) + '\n'], { type: 'application/json' });
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: `receipt-${receipt.auction_id}-${receipt.seq}.json` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

async function verifyReceipt(receipt, output) {
  output.textContent = t('receipt.verifying');
  try {
    await api('/api/receipts/verify', { method: 'POST', body: receipt });
    output.textContent = t('receipt.valid', { key: receipt.key_id });
    output.className = 'notice ok';
  } catch (err) {
    output.textContent = t('receipt.invalid', { message: codeText(err.code, err.message) });
    output.className = 'notice bad';
  }
}

/** Ask for a receipt again: the same bid id returns the original acceptance (protocol §1.3). */
async function fetchReceipt(bid, output) {
  output.textContent = t('receipt.fetching');
  const reply = await page.socket.request('bid', {
    auction_id: auctionId, bid_id: bid.bid_id, price_fen: bid.price_fen,
  });
  if (reply.type === 'bid_accepted' && reply.receipt) {
    keepReceipt(reply.receipt);
    output.textContent = '';
    renderOwnBids();
  } else {
    output.textContent = t('receipt.fetch_failed', { message: codeText(reply.reason || reply.code, reply.message) });
  }
}

// -- rendering --------------------------------------------------------------------------------

function renderFacts() {
  const st = page.state;
  const r = st.room;
  const you = st.you;
  $('lowest').textContent = r.rules.show_lowest_to_suppliers
    ? (r.lowest_fen === null ? t('f.no_bids_yet') : yuan(r.lowest_fen))
    : t('f.lowest_hidden');
  if (!you) {
    $('my-rank').textContent = '—';
  } else if (you.rank) {
    $('my-rank').textContent = t('rank.of', { rank: you.rank, n: r.bidders });
  } else {
    $('my-rank').textContent = t('rank.none');
  }
  $('my-best').textContent = you && you.best_fen !== null ? yuan(you.best_fen) : '—';
  $('my-bids').textContent = you ? String(you.bids) : '0';
  $('ceiling').textContent = yuan(r.rules.ceiling_fen);
  $('step').textContent = stepText(r.rules);
  $('rules-line').textContent = rulesText(r.rules);
}

function blockedReason() {
  const phase = page.phase();
  if (page.connection.state !== 'live') return t('bid.blocked.offline');
  if (!page.state.you) return t('bid.blocked.loading');
  if (!page.state.you.invited) return t('bid.blocked.not_invited');
  if (phase === 'paused') return t('bid.blocked.paused');
  if (phase === 'closed' || phase === 'failed') return t('bid.blocked.closed');
  if (page.state.you.max_allowed_fen < 1) return t('bid.blocked.none_left');
  return null;
}

function renderForm() {
  const st = page.state;
  const you = st.you;
  const blocked = blockedReason();
  const allowed = $('allowed');
  const phase = page.phase();
  if (!blocked) {
    allowed.replaceChildren(t('bid.allowed.before'), el('strong', { id: 'max-allowed' }, yuan(you.max_allowed_fen)),
      t(st.room.rules.improvement === 'own_previous' && you.best_fen !== null
        ? 'bid.allowed.after.own' : st.room.rules.improvement === 'current_lowest' && st.room.lowest_fen !== null
          ? 'bid.allowed.after.lowest' : 'bid.allowed.after.ceiling'));
  } else {
    allowed.textContent = blocked || '';
  }
  if (phase === 'scheduled' || phase === 'sign_in') {
    allowed.append(el('span', { class: 'hint' }, ` ${t('bid.not_started')}`));
  }
  const button = $('bid-submit');
  const disabled = !!blocked || pendingBid !== null;
  button.disabled = disabled;
  $('price').disabled = ['closed', 'failed'].includes(phase);
  const status = $('bid-status');
  if (pendingBid) {
    status.className = 'notice info';
    status.textContent = t('bid.pending', { price: yuan(pendingBid.price_fen) });
  } else if (lastOutcome) {
    status.className = `notice ${lastOutcome.kind}`;
    status.textContent = t(lastOutcome.key, lastOutcome.vars);
  } else {
    status.textContent = '';
  }
  paintBidError();
  const signInStatus = $('signin-status');
  signInStatus.className = signInOutcome ? `notice ${signInOutcome.kind}` : 'notice';
  signInStatus.textContent = signInOutcome ? signInOutcome.text() : '';
  // Sign-in (签到)
  const signInBox = $('signin-box');
  const needsSignIn = st.room.rules.sign_in_ms > 0 && you && you.invited && !you.signed_in
    && !['closed', 'failed'].includes(phase);
  signInBox.hidden = !needsSignIn;
  if (needsSignIn) {
    $('signin-text').textContent = t(phase === 'scheduled' ? 'bid.signin.later' : 'bid.signin.needed');
    $('signin-button').disabled = page.connection.state !== 'live';
  }
}

function renderOwnBids() {
  const st = page.state;
  const stored = receipts();
  const tbody = document.querySelector('#own-bids tbody');
  tbody.replaceChildren();
  const bids = [...st.ownBids].sort((a, b) => b.seq - a.seq);
  for (const [index, bid] of bids.entries()) {
    const receipt = stored[bid.bid_id];
    const output = el('p', { class: 'notice', role: 'status' });
    let cell;
    if (receipt) {
      cell = el('details', { class: 'receipt' },
        el('summary', {}, t('receipt.summary', { seq: receipt.seq, key: receipt.key_id })),
        el('pre', { tabindex: '0' }, JSON.stringify(receipt, null, 2)),
        el('div', { class: 'actions' },
          el('button', { type: 'button', class: 'secondary small', onclick: () => downloadReceipt(receipt) }, t('receipt.download')),
          el('button', { type: 'button', class: 'secondary small', onclick: () => verifyReceipt(receipt, output) }, t('receipt.verify'))),
        output);
    } else {
      cell = el('div', {},
        el('button', { type: 'button', class: 'secondary small',
          onclick: () => fetchReceipt(bid, output) }, t('receipt.fetch')), output);
    }
    tbody.append(el('tr', { 'data-seq': bid.seq },
      el('td', { class: 'num my-no' }, String(bids.length - index)),
      el('td', { class: 'num' }, String(bid.seq)),
      el('td', { class: 'num', title: dateTime(bid.at_ms) }, clockMs(bid.at_ms)),
      el('td', { class: 'price num' }, yuan(bid.price_fen)),
      el('td', {}, cell)));
  }
  $('own-empty').hidden = bids.length > 0;
}

function render() {
  renderFacts();
  renderForm();
  renderOwnBids();
}

// -- bidding ----------------------------------------------------------------------------------

/** Show an error under the price: ``make`` words it (again after a language switch). */
function showBidError(make) {
  bidError = make || null;
  paintBidError();
}

function paintBidError() {
  const text = bidError ? bidError() : '';
  $('bid-error').textContent = text;
  $('price').setAttribute('aria-invalid', text ? 'true' : 'false');
}

/** The form's own check: a price the server would refuse is never sent. */
function checkPrice(text) {
  const parsed = parseYuan(text);
  if (parsed.error) return { error: () => t(`money.${parsed.error}`) };
  const you = page.state.you;
  const max = you.max_allowed_fen;
  if (parsed.fen > max) {
    const key = parsed.fen > page.state.room.rules.ceiling_fen ? 'bid.err.above_ceiling' : 'bid.err.above';
    return { error: () => t(key, { max: yuan(max), price: yuan(parsed.fen) }) };
  }
  return { fen: parsed.fen };
}

async function onBid(event) {
  event.preventDefault();
  if (pendingBid) return;
  lastOutcome = null;
  renderForm();
  if (blockedReason()) {
    showBidError(() => blockedReason() || '');
    return;
  }
  const checked = checkPrice($('price').value);
  if (checked.error) {
    showBidError(checked.error);
    $('price').focus();
    return;
  }
  showBidError(null);
  lastOutcome = null;
  pendingBid = { bid_id: newBidId(), price_fen: checked.fen };
  renderForm();
  const reply = await page.socket.request('bid', {
    auction_id: auctionId, bid_id: pendingBid.bid_id, price_fen: pendingBid.price_fen,
  }, { resend: true });
  pendingBid = null;
  if (reply.type === 'bid_accepted') {
    keepReceipt(reply.receipt);
    const st = page.state;
    if (!st.ownBids.some((b) => b.bid_id === reply.bid_id)) {
      st.ownBids.push({ seq: reply.receipt.seq, bid_id: reply.bid_id, price_fen: reply.price_fen,
        at_ms: reply.receipt.server_time_ms });
    }
    lastOutcome = { kind: 'ok', key: 'bid.accepted', vars: {
      price: yuan(reply.price_fen), seq: reply.receipt.seq, n: ownNumber(reply.receipt.seq) } };
    $('price').value = '';
  } else if (reply.type === 'bid_rejected') {
    // The reason code in words of the page's language, not the server's bilingual message.
    showBidError(() => t('bid.rejected', {
      message: codeText(reply.reason, reply.message),
      extra: reply.max_allowed_fen ? t('bid.rejected.max', { max: yuan(reply.max_allowed_fen) }) : '',
    }));
  } else {
    showBidError(() => t('bid.error', { message: codeText(reply.code, reply.message) }));
  }
  render();
}

async function onSignIn() {
  signInOutcome = { kind: 'info', text: () => t('bid.signin.sending') };
  renderForm();
  const reply = await page.socket.request('sign_in', { auction_id: auctionId });
  if (reply.type === 'signed_in') {
    signInOutcome = { kind: 'ok', text: () => t('bid.signin.done') };
  } else {
    signInOutcome = { kind: 'bad', text: () => codeText(reply.reason || reply.code, reply.message) };
  }
  renderForm();
}

async function refetchOwnBids() {
  if (refetching) return;
  refetching = true;
  try {
    const detail = await loadAuction(auctionId);
    if (detail.you && Array.isArray(detail.you.own_bids)) {
      page.state.ownBids = detail.you.own_bids;
      renderOwnBids();
    }
  } finally {
    refetching = false;
  }
}

function onMessage(msg) {
  if (msg.type === 'you' && !Array.isArray(msg.own_bids)) {
    // Bids placed elsewhere (another tab) while this page was away: ask for the list.
    const known = new Set(page.state.ownBids.map((b) => b.bid_id)).size;
    if (msg.bids > known && !pendingBid) refetchOwnBids();
  }
}

async function main() {
  auctionId = auctionIdFromPath();
  const user = await initPage();
  if (audienceOf(user) !== 'supplier') {
    location.replace(`/app/auctions/${encodeURIComponent(auctionId)}/watch`);
    return;
  }
  const auction = await loadAuction(auctionId);
  page = new RoomPage({ auctionId, user, auction, render, onMessage });
  $('bid-form').addEventListener('submit', onBid);
  $('price').addEventListener('input', () => { if (bidError) showBidError(null); });
  $('signin-button').addEventListener('click', onSignIn);
  page.start();
}

main().catch(showFatal);
