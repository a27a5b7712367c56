// The procurement projects the caller may see (GET /api/projects), newest first.

import { api } from './api.js';
import { dateTime, yuan } from './format.js';
import { onLangChange, t } from './i18n.js';
import { el, initPage, showFatal } from './layout.js';
import { projectTitle } from './procure.js';

let user = null;
let items = [];

function render() {
  const list = document.getElementById('project-list');
  list.replaceChildren();
  for (const item of items) {
    const id = encodeURIComponent(item.id);
    const headingId = `p-${item.id}`;
    list.append(el('li', { 'data-project': item.id, 'aria-labelledby': headingId },
      el('div', { class: 'top' },
        el('h2', { id: headingId }, el('a', { href: `/app/projects/${id}` }, projectTitle(item))),
        el('span', { class: 'badge phase-scheduled' }, t(`method.${item.method}`))),
      el('div', { class: 'meta' },
        el('span', {}, `${t('f.budget')} `, el('b', { class: 'num' }, yuan(item.budget_fen))),
        el('span', {}, `${t('f.region')} `, el('b', { class: 'mono' }, item.region_code)),
        el('span', {}, `${t('f.created')} `, el('b', { class: 'num' }, dateTime(item.created_at_ms)))),
      el('div', { class: 'actions' },
        el('a', { class: 'button small', href: `/app/projects/${id}` }, t('projects.open')),
        el('span', { class: 'sub mono' }, item.id))));
  }
  document.getElementById('projects-empty').hidden = items.length > 0;
  const actions = document.getElementById('projects-actions');
  actions.replaceChildren();
  if (user.roles.includes('purchaser')) {
    actions.append(el('a', { class: 'button', href: '/app/projects/new', id: 'new-project' },
      t('projects.new')));
  }
}

async function load() {
  const region = document.getElementById('region-filter').value.trim();
  const box = document.getElementById('projects-error');
  try {
    const query = /^\d{1,6}$/.test(region) ? `?region=${region}&limit=200` : '?limit=200';
    items = (await api(`/api/projects${query}`)).items;
    box.textContent = '';
    render();
  } catch (err) {
    box.textContent = t('projects.error', { message: t(`err.${err.code}`, {}, err.message) });
  }
}

async function main() {
  user = await initPage({ nav: 'projects' });
  render();
  document.getElementById('refresh').addEventListener('click', load);
  document.getElementById('region-filter').addEventListener('change', load);
  onLangChange(render);
  await load();
}

main().catch(showFatal);
