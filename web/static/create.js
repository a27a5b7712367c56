// Create and schedule a reverse auction (POST /api/auctions) with every rule setting.
//
// The form checks what the server checks (bidroom/auction/rules.py validate_settings) so the
// user sees every problem at once, in words, before sending; the server's own problems
// (details.problems) are shown on the same fields when it still refuses.

import { api, ApiError, canCreate } from './api.js';
import {
  dateTime, fromLocalInput, parseMinutes, parsePercent, parseWhole, parseYuan, toLocalInput,
} from './format.js';
import { onLangChange, t } from './i18n.js';
import { el, initPage, orgName, showFatal } from './layout.js';

const DAY_MS = 24 * 3600 * 1000;
const MAX_DURATION_MS = 31 * DAY_MS;
const MINUTE = 60_000;

// server field -> form field
const FIELD_OF = {
  title: 'title', title_en: 'title_en', purchaser_org_id: 'purchaser',
  ceiling_fen: 'ceiling', budget_fen: 'budget', start_ms: 'start', end_ms: 'end',
  step_value: 'step', step_kind: 'step', improvement: 'step', sniping_window_ms: 'window',
  sniping_trigger: 'trigger', extension_ms: 'extension', max_extensions: 'max_extensions',
  max_total_extension_ms: 'max_total', min_valid_bidders: 'min_bidders', sign_in_ms: 'sign_in',
  invited_supplier_ids: 'invited', supplier_ids: 'invited', settings: 'ceiling',
};
const LABEL_OF = {
  title: 'create.title', title_en: 'create.title_en', purchaser: 'create.purchaser',
  ceiling: 'create.ceiling', budget: 'create.budget', start: 'create.start', end: 'create.end',
  step: 'create.step', window: 'create.window', trigger: 'create.trigger',
  extension: 'create.extension', max_extensions: 'create.max_extensions',
  max_total: 'create.max_total', min_bidders: 'create.min_bidders', sign_in: 'create.sign_in',
  invited: 'create.invite',
};

let user = null;
let suppliers = [];
let serverOffset = 0;
let lastErrors = null;

const $ = (id) => document.getElementById(id);
const value = (id) => $(id).value;
const radio = (name) => document.querySelector(`input[name="${name}"]:checked`).value;

function serverNow() {
  return Date.now() + serverOffset;
}

function moneyError(code) {
  return t(`money.${code}`);
}

/** Read and check the form: {body, errors: [[field, message]]}. */
function readForm() {
  const errors = [];
  const add = (field, message) => errors.push([field, message]);
  const settings = {};

  const title = value('title').trim();
  if (!title) add('title', t('v.title.required'));
  else if (title.length > 200) add('title', t('v.title.long'));
  const titleEn = value('title_en').trim();
  if (titleEn.length > 200) add('title_en', t('v.title.long'));

  let purchaser = null;
  if (!user.roles.includes('purchaser')) {
    purchaser = value('purchaser').trim();
    if (!purchaser) add('purchaser', t('v.purchaser.required'));
  }

  const ceiling = parseYuan(value('ceiling'));
  if (ceiling.error) add('ceiling', moneyError(ceiling.error));
  else settings.ceiling_fen = ceiling.fen;

  settings.budget_fen = null;
  if (value('budget').trim()) {
    const budget = parseYuan(value('budget'));
    if (budget.error) add('budget', moneyError(budget.error));
    else {
      settings.budget_fen = budget.fen;
      if (!ceiling.error && budget.fen < ceiling.fen) add('ceiling', t('v.ceiling_above_budget'));
    }
  }

  const start = fromLocalInput(value('start'));
  const end = fromLocalInput(value('end'));
  if (start === null) add('start', t('v.time.required'));
  else settings.start_ms = start;
  if (end === null) add('end', t('v.time.required'));
  else settings.end_ms = end;
  if (start !== null && end !== null) {
    if (end <= start) add('end', t('v.end_before_start'));
    else if (end - start > MAX_DURATION_MS) add('end', t('v.too_long'));
    if (end <= serverNow()) add('end', t('v.end_in_past'));
  }

  settings.step_kind = radio('step_kind');
  if (settings.step_kind === 'amount') {
    const step = parseYuan(value('step'));
    if (step.error) add('step', moneyError(step.error));
    else {
      settings.step_value = step.fen;
      if (!ceiling.error && step.fen >= ceiling.fen) add('step', t('v.step_too_large'));
    }
  } else {
    const step = parsePercent(value('step'));
    if (step.error) add('step', t(`v.percent.${step.error}`));
    else if (step.bp < 1 || step.bp >= 10000) add('step', t('v.percent.range'));
    else settings.step_value = step.bp;
  }
  settings.improvement = radio('improvement');

  const snipe = parseMinutes(value('window') || '0');
  if (snipe.error) add('window', t('v.minutes'));
  else settings.sniping_window_ms = snipe.ms;
  settings.sniping_trigger = value('trigger');
  const extension = parseMinutes(value('extension') || '0');
  if (extension.error) add('extension', t('v.minutes'));
  else settings.extension_ms = extension.ms;
  if (!snipe.error && snipe.ms > 0) {
    if (!extension.error && extension.ms <= 0) add('extension', t('v.extension_needed'));
    if (start !== null && end !== null && end > start && snipe.ms > end - start) {
      add('window', t('v.window_too_long'));
    }
  }
  const maxExt = parseWhole(value('max_extensions'), { allowEmpty: true });
  if (maxExt.error) add('max_extensions', t('v.whole'));
  else settings.max_extensions = maxExt.value;
  const maxTotal = parseMinutes(value('max_total'), { allowEmpty: true });
  if (maxTotal.error) add('max_total', t('v.minutes'));
  else settings.max_total_extension_ms = maxTotal.ms;

  const minBidders = parseWhole(value('min_bidders'));
  if (minBidders.error || minBidders.value < 1 || minBidders.value > 1000) {
    add('min_bidders', t('v.min_bidders'));
  } else settings.min_valid_bidders = minBidders.value;
  settings.show_lowest_to_suppliers = $('show_lowest').checked;

  const signIn = parseMinutes(value('sign_in') || '0');
  if (signIn.error) add('sign_in', t('v.minutes'));
  else if (signIn.ms > MAX_DURATION_MS) add('sign_in', t('v.sign_in_long'));
  else settings.sign_in_ms = signIn.ms;

  const invited = [...document.querySelectorAll('#supplier-choices input:checked')]
    .map((box) => box.value);

  const body = { title, invited_supplier_ids: invited, settings };
  if (titleEn) body.title_en = titleEn;
  if (purchaser) body.purchaser_org_id = purchaser;
  return { body, errors };
}

function clearErrors() {
  for (const node of document.querySelectorAll('.field-error')) node.textContent = '';
  for (const node of document.querySelectorAll('[aria-invalid]')) node.removeAttribute('aria-invalid');
  $('error-summary').hidden = true;
  $('error-list').replaceChildren();
}

function showErrors(errors) {
  lastErrors = errors;
  clearErrors();
  if (!errors.length) return;
  const seen = new Set();
  for (const [field, message] of errors) {
    const box = $(`${field}-error`);
    if (box) box.textContent = box.textContent ? `${box.textContent} ${message}` : message;
    const input = field === 'invited' ? null : $(field);
    if (input) input.setAttribute('aria-invalid', 'true');
    if (seen.has(`${field}:${message}`)) continue;
    seen.add(`${field}:${message}`);
    const target = field === 'invited' ? 'supplier-choices' : field;
    const link = el('a', { href: `#${target}` }, `${t(LABEL_OF[field] || 'create.field')}：${message}`);
    link.addEventListener('click', (event) => {
      event.preventDefault();
      const node = $(target);
      const focusable = node.matches('input,select,textarea') ? node : node.querySelector('input');
      (focusable || node).focus();
    });
    $('error-list').append(el('li', {}, link));
  }
  $('error-summary').hidden = false;
  $('error-summary').focus();
}

function serverErrors(err) {
  const errors = [];
  if (err.code === 'invalid_settings' && Array.isArray(err.details.problems)) {
    for (const p of err.details.problems) {
      errors.push([FIELD_OF[p.field] || 'ceiling', t(`problem.${p.code}`, {}, p.message)]);
    }
  } else if (err.code === 'end_in_past') {
    errors.push(['end', t('v.end_in_past')]);
  } else if (err.code === 'unknown_supplier') {
    errors.push(['invited', t('v.unknown_supplier')]);
  } else if (err.code === 'unknown_purchaser' || err.code === 'not_your_organisation') {
    errors.push(['purchaser', t(`problem.${err.code}`, {}, err.message)]);
  } else {
    const field = FIELD_OF[err.details.field] || 'title';
    errors.push([field, t(`err.${err.code}`, {}, err.message)]);
  }
  return errors;
}

async function onSubmit(event) {
  event.preventDefault();
  const { body, errors } = readForm();
  if (errors.length) {
    showErrors(errors);
    return;
  }
  showErrors([]);
  const button = $('create-submit');
  button.disabled = true;
  $('create-status').textContent = t('create.sending');
  try {
    const created = await api('/api/auctions', { method: 'POST', body });
    $('create-status').textContent = t('create.done');
    location.assign(`/app/auctions/${encodeURIComponent(created.id)}/watch`);
  } catch (err) {
    $('create-status').textContent = '';
    button.disabled = false;
    if (err instanceof ApiError && err.status > 0) showErrors(serverErrors(err));
    else showErrors([['title', t('err.network_error')]]);
  }
}

function renderStepLabel() {
  const percent = radio('step_kind') === 'percent';
  $('step-label').textContent = t(percent ? 'create.step.percent.label' : 'create.step.amount.label');
  $('step-hint').textContent = t(percent ? 'create.step.percent.hint' : 'create.step.amount.hint');
}

function renderSuppliers() {
  const box = $('supplier-choices');
  const checked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
  box.replaceChildren();
  if (!suppliers.length) {
    box.append(el('p', { class: 'empty' }, t('create.no_suppliers')));
    return;
  }
  for (const s of suppliers) {
    box.append(el('label', {},
      el('input', { type: 'checkbox', value: s.id, checked: checked.has(s.id) || null,
        'data-name': s.name }),
      ` ${orgName(s)}`,
      s.size_class ? el('span', { class: 'sub' }, ` (${t(`size.${s.size_class}`)})`) : null));
  }
}

function renderServerTime() {
  $('server-time').textContent = t('create.server_time', { time: dateTime(serverNow()) });
}

async function main() {
  user = await initPage({ nav: 'create' });
  if (!canCreate(user)) {
    $('create-form').replaceChildren(el('p', { class: 'notice bad', role: 'alert' }, t('create.forbidden')));
    return;
  }
  const [time, orgs, mine] = await Promise.all([
    api('/api/time'),
    api('/api/organisations?kind=supplier&limit=500'),
    user.roles.includes('purchaser') ? Promise.resolve({ items: [] }) : api('/api/auctions?limit=200'),
  ]);
  serverOffset = time.server_time_ms - Date.now();
  suppliers = orgs.items;
  if (!user.roles.includes('purchaser')) {
    $('purchaser-field').hidden = false;
    const known = new Map(mine.items.map((a) => [a.purchaser.id, a.purchaser]));
    for (const p of known.values()) {
      $('purchaser-list').append(el('option', { value: p.id }, orgName(p)));
    }
    if (known.size === 1) $('purchaser').value = [...known.keys()][0];
  }
  // Defaults: starts at the next quarter hour at least 10 minutes ahead, lasts 30 minutes.
  const quarter = 15 * MINUTE;
  const start = Math.ceil((serverNow() + 10 * MINUTE) / quarter) * quarter;
  $('start').value = toLocalInput(start);
  $('end').value = toLocalInput(start + 30 * MINUTE);
  $('window').value = '5';
  $('extension').value = '5';
  $('max_extensions').value = '6';
  renderSuppliers();
  renderStepLabel();
  renderServerTime();
  setInterval(renderServerTime, 1000);
  for (const input of document.querySelectorAll('input[name="step_kind"]')) {
    input.addEventListener('change', renderStepLabel);
  }
  $('select-all').addEventListener('click', () => {
    for (const box of document.querySelectorAll('#supplier-choices input')) box.checked = true;
  });
  $('select-none').addEventListener('click', () => {
    for (const box of document.querySelectorAll('#supplier-choices input')) box.checked = false;
  });
  $('create-form').addEventListener('submit', onSubmit);
  onLangChange(() => {
    renderSuppliers();
    renderStepLabel();
    if (lastErrors && lastErrors.length) showErrors(readForm().errors);
  });
}

main().catch(showFatal);
