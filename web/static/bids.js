// The supplier's tenders: the published projects (GET /api/projects shows every published
// project to anyone signed in), each lot with its state, deadline and bond, and this supplier's
// registration for it. A lot is opened on /app/bids/{project_id} to register and download.

import { api, ApiError } from './api.js';
import { dateTime, yuan } from './format.js';
import { onLangChange, t } from './i18n.js';
import { el, initPage, showFatal } from './layout.js';
import { projectTitle, refusalText } from './procure.js';

const $ = (id) => document.getElementById(id);
const SHOWN = 30; // the newest projects whose lots are read (one request per project)

let projects = [];
const mine = new Map(); // lot id -> this supplier's registration of the lot's current round

function lotLine(project, lot) {
  const reg = mine.get(lot.id);
  const state = reg ? t(`reg.${reg.status}`) : (lot.status === 'announced' ? t('bids.not_registered') : '');
  return el('li', { 'data-lot': lot.id },
    el('b', {}, t('lot.heading', { n: lot.number, title: lot.title })), ' ',
    el('span', { class: `badge lot-${lot.status}` }, t(`lot.${lot.status}`)), ' ',
    lot.deadline_ms ? el('span', { class: 'num' }, t('bids.deadline', { time: dateTime(lot.deadline_ms) })) : null, ' ',
    el('span', {}, `${t('f.bond')} `, el('b', { class: 'num' }, yuan(lot.bond_fen))), ' ',
    state ? el('span', { class: `badge ${reg && reg.status === 'registered' ? 'phase-running' : 'phase-scheduled'}`, 'data-registration': reg ? reg.status : 'none' }, state) : null);
}

function render() {
  const q = $('bids-search').value.trim().toLowerCase();
  const shown = projects.filter((p) => !q || p.title.toLowerCase().includes(q)
    || (p.title_en || '').toLowerCase().includes(q) || p.id.toLowerCase().includes(q));
  $('bid-list').replaceChildren(...shown.map((p) => {
    const href = `/app/bids/${encodeURIComponent(p.id)}`;
    return el('li', { 'data-project': p.id, 'aria-labelledby': `b-${p.id}` },
      el('div', { class: 'top' },
        el('h2', { id: `b-${p.id}` }, el('a', { href }, projectTitle(p))),
        el('span', { class: 'badge phase-scheduled' }, t(`method.${p.method}`))),
      el('div', { class: 'meta' },
        el('span', {}, `${t('f.budget')} `, el('b', { class: 'num' }, yuan(p.budget_fen))),
        el('span', {}, `${t('f.region')} `, el('b', { class: 'mono' }, p.region_code))),
      el('ul', { class: 'bid-lots' }, p.lots.filter((l) => l.announced_at_ms).map((l) => lotLine(p, l))),
      el('div', { class: 'actions' }, el('a', { class: 'button small', href }, t('bids.open'))));
  }));
  $('bids-empty').hidden = shown.length > 0;
}

async function load() {
  const region = $('bids-region').value.trim();
  try {
    const query = /^\d{1,6}$/.test(region) ? `?region=${region}&limit=${SHOWN}` : `?limit=${SHOWN}`;
    const items = (await api(`/api/projects${query}`)).items;
    const full = await Promise.all(items.map((p) => api(`/api/projects/${encodeURIComponent(p.id)}`)));
    projects = full.filter((p) => p.announcements.length > 0);
    const open = projects.flatMap((p) => p.lots).filter((l) => l.announced_at_ms);
    const regs = await Promise.all(open.map((l) => api(`/api/lots/${encodeURIComponent(l.id)}/registrations`)
      .then((doc) => [l, doc.items]).catch(() => [l, []])));
    mine.clear();
    for (const [lot, items] of regs) {
      const current = items.filter((r) => r.round === lot.rounds);
      if (current.length) mine.set(lot.id, current[current.length - 1]);
    }
    $('bids-error').textContent = '';
    render();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    $('bids-error').textContent = refusalText(err);
  }
}

async function main() {
  await initPage({ nav: 'bids' });
  $('bids-refresh').addEventListener('click', load);
  $('bids-region').addEventListener('change', load);
  $('bids-search').addEventListener('input', render);
  onLangChange(render);
  await load();
  $('main').removeAttribute('aria-busy');
}

main().catch(showFatal);
