// The public portal (政府采购网): search the announcements (GET /api/portal/announcements),
// no sign-in. The form's values live in the URL, so a search can be linked and reloaded.

import { api, ApiError } from './api.js';
import { dateTime } from './format.js';
import { onLangChange, t } from './i18n.js';
import { el, initPage, showFatal } from './layout.js';

const FIELDS = ['q', 'region', 'method', 'category', 'kind'];
let items = [];
let next = null;

function params() {
  const out = new URLSearchParams();
  for (const name of FIELDS) {
    const value = document.getElementById(name).value.trim();
    if (value) out.set(name, value);
  }
  return out;
}

function render() {
  const list = document.getElementById('portal-results');
  list.replaceChildren();
  for (const item of items) {
    const headingId = `n-${item.id}`;
    list.append(el('li', { 'data-announcement': String(item.id), 'aria-labelledby': headingId },
      el('div', { class: 'top' },
        el('h2', { id: headingId },
          el('a', { href: `/app/portal/${encodeURIComponent(item.id)}` }, item.title)),
        el('span', { class: `badge kind-${item.kind}` }, t(`portal.kind.${item.kind}`))),
      el('div', { class: 'meta' },
        el('span', {}, `${t('portal.published')} `,
          el('b', { class: 'num' }, dateTime(item.published_at_ms)), ` ${t('portal.bjt')}`),
        el('span', {}, `${t('portal.method')} ${t(`portal.method.${item.method}`)}`),
        el('span', { class: 'mono' }, `${t('portal.region')} ${item.region_code}`),
        el('span', { class: 'mono' }, `${t('portal.category')} ${item.category_code}`)),
      el('p', { class: 'sub' }, item.excerpt)));
  }
  document.getElementById('portal-empty').hidden = items.length > 0;
  document.getElementById('portal-more').hidden = !next;
}

async function search({ more = false } = {}) {
  const error = document.getElementById('portal-error');
  error.textContent = '';
  const query = params();
  if (more && next) query.set('cursor', next);
  try {
    const page = await api(`/api/portal/announcements?${query}`, { token: '' });
    items = more ? items.concat(page.items) : page.items;
    next = page.next_cursor;
    render();
  } catch (err) {
    if (!(err instanceof ApiError) || err.status >= 500) throw err;
    error.textContent = t(`err.${err.code}`, {}, err.message);
  }
}

async function main() {
  await initPage({ auth: false });
  const initial = new URLSearchParams(location.search);
  for (const name of FIELDS) document.getElementById(name).value = initial.get(name) || '';
  document.getElementById('portal-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const query = params();
    history.replaceState(null, '', query.toString() ? `?${query}` : location.pathname);
    search().catch(showFatal);
  });
  document.getElementById('portal-more').addEventListener('click', () => {
    search({ more: true }).catch(showFatal);
  });
  onLangChange(render);
  await search();
}

main().catch(showFatal);
