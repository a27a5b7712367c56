// Budget projects (预算项目), their procurement plans (采购计划, one category each) and the plans'
// procurement intentions (采购意向, 财库〔2020〕10号: published at least 30 days before the
// purchase starts); for administrators and supervisors, the splitting red flags (Reg 28).
//
// Money is typed in yuan and sent as integer fen (format.js parseYuan, exact). The 30-day rule's
// earliest start comes from the server's calendar (period intention_notice), with its article.

import { api, ApiError } from './api.js';
import { dateTime, parseYuan, yuan } from './format.js';
import { onLangChange, t } from './i18n.js';
import { el, initPage, showFatal } from './layout.js';
import { articleText, beijingDay, dateItem, dayText, refusalText } from './procure.js';

const $ = (id) => document.getElementById(id);

let user = null;
let budgets = [];
let serverOffset = 0;
const open = new Set();
const details = new Map(); // budget project id -> detail (with plans)
const plans = new Map(); // plan id -> detail (with intentions, purchases)
const flags = new Map(); // budget project id -> splitting answer
const notes = new Map(); // form id -> {kind, text()}
const starts = new Map(); // "YYYY-MM-DD" -> the calendar's intention_notice answer from that day

function isPurchaser() {
  return user.roles.includes('purchaser');
}

function watchesSplitting() {
  return user.roles.includes('admin') || user.roles.includes('supervisor');
}

function today() {
  return beijingDay(Date.now() + serverOffset);
}

async function earliestStart(day) {
  if (!starts.has(day)) {
    starts.set(day, api(`/api/calendar/dates?period=intention_notice&from=${day}`));
  }
  return starts.get(day);
}

function note(id) {
  const n = notes.get(id);
  return el('p', { class: `notice ${n ? n.kind : ''}`, id: `${id}-status`,
    role: n && n.kind === 'bad' ? 'alert' : 'status' }, n ? n.text() : '');
}

function setNote(id, kind, text) {
  notes.set(id, { kind, text });
  const box = $(`${id}-status`);
  if (box) {
    box.className = `notice ${kind}`;
    box.setAttribute('role', kind === 'bad' ? 'alert' : 'status');
    box.textContent = text();
  }
}

function field(id, labelKey, input, hintKey) {
  return el('div', { class: 'field' }, el('label', { for: id }, t(labelKey)), input,
    hintKey ? el('p', { class: 'hint' }, t(hintKey)) : null);
}

function money(labelKey, fen) {
  return el('span', {}, `${t(labelKey)} `, el('b', { class: 'num' }, yuan(fen)));
}

// ---------------------------------------------------------------- a plan: intentions

function intentionForm(plan) {
  const id = `int-${plan.id}`;
  const input = (name, attrs = {}) => el('input', { id: `${id}-${name}`, type: 'text', ...attrs });
  const rule = el('div', { id: `${id}-rule` });
  earliestStart(today()).then((view) => {
    rule.replaceChildren(el('p', { class: 'sub', id: `${id}-earliest` },
      t('int.rule_today', { day: dayText(view.day), article: articleText(view.article) })),
    el('ul', { class: 'plan' }, dateItem(view, { label: t('int.earliest_start') })));
  }).catch((err) => { rule.textContent = refusalText(err); });
  return el('form', { class: 'step-form', id, novalidate: true,
    onsubmit: async (event) => {
      event.preventDefault();
      const budget = parseYuan($(`${id}-budget`).value);
      const body = { name: $(`${id}-name`).value.trim(),
        requirement_summary: $(`${id}-summary`).value.trim(), expected_month: $(`${id}-month`).value };
      if (!body.name || !body.requirement_summary || !/^\d{4}-\d{2}$/.test(body.expected_month)) {
        setNote(id, 'bad', () => t('int.v.fields'));
        return;
      }
      if (budget.error) {
        setNote(id, 'bad', () => `${t('int.budget')}：${t(`money.${budget.error}`)}`);
        return;
      }
      body.budget_fen = budget.fen;
      try {
        await api(`/api/plans/${encodeURIComponent(plan.id)}/intentions`, { method: 'POST', body });
        setNote(id, 'ok', () => t('int.done'));
        await loadPlan(plan.id);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        setNote(id, 'bad', () => refusalText(err));
      }
    } },
    el('h5', {}, t('int.heading')),
    rule,
    el('div', { class: 'cols' },
      field(`${id}-name`, 'int.name', input('name', { maxlength: 200 })),
      field(`${id}-budget`, 'int.budget', input('budget', { inputmode: 'decimal' })),
      field(`${id}-month`, 'int.month', el('input', { id: `${id}-month`, type: 'month' }), 'int.month.hint')),
    field(`${id}-summary`, 'int.summary', el('textarea', { id: `${id}-summary`, maxlength: 4000 })),
    el('div', { class: 'actions' }, el('button', { type: 'submit', id: `${id}-submit` }, t('int.submit'))),
    note(id));
}

function intentionItem(intention) {
  const item = el('li', { 'data-intention': intention.id },
    el('div', { class: 'top' },
      el('b', {}, intention.name),
      el('span', { class: 'sub num' }, t('int.published', { time: dateTime(intention.published_at_ms) }))),
    el('p', {}, intention.requirement_summary),
    el('p', { class: 'sub' }, t('int.facts', { budget: yuan(intention.budget_fen), month: intention.expected_month })));
  const rule = el('ul', { class: 'plan' });
  item.append(rule);
  earliestStart(beijingDay(intention.published_at_ms)).then((view) => {
    rule.replaceChildren(dateItem(view, { label: t('int.earliest_start') }));
  }).catch(() => {});
  return item;
}

function planCard(summary) {
  const detail = plans.get(summary.id);
  const plan = detail || summary;
  return el('article', { class: 'card lot-card', 'data-plan': plan.id },
    el('div', { class: 'top' },
      el('h4', {}, plan.name),
      el('span', { class: 'badge phase-scheduled mono' }, plan.category_code)),
    el('div', { class: 'meta' },
      money('plan.amount', plan.amount_fen), money('plan.committed', plan.committed_fen),
      money('plan.remaining', plan.remaining_fen),
      el('span', { class: 'sub mono' }, plan.id)),
    detail ? [
      el('h5', {}, t('int.list')),
      detail.intentions.length ? el('ul', { class: 'announcements' }, detail.intentions.map(intentionItem))
        : el('p', { class: 'empty' }, t('int.none')),
      detail.purchases.length ? [el('h5', {}, t('plan.purchases')), el('ul', {}, detail.purchases.map((p) => el('li', {},
        el('a', { href: `/app/projects/${encodeURIComponent(p.project_id)}` }, p.lot_id), ' · ',
        t(`method.${p.method}`), ' · ', yuan(p.amount_fen), p.terminated ? ` · ${t('lot.terminated')}` : '')))] : null,
      isPurchaser() ? el('div', { class: 'actions' }, el('a', {
        class: 'button secondary', id: `new-project-${plan.id}`,
        href: `/app/projects/new?plan=${encodeURIComponent(plan.id)}`,
      }, t('plan.new_project'))) : null,
      isPurchaser() ? intentionForm(plan) : null,
    ] : el('div', { class: 'actions' }, el('button', {
      type: 'button', class: 'small secondary', id: `plan-open-${plan.id}`, onclick: () => loadPlan(plan.id),
    }, t('plan.open'))));
}

async function loadPlan(id) {
  try {
    plans.set(id, await api(`/api/plans/${encodeURIComponent(id)}`));
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    $('budgets-error').textContent = refusalText(err);
  }
  render();
}

// ---------------------------------------------------------------- a budget project: plans

function planForm(budget) {
  const id = `plan-${budget.id}`;
  return el('form', { class: 'step-form', id, novalidate: true,
    onsubmit: async (event) => {
      event.preventDefault();
      const amount = parseYuan($(`${id}-amount`).value);
      const body = { name: $(`${id}-name`).value.trim(), category_code: $(`${id}-category`).value.trim().toUpperCase() };
      if (!body.name) { setNote(id, 'bad', () => t('plan.v.name')); return; }
      if (!/^[ABC](\d{2}){0,6}$/.test(body.category_code)) { setNote(id, 'bad', () => t('pnew.v.category')); return; }
      if (amount.error) { setNote(id, 'bad', () => `${t('plan.amount')}：${t(`money.${amount.error}`)}`); return; }
      body.amount_fen = amount.fen;
      try {
        const plan = await api(`/api/budget-projects/${encodeURIComponent(budget.id)}/plans`, { method: 'POST', body });
        setNote(id, 'ok', () => t('plan.done', { name: plan.name }));
        await loadBudget(budget.id);
        await loadPlan(plan.id);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        setNote(id, 'bad', () => refusalText(err) + (err.details.remaining_fen !== undefined
          ? ` ${t('plan.remaining_is', { amount: yuan(err.details.remaining_fen) })}` : ''));
      }
    } },
    el('h4', {}, t('plan.add')),
    el('div', { class: 'cols' },
      field(`${id}-name`, 'plan.name', el('input', { id: `${id}-name`, type: 'text', maxlength: 200 })),
      field(`${id}-category`, 'plan.category', el('input', { id: `${id}-category`, type: 'text', maxlength: 13, spellcheck: 'false' }), 'plan.category.hint'),
      field(`${id}-amount`, 'plan.amount_input', el('input', { id: `${id}-amount`, type: 'text', inputmode: 'decimal' }), 'plan.amount.hint')),
    el('div', { class: 'actions' }, el('button', { type: 'submit', id: `${id}-submit` }, t('plan.submit'))),
    note(id));
}

function splittingBox(budget) {
  const answer = flags.get(budget.id);
  if (!answer) return null;
  if (answer.error) return el('p', { class: 'notice bad' }, refusalText(answer.error));
  return el('div', { class: 'splitting', id: `splitting-${budget.id}` },
    el('h4', {}, t('split.heading')),
    el('p', { class: 'sub' }, t('split.intro', { threshold: yuan(answer.threshold_fen), article: articleText('Reg 28') })),
    answer.flags.length ? el('ul', {}, answer.flags.map((f) => el('li', { class: 'banner banner-warn', 'data-flag': f.category_code },
      t('split.flag', { category: f.category_code, year: f.fiscal_year, total: yuan(f.total_fen),
        threshold: yuan(f.threshold_fen), n: f.purchase_ids.length, article: articleText(f.article) }),
      ' ', f.purchase_ids.join('、'))))
      : el('p', { class: 'notice ok', id: `splitting-none-${budget.id}` }, t('split.none')));
}

function budgetItem(summary) {
  const detail = details.get(summary.id);
  const budget = detail || summary;
  const expanded = open.has(budget.id);
  return el('li', { 'data-budget': budget.id },
    el('div', { class: 'top' },
      el('h2', {}, el('span', { class: 'mono' }, budget.code), ` ${budget.name}`),
      el('span', { class: 'badge phase-scheduled' }, t('budgets.year_badge', { year: budget.fiscal_year }))),
    el('div', { class: 'meta' },
      money('budgets.amount_short', budget.amount_fen), money('budgets.planned', budget.planned_fen),
      money('budgets.remaining', budget.remaining_fen),
      el('span', {}, `${t('f.region')} `, el('b', { class: 'mono' }, budget.region_code))),
    el('div', { class: 'actions' }, el('button', {
      type: 'button', class: 'small secondary', id: `budget-open-${budget.id}`, 'aria-expanded': expanded ? 'true' : 'false',
      onclick: () => toggle(budget.id),
    }, t(expanded ? 'budgets.close' : 'budgets.open'))),
    expanded && detail ? el('div', { class: 'budget-detail' },
      detail.plans.length ? detail.plans.map(planCard) : el('p', { class: 'empty' }, t('plan.none')),
      isPurchaser() ? planForm(budget) : null,
      splittingBox(budget)) : null);
}

async function loadBudget(id) {
  try {
    details.set(id, await api(`/api/budget-projects/${encodeURIComponent(id)}`));
    if (watchesSplitting()) {
      try {
        flags.set(id, await api(`/api/budget-projects/${encodeURIComponent(id)}/splitting`));
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        flags.set(id, { error: err });
      }
    }
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    $('budgets-error').textContent = refusalText(err);
  }
  render();
}

async function toggle(id) {
  if (open.has(id)) {
    open.delete(id);
    render();
    return;
  }
  open.add(id);
  await loadBudget(id);
}

function render() {
  $('budget-list').replaceChildren(...budgets.map(budgetItem));
  $('budgets-empty').hidden = budgets.length > 0;
  const status = notes.get('budget-form');
  if (status) $('budget-status').textContent = status.text();
}

async function load() {
  budgets = (await api('/api/budget-projects?limit=200')).items;
  render();
}

function budgetErrors() {
  const errors = [];
  const code = $('bp-code').value.trim();
  const name = $('bp-name').value.trim();
  const year = $('bp-year').value.trim();
  const region = $('bp-region').value.trim();
  const amount = parseYuan($('bp-amount').value);
  if (!/^[0-9A-Za-z-]{1,40}$/.test(code)) errors.push(['bp-code', t('budgets.v.code')]);
  if (!name) errors.push(['bp-name', t('budgets.v.name')]);
  if (!/^20\d{2}$/.test(year)) errors.push(['bp-year', t('budgets.v.year')]);
  if (amount.error) errors.push(['bp-amount', t(`money.${amount.error}`)]);
  if (region && !/^[1-8]\d{5}$/.test(region)) errors.push(['bp-region', t('pnew.v.region')]);
  const body = { code, name, fiscal_year: Number(year), amount_fen: amount.fen };
  if (region) body.region_code = region;
  return { body, errors };
}

async function onCreate(event) {
  event.preventDefault();
  for (const node of document.querySelectorAll('#budget-form .field-error')) node.textContent = '';
  const { body, errors } = budgetErrors();
  for (const [id, message] of errors) $(`${id}-error`).textContent = message;
  if (errors.length) {
    $(errors[0][0]).focus();
    return;
  }
  try {
    const created = await api('/api/budget-projects', { method: 'POST', body });
    notes.set('budget-form', { kind: 'ok', text: () => t('budgets.done', { code: created.code }) });
    $('budget-status').className = 'notice ok';
    $('budget-form').reset();
    await load();
    open.add(created.id);
    await loadBudget(created.id);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    const field = err.code === 'invalid_region' || err.code === 'region_out_of_scope' ? 'bp-region'
      : err.code === 'budget_project_code_taken' ? 'bp-code' : 'bp-name';
    $(`${field}-error`).textContent = refusalText(err);
  }
}

async function main() {
  user = await initPage({ nav: 'budgets' });
  const time = await api('/api/time');
  serverOffset = time.server_time_ms - Date.now();
  if (isPurchaser()) {
    $('new-budget-card').hidden = false;
    $('bp-year').value = today().slice(0, 4);
    $('budget-form').addEventListener('submit', onCreate);
  }
  await load();
  const wanted = new URLSearchParams(location.search).get('budget');
  if (wanted && budgets.some((b) => b.id === wanted)) await toggle(wanted);
  $('main').removeAttribute('aria-busy');
  onLangChange(render);
}

main().catch(showFatal);
