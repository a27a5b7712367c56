// What the procurement pages share (projects, a project, the calendar): the names of methods
// and states, articles in words, a statutory date with its rule, and a refusal in words.

import { dateTime, yuan } from './format.js';
import { lang, t } from './i18n.js';
import { el } from './layout.js';

export const METHODS = ['open_tender', 'invited_tender', 'competitive_negotiation',
  'competitive_consultation', 'inquiry', 'single_source'];
export const LOT_STATES = ['draft', 'announced', 'bidding', 'opened', 'qualified', 'evaluating',
  'awarded', 'failed', 'terminated'];
export const ENDED = new Set(['awarded', 'failed', 'terminated']);

// Article codes as the server cites them ("GPL 35", "O87 27", "财库〔2014〕214号 10").
const LAWS = {
  GPL: 'law.GPL', Reg: 'law.Reg', O87: 'law.O87', O74: 'law.O74', EXP: 'law.EXP',
  O110: 'law.O110',
};

/** "O87 27" -> "87号令第27条" / "Order 87, art. 27"; unknown codes are shown as they are. */
export function articleText(article) {
  if (!article) return '';
  const m = /^(.*\S)\s+(\d+)$/.exec(article);
  if (!m) return article;
  const law = LAWS[m[1]] ? t(LAWS[m[1]]) : m[1];
  return t('law.article', { law, n: m[2] });
}

const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** "2026-10-08" -> "2026-10-08（周四）" / "Thu 2026-10-08". */
export function dayText(day) {
  if (!day) return '—';
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) return day;
  const weekday = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3])).getUTCDay();
  return t('day.with_weekday', { day, weekday: t(`weekday.${WEEKDAYS[weekday]}`) });
}

/** The rule's words in the current language (the server sends both). */
export function ruleText(view) {
  return lang() === 'en' ? (view.rule_en || '') : (view.rule_zh || '');
}

/** One statutory date (the API's date view) as a list item: the day, what it is, the rule,
 *  its article, and a provisional warning. */
export function dateItem(view, { label } = {}) {
  const name = label || (view.period ? t(`period.${view.period}`, {}, view.period) : '');
  return el('li', { class: 'statutory', 'data-period': view.period || '' },
    el('div', { class: 'top' },
      el('span', { class: 'what' }, name),
      el('b', { class: 'num', 'data-day': view.day }, dayText(view.day)),
      view.article ? el('span', { class: 'article' }, articleText(view.article)) : null,
      view.provisional ? el('span', { class: 'badge provisional' }, t('plan.provisional')) : null),
    ruleText(view) ? el('p', { class: 'rule' }, ruleText(view)) : null,
    view.provisional ? el('p', { class: 'warning', role: 'note' },
      t('plan.warning', { years: yearsOf(view) })) : null);
}

function yearsOf(view) {
  const m = /^([\d、]+)/.exec(view.warning || '');
  return m ? m[1].replace(/、/g, lang() === 'en' ? ', ' : '、') : view.day.slice(0, 4);
}

/** A refusal in words: the code's words (`scope.err.<code>` first, where a page words a shared
 *  code its own way), then its article and its earliest legal day. */
export function refusalText(err, { scope } = {}) {
  const details = (err && err.details) || {};
  const words = t(`err.${err.code}`, {}, err.message);
  const parts = [scope ? t(`${scope}.err.${err.code}`, {}, words) : words];
  if (details.article) parts.push(t('refusal.article', { article: articleText(details.article) }));
  if (details.earliest_day) parts.push(t('refusal.earliest', { day: dayText(details.earliest_day) }));
  if (details.provisional) parts.push(t('refusal.provisional'));
  if (details.status) parts.push(t('refusal.status', { status: t(`lot.${details.status}`) }));
  return parts.join(' ');
}

/** The Beijing calendar day of an instant, "YYYY-MM-DD". */
export function beijingDay(ms) {
  return new Date(ms + 8 * 3600 * 1000).toISOString().slice(0, 10);
}

/** The instant of a Beijing day at hh:mm. */
export function atBeijing(day, hh, mm = 0) {
  const [y, m, d] = day.split('-').map(Number);
  return Date.UTC(y, m - 1, d, hh, mm) - 8 * 3600 * 1000;
}

export function projectTitle(project) {
  return lang() === 'en' && project.title_en ? project.title_en : project.title;
}

function fact(labelKey, value, attrs = {}) {
  return el('div', attrs, el('dt', {}, t(labelKey)), el('dd', {}, value));
}

/** A lot's terms and dates as label/value pairs. */
export function lotFacts(lot) {
  return el('dl', { class: 'lot-facts' },
    fact('f.method', t(`method.${lot.method}`)),
    fact('f.category', el('span', { class: 'mono' }, lot.category_code)),
    fact('f.budget', el('span', { class: 'num' }, yuan(lot.budget_fen))),
    fact('f.ceiling', el('span', { class: 'num' }, yuan(lot.ceiling_fen))),
    fact('f.bond', el('span', { class: 'num' }, yuan(lot.bond_fen))),
    fact('f.bid_mode', t(`bid_mode.${lot.bid_mode}`)),
    fact('f.evaluation', t(`evaluation.${lot.evaluation}`)),
    lot.announced_at_ms ? fact('f.announced', el('span', { class: 'num' }, dateTime(lot.announced_at_ms))) : null,
    lot.documents_from_ms ? fact('f.documents', el('span', { class: 'num' },
      `${dateTime(lot.documents_from_ms)} — ${dateTime(lot.documents_until_ms)}`)) : null,
    lot.deadline_ms ? fact('f.deadline', el('b', { class: 'num', id: `deadline-${lot.id}` }, dateTime(lot.deadline_ms))) : null,
    lot.rounds > 1 ? fact('f.round', String(lot.rounds)) : null);
}

/** An announcement with its statutory dates. */
export function announcementItem(a) {
  return el('li', { 'data-announcement': a.id, 'data-kind': a.kind },
    el('div', { class: 'top' },
      el('span', { class: 'badge phase-scheduled' }, t(`ann.${a.kind}`, {}, a.kind)),
      el('b', {}, a.title),
      el('span', { class: 'sub num' }, t('ann.published', { time: dateTime(a.published_at_ms) }))),
    el('p', {}, a.body),
    a.dates.length ? el('ul', { class: 'plan' }, a.dates.map((d) => dateItem(d))) : null);
}
