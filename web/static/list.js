// The caller's auctions (GET /api/auctions) with the live phase the server reports.

import { api, audienceOf, canCreate } from './api.js';
import { dateTime, yuan } from './format.js';
import { onLangChange, t } from './i18n.js';
import { el, initPage, orgName, showFatal, titleOf } from './layout.js';

const REFRESH_MS = 20_000;
let user = null;
let items = [];
let openings = [];
let asOf = null;

function roomLink(item) {
  const id = encodeURIComponent(item.id);
  const phase = item.phase || item.status;
  if (phase === 'closed' || phase === 'failed') {
    return el('a', { class: 'button small', href: `/app/auctions/${id}/result` }, t('list.result'));
  }
  if (audienceOf(user) === 'supplier') {
    return el('a', { class: 'button small', href: `/app/auctions/${id}/bid` }, t('list.enter'));
  }
  return el('a', { class: 'button small', href: `/app/auctions/${id}/watch` }, t('list.watch'));
}

function renderOpenings() {
  const list = document.getElementById('opening-list');
  list.replaceChildren();
  for (const item of openings) {
    const id = encodeURIComponent(item.id);
    const headingId = `o-${item.id}`;
    const revealed = item.phase === 'objections' || item.phase === 'concluded';
    list.append(el('li', { 'data-opening': item.id, 'aria-labelledby': headingId },
      el('div', { class: 'top' },
        el('h2', { id: headingId }, titleOf(item)),
        el('span', { class: `badge hphase-${item.phase}` }, t(`hphase.${item.phase}`))),
      el('div', { class: 'meta' },
        el('span', {}, `${t('hall.deadline')} `, el('b', { class: 'num' }, dateTime(item.deadline_ms)))),
      el('div', { class: 'actions' },
        el('a', { class: 'button small', href: `/app/openings/${id}` }, t('list.hall')),
        revealed ? el('a', { class: 'button small secondary', href: `/app/openings/${id}/record` }, t('list.record')) : null,
        el('span', { class: 'sub mono' }, item.id))));
  }
  document.getElementById('openings-empty').hidden = openings.length > 0;
}

function render() {
  renderOpenings();
  const list = document.getElementById('auction-list');
  list.replaceChildren();
  for (const item of items) {
    const phase = item.phase || item.status;
    const end = item.current_end_ms ?? item.end_ms;
    const headingId = `a-${item.id}`;
    list.append(el('li', { 'data-auction': item.id, 'aria-labelledby': headingId },
      el('div', { class: 'top' },
        el('h2', { id: headingId }, titleOf(item)),
        el('span', { class: `badge phase-${phase}` }, t(`phase.${phase}`))),
      el('div', { class: 'meta' },
        el('span', {}, `${t('f.start')} `, el('b', { class: 'num' }, dateTime(item.start_ms))),
        el('span', {}, `${t('f.end')} `, el('b', { class: 'num' }, dateTime(end))),
        el('span', {}, `${t('f.ceiling')} `, el('b', { class: 'num' }, yuan(item.settings.ceiling_fen))),
        item.purchaser ? el('span', {}, `${t('f.purchaser')} `, el('b', {}, orgName(item.purchaser)))
          : null),
      el('div', { class: 'actions' }, roomLink(item),
        el('span', { class: 'sub mono' }, item.id))));
  }
  document.getElementById('list-empty').hidden = items.length > 0;
  document.getElementById('as-of').textContent = asOf ? t('list.asof', { time: dateTime(asOf) }) : '';
  const actions = document.getElementById('list-actions');
  actions.replaceChildren();
  if (canCreate(user)) {
    actions.append(el('a', { class: 'button', href: '/app/auctions/new', id: 'new-auction' },
      t('list.new')));
  }
  document.getElementById('list-sub').textContent = t(`list.sub.${audienceOf(user)}`);
}

async function load() {
  const status = document.getElementById('status-filter').value;
  const query = status ? `?status=${encodeURIComponent(status)}&limit=200` : '?limit=200';
  const errorBox = document.getElementById('list-error');
  try {
    const [doc, time, opened] = await Promise.all([
      api(`/api/auctions${query}`), api('/api/time'),
      api('/api/openings').catch(() => ({ items: [] })),
    ]);
    items = doc.items;
    openings = opened.items;
    asOf = time.server_time_ms;
    errorBox.textContent = '';
    render();
  } catch (err) {
    errorBox.textContent = t('list.error', { message: t(`err.${err.code}`, {}, err.message) });
  }
}

async function main() {
  user = await initPage({ nav: 'auctions' });
  render();
  document.getElementById('refresh').addEventListener('click', load);
  document.getElementById('status-filter').addEventListener('change', load);
  onLangChange(render);
  await load();
  setInterval(() => { if (!document.hidden) load(); }, REFRESH_MS);
}

main().catch(showFatal);
