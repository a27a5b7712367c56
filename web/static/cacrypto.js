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

// ------------------------------------------------------------ certificate requests (PKCS#10)
//
// The supplier's keys made here, in its own browser: an ECDSA P-256 signing key and an RSA-2048
// encryption key, each with a PKCS#10 request (RFC 2986) signed by that key. The private keys
// come back as PKCS#8 PEM for the supplier to save on its own disk (the same files the CLI's
// `bidroom ca request` writes; `importSigningKey` and `unwrapContentKey` read them); only the
// two requests go to the platform CA (`bidroom ca sign-csr`). The RSA key is generated for
// RSASSA-PKCS1-v1_5 because WebCrypto lets only a signing key sign its request; its PKCS#8 file
// names plain rsaEncryption, so the same key imports as RSA-OAEP for unwrapping.

const OID = {
  country: '2.5.4.6', organisation: '2.5.4.10', unit: '2.5.4.11', commonName: '2.5.4.3',
  extensionRequest: '1.2.840.113549.1.9.14', keyUsage: '2.5.29.15',
  ecdsaSha256: '1.2.840.10045.4.3.2', rsaSha256: '1.2.840.113549.1.1.11',
};

function concat(parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** One DER TLV: a tag byte and its content (definite length, short or long form). */
function tlv(tag, content) {
  const body = content instanceof Uint8Array ? content : new Uint8Array(content);
  const n = body.length;
  let length;
  if (n < 0x80) length = [n];
  else {
    const bytes = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
    length = [0x80 | bytes.length, ...bytes];
  }
  return concat([new Uint8Array([tag, ...length]), body]);
}

const seq = (...items) => tlv(0x30, concat(items));
const set = (...items) => tlv(0x31, concat(items));
const utf8 = (text) => tlv(0x0c, new TextEncoder().encode(text));
const printable = (text) => tlv(0x13, new TextEncoder().encode(text));
const bitString = (bytes, unused = 0) => tlv(0x03, concat([new Uint8Array([unused]), bytes]));

function oid(dotted) {
  const arcs = dotted.split('.').map(Number);
  const bytes = [40 * arcs[0] + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const chunk = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    bytes.push(...chunk);
  }
  return tlv(0x06, bytes);
}

/** A non-negative INTEGER from big-endian bytes (leading zeros trimmed, sign byte added). */
function unsignedInteger(bytes) {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start += 1;
  const trimmed = bytes.subarray(start);
  return tlv(0x02, trimmed[0] & 0x80 ? concat([new Uint8Array([0]), trimmed]) : trimmed);
}

/** The subject the platform CA writes too: C=CN, O=name, OU=org id, CN=name. */
function subjectName(orgId, name) {
  const rdn = (type, value) => set(seq(oid(type), value));
  return seq(rdn(OID.country, printable('CN')), rdn(OID.organisation, utf8(name)),
    rdn(OID.unit, utf8(orgId)), rdn(OID.commonName, utf8(name)));
}

/** The extension request for the key usage: signing (digitalSignature + nonRepudiation) or
 *  encryption (keyEncipherment), critical, as the CA sets it. */
function keyUsageRequest(usage) {
  const usageBits = usage === 'signing' ? bitString(new Uint8Array([0xc0]), 6)
    : bitString(new Uint8Array([0x20]), 5);
  const extension = seq(oid(OID.keyUsage), tlv(0x01, [0xff]), tlv(0x04, usageBits));
  return tlv(0xa0, seq(oid(OID.extensionRequest), set(seq(extension))));
}

function derToPem(der, label) {
  const lines = toBase64(der).match(/.{1,64}/g).join('\n');
  return `-----BEGIN ${label}-----\n${lines}\n-----END ${label}-----\n`;
}

async function request(keyPair, usage, orgId, name) {
  const spki = new Uint8Array(await crypto.subtle.exportKey('spki', keyPair.publicKey));
  const info = seq(tlv(0x02, [0]), subjectName(orgId, name), spki, keyUsageRequest(usage));
  let algorithm;
  let signature;
  if (keyPair.privateKey.algorithm.name === 'ECDSA') {
    const raw = new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' },
      keyPair.privateKey, info));
    const half = raw.length / 2; // r||s (IEEE P1363) → DER Ecdsa-Sig-Value
    signature = seq(unsignedInteger(raw.subarray(0, half)), unsignedInteger(raw.subarray(half)));
    algorithm = seq(oid(OID.ecdsaSha256));
  } else {
    signature = new Uint8Array(await crypto.subtle.sign({ name: 'RSASSA-PKCS1-v1_5' },
      keyPair.privateKey, info));
    algorithm = seq(oid(OID.rsaSha256), tlv(0x05, []));
  }
  return derToPem(seq(info, algorithm, bitString(signature)), 'CERTIFICATE REQUEST');
}

async function privateKeyPem(key) {
  return derToPem(new Uint8Array(await crypto.subtle.exportKey('pkcs8', key)), 'PRIVATE KEY');
}

/**
 * Make the supplier's dual keys and their two certificate requests, in this browser. Returns
 * {signKeyPem, encKeyPem, signCsrPem, encCsrPem}: save the keys (they are the supplier's
 * alone), send the requests to the platform CA.
 */
export async function makeCertificateRequests(orgId, name) {
  needCrypto();
  for (const [label, text] of [['org_id', orgId], ['name', name]]) {
    if (typeof text !== 'string' || !text.trim() || text.length > 64) {
      throw new KeyFileError('invalid_input', `${label}: 1–64 characters`);
    }
  }
  const signing = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true,
    ['sign', 'verify']);
  const encryption = await crypto.subtle.generateKey({
    name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-256',
  }, true, ['sign', 'verify']);
  return {
    signKeyPem: await privateKeyPem(signing.privateKey),
    encKeyPem: await privateKeyPem(encryption.privateKey),
    signCsrPem: await request(signing, 'signing', orgId, name),
    encCsrPem: await request(encryption, 'encryption', orgId, name),
  };
}
