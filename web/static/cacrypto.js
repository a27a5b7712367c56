// The supplier's keys, in the browser only (WebCrypto). A key file is read from the user's disk
// with the File API and imported as a non-extractable CryptoKey; it is never uploaded. What
// leaves the page is a signature over the server's challenge (CA login) or the 32-byte content
// key of the supplier's own bid, unwrapped here (RSAES-OAEP with SHA-256, RFC 4055).

export class KeyFileError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

/** The DER bytes of the first PEM block with this label (or any label when omitted). */
export function pemToDer(text, label) {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(String(text));
  if (!m) throw new KeyFileError('not_pem');
  if (label && m[1] !== label) {
    if (m[1] === 'ENCRYPTED PRIVATE KEY') throw new KeyFileError('encrypted_key');
    if (m[1] === 'RSA PRIVATE KEY' || m[1] === 'EC PRIVATE KEY') throw new KeyFileError('not_pkcs8');
    throw new KeyFileError('wrong_pem', m[1]);
  }
  const binary = atob(m[2].replace(/[^A-Za-z0-9+/=]/g, ''));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

export function toBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

function needCrypto() {
  if (!globalThis.crypto || !crypto.subtle) throw new KeyFileError('no_webcrypto');
}

/**
 * Import a signing private key (PKCS#8 PEM): ECDSA P-256 (or P-384), else RSA. Returns
 * {key, sign: (bytes) => Promise<ArrayBuffer>}. ECDSA signatures come out as r||s (IEEE
 * P1363), which the server accepts as well as DER.
 */
export async function importSigningKey(pemText) {
  needCrypto();
  const der = pemToDer(pemText, 'PRIVATE KEY');
  for (const curve of ['P-256', 'P-384']) {
    try {
      const key = await crypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: curve },
        false, ['sign']);
      const hash = curve === 'P-256' ? 'SHA-256' : 'SHA-384';
      return { key, sign: (data) => crypto.subtle.sign({ name: 'ECDSA', hash }, key, data) };
    } catch { /* not this curve */ }
  }
  try {
    const key = await crypto.subtle.importKey('pkcs8', der,
      { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign']);
    return { key, sign: (data) => crypto.subtle.sign({ name: 'RSASSA-PKCS1-v1_5' }, key, data) };
  } catch {
    throw new KeyFileError('unsupported_key');
  }
}

/** Sign the challenge's UTF-8 bytes; the signature in base64. */
export async function signChallenge(pemText, challenge) {
  const signer = await importSigningKey(pemText);
  return toBase64(await signer.sign(new TextEncoder().encode(challenge)));
}

/** Unwrap the content key of one's own bid: RSAES-OAEP (SHA-256, MGF1-SHA-256, no label). */
export async function unwrapContentKey(pemText, encryptedKeyB64) {
  needCrypto();
  const der = pemToDer(pemText, 'PRIVATE KEY');
  let key;
  try {
    key = await crypto.subtle.importKey('pkcs8', der, { name: 'RSA-OAEP', hash: 'SHA-256' },
      false, ['decrypt']);
  } catch {
    throw new KeyFileError('not_rsa_key');
  }
  let plain;
  try {
    plain = await crypto.subtle.decrypt({ name: 'RSA-OAEP' }, key, fromBase64(encryptedKeyB64));
  } catch {
    throw new KeyFileError('wrong_key');
  }
  return toBase64(plain);
}

/** A certificate file's PEM text (checked to be a certificate). */
export function certificatePem(text) {
  pemToDer(text, 'CERTIFICATE');
  const m = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(text);
  return `${m[0]}\n`;
}
