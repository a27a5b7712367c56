// The statutory calendar's year (GET /api/calendar/years/{year}): its holidays and make-up
// working days (调休), where each comes from, and whether the year is known. An administrator
// enters or removes a day (PUT/DELETE /api/calendar/days/{day}) and declares a year complete
// (PUT /api/calendar/years/{year}); for a year nobody has entered, a banner says that every
// date computed across it is provisional.

import { api, ApiError } from './api.js';
import { onLangChange, t } from './i18n.js';
import { clearBanner, el, initPage, setBanner, showFatal } from './layout.js';
import { beijingDay, dayText, refusalText } from './procure.js';

const $ = (id) => document.getElementById(id);
let user = null;
let doc = null;
let status = null;

function isAdmin() {
  return !!user && user.roles.includes('admin');
}

function sourceText(source) {
  return t(`cal.source.${source.replace(/[^a-z]/g, '_')}`, {}, source);
}

function render() {
  if (!doc) return;
  const { year } = doc;
  $('days-heading').textContent = t('cal.days_heading', { year });
  $('year-standing').textContent = doc.by_package ? t('cal.by_package', { year })
    : doc.declared_complete ? t('cal.declared', { year }) : t('cal.not_known', { year });
  if (doc.known) clearBanner('unknown');
  else setBanner('unknown', 'warn', t('cal.unknown_banner', { year }), { alert: true });
  const body = $('days').querySelector('tbody');
  body.replaceChildren(...doc.days.map((d) => el('tr', { 'data-day': d.day, class: d.working ? '' : 'off' },
    el('td', { class: 'num' }, dayText(d.day)),
    el('td', {}, t(`cal.kind.${d.kind}`)),
    el('td', {}, d.name || '—'),
    el('td', {}, sourceText(d.source)),
    el('td', {}, isAdmin() && d.source === 'administrator' ? el('button', {
      type: 'button', class: 'secondary small', 'data-remove': d.day,
      'aria-label': t('cal.remove_day', { day: d.day }),
      onclick: () => removeDay(d.day),
    }, t('cal.remove')) : null))));
  $('days-empty').hidden = doc.days.length > 0;
  if (isAdmin()) {
    $('admin-tools').hidden = false;
    const actions = $('complete-actions');
    actions.replaceChildren();
    if (doc.by_package) {
      $('complete-hint').textContent = t('cal.complete.package', { year });
    } else if (doc.declared_complete) {
      $('complete-hint').textContent = t('cal.complete.done', { year });
      actions.append(el('button', { type: 'button', class: 'secondary', id: 'undeclare',
        onclick: () => declare(false) }, t('cal.undeclare', { year })));
    } else {
      $('complete-hint').textContent = t('cal.complete.hint', { year });
      actions.append(el('button', { type: 'button', id: 'declare', onclick: () => declare(true) },
        t('cal.declare', { year })));
    }
  }
  const box = $('cal-status');
  box.className = `notice ${status ? status.kind : ''}`;
  box.textContent = status ? status.text() : '';
}

function say(kind, text) {
  status = { kind, text };
  render();
}

async function load(year) {
  doc = await api(`/api/calendar/years/${year}`);
  $('year').value = String(year);
  history.replaceState(null, '', `?year=${year}`);
  render();
}

async function guarded(action, done) {
  try {
    await action();
    await load(doc.year);
    say('ok', done);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    say('bad', () => refusalText(err));
  }
}

function removeDay(day) {
  guarded(() => api(`/api/calendar/days/${day}`, { method: 'DELETE' }),
    () => t('cal.removed', { day: dayText(day) }));
}

function declare(complete) {
  const year = doc.year;
  guarded(() => api(`/api/calendar/years/${year}`, { method: 'PUT', body: { complete } }),
    () => t(complete ? 'cal.declared_now' : 'cal.undeclared_now', { year }));
}

async function onEnter(event) {
  event.preventDefault();
  const day = $('entry-day').value.trim();
  $('entry-day-error').textContent = '';
  $('entry-day').removeAttribute('aria-invalid');
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(Date.parse(`${day}T00:00:00Z`))) {
    $('entry-day-error').textContent = t('err.invalid_day');
    $('entry-day').setAttribute('aria-invalid', 'true');
    $('entry-day').focus();
    return;
  }
  const working = document.querySelector('input[name="working"]:checked').value === 'true';
  const name = $('entry-name').value.trim();
  try {
    await api(`/api/calendar/days/${day}`, { method: 'PUT', body: { working, ...(name ? { name } : {}) } });
    await load(Number(day.slice(0, 4)));
    say('ok', () => t('cal.entered', { day: dayText(day) }));
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    $('entry-day-error').textContent = refusalText(err);
  }
}

async function main() {
  user = await initPage({ nav: 'calendar' });
  const wanted = /^\d{4}$/.exec(new URLSearchParams(location.search).get('year') || '');
  const year = wanted ? Number(wanted[0]) : Number(beijingDay((await api('/api/time')).server_time_ms).slice(0, 4));
  await load(year);
  $('main').removeAttribute('aria-busy');
  $('show-year').addEventListener('click', () => {
    const y = $('year').value.trim();
    if (/^\d{4}$/.test(y)) load(Number(y)).catch((err) => say('bad', () => refusalText(err)));
  });
  $('day-form').addEventListener('submit', onEnter);
  onLangChange(render);
}

main().catch(showFatal);
