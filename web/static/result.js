// The result of a closed auction (GET /api/auctions/{id}/result): the winner, the ranking
// with every supplier's name (identities are revealed at the close), the full bid log and the
// SHA-256 of the result's canonical JSON.

import { api, ApiError, audienceOf } from './api.js';
import { clockMs, dateTime, percent, yuan } from './format.js';
import { lang, onLangChange, t } from './i18n.js';
import { auctionIdFromPath, el, initPage, orgName, showFatal, titleOf } from './layout.js';

const $ = (id) => document.getElementById(id);
let user = null;
let auction = null;
let result = null;

function nameOf(row) {
  return lang() === 'en' && row.supplier_name_en ? row.supplier_name_en : row.supplier_name;
}

function render() {
  $('room-title').textContent = titleOf(auction);
  document.title = `${t('result.heading')} · ${titleOf(auction)}`;
  const sub = [];
  if (auction.purchaser) sub.push(`${t('f.purchaser')}：${orgName(auction.purchaser)}`);
  if (auction.agency) sub.push(`${t('f.agency')}：${orgName(auction.agency)}`);
  sub.push(auction.id);
  $('room-sub').textContent = sub.join(' · ');
  if (!result) return;
  const outcome = $('outcome');
  if (result.failed) {
    outcome.replaceChildren(el('p', { class: 'result-hero' },
      el('span', { class: 'winner', id: 'winner-name' }, t('result.failed')),
      el('span', {}, t('result.failed.why', { n: result.valid_bidders, min: auction.settings.min_valid_bidders }))));
  } else {
    const winner = lang() === 'en' && result.winner_name_en ? result.winner_name_en : result.winner_name;
    const mine = user.roles.includes('supplier') ? result.ranking.find((x) => x.supplier_id === user.org_id) : null;
    outcome.replaceChildren(...[
      el('div', { class: 'result-hero' },
        el('span', {}, `${t('result.winner')}：`, el('span', { class: 'winner', id: 'winner-name' }, winner)),
        el('span', {}, `${t('result.price')}：`, el('b', { class: 'num', id: 'winning-price' }, yuan(result.winning_fen))),
        el('span', {}, `${t('result.savings')}：`, el('b', { class: 'num' }, `${yuan(result.savings_fen)}（${percent(result.savings_bp)}）`))),
      mine ? el('p', { id: 'my-final' }, mine.rank === 1 ? t('result.you_won') : t('result.your_rank', { rank: mine.rank })) : null,
    ].filter(Boolean));
  }
  const facts = [
    [t('f.ceiling'), yuan(result.ceiling_fen)],
    [t('result.valid_bidders'), String(result.valid_bidders)],
    [t('result.final_end'), dateTime(result.final_end_ms)],
    [t('result.closed_at'), `${dateTime(result.closed_at_ms)}`],
    [t('f.extensions'), String(result.extensions)],
    [t('result.sha256'), el('code', {}, result.sha256)],
  ];
  $('result-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  const tbody = document.querySelector('#ranking tbody');
  tbody.replaceChildren(...result.ranking.map((x) => el('tr', {
    class: [x.rank === 1 && !result.failed ? 'winner' : '', x.supplier_id === user.org_id ? 'me' : ''].join(' ').trim() || null,
  },
  el('td', { class: 'num' }, String(x.rank)),
  el('td', {}, nameOf(x)),
  el('td', {}, t('alias', { n: x.alias })),
  el('td', { class: 'price num' }, yuan(x.price_fen)),
  el('td', { class: 'num' }, String(x.bids)))));
  $('ranking-card').hidden = result.ranking.length === 0;
  const log = document.querySelector('#result-log tbody');
  log.replaceChildren(...result.bids.map((b) => el('tr', {},
    el('td', { class: 'num' }, String(b.seq)),
    el('td', { class: 'num' }, `${dateTime(b.at_ms).slice(0, 10)} ${clockMs(b.at_ms)}`),
    el('td', {}, `${lang() === 'en' && b.supplier_name_en ? b.supplier_name_en : b.supplier_name}（${t('alias', { n: b.alias })}）`),
    el('td', { class: 'price num' }, yuan(b.price_fen)))));
}

async function main() {
  const auctionId = auctionIdFromPath();
  user = await initPage();
  auction = await api(`/api/auctions/${encodeURIComponent(auctionId)}`);
  try {
    result = await api(`/api/auctions/${encodeURIComponent(auctionId)}/result`);
    $('result-page').hidden = false;
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== 'not_closed') throw err;
    const room = audienceOf(user) === 'supplier' ? 'bid' : 'watch';
    $('result-error').replaceChildren(t('result.not_yet'), ' ',
      el('a', { href: `/app/auctions/${encodeURIComponent(auctionId)}/${room}` }, t('result.to_room')));
  }
  render();
  $('main').removeAttribute('aria-busy');
  onLangChange(render);
}

main().catch(showFatal);
