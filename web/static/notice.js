// One announcement on the public portal (GET /api/portal/announcements/{id}): its text and its
// statutory dates, each with the article it comes from (GPL 35, O87 16/18/27/69).

import { api, ApiError } from './api.js';
import { dateTime } from './format.js';
import { lang, onLangChange, t } from './i18n.js';
import { el, initPage, showFatal } from './layout.js';

let notice = null;

function render() {
  if (!notice) return;
  document.getElementById('notice-title').textContent = notice.title;
  document.title = `${notice.title} · ${t('brand')}`;
  document.getElementById('notice-kind').textContent = t(`portal.kind.${notice.kind}`);
  document.getElementById('notice-meta').textContent = [
    `${t('portal.published')} ${dateTime(notice.published_at_ms)} ${t('portal.bjt')}`,
    `${t('portal.method')} ${t(`portal.method.${notice.method}`)}`,
    `${t('portal.region')} ${notice.region_code}`,
    `${t('portal.category')} ${notice.category_code}`].join(' · ');
  document.getElementById('notice-body').textContent = notice.body;
  const rows = document.querySelector('#notice-dates tbody');
  rows.replaceChildren();
  for (const d of notice.dates) {
    rows.append(el('tr', { 'data-article': d.article || '' },
      el('td', { class: 'num' }, d.day, d.provisional ? ` ${t('portal.provisional')}` : ''),
      el('td', {}, d.article || '—'),
      el('td', {}, (lang() === 'en' ? d.rule_en : d.rule_zh) || '',
        d.warning ? el('div', { class: 'sub' }, d.warning) : null)));
  }
  document.getElementById('notice-dates').hidden = notice.dates.length === 0;
  document.getElementById('dates-empty').hidden = notice.dates.length > 0;
}

async function main() {
  await initPage({ auth: false });
  const id = location.pathname.split('/').filter(Boolean).pop();
  try {
    notice = await api(`/api/portal/announcements/${encodeURIComponent(id)}`, { token: '' });
  } catch (err) {
    if (!(err instanceof ApiError) || err.status >= 500) throw err;
    document.getElementById('notice-error').textContent = t(`err.${err.code}`, {}, err.message);
    return;
  }
  render();
  onLangChange(render);
}

main().catch(showFatal);
