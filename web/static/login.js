// Sign in with an API token, or (on a `bidroom demo` server) as one of the demo accounts.

import { api, ApiError, getToken, setToken } from './api.js';
import {
  certificatePem, KeyFileError, makeCertificateRequests, signChallenge,
} from './cacrypto.js';
import { el, initPage } from './layout.js';
import { lang, onLangChange, t } from './i18n.js';

function nextUrl() {
  const next = new URLSearchParams(location.search).get('next') || '';
  // Only a path of this site: never an absolute or protocol-relative URL.
  return /^\/app\/[^/]/.test(next) && !next.startsWith('//') ? next : '/app/auctions';
}

async function signIn(token) {
  const user = await api('/api/me', { token });
  setToken(token, user);
  location.assign(nextUrl());
}

function showTokenError(text) {
  const input = document.getElementById('token');
  document.getElementById('token-error').textContent = text;
  input.setAttribute('aria-invalid', text ? 'true' : 'false');
  if (text) input.focus();
}

async function onTokenSubmit(event) {
  event.preventDefault();
  const token = document.getElementById('token').value.trim();
  if (!token) {
    showTokenError(t('signin.token.empty'));
    return;
  }
  showTokenError('');
  try {
    await signIn(token);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) showTokenError(t('signin.token.invalid'));
    else showTokenError(t('err.network_error'));
  }
}

async function onCaSubmit(event) {
  event.preventDefault();
  const error = document.getElementById('ca-error');
  const status = document.getElementById('ca-status');
  error.textContent = '';
  const certFile = document.getElementById('ca-cert').files[0];
  const keyFile = document.getElementById('ca-key').files[0];
  if (!certFile || !keyFile) {
    error.textContent = t('signin.ca.files');
    return;
  }
  status.className = 'notice info';
  status.textContent = t('signin.ca.working');
  try {
    const certificate = certificatePem(await certFile.text());
    const keyText = await keyFile.text(); // stays in this page
    const { challenge } = await api('/api/auth/ca/challenge', { method: 'POST', token: '' });
    const signature = await signChallenge(keyText, challenge);
    const login = await api('/api/auth/ca/login', {
      method: 'POST', token: '',
      body: { challenge, signature_b64: signature, certificate_pem: certificate },
    });
    status.textContent = t('signin.ca.done', { org: login.org.name });
    await signIn(login.token);
  } catch (err) {
    status.textContent = '';
    if (err instanceof KeyFileError) error.textContent = t(`keyfile.${err.code}`);
    else if (err instanceof ApiError) error.textContent = t(`caerr.${err.code}`, {}, err.message);
    else error.textContent = String(err);
  }
}

const CSR_FILES = [
  ['sign-key.pem', 'signKeyPem'], ['enc-key.pem', 'encKeyPem'],
  ['sign.csr', 'signCsrPem'], ['enc.csr', 'encCsrPem'],
];
let csrMade = null; // {name: text} of the last keys and requests made here

function renderCsrFiles() {
  const list = document.getElementById('csr-files');
  for (const link of list.querySelectorAll('a')) URL.revokeObjectURL(link.href);
  list.replaceChildren();
  if (!csrMade) return;
  for (const [file] of CSR_FILES) {
    const blob = new Blob([csrMade[file]], { type: 'application/x-pem-file' });
    list.append(el('li', {}, el('a', { href: URL.createObjectURL(blob), download: file,
      'data-file': file }, file), ` ${t(`signin.csr.file.${file}`)}`));
  }
  list.hidden = false;
}

async function onCsrSubmit(event) {
  event.preventDefault();
  const error = document.getElementById('csr-error');
  const status = document.getElementById('csr-status');
  error.textContent = '';
  const orgId = document.getElementById('csr-org').value.trim();
  const name = document.getElementById('csr-name').value.trim();
  if (!orgId || !name || orgId.length > 64 || name.length > 64) {
    error.textContent = t('signin.csr.fields');
    return;
  }
  status.className = 'notice info';
  status.textContent = t('signin.csr.working');
  try {
    const made = await makeCertificateRequests(orgId, name);
    csrMade = Object.fromEntries(CSR_FILES.map(([file, field]) => [file, made[field]]));
    renderCsrFiles();
    status.textContent = t('signin.csr.done');
  } catch (err) {
    status.textContent = '';
    error.textContent = err instanceof KeyFileError ? t(`keyfile.${err.code}`, {}, err.message)
      : String(err);
  }
}

let demoDoc = null;

function renderDemo() {
  if (!demoDoc) return;
  const list = document.getElementById('demo-list');
  list.replaceChildren();
  for (const account of demoDoc.accounts) {
    const org = lang() === 'en' ? account.org_name_en : account.org_name;
    list.append(el('li', {}, el('button', {
      type: 'button', 'data-role': account.role, 'data-org': account.org_id,
      onclick: () => signIn(account.token).catch(() => showTokenError(t('signin.token.invalid'))),
    },
    el('span', { class: 'role' }, t(`role.${account.role}`)),
    el('span', {}, account.user_name),
    el('span', { class: 'org' }, org))));
  }
  document.getElementById('demo').hidden = false;
}

async function loadDemo() {
  try {
    demoDoc = await api('/api/demo/accounts', { token: '' });
  } catch {
    return; // not a demo server
  }
  renderDemo();
}

async function main() {
  await initPage({ auth: false });
  if (getToken() && !new URLSearchParams(location.search).has('next')) {
    location.replace('/app/auctions');
    return;
  }
  document.getElementById('token-form').addEventListener('submit', onTokenSubmit);
  document.getElementById('ca-form').addEventListener('submit', onCaSubmit);
  document.getElementById('csr-form').addEventListener('submit', onCsrSubmit);
  onLangChange(renderDemo);
  onLangChange(renderCsrFiles);
  await loadDemo();
}

main();
