"""Sealing and opening a bid: a standard CMS digital envelope around a signed package.

A sealed bid (数字信封, the shape of GB/T 35275 "signed and enveloped" data with the
international algorithms; 电子招标投标办法 26–31: a bid is encrypted, nobody can decrypt it
before the deadline, an unencrypted bid is refused) is one DER file::

    ContentInfo {
      contentType  id-ct-authEnvelopedData (1.2.840.113549.1.9.16.1.23, RFC 5083)
      content [0]  AuthEnvelopedData {
        version 0,
        recipientInfos  SET OF KeyTransRecipientInfo {             -- one per certificate
          version 0, rid issuerAndSerialNumber,
          keyEncryptionAlgorithm id-RSAES-OAEP { sha256, mgf1(sha256) }   -- RFC 4055
          encryptedKey  RSAES-OAEP(content key) }
        authEncryptedContentInfo {
          contentType id-data,
          contentEncryptionAlgorithm aes256-GCM { nonce: 12 bytes, ICVlen: 16 } -- RFC 5084
          encryptedContent [0]  AES-256-GCM(inner) }
        mac  OCTET STRING (the 16-byte GCM tag) } }

The inner plaintext is the DER of a CMS ``ContentInfo`` of type ``SignedData`` (RFC 5652) whose
encapsulated content (id-data) is the bid package ZIP, signed by the supplier's *signing*
certificate (which it embeds) with signed attributes content-type, signing-time and
message-digest (SHA-256); ECDSA-with-SHA256 or RSA PKCS#1 v1.5 with SHA-256. Carrying the
inner ContentInfo as id-data is what ``openssl cms -sign | openssl cms -encrypt`` and S/MIME
do, so ``openssl cms -decrypt`` gives a file that ``openssl cms -verify`` checks as it is.
(An envelope whose content type is id-signedData, i.e. the RFC 5652 nesting where the
plaintext is the bare SignedData, is opened too.)

The recipients are the supplier's own *encryption* certificate and, optionally, the
certificate of the platform's backup opening key whose private key is split k-of-n between
officers (shamir.py), so no single insider can open a bid early.

Key transport is RSAES-OAEP with SHA-256 only: an envelope with any PKCS#1 v1.5 recipient
(Bleichenbacher-style padding oracles) is refused (``weak_key_transport``), as are
EnvelopedData (CBC, no integrity) and every other algorithm (``unsupported_algorithm``).

Memory stays constant whatever the bid's size: the envelope is written by computing every
DER length up front and streaming the ciphertext; it is read by offsets (der.FileDer):
only headers, recipient infos, algorithm parameters and the MAC are parsed, and the
encrypted content is decrypted in 1 MiB chunks into a temporary file that is accepted only
after GCM ``finalize`` has checked the tag. The inner SignedData is then walked the same way,
hashing the package while copying it out. The content key is unwrapped on the supplier's side
(``unwrap_content_key``): the server never holds a supplier's private key.

Errors are ``ValidationError`` with codes ``not_encrypted``, ``malformed_envelope``,
``unsupported_algorithm``, ``weak_key_transport``, ``not_a_recipient``,
``bad_key_or_tampered``, ``bad_signature``, ``digest_mismatch``, the certificate codes of
ca.py and the package codes of package.py.

Must not import: market, web.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

import bidroom.opening.der as der
from bidroom.errors import ValidationError
from bidroom.opening.ca import (
    PrivateKey,
    TrustStore,
    VerifiedIdentity,
    check_usage,
    load_private_key,
)
from bidroom.opening.der import CONTEXT, UNIVERSAL, DerError
from bidroom.opening.package import read_package

__all__ = [
    "CHUNK_SIZE",
    "CONTENT_KEY_BYTES",
    "EnvelopeInfo",
    "OpenedBid",
    "RecipientInfo",
    "SealResult",
    "decrypt_content",
    "inspect_envelope",
    "open_envelope",
    "recipient_for",
    "seal_bid",
    "unwrap_content_key",
]

CHUNK_SIZE = 1 << 20
CONTENT_KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16

# Object identifiers (RFC 5652, 5083, 5084, 4055, 5754, 5758).
ID_DATA = "1.2.840.113549.1.7.1"
ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
ID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
ID_DIGESTED_DATA = "1.2.840.113549.1.7.5"
ID_ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
ID_AUTH_DATA = "1.2.840.113549.1.9.16.1.2"
ID_AUTH_ENVELOPED_DATA = "1.2.840.113549.1.9.16.1.23"
AES128_GCM = "2.16.840.1.101.3.4.1.6"
AES192_GCM = "2.16.840.1.101.3.4.1.26"
AES256_GCM = "2.16.840.1.101.3.4.1.46"
RSA_ENCRYPTION = "1.2.840.113549.1.1.1"  # as key transport: RSAES-PKCS1-v1_5
RSAES_OAEP = "1.2.840.113549.1.1.7"
MGF1 = "1.2.840.113549.1.1.8"
P_SPECIFIED = "1.2.840.113549.1.1.9"
RSASSA_PSS = "1.2.840.113549.1.1.10"
SHA256_WITH_RSA = "1.2.840.113549.1.1.11"
SHA384_WITH_RSA = "1.2.840.113549.1.1.12"
SHA512_WITH_RSA = "1.2.840.113549.1.1.13"
EC_PUBLIC_KEY = "1.2.840.10045.2.1"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
ECDSA_SHA384 = "1.2.840.10045.4.3.3"
ECDSA_SHA512 = "1.2.840.10045.4.3.4"
SHA1 = "1.3.14.3.2.26"
SHA256 = "2.16.840.1.101.3.4.2.1"
SHA384 = "2.16.840.1.101.3.4.2.2"
SHA512 = "2.16.840.1.101.3.4.2.3"
ATTR_CONTENT_TYPE = "1.2.840.113549.1.9.3"
ATTR_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
ATTR_SIGNING_TIME = "1.2.840.113549.1.9.5"

_HASHES: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    SHA256: ("sha256", hashes.SHA256),
    SHA384: ("sha384", hashes.SHA384),
    SHA512: ("sha512", hashes.SHA512),
}
_CONTENT_NAMES = {
    ID_DATA: "data",
    ID_SIGNED_DATA: "SignedData (signed, not encrypted)",
    ID_ENVELOPED_DATA: "EnvelopedData",
    ID_DIGESTED_DATA: "DigestedData",
    ID_ENCRYPTED_DATA: "EncryptedData",
    ID_AUTH_DATA: "AuthenticatedData",
}
_SMALL = 1 << 20  # the most we read into memory for one structural element

_SHA256_ALG = der.seq(der.oid(SHA256))
_OAEP_SHA256_ALG = der.seq(
    der.oid(RSAES_OAEP),
    der.seq(
        der.tlv(0xA0, _SHA256_ALG),
        der.tlv(0xA1, der.seq(der.oid(MGF1), _SHA256_ALG)),
    ),
)
_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


# ==================================================================================== values


@dataclass(frozen=True, slots=True)
class SealResult:
    """The sealed file's SHA-256 (hex; what the upload receipt names) and size in bytes."""

    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class RecipientInfo:
    """One KeyTransRecipientInfo: whom the content key is wrapped for, and the wrapped key.
    The recipient is named by issuer + serial number, or (version 2) by the subject key
    identifier of its certificate."""

    issuer_der: bytes | None
    serial: int | None
    subject_key_identifier: bytes | None
    key_encryption_oid: str
    encrypted_key: bytes

    @property
    def issuer_name(self) -> str:
        """The issuer as an RFC 4514 string (best effort, for display)."""
        if self.issuer_der is None:
            return ""
        return _name_text(self.issuer_der)


@dataclass(frozen=True, slots=True)
class EnvelopeInfo:
    """What ``inspect_envelope`` found, without reading the encrypted content."""

    size: int
    recipients: tuple[RecipientInfo, ...]
    content_type: str
    content_encryption: str
    nonce: bytes
    tag: bytes
    content_chunks: tuple[tuple[int, int], ...]
    auth_attributes: bytes | None = None

    @property
    def content_length(self) -> int:
        return sum(length for _, length in self.content_chunks)


@dataclass(frozen=True, slots=True)
class OpenedBid:
    """An opened bid. ``signer`` is the identity verified by the trust store (None when
    opened without one); the signature itself is always checked against
    ``signer_certificate``. ``package_path`` holds the package (its layout and form are
    checked); compare ``signer.org_id`` with the supplier who uploaded the envelope:
    anyone can seal *to* a supplier's public certificate, only the signature says who
    wrote the bid."""

    signer: VerifiedIdentity | None
    signer_certificate: x509.Certificate
    package_path: Path
    form: dict[str, Any]
    documents: list[str]
    signing_time: datetime | None
    package_sha256: str = ""
    package_size: int = 0
    content_type: str = field(default=ID_DATA)


# ================================================================================== helpers


def _error(code: str, message: str, **details: Any) -> ValidationError:
    return ValidationError(message, code=code, **details)


def _utc(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise _error("invalid_input", f"{name} must be an aware datetime (UTC)")
    return moment.astimezone(UTC)


def _name_text(name_der: bytes) -> str:
    parts: list[str] = []
    try:
        for rdn in der.children(der.parse_all(name_der)):
            for attribute in der.children(rdn):
                oid_el, value = der.children(attribute)
                text = (
                    value.content.decode("utf-16-be")
                    if value.is_(UNIVERSAL, 30)
                    else value.content.decode("utf-8", "replace")
                )
                label = {"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.10": "O", "2.5.4.11": "OU"}
                parts.append(f"{label.get(der.decode_oid(oid_el), der.decode_oid(oid_el))}={text}")
    except (DerError, ValueError, UnicodeDecodeError):
        return name_der.hex()
    return ",".join(reversed(parts))


def _issuer_and_serial(cert: x509.Certificate) -> tuple[bytes, int]:
    """The issuer Name exactly as encoded in the certificate, and its serial number."""
    tbs = der.children(der.parse_all(cert.tbs_certificate_bytes))
    index = 1 if tbs[0].is_(CONTEXT, 0) else 0  # [0] version
    return tbs[index + 2].raw, der.decode_integer(tbs[index])


def _subject_key_identifier(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except (x509.ExtensionNotFound, ValueError):
        return None


def _algorithm(element: der.Element) -> tuple[str, der.Element | None]:
    """An AlgorithmIdentifier: its OID and its parameters (None if absent or NULL)."""
    if not element.is_sequence:
        raise DerError("expected an AlgorithmIdentifier")
    parts = der.children(element)
    if not 1 <= len(parts) <= 2:
        raise DerError("a malformed AlgorithmIdentifier")
    params = parts[1] if len(parts) == 2 and not parts[1].is_(UNIVERSAL, 5) else None
    return der.decode_oid(parts[0]), params


def _hash_file(path: Path) -> tuple[int, bytes]:
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with path.open("rb") as src:
        while count := src.readinto(buffer):
            digest.update(view[:count])
            size += count
    return size, digest.digest()


@contextlib.contextmanager
def _temporary_next_to(target: Path) -> Iterator[Path]:
    """A fresh temporary path in ``target``'s directory, removed unless renamed away."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _open_new(path: Path) -> BinaryIO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


# ================================================================================== sealing


def _sign(key: PrivateKey, data: bytes) -> tuple[bytes, bytes]:
    """(signature, signatureAlgorithm DER) over ``data`` with SHA-256."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256())), der.seq(der.oid(ECDSA_SHA256))
    return (
        key.sign(data, padding.PKCS1v15(), hashes.SHA256()),
        der.seq(der.oid(SHA256_WITH_RSA), der.null()),
    )


def _signed_data_parts(
    content_length: int,
    digest: bytes,
    signing_key: PrivateKey,
    signing_cert: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    now: datetime,
) -> tuple[bytes, bytes]:
    """The DER of ContentInfo(SignedData) around a content of ``content_length`` bytes,
    split into what comes before the content octets and what comes after."""
    content_type = der.oid(ID_DATA)
    signed_attrs = der.set_of(
        [
            der.seq(der.oid(ATTR_CONTENT_TYPE), der.set_of([content_type])),
            der.seq(der.oid(ATTR_SIGNING_TIME), der.set_of([der.utc_time(now)])),
            der.seq(der.oid(ATTR_MESSAGE_DIGEST), der.set_of([der.octet_string(digest)])),
        ]
    )
    signature, signature_algorithm = _sign(signing_key, signed_attrs)
    issuer, serial = _issuer_and_serial(signing_cert)
    signer_info = der.seq(
        der.integer(1),
        der.seq(issuer, der.integer(serial)),
        _SHA256_ALG,
        b"\xa0" + signed_attrs[1:],  # [0] IMPLICIT: the SET signed, re-tagged
        signature_algorithm,
        der.octet_string(signature),
    )
    cert_ders = [signing_cert.public_bytes(serialization.Encoding.DER)]
    cert_ders += [c.public_bytes(serialization.Encoding.DER) for c in intermediates]
    suffix = der.tlv(0xA0, b"".join(sorted(set(cert_ders)))) + der.set_of([signer_info])
    version = der.integer(1)
    digest_algorithms = der.set_of([_SHA256_ALG])
    octet_header = der.encode_header(0x04, content_length)
    explicit_length = len(octet_header) + content_length
    explicit_header = der.encode_header(0xA0, explicit_length)
    encap_length = len(content_type) + len(explicit_header) + explicit_length
    encap_header = der.encode_header(0x30, encap_length)
    signed_length = (
        len(version) + len(digest_algorithms) + len(encap_header) + encap_length + len(suffix)
    )
    signed_header = der.encode_header(0x30, signed_length)
    wrapper_length = len(signed_header) + signed_length
    wrapper_header = der.encode_header(0xA0, wrapper_length)
    signed_oid = der.oid(ID_SIGNED_DATA)
    outer_header = der.encode_header(0x30, len(signed_oid) + len(wrapper_header) + wrapper_length)
    prefix = b"".join(
        (
            outer_header, signed_oid, wrapper_header, signed_header, version,
            digest_algorithms, encap_header, content_type, explicit_header, octet_header,
        )
    )
    return prefix, suffix


def _recipient_info(cert: x509.Certificate, content_key: bytes) -> bytes:
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)  # check_usage made sure
    issuer, serial = _issuer_and_serial(cert)
    return der.seq(
        der.integer(0),
        der.seq(issuer, der.integer(serial)),
        _OAEP_SHA256_ALG,
        der.octet_string(public_key.encrypt(content_key, _OAEP)),
    )


def _envelope_prefix(recipient_infos: list[bytes], nonce: bytes, content_length: int) -> bytes:
    """Everything of the AuthEnvelopedData ContentInfo before the ciphertext; after it only
    the MAC follows (an OCTET STRING of ``TAG_BYTES``)."""
    recipients = der.set_of(recipient_infos)
    algorithm = der.seq(
        der.oid(AES256_GCM), der.seq(der.octet_string(nonce), der.integer(TAG_BYTES))
    )
    content_type = der.oid(ID_DATA)
    content_header = der.encode_header(0x80, content_length)  # [0] IMPLICIT OCTET STRING
    info_length = len(content_type) + len(algorithm) + len(content_header) + content_length
    info_header = der.encode_header(0x30, info_length)
    version = der.integer(0)
    mac_length = 2 + TAG_BYTES
    body_length = len(version) + len(recipients) + len(info_header) + info_length + mac_length
    body_header = der.encode_header(0x30, body_length)
    wrapper_length = len(body_header) + body_length
    wrapper_header = der.encode_header(0xA0, wrapper_length)
    outer_oid = der.oid(ID_AUTH_ENVELOPED_DATA)
    outer_header = der.encode_header(0x30, len(outer_oid) + len(wrapper_header) + wrapper_length)
    return b"".join(
        (
            outer_header, outer_oid, wrapper_header, body_header, version, recipients,
            info_header, content_type, algorithm, content_header,
        )
    )


def seal_bid(
    package: Path,
    out: Path,
    *,
    signing_key: PrivateKey,
    signing_cert: x509.Certificate,
    recipients: Sequence[x509.Certificate],
    now: datetime,
    intermediates: Sequence[x509.Certificate] = (),
) -> SealResult:
    """Sign ``package`` (a bid package file) with the supplier's signing key and seal it to
    ``recipients`` (the supplier's encryption certificate, optionally the backup opening
    key's); write the envelope to ``out`` (atomically: a partial file never appears).

    Reads the package twice (hash, then encrypt) and refuses it if it changed in between.
    """
    package, out = Path(package), Path(out)
    now = _utc(now, "now")
    check_usage(signing_cert, "signing")
    if not isinstance(signing_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise _error("invalid_private_key", "the signing key must be an EC or RSA key")
    if (
        signing_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        != signing_cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ):
        raise _error(
            "invalid_private_key", "the signing key does not belong to the signing certificate"
        )
    unique: dict[bytes, x509.Certificate] = {}
    for cert in recipients:
        check_usage(cert, "encryption")
        unique.setdefault(cert.fingerprint(hashes.SHA256()), cert)
    if not unique:
        raise _error("invalid_input", "a bid is sealed to at least one encryption certificate")
    if not package.is_file():
        raise _error("invalid_package", f"{package} is not a readable file")

    size, digest = _hash_file(package)
    inner_prefix, inner_suffix = _signed_data_parts(
        size, digest, signing_key, signing_cert, intermediates, now
    )
    inner_length = len(inner_prefix) + size + len(inner_suffix)
    content_key = secrets.token_bytes(CONTENT_KEY_BYTES)
    nonce = secrets.token_bytes(NONCE_BYTES)
    recipient_infos = [_recipient_info(cert, content_key) for cert in unique.values()]
    prefix = _envelope_prefix(recipient_infos, nonce, inner_length)

    encryptor = Cipher(algorithms.AES(content_key), modes.GCM(nonce)).encryptor()
    file_hash = hashlib.sha256()
    recheck = hashlib.sha256()
    written = 0
    plain = bytearray(CHUNK_SIZE)
    plain_view = memoryview(plain)
    cipher_buffer = bytearray(CHUNK_SIZE + 15)  # update_into needs len(data) + 15
    cipher_view = memoryview(cipher_buffer)

    with _temporary_next_to(out) as tmp:
        with _open_new(tmp) as sink, package.open("rb") as src:

            def emit(data: bytes | memoryview) -> None:
                nonlocal written
                sink.write(data)
                file_hash.update(data)
                written += len(data)

            emit(prefix)
            emit(encryptor.update(inner_prefix))
            copied = 0
            while count := src.readinto(plain):
                recheck.update(plain_view[:count])
                produced = encryptor.update_into(plain_view[:count], cipher_buffer)
                emit(cipher_view[:produced])
                copied += count
            if copied != size or recheck.digest() != digest:
                raise _error("invalid_package", f"{package} changed while it was being sealed")
            emit(encryptor.update(inner_suffix))
            emit(encryptor.finalize())
            emit(der.octet_string(encryptor.tag))
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(tmp, out)
    return SealResult(sha256=file_hash.hexdigest(), size=written)


# ================================================================================ inspecting


def _not_encrypted(message: str) -> ValidationError:
    return _error(
        "not_encrypted",
        f"not an encrypted bid: {message}. Seal the bid (CMS AuthEnvelopedData) before "
        "uploading; unencrypted bids are refused (电子招标投标办法 第二十六条)",
    )


def _malformed(message: str) -> ValidationError:
    return _error("malformed_envelope", f"the envelope is malformed: {message}")


def _unsupported(message: str) -> ValidationError:
    return _error("unsupported_algorithm", message)


def inspect_envelope(path: Path) -> EnvelopeInfo:
    """Parse the envelope's structure by offsets (never loading the content) and check
    that it is AuthEnvelopedData with AES-256-GCM and RSAES-OAEP-SHA256 recipients."""
    path = Path(path)
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise _error("unreadable_file", f"cannot read {path}: {exc.strerror or exc}") from exc
    with stream:
        size = os.fstat(stream.fileno()).st_size
        reader = der.FileDer(stream, size)
        try:
            top = reader.header(0, check_bounds=False)  # a truncated envelope is malformed
            if not (top.is_(UNIVERSAL, der.SEQUENCE) and top.constructed):
                raise DerError("not a SEQUENCE")
            first = reader.header(top.content_offset)
            if not first.is_(UNIVERSAL, der.OID) or first.constructed:
                raise DerError("no content type")
            content_type = der.decode_oid(reader.element(first, limit=256))
        except DerError:
            raise _not_encrypted("the file is not a CMS ContentInfo (a plain ZIP, PDF…?)") from None
        if content_type in (ID_ENVELOPED_DATA, ID_ENCRYPTED_DATA):
            raise _unsupported(
                f"the file is CMS {_CONTENT_NAMES[content_type]} (e.g. AES-CBC without "
                "integrity); bids must be AuthEnvelopedData with AES-256-GCM (RFC 5083/5084): "
                "openssl cms -encrypt -aes-256-gcm -keyopt rsa_padding_mode:oaep "
                "-keyopt rsa_oaep_md:sha256"
            )
        if content_type != ID_AUTH_ENVELOPED_DATA:
            kind = _CONTENT_NAMES.get(content_type, content_type)
            raise _not_encrypted(f"the file is CMS {kind}")
        try:
            return _walk_envelope(reader, reader.header(0))
        except DerError as exc:
            raise _malformed(str(exc)) from None


def _walk_envelope(reader: der.FileDer, top: der.Header) -> EnvelopeInfo:
    outer = list(reader.child_headers(top))
    if len(outer) != 2 or not (outer[1].is_(CONTEXT, 0) and outer[1].constructed):
        raise DerError("ContentInfo must hold a content type and a [0] content")
    if reader.end_of(top) != reader.size:
        raise DerError("trailing bytes after the envelope")
    inner = list(reader.child_headers(outer[1]))
    if len(inner) != 1 or not inner[0].is_(UNIVERSAL, der.SEQUENCE):
        raise DerError("the [0] content is not one AuthEnvelopedData SEQUENCE")
    parts = list(reader.child_headers(inner[0]))
    position = 0

    def take(cls: int, number: int, *, optional: bool = False) -> der.Header | None:
        nonlocal position
        if position < len(parts) and parts[position].is_(cls, number):
            position += 1
            return parts[position - 1]
        if optional:
            return None
        raise DerError(f"expected tag {cls}/{number} at element {position} of the envelope")

    version_header = take(UNIVERSAL, der.INTEGER)
    assert version_header is not None
    if der.decode_integer(reader.element(version_header, limit=16)) != 0:
        raise DerError("AuthEnvelopedData version must be 0")
    take(CONTEXT, 0, optional=True)  # originatorInfo: not needed
    recipients_header = take(UNIVERSAL, der.SET)
    assert recipients_header is not None
    recipients = _parse_recipients(reader.element(recipients_header, limit=_SMALL))
    info_header = take(UNIVERSAL, der.SEQUENCE)
    assert info_header is not None
    content_type, nonce, icv_length, chunks = _parse_content_info(reader, info_header)
    auth_header = take(CONTEXT, 1, optional=True)
    auth_attributes = None
    if auth_header is not None:
        element = reader.element(auth_header, limit=_SMALL)
        auth_attributes = der.tlv(0x31, element.content)  # RFC 5083 2.2: the AAD
    mac_header = take(UNIVERSAL, der.OCTET_STRING)
    assert mac_header is not None
    tag = der.octets(reader.element(mac_header, limit=256))
    take(CONTEXT, 2, optional=True)  # unauthAttrs
    if position != len(parts):
        raise DerError("unexpected elements after the MAC")
    if len(tag) != icv_length:
        raise DerError(f"the MAC has {len(tag)} bytes, the parameters say {icv_length}")
    return EnvelopeInfo(
        size=reader.size,
        recipients=tuple(recipients),
        content_type=content_type,
        content_encryption="aes-256-gcm",
        nonce=nonce,
        tag=tag,
        content_chunks=tuple(chunks),
        auth_attributes=auth_attributes,
    )


def _parse_content_info(
    reader: der.FileDer, header: der.Header
) -> tuple[str, bytes, int, list[tuple[int, int]]]:
    parts = list(reader.child_headers(header))
    if len(parts) < 2 or not parts[0].is_(UNIVERSAL, der.OID):
        raise DerError("a malformed EncryptedContentInfo")
    content_type = der.decode_oid(reader.element(parts[0], limit=256))
    algorithm_oid, params = _algorithm(reader.element(parts[1], limit=4096))
    if algorithm_oid != AES256_GCM:
        name = {AES128_GCM: "AES-128-GCM", AES192_GCM: "AES-192-GCM"}.get(
            algorithm_oid, algorithm_oid
        )
        raise _unsupported(
            f"content encryption {name} is not accepted: bids use AES-256-GCM (RFC 5084)"
        )
    if params is None or not params.is_sequence:
        raise DerError("AES-GCM without GCMParameters")
    values = der.children(params)
    if not 1 <= len(values) <= 2 or not values[0].is_(UNIVERSAL, der.OCTET_STRING):
        raise DerError("malformed GCMParameters")
    nonce = der.octets(values[0])
    icv_length = der.decode_integer(values[1]) if len(values) == 2 else 12
    if len(nonce) != NONCE_BYTES:
        raise _unsupported(f"an AES-GCM nonce of {len(nonce)} bytes (12 required)")
    if icv_length != TAG_BYTES:
        raise _unsupported(f"an AES-GCM tag of {icv_length} bytes (16 required)")
    if len(parts) != 3 or not parts[2].is_(CONTEXT, 0):
        raise DerError("no encrypted content (a detached envelope is not a bid)")
    return content_type, nonce, icv_length, reader.primitive_chunks(parts[2])


def _parse_recipients(recipient_set: der.Element) -> list[RecipientInfo]:
    found: list[RecipientInfo] = []
    weak = 0
    others: list[str] = []
    for item in der.children(recipient_set):
        if not item.is_sequence:  # [1] kari, [2] kekri, [3] pwri, [4] ori
            kinds = {1: "key agreement", 2: "KEK", 3: "password", 4: "other"}
            others.append(kinds.get(item.number, str(item.number)))
            continue
        fields = der.children(item)
        if len(fields) != 4:
            raise DerError("a malformed KeyTransRecipientInfo")
        version = der.decode_integer(fields[0])
        rid = fields[1]
        issuer_der: bytes | None = None
        serial: int | None = None
        ski: bytes | None = None
        if rid.is_sequence and version == 0:
            name, number = der.children(rid)
            if not name.is_sequence:
                raise DerError("a malformed issuerAndSerialNumber")
            issuer_der, serial = name.raw, der.decode_integer(number)
        elif rid.is_(CONTEXT, 0) and version == 2:
            ski = der.octets(rid)
        else:
            raise DerError("a malformed recipient identifier")
        algorithm_oid, params = _algorithm(fields[2])
        if algorithm_oid == RSA_ENCRYPTION:
            weak += 1
        elif algorithm_oid == RSAES_OAEP:
            _check_oaep(params)
        else:
            raise _unsupported(f"key transport {algorithm_oid} is not accepted (RSAES-OAEP only)")
        if not fields[3].is_(UNIVERSAL, der.OCTET_STRING):
            raise DerError("a malformed encryptedKey")
        found.append(
            RecipientInfo(issuer_der, serial, ski, algorithm_oid, der.octets(fields[3]))
        )
    if weak:
        raise _error(
            "weak_key_transport",
            f"{weak} recipient(s) use RSAES-PKCS1-v1_5 key transport, which is refused "
            "(padding-oracle attacks): seal with RSAES-OAEP and SHA-256 (RFC 4055), e.g. "
            "openssl cms -encrypt -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256",
        )
    if not found:
        listed = ", ".join(others) or "none"
        raise _unsupported(f"no RSA key transport recipient (found: {listed})")
    return found


def _hash_of(element: der.Element | None, default: str) -> str:
    if element is None:
        return default
    oid, _ = _algorithm(element)
    return oid


def _check_oaep(params: der.Element | None) -> None:
    """RSAES-OAEP parameters must be SHA-256, MGF1 with SHA-256 and the empty label."""
    hash_oid, mgf_oid, mgf_hash_oid, label = SHA1, MGF1, SHA1, b""
    if params is not None:
        if not params.is_sequence:
            raise DerError("malformed RSAES-OAEP parameters")
        for item in der.children(params):
            if item.is_(CONTEXT, 0):
                (inner,) = der.children(item)
                hash_oid = _hash_of(inner, SHA1)
            elif item.is_(CONTEXT, 1):
                (inner,) = der.children(item)
                mgf_oid, mgf_params = _algorithm(inner)
                mgf_hash_oid = _hash_of(mgf_params, SHA1)
            elif item.is_(CONTEXT, 2):
                (inner,) = der.children(item)
                source_oid, source_params = _algorithm(inner)
                if source_oid != P_SPECIFIED:
                    raise _unsupported(f"an OAEP label source {source_oid}")
                label = der.octets(source_params) if source_params is not None else b""
            else:
                raise DerError("unexpected RSAES-OAEP parameter")
    if hash_oid != SHA256 or mgf_oid != MGF1 or mgf_hash_oid != SHA256 or label:
        raise _unsupported(
            "RSAES-OAEP must use SHA-256 and MGF1 with SHA-256 without a label "
            "(openssl: -keyopt rsa_oaep_md:sha256)"
        )


def recipient_for(info: EnvelopeInfo, cert: x509.Certificate) -> RecipientInfo:
    """The recipient info of ``cert`` (by issuer + serial, or subject key identifier);
    ``not_a_recipient`` if the envelope was not sealed to it."""
    issuer, serial = _issuer_and_serial(cert)
    ski = _subject_key_identifier(cert)
    for recipient in info.recipients:
        if recipient.issuer_der is not None:
            if recipient.issuer_der == issuer and recipient.serial == serial:
                return recipient
        elif ski is not None and recipient.subject_key_identifier == ski:
            return recipient
    raise _error(
        "not_a_recipient",
        f"the envelope is not sealed to certificate {cert.serial_number:x} "
        f"({cert.subject.rfc4514_string()}): use the encryption certificate the bid was "
        "sealed with",
    )


def unwrap_content_key(encrypted_key: bytes, enc_private_key: rsa.RSAPrivateKey | bytes) -> bytes:
    """Decrypt a wrapped content key with an encryption private key (RSAES-OAEP-SHA256).

    Runs on the supplier's machine: the platform never holds this key. ``enc_private_key``
    is a key object or its PEM. ``bad_key_or_tampered`` if it does not decrypt.
    """
    key = enc_private_key
    if not isinstance(key, rsa.RSAPrivateKey):
        loaded = load_private_key(key)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise _error("invalid_private_key", "an encryption key is an RSA key")
        key = loaded
    try:
        content_key = key.decrypt(bytes(encrypted_key), _OAEP)
    except ValueError:
        raise _error(
            "bad_key_or_tampered",
            "the content key does not decrypt with this private key (another key, or a "
            "damaged envelope)",
        ) from None
    if len(content_key) != CONTENT_KEY_BYTES:
        raise _error("bad_key_or_tampered", "the unwrapped content key is not 32 bytes")
    return content_key


# ================================================================================= decrypting


def _decrypt_into(path: Path, info: EnvelopeInfo, content_key: bytes, sink: BinaryIO) -> None:
    """Stream-decrypt the content into ``sink``; raise ``bad_key_or_tampered`` if the GCM
    tag does not verify (the caller must then discard what was written)."""
    if not isinstance(content_key, bytes | bytearray) or len(content_key) != CONTENT_KEY_BYTES:
        raise _error("bad_key_or_tampered", "the content key must be 32 bytes (AES-256)")
    decryptor = Cipher(
        algorithms.AES(bytes(content_key)), modes.GCM(info.nonce, info.tag)
    ).decryptor()
    if info.auth_attributes is not None:
        decryptor.authenticate_additional_data(info.auth_attributes)
    plain = bytearray(CHUNK_SIZE + 15)
    cipher = bytearray(CHUNK_SIZE)
    cipher_view, plain_view = memoryview(cipher), memoryview(plain)
    with Path(path).open("rb") as src:
        for offset, length in info.content_chunks:
            src.seek(offset)
            remaining = length
            while remaining:
                count = src.readinto(cipher_view[: min(CHUNK_SIZE, remaining)])
                if not count:
                    raise _malformed("the file is shorter than its structure says")
                produced = decryptor.update_into(cipher_view[:count], plain)
                sink.write(plain_view[:produced])
                remaining -= count
    try:
        sink.write(decryptor.finalize())
    except InvalidTag:
        raise _error(
            "bad_key_or_tampered",
            "decryption failed: the content key is wrong or the envelope was altered "
            "(AES-GCM authentication tag mismatch)",
        ) from None


def decrypt_content(path: Path, content_key: bytes, out: Path) -> int:
    """Decrypt an AuthEnvelopedData's content, whatever it is, to ``out`` (written only
    if the tag verifies); return its length. For interoperability checks."""
    path, out = Path(path), Path(out)
    info = inspect_envelope(path)
    with _temporary_next_to(out) as tmp:
        with _open_new(tmp) as sink:
            _decrypt_into(path, info, content_key, sink)
        os.replace(tmp, out)
    return info.content_length


# ============================================================================= the SignedData


@dataclass(frozen=True, slots=True)
class _SignedLayout:
    content_type: str
    content_chunks: list[tuple[int, int]]
    digest_algorithms: list[str]
    certificates: list[x509.Certificate]
    signer_infos: list[der.Element]


def _bad_signature(message: str) -> ValidationError:
    return _error("bad_signature", f"the bid's signature is not valid: {message}")


def _signed_layout(reader: der.FileDer) -> _SignedLayout:
    top = reader.header(0)
    if not top.is_(UNIVERSAL, der.SEQUENCE):
        raise DerError("not a SEQUENCE")
    if reader.end_of(top) != reader.size:
        raise DerError("trailing bytes after the SignedData")
    first = reader.header(top.content_offset)
    signed = top
    if first.is_(UNIVERSAL, der.OID):  # a ContentInfo
        outer = list(reader.child_headers(top))
        kind = der.decode_oid(reader.element(outer[0], limit=256))
        if kind != ID_SIGNED_DATA:
            raise _bad_signature(
                f"the bid is not signed (the sealed content is CMS "
                f"{_CONTENT_NAMES.get(kind, kind)}, not SignedData)"
            )
        if len(outer) != 2 or not outer[1].is_(CONTEXT, 0):
            raise DerError("a malformed ContentInfo")
        (signed,) = list(reader.child_headers(outer[1]))
        if not signed.is_(UNIVERSAL, der.SEQUENCE):
            raise DerError("SignedData is not a SEQUENCE")
    elif not first.is_(UNIVERSAL, der.INTEGER):
        raise DerError("neither a ContentInfo nor a SignedData")
    parts = list(reader.child_headers(signed))
    if len(parts) < 4:
        raise DerError("a SignedData with too few elements")
    der.decode_integer(reader.element(parts[0], limit=16))
    digest_set = reader.element(parts[1], limit=65536)
    digest_algorithms = [_algorithm(item)[0] for item in der.children(digest_set)]
    encap = list(reader.child_headers(parts[2]))
    if not encap or not encap[0].is_(UNIVERSAL, der.OID):
        raise DerError("a malformed EncapsulatedContentInfo")
    content_type = der.decode_oid(reader.element(encap[0], limit=256))
    if len(encap) != 2 or not encap[1].is_(CONTEXT, 0):
        raise _bad_signature("a detached signature: the package is not inside the SignedData")
    (octet_header,) = list(reader.child_headers(encap[1]))
    if not octet_header.is_(UNIVERSAL, der.OCTET_STRING):
        raise DerError("eContent is not an OCTET STRING")
    chunks = reader.primitive_chunks(octet_header)
    certificates: list[x509.Certificate] = []
    rest = parts[3:]
    if rest and rest[0].is_(CONTEXT, 0):
        for item in der.children(reader.element(rest[0], limit=8 * _SMALL)):
            if item.is_sequence:
                try:
                    certificates.append(x509.load_der_x509_certificate(item.raw))
                except ValueError as exc:
                    raise DerError(f"an unreadable certificate: {exc}") from exc
        rest = rest[1:]
    if rest and rest[0].is_(CONTEXT, 1):  # crls: not used
        rest = rest[1:]
    if len(rest) != 1 or not rest[0].is_(UNIVERSAL, der.SET):
        raise DerError("no signerInfos")
    signer_infos = der.children(reader.element(rest[0], limit=_SMALL))
    return _SignedLayout(content_type, chunks, digest_algorithms, certificates, signer_infos)


def _find_signer_cert(sid: der.Element, certificates: list[x509.Certificate]) -> x509.Certificate:
    if sid.is_sequence:
        name, number = der.children(sid)
        serial = der.decode_integer(number)
        for cert in certificates:
            if _issuer_and_serial(cert) == (name.raw, serial):
                return cert
    elif sid.is_(CONTEXT, 0):
        ski = der.octets(sid)
        for cert in certificates:
            if _subject_key_identifier(cert) == ski:
                return cert
    else:
        raise DerError("a malformed signer identifier")
    raise _bad_signature("the signer's certificate is not included in the SignedData")


def _verify_signature(
    cert: x509.Certificate,
    algorithm: der.Element,
    signature: bytes,
    data: bytes,
    hash_oid: str,
    *,
    prehashed: bool,
) -> None:
    algorithm_oid, params = _algorithm(algorithm)
    hash_algorithm = _HASHES[hash_oid][1]()
    chosen: hashes.HashAlgorithm | Prehashed = (
        Prehashed(hash_algorithm) if prehashed else hash_algorithm
    )
    key = cert.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if algorithm_oid not in (ECDSA_SHA256, ECDSA_SHA384, ECDSA_SHA512, EC_PUBLIC_KEY):
                raise _bad_signature(f"an EC key with signature algorithm {algorithm_oid}")
            key.verify(signature, data, ec.ECDSA(chosen))
        elif isinstance(key, rsa.RSAPublicKey):
            scheme: padding.AsymmetricPadding
            if algorithm_oid in (RSA_ENCRYPTION, SHA256_WITH_RSA, SHA384_WITH_RSA, SHA512_WITH_RSA):
                scheme = padding.PKCS1v15()
            elif algorithm_oid == RSASSA_PSS:
                scheme = _pss_padding(params, hash_oid)
            else:
                raise _bad_signature(f"an RSA key with signature algorithm {algorithm_oid}")
            key.verify(signature, data, scheme, chosen)
        else:
            raise _bad_signature(f"an unsupported signer key ({type(key).__name__})")
    except InvalidSignature:
        raise _bad_signature("it does not verify with the signer's certificate") from None
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise _bad_signature(str(exc)) from exc


def _pss_padding(params: der.Element | None, hash_oid: str) -> padding.PSS:
    pss_hash, mgf_hash, salt = SHA1, SHA1, 20
    if params is not None:
        for item in der.children(params):
            (inner,) = der.children(item)
            if item.is_(CONTEXT, 0):
                pss_hash = _hash_of(inner, SHA1)
            elif item.is_(CONTEXT, 1):
                mgf_oid, mgf_params = _algorithm(inner)
                if mgf_oid != MGF1:
                    raise _bad_signature("RSASSA-PSS with a mask generation other than MGF1")
                mgf_hash = _hash_of(mgf_params, SHA1)
            elif item.is_(CONTEXT, 2):
                salt = der.decode_integer(inner)
    if pss_hash != hash_oid or mgf_hash not in _HASHES:
        raise _bad_signature("RSASSA-PSS parameters that do not match the digest algorithm")
    return padding.PSS(mgf=padding.MGF1(_HASHES[mgf_hash][1]()), salt_length=salt)


def _check_signer(
    signer_info: der.Element,
    layout: _SignedLayout,
    digests: dict[str, bytes],
) -> tuple[x509.Certificate, datetime | None]:
    fields = der.children(signer_info)
    if len(fields) < 5:
        raise DerError("a malformed SignerInfo")
    cert = _find_signer_cert(fields[1], layout.certificates)
    hash_oid, _ = _algorithm(fields[2])
    if hash_oid not in _HASHES or hash_oid not in digests:
        raise _bad_signature(f"an unsupported digest algorithm {hash_oid}")
    index = 3
    signed_attrs: der.Element | None = None
    if fields[index].is_(CONTEXT, 0):
        signed_attrs = fields[index]
        index += 1
    if len(fields) < index + 2:
        raise DerError("a malformed SignerInfo")
    algorithm, signature = fields[index], der.octets(fields[index + 1])
    digest = digests[hash_oid]
    if signed_attrs is None:  # the signature is over the content itself
        _verify_signature(cert, algorithm, signature, digest, hash_oid, prehashed=True)
        if layout.content_type != ID_DATA:
            raise _bad_signature("signed attributes are required for non-data content")
        return cert, None
    # RFC 5652 5.4: the signature covers the DER of the attributes with a SET OF tag.
    signed_bytes = (
        der.tlv(0x31, signed_attrs.content)
        if signed_attrs.indefinite
        else b"\x31" + signed_attrs.raw[1:]
    )
    _verify_signature(cert, algorithm, signature, signed_bytes, hash_oid, prehashed=False)
    values: dict[str, list[der.Element]] = {}
    for attribute in der.children(signed_attrs):
        attr_oid, attr_values = der.children(attribute)
        key = der.decode_oid(attr_oid)
        if key in values:
            raise _bad_signature(f"signed attribute {key} appears twice")
        values[key] = der.children(attr_values)
    content_types = values.get(ATTR_CONTENT_TYPE, [])
    message_digests = values.get(ATTR_MESSAGE_DIGEST, [])
    if len(content_types) != 1 or len(message_digests) != 1:
        raise _bad_signature("the content-type and message-digest attributes are required")
    if der.decode_oid(content_types[0]) != layout.content_type:
        raise _bad_signature("the signed content-type attribute does not match the content")
    if der.octets(message_digests[0]) != digest:
        raise _error(
            "digest_mismatch",
            "the package does not match the digest the supplier signed (altered after "
            "signing)",
        )
    signing_time: datetime | None = None
    times = values.get(ATTR_SIGNING_TIME, [])
    if len(times) == 1:
        signing_time = der.decode_time(times[0])
    return cert, signing_time


def open_envelope(
    path: Path,
    content_key: bytes,
    out_dir: Path,
    *,
    trust: TrustStore | None,
    at: datetime,
    package_name: str = "package.zip",
) -> OpenedBid:
    """Decrypt a sealed bid with its content key, verify the supplier's signature and
    write the package to ``out_dir/package_name``.

    ``trust`` verifies the signing certificate for usage ``signing`` at ``at`` (the upload
    time: a certificate revoked or expired later does not undo a bid signed in time); with
    ``trust=None`` only the signature is checked (a local check) and ``signer`` is None.
    Nothing is written to ``package_name`` unless the tag and the signature verify; the
    package's layout and form are checked last (``invalid_package`` /
    ``invalid_opening_form``; the file stays for inspection).
    """
    path, out_dir = Path(path), Path(out_dir)
    at = _utc(at, "at")
    if "/" in package_name or package_name in ("", ".", ".."):
        raise _error("invalid_input", "package_name is a plain file name")
    info = inspect_envelope(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    package_path = out_dir / package_name
    with _temporary_next_to(out_dir / "signed.der") as signed_path:
        with _open_new(signed_path) as sink:
            _decrypt_into(path, info, content_key, sink)
        with _temporary_next_to(package_path) as package_tmp:
            signer_cert, signing_time, package_hash, package_size, certs = _extract_signed(
                signed_path, package_tmp
            )
            signer: VerifiedIdentity | None = None
            if trust is not None:
                others = [c for c in certs if c != signer_cert]
                signer = trust.verify(signer_cert, at=at, usage="signing", intermediates=others)
            os.replace(package_tmp, package_path)
    contents = read_package(package_path)
    return OpenedBid(
        signer=signer,
        signer_certificate=signer_cert,
        package_path=package_path,
        form=contents.form,
        documents=contents.documents,
        signing_time=signing_time,
        package_sha256=package_hash,
        package_size=package_size,
        content_type=info.content_type,
    )


def _extract_signed(
    signed_path: Path, package_tmp: Path
) -> tuple[x509.Certificate, datetime | None, str, int, list[x509.Certificate]]:
    """Walk the decrypted SignedData, copy its content to ``package_tmp`` while hashing,
    and verify the one signer."""
    with signed_path.open("rb") as src:
        reader = der.FileDer(src, os.fstat(src.fileno()).st_size)
        try:
            layout = _signed_layout(reader)
        except DerError as exc:
            raise _bad_signature(f"the sealed content is not a CMS SignedData ({exc})") from None
        if len(layout.signer_infos) != 1:
            raise _bad_signature(f"{len(layout.signer_infos)} signers (a bid has exactly one)")
        wanted = {oid for oid in layout.digest_algorithms if oid in _HASHES} | {SHA256}
        hashers = {oid: hashlib.new(_HASHES[oid][0]) for oid in wanted}
        size = 0
        buffer = bytearray(CHUNK_SIZE)
        view = memoryview(buffer)
        with _open_new(package_tmp) as sink:
            for offset, length in layout.content_chunks:
                src.seek(offset)
                remaining = length
                while remaining:
                    count = src.readinto(view[: min(CHUNK_SIZE, remaining)])
                    if not count:
                        raise _bad_signature("the SignedData is truncated")
                    for hasher in hashers.values():
                        hasher.update(view[:count])
                    sink.write(view[:count])
                    remaining -= count
                    size += count
    digests = {oid: hasher.digest() for oid, hasher in hashers.items()}
    try:
        cert, signing_time = _check_signer(layout.signer_infos[0], layout, digests)
    except DerError as exc:
        raise _bad_signature(f"a malformed SignerInfo ({exc})") from None
    if layout.content_type != ID_DATA:
        raise _bad_signature("the signed content is not a package (id-data)")
    return cert, signing_time, digests[SHA256].hex(), size, layout.certificates
