// A procurement project: its lots with their state and, for each lot, the step the law
// requires next and by when (GET /api/projects/{id}); the forms of those steps (publish,
// correct, qualification, terminate, re-tender: POST /api/lots/{id}/…); the project's
// announcements with their statutory dates; per lot, its tender documents (upload, versions,
// SHA-256), the registrations with their bonds and the recorded downloads (tender.js).
//
// Every statutory date comes from the server's calendar (GET /api/lots/{id}/plan,
// GET /api/calendar/dates) with its rule and article; the page computes none itself.
// A refusal is shown in words (err.<code>) with its article and earliest legal day.

import { api, ApiError } from './api.js';
import { dateTime, fromLocalInput, toLocalInput, yuan } from './format.js';
import { onLangChange, t } from './i18n.js';
import { el, initPage, orgName, setBanner, showFatal } from './layout.js';
import {
  ENDED, METHODS, announcementItem, articleText, atBeijing, beijingDay, dateItem, dayText,
  lotFacts, projectTitle, refusalText,
} from './procure.js';
import { bondText, documentsTable, downloadFile, refundText, uploadFile } from './tender.js';

const $ = (id) => document.getElementById(id);
const HOUR = 3600 * 1000;

let user = null;
let project = null;
let serverOffset = 0;
let suppliers = new Map();
// Per lot: its documents, registrations and downloads as last fetched, and the upload's answer.
const tendering = new Map();
const OPEN_FOR_DOCUMENTS = new Set(['draft', 'announced', 'bidding']);
// Per lot: what the user typed and the plan shown, kept across a language switch.
const drafts = new Map();
const notes = new Map();

const projectId = decodeURIComponent(location.pathname.split('/')[3] || '');

function serverNow() {
  return Date.now() + serverOffset;
}

function mayManage() {
  if (!user || !project) return false;
  if (user.roles.includes('admin')) return true;
  if (user.roles.includes('purchaser') && project.purchaser_org_id === user.org_id) return true;
  return user.roles.includes('agency') && project.agency_org_id === user.org_id;
}

function supplierName(id) {
  const s = suppliers.get(id);
  return s ? orgName(s) : id;
}

/** The next step's words: what the law requires and by when. */
function nextStep(lot) {
  const deadline = lot.deadline_ms ? dateTime(lot.deadline_ms) : '';
  const words = {
    draft: t('next.draft', { article: articleText(lot.method === 'open_tender' || lot.method === 'invited_tender' ? 'GPL 35' : 'O74 29') }),
    announced: t('next.announced', { deadline, article: articleText('O87 27') }),
    bidding: t('next.bidding', { deadline, article: articleText('O87 41') }),
    opened: t('next.opened', { article: articleText('O87 44') }),
    qualified: t('next.qualified', { article: articleText('O87 68') }),
    evaluating: t('next.evaluating', { article: articleText('O87 68') }),
    awarded: t('next.awarded', { article: articleText('O87 69') }),
    failed: t('next.failed', { reason: t(`ended.${lot.ended_reason}`, {}, lot.ended_reason), article: articleText('O87 43') }),
    terminated: t('next.terminated', { reason: lot.ended_reason }),
  };
  return el('div', { class: 'next-step', 'data-next': lot.status },
    el('h4', {}, t('next.heading')), el('p', {}, words[lot.status] || ''));
}

function field(id, labelKey, input, hintKey) {
  return el('div', { class: 'field' },
    el('label', { for: id }, t(labelKey)), input,
    hintKey ? el('p', { class: 'hint' }, t(hintKey)) : null,
    el('p', { class: 'field-error', id: `${id}-error` }));
}

function stepStatus(lot) {
  const note = notes.get(lot.id);
  return el('div', { class: `notice ${note ? note.kind : ''}`, id: `status-${lot.id}`,
    role: note && note.kind === 'bad' ? 'alert' : 'status' }, note ? note.text() : '');
}

function setNote(lot, kind, text) {
  notes.set(lot.id, { kind, text });
  const box = $(`status-${lot.id}`);
  if (box) {
    box.className = `notice ${kind}`;
    box.setAttribute('role', kind === 'bad' ? 'alert' : 'status');
    box.textContent = text();
  }
}

async function step(lot, path, body, onDone) {
  try {
    const done = await api(`/api/lots/${encodeURIComponent(lot.id)}/${path}`, { method: 'POST', body });
    await load();
    if (onDone) onDone(done);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    setNote(lot, 'bad', () => refusalText(err, { scope: 'lot' }));
  }
}

// ---------------------------------------------------------------- draft: the publication

function draftOf(lot) {
  if (!drafts.has(lot.id)) {
    const from = Math.ceil(serverNow() / HOUR) * HOUR;
    drafts.set(lot.id, { from: toLocalInput(from), until: '', deadline: '', approval: '', plan: null });
  }
  return drafts.get(lot.id);
}

async function loadPlan(lot) {
  const draft = draftOf(lot);
  const from = fromLocalInput(draft.from);
  const box = $(`plan-${lot.id}`);
  if (from === null) {
    draft.plan = null;
    if (box) box.replaceChildren();
    return;
  }
  try {
    const doc = await api(`/api/lots/${encodeURIComponent(lot.id)}/plan?documents_from_ms=${from}`);
    draft.plan = doc.dates;
  } catch (err) {
    draft.plan = null;
    setNote(lot, 'bad', () => refusalText(err));
  }
  renderPlan(lot);
}

function renderPlan(lot) {
  const box = $(`plan-${lot.id}`);
  if (!box) return;
  const plan = draftOf(lot).plan || [];
  box.replaceChildren(...plan.map((d) => dateItem(d)));
  const provisional = plan.some((d) => d.provisional);
  const warn = $(`plan-warning-${lot.id}`);
  if (warn) warn.hidden = !provisional;
}

function fillEarliest(lot) {
  const draft = draftOf(lot);
  const plan = draft.plan || [];
  const docs = plan.find((d) => d.period === 'documents_available');
  const deadline = plan.find((d) => d.period && d.period !== 'announcement_period' && d.period !== 'documents_available');
  const deadlineMs = deadline ? atBeijing(deadline.day, 9, 30) : fromLocalInput(draft.from) + 5 * 24 * HOUR;
  draft.deadline = toLocalInput(deadlineMs);
  draft.until = toLocalInput(docs ? Math.min(atBeijing(docs.day, 17, 0), deadlineMs) : deadlineMs);
  $(`until-${lot.id}`).value = draft.until;
  $(`deadline-input-${lot.id}`).value = draft.deadline;
}

function publishForm(lot) {
  const draft = draftOf(lot);
  const input = (id, key, attrs = {}) => el('input', { id, type: 'datetime-local', value: draft[key] || null,
    'aria-describedby': `${id}-error`, oninput: (e) => { draft[key] = e.target.value; }, ...attrs });
  const from = input(`from-${lot.id}`, 'from', {
    onchange: (e) => { draft.from = e.target.value; loadPlan(lot); },
  });
  const form = el('form', { class: 'step-form', id: `publish-${lot.id}`, novalidate: true,
    onsubmit: (event) => {
      event.preventDefault();
      const body = {
        documents_from_ms: fromLocalInput(draft.from),
        documents_until_ms: fromLocalInput(draft.until),
        deadline_ms: fromLocalInput(draft.deadline),
      };
      const missing = Object.entries(body).filter(([, v]) => v === null);
      if (missing.length) {
        setNote(lot, 'bad', () => t('publish.missing'));
        return;
      }
      if (draft.approval.trim()) body.approval = draft.approval.trim();
      setNote(lot, 'info', () => t('create.sending'));
      step(lot, 'publish', body, () => setNote(lot, 'ok', () => t('publish.done')));
    } },
    el('h4', {}, t('publish.heading')),
    el('div', { class: 'cols' },
      field(`from-${lot.id}`, 'publish.from', from),
      field(`until-${lot.id}`, 'publish.until', input(`until-${lot.id}`, 'until')),
      field(`deadline-input-${lot.id}`, 'publish.deadline', input(`deadline-input-${lot.id}`, 'deadline'))),
    field(`approval-${lot.id}`, 'publish.approval', el('input', { id: `approval-${lot.id}`, type: 'text',
      maxlength: 200, value: draft.approval || null, oninput: (e) => { draft.approval = e.target.value; } }),
    'publish.approval.hint'),
    el('div', { class: 'plan-box' },
      el('h5', {}, t('plan.heading')),
      el('p', { class: 'banner banner-warn', id: `plan-warning-${lot.id}`, hidden: true }, t('plan.provisional_banner')),
      el('ul', { class: 'plan', id: `plan-${lot.id}`, 'aria-live': 'polite' })),
    el('div', { class: 'actions' },
      el('button', { type: 'button', class: 'secondary', id: `earliest-${lot.id}`, onclick: () => fillEarliest(lot) },
        t('publish.fill_earliest')),
      el('button', { type: 'submit', id: `publish-submit-${lot.id}` }, t('publish.submit'))));
  return form;
}

// ---------------------------------------------------------------- announced: a correction

async function correctionRule(lot) {
  const box = $(`correction-rule-${lot.id}`);
  if (!box || !lot.deadline_ms) return;
  try {
    const rule = await api(`/api/calendar/dates?period=correction_notice&from=${beijingDay(serverNow())}`);
    const moves = rule.day > beijingDay(lot.deadline_ms);
    box.replaceChildren(
      el('p', { class: moves ? 'banner banner-warn' : 'sub', id: `correction-moves-${lot.id}` },
        moves ? t('correct.moves', { day: dayText(rule.day), article: articleText(rule.article) })
          : t('correct.stays', { article: articleText(rule.article) })),
      el('ul', { class: 'plan' }, dateItem(rule)));
  } catch (err) {
    box.textContent = refusalText(err);
  }
}

function correctionForm(lot) {
  const affects = el('input', { type: 'checkbox', id: `affects-${lot.id}` });
  const deadline = el('input', { type: 'datetime-local', id: `new-deadline-${lot.id}` });
  return el('form', { class: 'step-form', id: `correct-${lot.id}`, novalidate: true,
    onsubmit: (event) => {
      event.preventDefault();
      const body = { affects_bids: affects.checked };
      const wanted = fromLocalInput(deadline.value);
      if (wanted !== null) body.deadline_ms = wanted;
      const before = lot.deadline_ms;
      step(lot, 'corrections', body, (done) => {
        const after = done.lot.deadline_ms;
        setNote(lot, after !== before && affects.checked && (wanted === null || after !== wanted) ? 'info' : 'ok',
          () => (after !== before ? t('correct.done_moved', { deadline: dateTime(after), article: articleText('O87 27') })
            : t('correct.done')));
      });
    } },
    el('h4', {}, t('correct.heading')),
    el('div', { id: `correction-rule-${lot.id}` }),
    el('label', { class: 'check' }, affects, ` ${t('correct.affects')}`),
    field(`new-deadline-${lot.id}`, 'correct.deadline', deadline, 'correct.deadline.hint'),
    el('div', { class: 'actions' }, el('button', { type: 'submit', id: `correct-submit-${lot.id}` }, t('correct.submit'))));
}

// ---------------------------------------------------------------- opened: qualification

function qualificationForm(lot) {
  const rows = lot.bidders.map((id, i) => {
    const name = `q-${lot.id}-${i}`;
    return el('tr', { 'data-bidder': id },
      el('td', {}, supplierName(id)),
      el('td', {}, el('div', { class: 'choices' },
        el('label', {}, el('input', { type: 'radio', name, value: 'pass', checked: true }), ` ${t('qual.pass')}`),
        el('label', {}, el('input', { type: 'radio', name, value: 'fail' }), ` ${t('qual.fail')}`))),
      el('td', {}, el('input', { type: 'text', class: 'reason', maxlength: 2000,
        'aria-label': t('qual.reason_for', { name: supplierName(id) }) })));
  });
  return el('form', { class: 'step-form', id: `qualify-${lot.id}`, novalidate: true,
    onsubmit: (event) => {
      event.preventDefault();
      const results = [];
      let missing = false;
      for (const [i, row] of [...event.target.querySelectorAll('tr[data-bidder]')].entries()) {
        const passed = row.querySelector(`input[name="q-${lot.id}-${i}"]:checked`).value === 'pass';
        const reason = row.querySelector('input.reason').value.trim();
        if (!passed && !reason) missing = true;
        results.push({ supplier_id: row.dataset.bidder, passed, ...(reason ? { reason } : {}) });
      }
      if (missing) {
        setNote(lot, 'bad', () => t('qual.v.reason'));
        return;
      }
      step(lot, 'qualification', { results }, () => setNote(lot, 'ok', () => t('qual.done')));
    } },
    el('h4', {}, t('qual.heading')),
    el('div', { class: 'table-wrap' }, el('table', {},
      el('thead', {}, el('tr', {}, el('th', {}, t('qual.bidder')), el('th', {}, t('qual.result')),
        el('th', {}, t('qual.reason')))),
      el('tbody', {}, rows))),
    el('div', { class: 'actions' }, el('button', { type: 'submit', id: `qualify-submit-${lot.id}` }, t('qual.submit'))));
}

// ---------------------------------------------------------------- failed, terminate

function retenderForm(lot) {
  const select = el('select', { id: `retender-method-${lot.id}` },
    METHODS.map((m) => el('option', { value: m, selected: m === lot.method || null }, t(`method.${m}`))));
  return el('form', { class: 'step-form', id: `retender-${lot.id}`, novalidate: true,
    onsubmit: (event) => {
      event.preventDefault();
      step(lot, 'retender', { method: select.value }, () => setNote(lot, 'ok', () => t('retender.done')));
    } },
    el('h4', {}, t('retender.heading')),
    field(`retender-method-${lot.id}`, 'retender.method', select, 'retender.hint'),
    el('div', { class: 'actions' }, el('button', { type: 'submit', id: `retender-submit-${lot.id}` }, t('retender.submit'))));
}

function terminateForm(lot) {
  const reason = el('textarea', { id: `terminate-reason-${lot.id}`, maxlength: 2000 });
  return el('details', { class: 'terminate' },
    el('summary', {}, t('terminate.heading')),
    el('form', { class: 'step-form', id: `terminate-${lot.id}`, novalidate: true,
      onsubmit: (event) => {
        event.preventDefault();
        if (!reason.value.trim()) {
          setNote(lot, 'bad', () => t('terminate.v.reason'));
          return;
        }
        step(lot, 'terminate', { reason: reason.value.trim() }, () => setNote(lot, 'ok', () => t('terminate.done')));
      } },
      field(`terminate-reason-${lot.id}`, 'terminate.reason', reason, 'terminate.hint'),
      el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'danger', id: `terminate-submit-${lot.id}` }, t('terminate.submit')))));
}


// ---------------------------------------------------------------- documents, registrations, downloads

function mayReadTendering() {
  return mayManage() || (!!user && user.roles.includes('supervisor'));
}

async function loadTendering(lot) {
  const id = encodeURIComponent(lot.id);
  const entry = tendering.get(lot.id) || { upload: null };
  try {
    const [docs, regs, downloads] = await Promise.all([
      api(`/api/lots/${id}/documents`), api(`/api/lots/${id}/registrations`),
      api(`/api/lots/${id}/downloads?limit=200`)]);
    Object.assign(entry, { docs: docs.items, regs: regs.items, downloads: downloads.items,
      total: downloads.total, error: null });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    entry.error = err;
  }
  tendering.set(lot.id, entry);
  renderTendering(lot);
}

function setUpload(lot, kind, text) {
  const entry = tendering.get(lot.id) || {};
  entry.upload = { kind, text };
  tendering.set(lot.id, entry);
  const box = $(`upload-status-${lot.id}`);
  if (box) {
    box.className = `notice ${kind}`;
    box.setAttribute('role', kind === 'bad' ? 'alert' : 'status');
    box.textContent = text();
  }
}

async function upload(lot, file, { documentId, title }) {
  setUpload(lot, 'info', () => t('doc.uploading', { name: file.name }));
  try {
    const doc = await uploadFile(file, { lotId: lot.id, documentId, title });
    const v = doc.versions[doc.versions.length - 1];
    setUpload(lot, 'ok', () => t('doc.uploaded_sha', { title: doc.title, version: v.version, sha: v.sha256 }));
    await loadTendering(lot);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    setUpload(lot, 'bad', () => refusalText(err));
  }
}

async function download(lot, doc, version) {
  try {
    const got = await downloadFile(doc.id, version.version);
    setUpload(lot, got.matches ? 'ok' : 'bad', () => t(got.matches ? 'doc.verified' : 'doc.mismatch',
      { name: got.filename, sha: got.actual }));
    await loadTendering(lot);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    setUpload(lot, 'bad', () => refusalText(err));
  }
}

function uploadForm(lot, docs) {
  const title = el('input', { id: `doc-title-${lot.id}`, type: 'text', maxlength: 200, value: t('doc.default_title') });
  const file = el('input', { id: `doc-file-${lot.id}`, type: 'file' });
  const target = el('select', { id: `doc-target-${lot.id}` },
    el('option', { value: '' }, t('doc.new_document')),
    docs.map((d) => el('option', { value: d.id }, t('doc.new_version_of', { title: d.title, next: d.current_version + 1 }))));
  return el('form', { class: 'step-form', id: `upload-${lot.id}`, novalidate: true,
    onsubmit: (event) => {
      event.preventDefault();
      const chosen = file.files && file.files[0];
      if (!chosen) {
        setUpload(lot, 'bad', () => t('doc.v.file'));
        return;
      }
      if (!target.value && !title.value.trim()) {
        setUpload(lot, 'bad', () => t('doc.v.title'));
        return;
      }
      upload(lot, chosen, { documentId: target.value || null, title: title.value.trim() });
    } },
    el('h5', {}, t('doc.upload_heading')),
    el('div', { class: 'cols' },
      field(`doc-target-${lot.id}`, 'doc.target', target),
      field(`doc-title-${lot.id}`, 'doc.title', title),
      field(`doc-file-${lot.id}`, 'doc.file', file, 'doc.file.hint')),
    el('div', { class: 'actions' }, el('button', { type: 'submit', id: `upload-submit-${lot.id}` }, t('doc.upload'))));
}

function registrationsTable(regs) {
  if (!regs.length) return el('p', { class: 'empty' }, t('reg.none'));
  return el('div', { class: 'table-wrap' }, el('table', { class: 'registrations' },
    el('thead', {}, el('tr', {}, el('th', {}, t('reg.supplier')), el('th', {}, t('reg.round')),
      el('th', {}, t('reg.status')), el('th', {}, t('reg.at')), el('th', {}, t('reg.bond')),
      el('th', {}, t('reg.refund')))),
    el('tbody', {}, regs.map((r) => el('tr', { 'data-registration': r.id, 'data-supplier': r.supplier_org_id },
      el('td', {}, supplierName(r.supplier_org_id)),
      el('td', { class: 'num' }, String(r.round)),
      el('td', {}, t(`reg.${r.status}`), r.withdrawn_at_ms ? ` ${dateTime(r.withdrawn_at_ms)}` : ''),
      el('td', { class: 'num' }, dateTime(r.registered_at_ms)),
      el('td', { class: 'bond' }, bondText(r.bond)),
      el('td', {}, refundText(r.refund)))))));
}

function downloadsTable(downloads, docs) {
  if (!downloads.length) return el('p', { class: 'empty' }, t('dl.none'));
  const titles = new Map(docs.map((d) => [d.id, d.title]));
  return el('div', { class: 'table-wrap' }, el('table', { class: 'downloads' },
    el('thead', {}, el('tr', {}, el('th', {}, t('dl.at')), el('th', {}, t('dl.who')),
      el('th', {}, t('dl.document')), el('th', {}, t('dl.address')), el('th', {}, t('dl.fingerprint')),
      el('th', {}, t('dl.agent')))),
    el('tbody', {}, downloads.map((d) => el('tr', { 'data-org': d.org_id, 'data-fingerprint': d.device_fingerprint || '' },
      el('td', { class: 'num' }, dateTime(d.at_ms)),
      el('td', {}, d.org_kind === 'supplier' ? supplierName(d.org_id) : t(`kind.${d.org_kind}`, {}, d.org_kind),
        el('span', { class: 'sub mono' }, ` ${d.user_id}`)),
      el('td', {}, `${titles.get(d.document_id) || d.document_id} v${d.version}`),
      el('td', { class: 'mono' }, d.client_ip, d.peer_ip && d.peer_ip !== d.client_ip
        ? el('span', { class: 'sub' }, ` ${t('dl.via', { peer: d.peer_ip })}`) : null),
      el('td', { class: 'mono fingerprint' }, d.device_fingerprint || t('dl.no_fingerprint')),
      el('td', { class: 'sub' }, d.user_agent))))));
}

function tenderSection(lot) {
  return el('section', { class: 'tendering', id: `tendering-${lot.id}`, 'aria-labelledby': `tendering-h-${lot.id}` },
    el('h4', { id: `tendering-h-${lot.id}` }, t('tender.heading')),
    el('div', { id: `tendering-body-${lot.id}` }));
}

function renderTendering(lot) {
  const box = $(`tendering-body-${lot.id}`);
  if (!box) return;
  const entry = tendering.get(lot.id);
  if (!entry || !entry.docs) {
    box.replaceChildren(entry && entry.error ? el('p', { class: 'notice bad', role: 'alert' }, refusalText(entry.error))
      : el('p', { class: 'sub' }, t('tender.loading')));
    return;
  }
  const note = entry.upload;
  box.replaceChildren(
    el('h5', {}, t('doc.heading')),
    el('p', { class: 'sub' }, t('doc.intro')),
    documentsTable(entry.docs, { onDownload: (doc, v) => download(lot, doc, v), idPrefix: `m-${lot.id}` }),
    mayManage() && OPEN_FOR_DOCUMENTS.has(lot.status) ? uploadForm(lot, entry.docs) : null,
    el('div', { class: `notice ${note ? note.kind : ''}`, id: `upload-status-${lot.id}`,
      role: note && note.kind === 'bad' ? 'alert' : 'status' }, note ? note.text() : ''),
    el('h5', {}, t('reg.heading', { n: entry.regs.filter((r) => r.status === 'registered').length })),
    registrationsTable(entry.regs),
    el('h5', {}, t('dl.heading', { n: entry.total })),
    el('p', { class: 'sub' }, t('dl.intro')),
    downloadsTable(entry.downloads, entry.docs));
}

function lotCard(lot) {
  const manage = mayManage();
  const forms = [];
  if (manage) {
    if (lot.status === 'draft') forms.push(publishForm(lot));
    if (lot.status === 'announced' || lot.status === 'bidding') forms.push(correctionForm(lot));
    if (lot.status === 'opened') forms.push(qualificationForm(lot));
    if (lot.status === 'failed') forms.push(retenderForm(lot));
    if (!ENDED.has(lot.status)) forms.push(terminateForm(lot));
  }
  const results = lot.qualification.length ? el('ul', { class: 'qual-results' },
    lot.qualification.map((q) => el('li', {}, `${supplierName(q.supplier_id)}：`,
      el('b', {}, t(q.passed ? 'qual.pass' : 'qual.fail')), q.reason ? ` — ${q.reason}` : ''))) : null;
  return el('article', { class: 'card lot-card', 'data-lot': lot.id, 'aria-labelledby': `lot-h-${lot.id}` },
    el('div', { class: 'top' },
      el('h3', { id: `lot-h-${lot.id}` }, t('lot.heading', { n: lot.number, title: lot.title })),
      el('span', { class: `badge lot-${lot.status}`, 'data-status': lot.status }, t(`lot.${lot.status}`))),
    lotFacts(lot),
    lot.bidders.length ? el('p', { class: 'sub' }, t('lot.bidders', { n: lot.bidders.length })) : null,
    results,
    nextStep(lot),
    stepStatus(lot),
    manage ? forms : (lot.status !== 'awarded' ? el('p', { class: 'sub' }, t('lot.read_only')) : null),
    mayReadTendering() ? tenderSection(lot) : null);
}

function render() {
  if (!project) return;
  $('project-title').textContent = projectTitle(project);
  $('project-sub').textContent = t('project.sub', {
    method: t(`method.${project.method}`), region: project.region_code, budget: yuan(project.budget_fen),
    id: project.id,
  });
  document.title = `${projectTitle(project)} · ${t('brand')} Bidroom`;
  $('project-plan').hidden = !project.plan_id;
  if (project.plan_id) {
    $('project-plan').replaceChildren(t('project.plan'), ' ',
      el('span', { class: 'mono', id: 'project-plan-id' }, project.plan_id), ' ',
      t('project.plan_rule', { article: '财库〔2020〕10号' }));
  }
  $('server-time').textContent = t('project.server_time', { time: dateTime(serverNow()) });
  $('lots').replaceChildren(...project.lots.map(lotCard));
  for (const lot of project.lots) {
    if (lot.status === 'draft' && mayManage()) {
      if (draftOf(lot).plan) renderPlan(lot);
      else loadPlan(lot);
    }
    if ((lot.status === 'announced' || lot.status === 'bidding') && mayManage()) correctionRule(lot);
    if (mayReadTendering()) {
      if (tendering.has(lot.id) && tendering.get(lot.id).docs) renderTendering(lot);
      else loadTendering(lot);
    }
  }
  $('announcements').replaceChildren(...project.announcements.map(announcementItem));
  $('ann-empty').hidden = project.announcements.length > 0;
  if (!mayManage()) setBanner('read-only', 'info', t('project.read_only'));
}

async function load() {
  const [doc, time] = await Promise.all([
    api(`/api/projects/${encodeURIComponent(projectId)}`), api('/api/time')]);
  project = doc;
  serverOffset = time.server_time_ms - Date.now();
  render();
}

async function main() {
  user = await initPage({ nav: 'projects' });
  try {
    const orgs = await api('/api/organisations?kind=supplier&limit=500');
    suppliers = new Map(orgs.items.map((o) => [o.id, o]));
  } catch { suppliers = new Map(); }
  await load();
  $('main').removeAttribute('aria-busy');
  onLangChange(render);
}

main().catch(showFatal);
