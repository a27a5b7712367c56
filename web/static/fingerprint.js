// The device fingerprint sent with every tender-document download (X-Device-Fingerprint).
//
// It is evidence, not identity: SHA-256 (WebCrypto) over a few properties of this browser and a
// random id kept in this browser's localStorage. The same browser profile sends the same value
// on every visit; two suppliers downloading from one machine and profile send the same value,
// which is what the collusion rules read later (DOMAIN.md §4). Anyone can clear or change it, so
// a value proves nothing alone, and no personal data is in it.

const DEVICE_KEY = 'bidroom.device';

function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

function deviceId() {
  let id = null;
  try { id = localStorage.getItem(DEVICE_KEY); } catch { id = null; }
  if (!id || !/^[0-9a-f]{32}$/.test(id)) {
    id = hex(crypto.getRandomValues(new Uint8Array(16)));
    try { localStorage.setItem(DEVICE_KEY, id); } catch { /* private mode: this page only */ }
  }
  return id;
}

let cached = null;

/** 64 hex digits: SHA-256 of the browser's properties and its random id (null outside a
 *  secure context, where WebCrypto is missing). */
export async function deviceFingerprint() {
  if (cached) return cached;
  if (!(crypto && crypto.subtle)) return null; // not a secure context: no header, no claim
  const parts = [
    deviceId(),
    navigator.userAgent || '',
    navigator.language || '',
    (navigator.languages || []).join(','),
    navigator.platform || '',
    String(navigator.hardwareConcurrency || 0),
    `${screen.width}x${screen.height}x${screen.colorDepth}`,
    Intl.DateTimeFormat().resolvedOptions().timeZone || '',
  ];
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(parts.join('\n')));
  cached = hex(digest);
  return cached;
}

/** SHA-256 of bytes, as 64 hex digits. */
export async function sha256Hex(buffer) {
  return hex(await crypto.subtle.digest('SHA-256', buffer));
}
