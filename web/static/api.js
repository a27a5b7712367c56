// The HTTP API with the signed-in user's bearer token (kept in sessionStorage: one tab, one
// user; closing the tab signs out). Errors come back as ApiError with the server's stable code.

const TOKEN_KEY = 'bidroom.token';
const ME_KEY = 'bidroom.me';

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token, me) {
  sessionStorage.setItem(TOKEN_KEY, token);
  if (me) sessionStorage.setItem(ME_KEY, JSON.stringify(me));
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(ME_KEY);
}

export function signInUrl() {
  const next = location.pathname + location.search;
  return `/app/?next=${encodeURIComponent(next)}`;
}

/** fetch JSON; `token` overrides the stored one (signing in). Throws ApiError. */
export async function api(path, { method = 'GET', body, token } = {}) {
  const headers = { Accept: 'application/json' };
  const bearer = token ?? getToken();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, 'network_error', String(err && err.message ? err.message : err));
  }
  let doc = null;
  const text = await response.text();
  if (text) {
    try { doc = JSON.parse(text); } catch { doc = null; }
  }
  if (!response.ok) {
    const e = (doc && doc.error) || {};
    throw new ApiError(response.status, e.code || `http_${response.status}`,
      e.message || response.statusText, e.details);
  }
  return doc;
}

/** The signed-in user (GET /api/me), cached for the tab; null when nobody is signed in. */
export async function me({ fresh = false } = {}) {
  if (!getToken()) return null;
  const cached = sessionStorage.getItem(ME_KEY);
  if (cached && !fresh) return JSON.parse(cached);
  const doc = await api('/api/me');
  sessionStorage.setItem(ME_KEY, JSON.stringify(doc));
  return doc;
}

/** What kind of room this user gets: 'supplier' or 'watcher' (as the server decides). */
export function audienceOf(user) {
  return user && user.roles.includes('supplier') ? 'supplier' : 'watcher';
}

export function canCreate(user) {
  return !!user && (user.roles.includes('purchaser') || user.roles.includes('agency'));
}

/** May this user manage (invite, pause, resume) this auction? */
export function canManage(user, auction) {
  if (!user || !auction) return false;
  if (user.roles.includes('purchaser') && auction.purchaser && auction.purchaser.id === user.org_id) {
    return true;
  }
  return user.roles.includes('agency') && !!auction.agency && auction.agency.id === user.org_id;
}

/** A bid id: crypto.randomUUID() (secure contexts), else 128 random bits in hex. */
export function newBidId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
