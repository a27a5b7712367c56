"""B5's reference: open and verify sealed bids with the ``cryptography`` library in a bare loop.

For each envelope (CMS AuthEnvelopedData, AES-256-GCM, around a CMS SignedData — the format of
docs/opening.md §3) and its content key: SHA-256 of the envelope (the server re-hashes the
stored file against the receipt), AES-256-GCM decryption with tag check, then the inner
SignedData: the ``messageDigest`` signed attribute must equal the SHA-256 of the package, the
signature over the signed attributes must verify with the embedded signer certificate, and that
certificate must be directly issued by the platform CA. Nothing else (no ZIP, no log, no disk
writes): the bare cost of "decrypting and verifying" that PERFORMANCE.md compares against.

A minimal DER walker (definite lengths, the layout ``bidroom bid seal`` writes); it raises
``ValueError`` on anything else. Must not import bidroom, market or web.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["open_all", "open_and_verify"]

_MESSAGE_DIGEST_OID = bytes.fromhex("06092a864886f70d010904")  # 1.2.840.113549.1.9.4

Tlv = tuple[int, int, int, int]  # tag, start of the TLV, start of the content, end


def _tlv(buf: bytes | memoryview, pos: int) -> Tlv:
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte tags are not expected")
    length = buf[pos + 1]
    head = pos + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0:
            raise ValueError("indefinite lengths are not expected")
        length = int.from_bytes(buf[head:head + count], "big")
        head += count
    return tag, pos, head, head + length


def _children(buf: bytes | memoryview, parent: Tlv) -> list[Tlv]:
    out, pos = [], parent[2]
    while pos < parent[3]:
        item = _tlv(buf, pos)
        out.append(item)
        pos = item[3]
    return out


def _content(buf: bytes | memoryview, item: Tlv) -> bytes:
    return bytes(buf[item[2]:item[3]])


def _first(items: Iterable[Tlv], tag: int) -> Tlv:
    for item in items:
        if item[0] == tag:
            return item
    raise ValueError(f"no element with tag {tag:#x}")


def open_and_verify(envelope: bytes, content_key: bytes, ca_cert: x509.Certificate) -> int:
    """Decrypt and verify one sealed bid; the package's size. Raises on any failure."""
    hashlib.sha256(envelope).digest()  # the server re-hashes the stored ciphertext
    view = memoryview(envelope)
    outer = _children(view, _tlv(view, 0))  # ContentInfo: OID, [0]
    (auth,) = _children(view, outer[1])  # AuthEnvelopedData
    parts = _children(view, auth)
    set_at = next(i for i, p in enumerate(parts) if p[0] == 0x31)  # recipientInfos
    info = parts[set_at + 1]  # authEncryptedContentInfo
    rest = parts[set_at + 2:]
    aad = None
    attrs = [p for p in rest if p[0] == 0xA1]
    if attrs:  # authAttrs are authenticated as a SET
        aad = b"\x31" + bytes(view[attrs[0][1] + 1:attrs[0][3]])
    mac = _content(view, _first(rest, 0x04))
    _, algorithm, encrypted = _children(view, info)
    params = _children(view, _children(view, algorithm)[1])
    nonce = _content(view, params[0])
    ciphertext = view[encrypted[2]:encrypted[3]]
    plain = AESGCM(content_key).decrypt(nonce, bytes(ciphertext) + mac, aad)

    top = _children(plain, _tlv(plain, 0))  # ContentInfo: OID, [0]
    (signed,) = _children(plain, top[1])
    fields = _children(plain, signed)
    encap = _children(plain, fields[2])
    (octets,) = _children(plain, encap[1])
    package = memoryview(plain)[octets[2]:octets[3]]
    certs = [x509.load_der_x509_certificate(plain[c[1]:c[3]])
             for c in _children(plain, fields[3])] if fields[3][0] == 0xA0 else []
    signer_info = _children(plain, fields[-1])[0]
    si = _children(plain, signer_info)
    serial = int.from_bytes(_content(plain, _children(plain, si[1])[1]), "big", signed=True)
    cert = next(c for c in certs if c.serial_number == serial)
    signed_attrs = si[3]
    if signed_attrs[0] != 0xA0:
        raise ValueError("no signed attributes")
    digest = None
    for attr in _children(plain, signed_attrs):
        oid, values = _children(plain, attr)
        if plain[oid[1]:oid[3]] == _MESSAGE_DIGEST_OID:
            digest = _content(plain, _children(plain, values)[0])
    if digest != hashlib.sha256(package).digest():
        raise ValueError("message digest mismatch")
    signature = _content(plain, si[5])
    to_verify = b"\x31" + plain[signed_attrs[1] + 1:signed_attrs[3]]
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, to_verify, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, to_verify, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise ValueError("an unsupported signer key")
    cert.verify_directly_issued_by(ca_cert)
    return len(package)


def open_all(items: Iterable[tuple[Path, bytes]], ca_cert_pem: bytes) -> int:
    """The bare loop: read each envelope file and open it with its key; bytes of packages."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    total = 0
    for path, key in items:
        total += open_and_verify(path.read_bytes(), key, ca_cert)
    return total
