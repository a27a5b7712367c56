// Create a procurement project with its lots (POST /api/projects), as a draft.
//
// Money is typed in yuan and sent as integer fen, parsed from the decimal text exactly
// (format.js parseYuan: never through a float). The form checks what the server checks at
// creation (the ceiling within the budget, O87 12; the bond at most 2 % of it, Reg 33) so every
// problem shows at once; the server's own refusal shows with its words and article.
// The project may draw on one of the purchaser's procurement plans (plan_id; ?plan=… preselects
// it, the budgets page links here so).

import { api, ApiError } from './api.js';
import { parseYuan, yuan } from './format.js';
import { onLangChange, t } from './i18n.js';
import { el, initPage, orgName, showFatal } from './layout.js';
import { refusalText } from './procure.js';

const $ = (id) => document.getElementById(id);
let lotCount = 0;
let lastErrors = null;
let agencies = [];
let plans = []; // [{plan, budget}] of the purchaser's budget projects

function lotFieldset(n) {
  const id = (name) => `lot${n}-${name}`;
  const field = (name, labelKey, input, hintKey) => el('div', { class: 'field' },
    el('label', { for: id(name), 'data-i18n': labelKey }, t(labelKey)),
    input,
    hintKey ? el('p', { class: 'hint', 'data-i18n': hintKey }, t(hintKey)) : null,
    el('p', { class: 'field-error', id: `${id(name)}-error` }));
  const text = (name, attrs = {}) => el('input', {
    id: id(name), type: 'text', autocomplete: 'off', 'aria-describedby': `${id(name)}-error`, ...attrs,
  });
  const option = (value, key) => el('option', { value, 'data-i18n': key }, t(key));
  const box = el('fieldset', { class: 'lot', 'data-lot': n },
    el('legend', {}, el('span', { 'data-i18n': 'pnew.lot' }, t('pnew.lot')), ` ${n}`),
    el('div', { class: 'cols' },
      field('title', 'pnew.lot.title', text('title', { maxlength: 200 })),
      field('category', 'pnew.lot.category',
        text('category', { maxlength: 11, spellcheck: 'false', list: 'category-list' }),
        'pnew.lot.category.hint')),
    el('div', { class: 'cols' },
      field('budget', 'pnew.lot.budget', text('budget', { inputmode: 'decimal' })),
      field('ceiling', 'pnew.lot.ceiling', text('ceiling', { inputmode: 'decimal' }),
        'pnew.lot.ceiling.hint'),
      field('bond', 'pnew.lot.bond', text('bond', { inputmode: 'decimal' }), 'pnew.lot.bond.hint')),
    el('div', { class: 'cols' },
      field('bid_mode', 'pnew.lot.bid_mode', el('select', { id: id('bid_mode') },
        option('sealed', 'bid_mode.sealed'), option('auction', 'bid_mode.auction'))),
      field('evaluation', 'pnew.lot.evaluation', el('select', { id: id('evaluation') },
        option('comprehensive', 'evaluation.comprehensive'),
        option('lowest_price', 'evaluation.lowest_price')))),
    n > 1 ? el('div', { class: 'actions' }, el('button', {
      type: 'button', class: 'secondary small', 'data-i18n': 'pnew.remove_lot',
      onclick: () => { box.remove(); },
    }, t('pnew.remove_lot'))) : null);
  return box;
}

function addLot() {
  lotCount += 1;
  $('lots').append(lotFieldset(lotCount));
}

function lotLabel(n, key) {
  return `${t('pnew.lot')} ${n} · ${t(key)}`;
}

function moneyError(code) {
  return t(`money.${code}`);
}

/** Read and check the form: {body, errors: [[field id, label, message]]}. */
function readForm() {
  const errors = [];
  const title = $('title').value.trim();
  if (!title) errors.push(['title', t('pnew.title'), t('v.title.required')]);
  const region = $('region').value.trim();
  if (!/^[1-8]\d{5}$/.test(region)) errors.push(['region', t('pnew.region'), t('pnew.v.region')]);
  const lots = [];
  for (const box of document.querySelectorAll('#lots fieldset.lot')) {
    const n = box.dataset.lot;
    const get = (name) => $(`lot${n}-${name}`).value.trim();
    const err = (name, key, message) => errors.push([`lot${n}-${name}`, lotLabel(n, key), message]);
    const lot = { title: get('title'), category_code: get('category').toUpperCase(),
      bid_mode: get('bid_mode'), evaluation: get('evaluation') };
    if (!lot.title) err('title', 'pnew.lot.title', t('v.title.required'));
    if (!/^[ABC]\d{0,10}$/.test(lot.category_code)) err('category', 'pnew.lot.category', t('pnew.v.category'));
    const budget = parseYuan(get('budget'));
    const ceiling = parseYuan(get('ceiling'));
    if (budget.error) err('budget', 'pnew.lot.budget', moneyError(budget.error));
    else lot.budget_fen = budget.fen;
    if (ceiling.error) err('ceiling', 'pnew.lot.ceiling', moneyError(ceiling.error));
    else lot.ceiling_fen = ceiling.fen;
    if (!budget.error && !ceiling.error && ceiling.fen > budget.fen) {
      err('ceiling', 'pnew.lot.ceiling', t('v.ceiling_above_budget'));
    }
    const bondText = get('bond');
    if (bondText === '' || /^0+(\.0*)?$/.test(bondText)) lot.bond_fen = 0;
    else {
      const bond = parseYuan(bondText);
      if (bond.error) err('bond', 'pnew.lot.bond', moneyError(bond.error));
      else {
        lot.bond_fen = bond.fen;
        // Reg 33: at most 2 % of the budget, in whole fen (the server's floor division)
        if (!budget.error && bond.fen > Math.floor((budget.fen * 20) / 1000)) {
          err('bond', 'pnew.lot.bond', t('pnew.v.bond'));
        }
      }
    }
    lots.push(lot);
  }
  const body = { title, method: $('method').value, region_code: region, lots };
  const titleEn = $('title_en').value.trim();
  if (titleEn) body.title_en = titleEn;
  if ($('agency').value.trim()) body.agency_org_id = $('agency').value.trim();
  if ($('plan').value) body.plan_id = $('plan').value;
  return { body, errors };
}

function showErrors(errors) {
  lastErrors = errors;
  for (const node of document.querySelectorAll('.field-error')) node.textContent = '';
  for (const node of document.querySelectorAll('[aria-invalid]')) node.removeAttribute('aria-invalid');
  $('error-list').replaceChildren();
  $('error-summary').hidden = !errors.length;
  if (!errors.length) return;
  for (const [field, label, message] of errors) {
    const box = $(`${field}-error`);
    if (box) box.textContent = box.textContent ? `${box.textContent} ${message}` : message;
    const input = $(field);
    if (input) input.setAttribute('aria-invalid', 'true');
    const link = el('a', { href: `#${field}` }, `${label}：${message}`);
    link.addEventListener('click', (event) => {
      event.preventDefault();
      if ($(field)) $(field).focus();
    });
    $('error-list').append(el('li', {}, link));
  }
  $('error-summary').focus();
}

function serverErrors(err) {
  const field = err.details.field || '';
  const lot = /^lots\[(\d+)\]/.exec(field);
  if (lot) {
    const box = document.querySelectorAll('#lots fieldset.lot')[Number(lot[1])];
    const n = box ? box.dataset.lot : '1';
    const name = err.code === 'invalid_category' ? 'category' : 'title';
    return [[`lot${n}-${name}`, lotLabel(n, `pnew.lot.${name}`), refusalText(err)]];
  }
  if (['ceiling_above_budget', 'bond_too_high', 'invalid_budget'].includes(err.code)) {
    const name = err.code === 'bond_too_high' ? 'bond' : 'ceiling';
    return [[`lot1-${name}`, lotLabel(1, `pnew.lot.${name}`), refusalText(err)]];
  }
  if (['plan_exceeded', 'plan_not_found', 'category_outside_plan'].includes(err.code) || field === 'plan_id') {
    const extra = err.details.remaining_fen !== undefined
      ? ` ${t('plan.remaining_is', { amount: yuan(err.details.remaining_fen) })}` : '';
    return [['plan', t('pnew.plan'), refusalText(err) + extra]];
  }
  if (field === 'region_code' || err.code === 'invalid_region') {
    return [['region', t('pnew.region'), refusalText(err)]];
  }
  return [['title', t('pnew.title'), refusalText(err)]];
}

async function onSubmit(event) {
  event.preventDefault();
  const { body, errors } = readForm();
  showErrors(errors);
  if (errors.length) return;
  const button = $('project-submit');
  button.disabled = true;
  $('project-status').textContent = t('create.sending');
  try {
    const created = await api('/api/projects', { method: 'POST', body });
    location.assign(`/app/projects/${encodeURIComponent(created.id)}`);
  } catch (err) {
    $('project-status').textContent = '';
    button.disabled = false;
    if (err instanceof ApiError && err.status > 0) showErrors(serverErrors(err));
    else showErrors([['title', t('pnew.title'), t('err.network_error')]]);
  }
}

function renderPlans() {
  const select = $('plan');
  const chosen = select.value || new URLSearchParams(location.search).get('plan') || '';
  select.replaceChildren(el('option', { value: '' }, t('pnew.plan.none')),
    ...plans.map(({ plan, budget }) => el('option', { value: plan.id, selected: plan.id === chosen || null },
      t('pnew.plan.option', { name: plan.name, category: plan.category_code, remaining: yuan(plan.remaining_fen),
        budget: budget.code }))));
  const picked = plans.find(({ plan }) => plan.id === select.value);
  if (picked && !$('region').value) $('region').value = picked.budget.region_code;
  if (picked && $('lot1-category') && !$('lot1-category').value) $('lot1-category').value = picked.plan.category_code;
}

async function loadPlans() {
  try {
    const budgets = (await api('/api/budget-projects?limit=200')).items;
    const details = await Promise.all(budgets.map((b) => api(`/api/budget-projects/${encodeURIComponent(b.id)}`)));
    plans = details.flatMap((d) => d.plans.map((plan) => ({ plan, budget: d })));
  } catch { plans = []; }
  renderPlans();
}

function renderAgencies() {
  $('agency-list').replaceChildren(...agencies.map((a) => el('option', { value: a.id }, orgName(a))));
}

async function suggest(input, list, path, suffix = '') {
  const q = input.value.trim();
  if (!q) return;
  try {
    const doc = await api(`${path}${encodeURIComponent(q)}${suffix}`);
    list.replaceChildren(...doc.items.map((r) => el('option', { value: r.code }, r.name)));
  } catch { /* suggestions only */ }
}

async function main() {
  const user = await initPage({ nav: 'projects' });
  if (!user.roles.includes('purchaser')) {
    $('project-form').replaceChildren(el('p', { class: 'notice bad', role: 'alert' }, t('pnew.forbidden')));
    return;
  }
  addLot();
  $('add-lot').addEventListener('click', addLot);
  $('project-form').addEventListener('submit', onSubmit);
  $('region').addEventListener('input', () => suggest($('region'), $('region-list'), '/api/regions?q='));
  document.addEventListener('input', (event) => {
    if (event.target.id && event.target.id.endsWith('-category')) {
      suggest(event.target, $('category-list'), '/api/catalog/categories?q=', '&limit=20');
    }
  });
  $('plan').addEventListener('change', renderPlans);
  await loadPlans();
  onLangChange(() => {
    renderPlans();
    renderAgencies();
    if (lastErrors && lastErrors.length) showErrors(readForm().errors);
  });
  try {
    agencies = (await api('/api/organisations?kind=agency&limit=500')).items;
  } catch { agencies = []; }
  renderAgencies();
}

main().catch(showFatal);
