// A lot's tender documents, registrations and downloads (market.tendering's routes), shared by
// the purchaser's project page and the supplier's pages.
//
// A document is uploaded as the raw request body (fetch with the File: no form encoding, the
// server hashes the bytes as they stream in) and the page shows the SHA-256 the server answers.
// A download sends X-Device-Fingerprint (fingerprint.js), then checks the bytes received against
// the X-Content-SHA256 the server sent, and saves the file.

import { ApiError, getToken } from './api.js';
import { dateTime, yuan } from './format.js';
import { deviceFingerprint, sha256Hex } from './fingerprint.js';
import { t } from './i18n.js';
import { el } from './layout.js';

async function failure(response) {
  let doc = null;
  try { doc = JSON.parse(await response.text()); } catch { doc = null; }
  const e = (doc && doc.error) || {};
  return new ApiError(response.status, e.code || `http_${response.status}`,
    e.message || response.statusText, e.details);
}

function bearer() {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function send(path, init) {
  let response;
  try {
    response = await fetch(path, { cache: 'no-store', ...init });
  } catch (err) {
    throw new ApiError(0, 'network_error', String(err && err.message ? err.message : err));
  }
  if (!response.ok) throw await failure(response);
  return response;
}

/** Upload a file as a lot's new document (version 1), or as a document's next version. */
export async function uploadFile(file, { lotId, documentId, title }) {
  const filename = encodeURIComponent(file.name);
  const path = documentId
    ? `/api/documents/${encodeURIComponent(documentId)}/versions?filename=${filename}`
    : `/api/lots/${encodeURIComponent(lotId)}/documents?title=${encodeURIComponent(title)}&filename=${filename}`;
  const response = await send(path, {
    method: 'POST', body: file,
    headers: { ...bearer(), Accept: 'application/json',
      'Content-Type': file.type || 'application/octet-stream' },
  });
  return response.json();
}

/** Download a version (the current one without `version`): recorded by the server with this
 *  browser's fingerprint; the bytes are checked against the announced SHA-256, then saved. */
export async function downloadFile(documentId, version) {
  const fingerprint = await deviceFingerprint();
  const headers = { ...bearer() };
  if (fingerprint) headers['X-Device-Fingerprint'] = fingerprint;
  const query = version ? `?version=${version}` : '';
  const response = await send(`/api/documents/${encodeURIComponent(documentId)}/content${query}`,
    { headers });
  const announced = response.headers.get('X-Content-SHA256') || '';
  const bytes = await response.arrayBuffer();
  const actual = await sha256Hex(bytes);
  const disposition = response.headers.get('Content-Disposition') || '';
  const m = /filename\*=utf-8''([^;]+)/i.exec(disposition);
  const filename = m ? decodeURIComponent(m[1]) : documentId;
  const url = URL.createObjectURL(new Blob([bytes], {
    type: response.headers.get('Content-Type') || 'application/octet-stream' }));
  const link = el('a', { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return { filename, announced, actual, matches: announced === actual, fingerprint };
}

export function shortHash(sha) {
  return sha ? `${sha.slice(0, 16)}…` : '—';
}

/** The bond of a registration in words. */
export function bondText(bond) {
  if (!bond || bond.method === 'none') return t('bond.none');
  if (bond.method === 'guarantee') {
    return t('bond.guarantee_text', { number: bond.guarantee_number, issuer: bond.guarantee_issuer,
      amount: yuan(bond.bond_fen) });
  }
  return t('bond.transfer_text', { reference: bond.reference, account: bond.payer_account,
    amount: yuan(bond.bond_fen) });
}

/** The refund of a registration's bond in words (due day with its rule, or refunded). */
export function refundText(refund) {
  if (!refund) return '';
  if (refund.refunded_at_ms) return t('bond.refunded', { time: dateTime(refund.refunded_at_ms) });
  if (refund.due_day) return t('bond.refund_due', { day: refund.due_day });
  return '';
}

/** A table of documents and their versions. `onDownload(doc, version)` adds a button per
 *  version (absent: no button). */
export function documentsTable(docs, { onDownload, idPrefix = 'doc' } = {}) {
  if (!docs.length) return el('p', { class: 'empty' }, t('doc.none'));
  const rows = [];
  for (const doc of docs) {
    for (const v of doc.versions.slice().reverse()) {
      const current = v.version === doc.current_version;
      rows.push(el('tr', { 'data-document': doc.id, 'data-version': v.version },
        el('td', {}, doc.title, current ? el('span', { class: 'badge phase-running' }, t('doc.current')) : null),
        el('td', { class: 'num' }, `v${v.version}`),
        el('td', {}, v.filename),
        el('td', { class: 'num' }, t('doc.size', { n: v.size })),
        el('td', { class: 'num' }, dateTime(v.uploaded_at_ms)),
        el('td', {}, el('code', { class: 'mono sha', title: v.sha256, 'data-sha256': v.sha256 }, v.sha256)),
        onDownload ? el('td', {}, el('button', {
          type: 'button', class: 'small secondary', id: `${idPrefix}-dl-${doc.id}-${v.version}`,
          onclick: () => onDownload(doc, v),
        }, t('doc.download'))) : null));
    }
  }
  return el('div', { class: 'table-wrap' }, el('table', { class: 'documents' },
    el('thead', {}, el('tr', {},
      el('th', {}, t('doc.title')), el('th', {}, t('doc.version')), el('th', {}, t('doc.filename')),
      el('th', {}, t('doc.size_h')), el('th', {}, t('doc.uploaded')), el('th', {}, 'SHA-256'),
      onDownload ? el('th', {}, t('doc.action')) : null)),
    el('tbody', {}, rows)));
}
