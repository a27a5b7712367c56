"""Certificates for sealed remote bid opening (不见面开标): a platform CA, dual supplier
certificates, revocation, a trust store and CA login.

Why certificates: bids must be encrypted so that nobody can read them before the deadline and
the opening must prove who submitted what (电子招标投标办法 26–31, 政府采购法实施条例 / O87
34, 39–41). A reliable electronic signature equals a handwritten signature or seal
(电子签名法 13–14). Chinese CAs issue every organisation a *dual* certificate pair:

* a **signing** certificate (key usage digitalSignature + nonRepudiation): the supplier signs
  its bid package and its login challenge with it;
* an **encryption** certificate (key usage keyEncipherment, an RSA key here because the content
  key is transported with RSAES-OAEP, RFC 4055): bids are sealed *to* it, and only the holder
  of its private key can unwrap the content key at the opening.

Both certificates carry the same subject: ``CN`` = the organisation's name (UTF-8) and ``OU`` =
the platform's organisation id (``org_…``; the X.520 ``serialNumber`` attribute is a
PrintableString, which cannot hold ``_``).

``PlatformCA`` is a small CA for embedded and demo use (real deployments import the roots of
licensed CAs into a ``TrustStore`` with ``import_root``). Its directory::

    ca-key.pem      the CA private key, PKCS#8, unencrypted, mode 0600 (keep it offline)
    ca-cert.pem     the self-signed root (10 years)
    crl.pem         the current CRL, re-signed on every revocation
    issued/SERIAL.pem, revoked/SERIAL.json   what was issued and revoked (SERIAL in hex)

The CA keeps only certificates. **The path for real suppliers**: the supplier makes its keys
and a PKCS#10 certificate request (CSR) per key on its own machine (``make_csr``; ``bidroom ca
request``), sends only the CSRs, and the CA signs them (``PlatformCA.sign_csr``; ``bidroom ca
sign-csr``): the CA checks the CSR's self-signature (proof that the requester holds the key,
``bad_csr_signature``) and puts in the certificate the organisation id and name the *CA* was
given (from the platform's registry), never the CSR's own subject. ``issue_dual`` generates
both private keys on the CA's side and hands them over once (``IssuedPair.write``): for the demo
and tests only, because the operator then had the supplier's keys.

``TrustStore.verify`` chains a certificate to a trusted root with
``cryptography.x509.verification`` (the WebPKI profile for CA certificates; for end-entity
certificates every extension is permitted and the key usage is checked here, because dual
certificates carry no extended key usage and no subjectAltName), checks the validity period
and the issuer's CRL at a given time (a signature made before a revocation stays valid), and
the key usage. Errors are ``ValidationError`` with codes ``unknown_ca``, ``certificate_expired``,
``certificate_revoked``, ``wrong_key_usage`` and ``bad_certificate``.

Times are aware ``datetime`` objects, always passed in (``now``, ``at``): nothing here reads
the clock except the CRL default of ``PlatformCA.crl()``, which returns the stored CRL.

Must not import: market, web.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import os
import secrets
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from bidroom.errors import ConflictError, NotFoundError, ValidationError

try:  # POSIX: serialise revocations of one CA directory across processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "CRL_FILE",
    "USAGES",
    "IssuedPair",
    "IssuedRecord",
    "KeyType",
    "PlatformCA",
    "PrivateKey",
    "TrustStore",
    "Usage",
    "VerifiedIdentity",
    "certificate_fingerprint",
    "certificate_usages",
    "check_usage",
    "generate_key",
    "identity_of",
    "load_certificate",
    "load_csr",
    "load_private_key",
    "make_challenge",
    "make_csr",
    "private_key_pem",
    "verify_login_signature",
]

CA_KEY_FILE = "ca-key.pem"
CA_CERT_FILE = "ca-cert.pem"
CRL_FILE = "crl.pem"
_ISSUED_DIR = "issued"
_REVOKED_DIR = "revoked"
_LOCK_FILE = ".lock"

CA_VALID_DAYS = 3650
CRL_VALID_DAYS = 30

Usage: TypeAlias = Literal["signing", "encryption"]
KeyType: TypeAlias = Literal["ec-p256", "rsa-2048", "rsa-3072"]
PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
USAGES: tuple[Usage, ...] = ("signing", "encryption")


# ==================================================================================== values


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """Who a verified certificate names: the organisation id (``OU``, or ``serialNumber``
    for certificates of other CAs; None if neither), its name (``CN``), the certificate's
    serial number and its SHA-256 fingerprint (hex of the DER)."""

    org_id: str | None
    name: str
    serial: int
    fingerprint: str


@dataclass(frozen=True, slots=True)
class IssuedRecord:
    """One certificate the platform CA issued, as ``list_issued`` reports it."""

    serial: int
    org_id: str | None
    name: str
    usage: Usage | None
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None
    revocation_reason: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedPair:
    """A supplier's dual certificates and both private keys, as issued (once)."""

    sign_cert: x509.Certificate
    sign_key: PrivateKey
    enc_cert: x509.Certificate
    enc_key: rsa.RSAPrivateKey

    FILES: ClassVar[tuple[str, ...]] = (
        "sign-cert.pem", "sign-key.pem", "enc-cert.pem", "enc-key.pem"
    )

    def write(self, directory: Path) -> list[Path]:
        """Write sign-cert.pem, sign-key.pem (0600), enc-cert.pem, enc-key.pem (0600).

        Refuses (``ConflictError``, code ``file_exists``) to overwrite any of them.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = [directory / name for name in self.FILES]
        existing = [str(path) for path in paths if path.exists()]
        if existing:
            raise ConflictError(
                f"refusing to overwrite {', '.join(existing)}", code="file_exists"
            )
        contents = (
            (self.sign_cert.public_bytes(serialization.Encoding.PEM), 0o644),
            (private_key_pem(self.sign_key), 0o600),
            (self.enc_cert.public_bytes(serialization.Encoding.PEM), 0o644),
            (private_key_pem(self.enc_key), 0o600),
        )
        for path, (data, mode) in zip(paths, contents, strict=True):
            _write_new_file(path, data, mode)
        return paths


# ================================================================================== helpers


def _utc(moment: datetime, name: str = "time") -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValidationError(f"{name} must be an aware datetime (UTC)", code="invalid_input")
    return moment.astimezone(UTC)


def _pem_bytes(data: bytes | str) -> bytes:
    """The bytes of PEM text (or DER bytes as they are). PEM is ASCII: any other character
    raises ``UnicodeEncodeError``, a ``ValueError`` the loaders refuse as malformed."""
    return data.encode("ascii") if isinstance(data, str) else bytes(data)


def _bad_certificate(why: str) -> ValidationError:
    return ValidationError(f"not a valid certificate: {why}", code="bad_certificate")


def load_certificate(data: bytes | str) -> x509.Certificate:
    """A certificate from PEM or DER bytes; ``bad_certificate`` if it is neither (a PEM
    string with a character outside ASCII included)."""
    try:
        raw = _pem_bytes(data)
        if raw.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise _bad_certificate(str(exc)) from exc


def load_private_key(data: bytes | str, password: bytes | None = None) -> PrivateKey:
    """An EC or RSA private key from PEM (PKCS#8 or traditional) or DER PKCS#8."""
    try:
        raw = _pem_bytes(data)
        if raw.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(raw, password=password)
        else:
            key = serialization.load_der_private_key(raw, password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValidationError(
            f"not a readable private key: {exc}", code="invalid_private_key"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValidationError(
            f"a {type(key).__name__}: only EC and RSA keys are supported",
            code="invalid_private_key",
        )
    return key


def private_key_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (keep it secret)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def generate_key(key_type: KeyType) -> PrivateKey:
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "rsa-3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise ValidationError(f"unknown key type {key_type!r}", code="invalid_input")


def _spki(key: Any) -> bytes:
    data: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data


def certificate_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, lower-case hex."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _name_attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    for attribute in name.get_attributes_for_oid(oid):
        value = attribute.value
        text = value if isinstance(value, str) else value.decode("utf-8", "replace")
        if text:
            return text
    return None


def identity_of(cert: x509.Certificate) -> VerifiedIdentity:
    """The identity a certificate *claims* (not verified: see ``TrustStore.verify``)."""
    org_id = _name_attribute(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME) or _name_attribute(
        cert.subject, NameOID.SERIAL_NUMBER
    )
    name = (
        _name_attribute(cert.subject, NameOID.COMMON_NAME)
        or _name_attribute(cert.subject, NameOID.ORGANIZATION_NAME)
        or cert.subject.rfc4514_string()
    )
    return VerifiedIdentity(
        org_id=org_id,
        name=name,
        serial=cert.serial_number,
        fingerprint=certificate_fingerprint(cert),
    )


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:  # a duplicate or malformed extension
        raise _bad_certificate(str(exc)) from exc


def certificate_usages(cert: x509.Certificate) -> set[Usage]:
    """What the key usage extension allows: signing (digitalSignature or nonRepudiation)
    and/or encryption (keyEncipherment). No extension: nothing (we require it)."""
    usage = _key_usage(cert)
    found: set[Usage] = set()
    if usage is None:
        return found
    if usage.digital_signature or usage.content_commitment:
        found.add("signing")
    if usage.key_encipherment:
        found.add("encryption")
    return found


def check_usage(cert: x509.Certificate, usage: Usage) -> None:
    """``wrong_key_usage`` unless the certificate may be used for ``usage``; an encryption
    certificate must also hold an RSA key of at least 2048 bits (RSAES-OAEP key transport)."""
    if usage not in USAGES:
        raise ValidationError(f"unknown usage {usage!r}", code="invalid_input")
    if usage not in certificate_usages(cert):
        wanted = (
            "digitalSignature or nonRepudiation" if usage == "signing" else "keyEncipherment"
        )
        raise ValidationError(
            f"the certificate {cert.serial_number:x} is not a {usage} certificate (its key "
            f"usage lacks {wanted}): use the other certificate of the pair",
            code="wrong_key_usage",
            usage=usage,
        )
    if usage == "encryption":
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
            raise ValidationError(
                "an encryption certificate must hold an RSA key of at least 2048 bits "
                "(the content key is transported with RSAES-OAEP)",
                code="wrong_key_usage",
                usage=usage,
            )


def _write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``data`` (never overwrite), ``mode`` whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Atomically replace ``path`` (temp file + rename): readers see old or new, whole."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    _write_new_file(tmp, data, mode)
    try:
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


# ====================================================================== certificate requests


def load_csr(data: bytes | str) -> x509.CertificateSigningRequest:
    """A PKCS#10 certificate request from PEM or DER bytes; ``invalid_csr`` otherwise."""
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(raw)
        return x509.load_der_x509_csr(raw)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValidationError(f"not a certificate request (PKCS#10): {exc}",
                              code="invalid_csr") from exc


def make_csr(key: PrivateKey, *, org_id: str, name: str,
             usage: Usage) -> x509.CertificateSigningRequest:
    """The supplier's side: a CSR for ``key`` (signed with it, SHA-256), naming the
    organisation and requesting the key usage of ``usage`` (as the CA will set it)."""
    if usage not in USAGES:
        raise ValidationError(f"unknown usage {usage!r}", code="invalid_input")
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_subject(org_id, name))
        .add_extension(
            _SIGNING_KEY_USAGE if usage == "signing" else _ENCRYPTION_KEY_USAGE, critical=True
        )
        .sign(key, hashes.SHA256())
    )


def _requested_usage(csr: x509.CertificateSigningRequest) -> Usage | None:
    try:
        requested = csr.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:
        raise ValidationError(f"a malformed extension request: {exc}",
                              code="invalid_csr") from exc
    signs = requested.digital_signature or requested.content_commitment
    if signs and requested.key_encipherment:
        raise ValidationError(
            "one key for both signing and encryption: a dual pair needs two keys and two "
            "requests", code="invalid_csr",
        )
    if signs:
        return "signing"
    if requested.key_encipherment:
        return "encryption"
    return None


# =============================================================================== platform CA


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
_SIGNING_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=True,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)
_ENCRYPTION_KEY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=True,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def _subject(org_id: str, name: str) -> x509.Name:
    for label, text in (("org_id", org_id), ("name", name)):
        if not isinstance(text, str) or not text.strip() or len(text) > 64:
            raise ValidationError(
                f"{label} must be a non-empty string of at most 64 characters",
                code="invalid_input",
            )
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, org_id),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )


class PlatformCA:
    """The platform's own CA (embedded/demo): a self-signed root in a directory."""

    __slots__ = ("_key", "certificate", "directory")

    def __init__(self, directory: Path, key: PrivateKey, certificate: x509.Certificate) -> None:
        self.directory = Path(directory)
        self._key = key
        self.certificate = certificate

    def __repr__(self) -> str:
        return f"PlatformCA({self.certificate.subject.rfc4514_string()!r}, {self.directory})"

    # ------------------------------------------------------------------ create and load

    @classmethod
    def init(
        cls,
        directory: Path,
        *,
        name: str = "Bidroom Platform CA 平台CA",
        now: datetime,
        key_type: KeyType = "ec-p256",
    ) -> PlatformCA:
        """Create a new CA in ``directory`` (mode 0700): an EC P-256 (or RSA-3072) root,
        self-signed, valid 10 years, and an empty CRL. Never overwrites: an existing CA
        raises ``ConflictError`` (code ``ca_exists``)."""
        now = _utc(now, "now")
        if key_type not in ("ec-p256", "rsa-3072"):
            raise ValidationError("a CA key is ec-p256 or rsa-3072", code="invalid_input")
        if not name.strip() or len(name) > 64:
            raise ValidationError("the CA name must be 1–64 characters", code="invalid_input")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if (directory / CA_KEY_FILE).exists() or (directory / CA_CERT_FILE).exists():
            raise ConflictError(f"a CA already exists in {directory}", code="ca_exists")
        key = generate_key(key_type)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=CA_VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_CA_KEY_USAGE, critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        try:
            _write_new_file(directory / CA_KEY_FILE, private_key_pem(key), 0o600)
        except FileExistsError:
            raise ConflictError(
                f"a CA already exists in {directory}", code="ca_exists"
            ) from None
        _write_new_file(
            directory / CA_CERT_FILE, certificate.public_bytes(serialization.Encoding.PEM), 0o644
        )
        (directory / _ISSUED_DIR).mkdir(exist_ok=True)
        (directory / _REVOKED_DIR).mkdir(exist_ok=True)
        ca = cls(directory, key, certificate)
        ca._store_crl(ca._make_crl(now))
        return ca

    @classmethod
    def load(cls, directory: Path) -> PlatformCA:
        """Load the CA in ``directory``; ``NotFoundError`` (code ``no_ca``) if there is none."""
        directory = Path(directory)
        try:
            key_pem = (directory / CA_KEY_FILE).read_bytes()
            cert_pem = (directory / CA_CERT_FILE).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"no CA in {directory}: run `bidroom ca init` first", code="no_ca"
            ) from None
        key = load_private_key(key_pem)
        certificate = load_certificate(cert_pem)
        if _spki(certificate.public_key()) != _spki(key.public_key()):
            raise ValidationError(
                f"{directory}: the CA key does not match the CA certificate",
                code="invalid_private_key",
            )
        return cls(directory, key, certificate)

    # ------------------------------------------------------------------------- issuing

    def issue_certificate(
        self,
        public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
        *,
        org_id: str,
        name: str,
        usage: Usage,
        now: datetime,
        valid_days: int = 365,
    ) -> x509.Certificate:
        """Issue one end-entity certificate for ``public_key`` (signing or encryption) and
        record it in ``issued/``."""
        now = _utc(now, "now")
        if usage not in USAGES:
            raise ValidationError(f"unknown usage {usage!r}", code="invalid_input")
        if isinstance(valid_days, bool) or not isinstance(valid_days, int) or valid_days < 1:
            raise ValidationError("valid_days must be a positive integer", code="invalid_input")
        if usage == "encryption" and (
            not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size < 2048
        ):
            raise ValidationError(
                "an encryption certificate needs an RSA key of at least 2048 bits",
                code="invalid_input",
            )
        not_after = min(
            now + timedelta(days=valid_days), self.certificate.not_valid_after_utc
        )
        ca_ski = self.certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_subject(org_id, name))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                _SIGNING_KEY_USAGE if usage == "signing" else _ENCRYPTION_KEY_USAGE,
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        issued = self.directory / _ISSUED_DIR
        issued.mkdir(exist_ok=True)
        _write_new_file(
            issued / f"{certificate.serial_number:x}.pem",
            certificate.public_bytes(serialization.Encoding.PEM),
            0o644,
        )
        return certificate

    def issue_dual(
        self,
        subject_org_id: str,
        subject_name: str,
        *,
        now: datetime,
        valid_days: int = 365,
        signing_key_type: KeyType = "ec-p256",
    ) -> IssuedPair:
        """Issue a supplier's dual pair: a signing certificate (EC P-256 or RSA-2048 key;
        digitalSignature + nonRepudiation) and an encryption certificate (RSA-2048 key;
        keyEncipherment). The keys are generated here and returned once; the CA keeps
        only the certificates. Demo and tests only: the keys were made on the CA's side.
        Real suppliers make their own keys and send CSRs (``sign_csr``)."""
        if signing_key_type not in ("ec-p256", "rsa-2048"):
            raise ValidationError(
                "a signing key is ec-p256 or rsa-2048", code="invalid_input"
            )
        _subject(subject_org_id, subject_name)  # validate before generating keys
        sign_key = generate_key(signing_key_type)
        enc_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        sign_cert = self.issue_certificate(
            sign_key.public_key(), org_id=subject_org_id, name=subject_name,
            usage="signing", now=now, valid_days=valid_days,
        )
        enc_cert = self.issue_certificate(
            enc_key.public_key(), org_id=subject_org_id, name=subject_name,
            usage="encryption", now=now, valid_days=valid_days,
        )
        return IssuedPair(sign_cert, sign_key, enc_cert, enc_key)

    def sign_csr(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        org_id: str,
        name: str,
        now: datetime,
        usage: Usage | None = None,
        valid_days: int = 365,
    ) -> x509.Certificate:
        """Issue a certificate for the key of a supplier's CSR (PKCS#10).

        The caller has checked that ``org_id`` names a registered organisation and passes
        its registered ``name``: they, not the CSR's subject, go into the certificate. The
        CSR must be signed by its own key (``bad_csr_signature``); if its subject names an
        organisation id (``OU`` or ``serialNumber``) it must be ``org_id``
        (``csr_subject_mismatch``). ``usage`` (signing or encryption) comes from the argument
        or from the key usage the CSR requests (an extension request); both given must agree,
        neither is ``invalid_csr``. Key checks as ``issue_certificate`` (an encryption key is
        RSA ≥ 2048); a signing key is EC P-256/P-384 or RSA ≥ 2048 (``invalid_csr``).
        """
        if not isinstance(csr, x509.CertificateSigningRequest):
            raise ValidationError("not a certificate request", code="invalid_csr")
        if not csr.is_signature_valid:
            raise ValidationError(
                "the certificate request's signature does not verify with its own public key "
                "(damaged, or not made with that key) / 证书请求签名无效",
                code="bad_csr_signature",
            )
        requested = _requested_usage(csr)
        if usage is not None and requested is not None and usage != requested:
            raise ValidationError(
                f"the request asks for a {requested} certificate, not {usage}",
                code="invalid_csr",
            )
        chosen = usage or requested
        if chosen not in USAGES:
            raise ValidationError(
                "the request names no key usage: say whether it is for the signing or the "
                "encryption certificate", code="invalid_csr",
            )
        claimed = _name_attribute(csr.subject, NameOID.ORGANIZATIONAL_UNIT_NAME) or (
            _name_attribute(csr.subject, NameOID.SERIAL_NUMBER))
        if claimed is not None and claimed != org_id:
            raise ValidationError(
                f"the request is for organisation {claimed}, not {org_id}",
                code="csr_subject_mismatch",
            )
        try:
            key = csr.public_key()
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ValidationError(f"unreadable public key: {exc}", code="invalid_csr") from exc
        if isinstance(key, ec.EllipticCurvePublicKey):
            if chosen != "signing" or key.curve.name not in ("secp256r1", "secp384r1"):
                raise ValidationError(
                    "an EC key (P-256 or P-384) can only be a signing key", code="invalid_csr"
                )
        elif isinstance(key, rsa.RSAPublicKey):
            if key.key_size < 2048:
                raise ValidationError("an RSA key needs at least 2048 bits", code="invalid_csr")
        else:
            raise ValidationError(
                f"a {type(key).__name__} key: only EC and RSA keys are certified",
                code="invalid_csr",
            )
        return self.issue_certificate(key, org_id=org_id, name=name, usage=chosen, now=now,
                                      valid_days=valid_days)

    # ---------------------------------------------------------------------- revocation

    def issued_certificate(self, serial: int) -> x509.Certificate:
        path = self.directory / _ISSUED_DIR / f"{serial:x}.pem"
        try:
            return load_certificate(path.read_bytes())
        except FileNotFoundError:
            raise NotFoundError(
                f"this CA issued no certificate with serial {serial:x}",
                code="unknown_certificate",
            ) from None

    def revoke(
        self,
        serial: int,
        *,
        now: datetime,
        reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
    ) -> x509.CertificateRevocationList:
        """Revoke an issued certificate as of ``now`` and re-sign the CRL (returned and
        stored in ``crl.pem``). Revoking twice keeps the first revocation
        (``ConflictError``, code ``already_revoked``)."""
        now = _utc(now, "now")
        if not isinstance(reason, x509.ReasonFlags):
            raise ValidationError("reason must be an x509.ReasonFlags", code="invalid_input")
        self.issued_certificate(serial)  # NotFoundError if unknown
        with self._locked():
            path = self.directory / _REVOKED_DIR / f"{serial:x}.json"
            path.parent.mkdir(exist_ok=True)
            record = json.dumps(
                {"serial": f"{serial:x}", "revoked_at": now.isoformat(), "reason": reason.value}
            ).encode("utf-8")
            try:
                _write_new_file(path, record, 0o644)
            except FileExistsError:
                raise ConflictError(
                    f"certificate {serial:x} is already revoked", code="already_revoked"
                ) from None
            crl = self._make_crl(now)
            self._store_crl(crl)
        return crl

    def crl(self, *, now: datetime | None = None) -> x509.CertificateRevocationList:
        """The current CRL (as stored by the last revocation); with ``now``, a freshly
        signed one (stored too) — CRLs are valid for 30 days."""
        if now is not None:
            with self._locked():
                crl = self._make_crl(_utc(now, "now"))
                self._store_crl(crl)
            return crl
        return x509.load_pem_x509_crl((self.directory / CRL_FILE).read_bytes())

    def _revocations(self) -> dict[int, tuple[datetime, x509.ReasonFlags]]:
        found: dict[int, tuple[datetime, x509.ReasonFlags]] = {}
        folder = self.directory / _REVOKED_DIR
        if not folder.is_dir():
            return found
        for path in folder.glob("*.json"):
            doc = json.loads(path.read_text(encoding="utf-8"))
            found[int(doc["serial"], 16)] = (
                datetime.fromisoformat(doc["revoked_at"]),
                x509.ReasonFlags(doc["reason"]),
            )
        return found

    def _make_crl(self, now: datetime) -> x509.CertificateRevocationList:
        number = 1
        with contextlib.suppress(FileNotFoundError, ValueError, x509.ExtensionNotFound):
            previous = x509.load_pem_x509_crl((self.directory / CRL_FILE).read_bytes())
            number = previous.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
            number += 1
        ca_ski = self.certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now)
            .next_update(now + timedelta(days=CRL_VALID_DAYS))
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
        )
        for serial, (revoked_at, reason) in sorted(self._revocations().items()):
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(revoked_at)
            )
            if reason != x509.ReasonFlags.unspecified:  # RFC 5280 5.3.1: omit "unspecified"
                entry = entry.add_extension(x509.CRLReason(reason), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(self._key, hashes.SHA256())

    def _store_crl(self, crl: x509.CertificateRevocationList) -> None:
        _replace_file(self.directory / CRL_FILE, crl.public_bytes(serialization.Encoding.PEM))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if fcntl is None:  # pragma: no cover
            yield
            return
        fd = os.open(self.directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def list_issued(self) -> list[IssuedRecord]:
        """Every issued certificate, oldest first."""
        revocations = self._revocations()
        records: list[IssuedRecord] = []
        for path in (self.directory / _ISSUED_DIR).glob("*.pem"):
            cert = load_certificate(path.read_bytes())
            identity = identity_of(cert)
            usages = certificate_usages(cert)
            usage: Usage | None = next((u for u in USAGES if u in usages), None)
            revoked = revocations.get(cert.serial_number)
            records.append(
                IssuedRecord(
                    serial=cert.serial_number,
                    org_id=identity.org_id,
                    name=identity.name,
                    usage=usage,
                    not_before=cert.not_valid_before_utc,
                    not_after=cert.not_valid_after_utc,
                    revoked_at=revoked[0] if revoked else None,
                    revocation_reason=revoked[1].value if revoked else None,
                )
            )
        records.sort(key=lambda r: (r.not_before, r.org_id or "", r.usage or "", r.serial))
        return records

    def trust_store(self) -> TrustStore:
        """A trust store with this CA as root and its current CRL."""
        return TrustStore([self.certificate], [self.crl()])


# =============================================================================== trust store


class TrustStore:
    """Trusted root certificates and the CRLs of their CAs."""

    __slots__ = ("_crls", "_roots")

    def __init__(
        self,
        roots: Iterable[x509.Certificate] = (),
        crls: Iterable[x509.CertificateRevocationList] = (),
    ) -> None:
        self._roots: list[x509.Certificate] = []
        self._crls: list[x509.CertificateRevocationList] = []
        for root in roots:
            self.add_root(root)
        for crl in crls:
            self.add_crl(crl)

    @property
    def roots(self) -> tuple[x509.Certificate, ...]:
        return tuple(self._roots)

    @property
    def crls(self) -> tuple[x509.CertificateRevocationList, ...]:
        return tuple(self._crls)

    def add_root(self, cert: x509.Certificate) -> x509.Certificate:
        """Trust a self-signed CA certificate (``bad_certificate`` if it is not one)."""
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except (x509.ExtensionNotFound, ValueError):
            raise _bad_certificate("a root must be a CA (basicConstraints cA=TRUE)") from None
        if not constraints.ca:
            raise _bad_certificate("a root must be a CA (basicConstraints cA=TRUE)")
        try:
            cert.verify_directly_issued_by(cert)
        except (ValueError, TypeError, InvalidSignature) as exc:
            reason = str(exc) or "bad signature"
            raise _bad_certificate(f"a root must be self-signed ({reason})") from exc
        if all(c != cert for c in self._roots):
            self._roots.append(cert)
        return cert

    def import_root(self, pem: bytes | str) -> x509.Certificate:
        """Trust an external CA's root (PEM or DER), e.g. a licensed CA's."""
        return self.add_root(load_certificate(pem))

    def add_crl(self, crl: x509.CertificateRevocationList | bytes | str) -> None:
        """Add a CRL (object, PEM or DER). A CRL of a trusted root must verify under the
        root's key (``bad_certificate`` otherwise); CRLs of intermediate CAs are checked
        when a chain through that CA is verified."""
        if not isinstance(crl, x509.CertificateRevocationList):
            try:
                raw = _pem_bytes(crl)
                crl = (
                    x509.load_pem_x509_crl(raw)
                    if raw.lstrip().startswith(b"-----BEGIN")
                    else x509.load_der_x509_crl(raw)
                )
            except ValueError as exc:
                raise _bad_certificate(f"not a CRL: {exc}") from exc
        for root in self._roots:
            if root.subject == crl.issuer and not _crl_signed_by(crl, root):
                raise _bad_certificate("the CRL is not signed by the CA it names")
        self._crls = [c for c in self._crls if c != crl] + [crl]

    def verify(
        self,
        cert: x509.Certificate,
        *,
        at: datetime,
        usage: Usage,
        intermediates: Sequence[x509.Certificate] = (),
    ) -> VerifiedIdentity:
        """Verify ``cert`` for ``usage`` at time ``at`` and return whom it names.

        Checks, in order: an issuer we know (``unknown_ca``), the validity period
        (``certificate_expired``), the chain to a trusted root with its signatures and CA
        constraints (``bad_certificate``; an expired CA also ``certificate_expired``), the
        issuers' CRLs (``certificate_revoked`` if revoked at or before ``at``; the
        ``invalidityDate`` of an entry counts when given), and the key usage
        (``wrong_key_usage``). Without a CRL for an issuer, revocation is not checked.
        """
        at = _utc(at, "at")
        known = {c.subject for c in self._roots} | {c.subject for c in intermediates}
        if not self._roots or cert.issuer not in known:
            raise ValidationError(
                f"the certificate is issued by {cert.issuer.rfc4514_string()}, "
                "which is not a trusted CA",
                code="unknown_ca",
            )
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            state = "not yet valid" if at < cert.not_valid_before_utc else "expired"
            raise ValidationError(
                f"the certificate {cert.serial_number:x} is {state} at {at.isoformat()} "
                f"(valid {cert.not_valid_before_utc.isoformat()} to "
                f"{cert.not_valid_after_utc.isoformat()})",
                code="certificate_expired",
            )
        verifier = (
            PolicyBuilder()
            .store(Store(list(self._roots)))
            .time(at)
            .extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=ExtensionPolicy.permit_all(),
            )
            .build_client_verifier()
        )
        try:
            chain = verifier.verify(cert, list(intermediates)).chain
        except VerificationError as exc:
            message = str(exc)
            if "not valid at validation time" in message:
                raise ValidationError(
                    f"a CA certificate of the chain is not valid at {at.isoformat()}: {message}",
                    code="certificate_expired",
                ) from exc
            raise _bad_certificate(f"it does not chain to a trusted CA: {message}") from exc
        for child, issuer in itertools.pairwise(chain):
            self._check_revocation(child, issuer, at)
        check_usage(cert, usage)
        return identity_of(cert)

    def _check_revocation(
        self, cert: x509.Certificate, issuer: x509.Certificate, at: datetime
    ) -> None:
        candidates = [
            crl
            for crl in self._crls
            if crl.issuer == issuer.subject and _crl_signed_by(crl, issuer)
        ]
        if not candidates:
            return
        crl = max(candidates, key=lambda c: c.last_update_utc)
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is None:
            return
        effective = entry.revocation_date_utc
        reason = "unspecified"
        for extension in entry.extensions:
            if isinstance(extension.value, x509.InvalidityDate):
                invalid_since = extension.value.invalidity_date_utc
                effective = min(effective, invalid_since)
            elif isinstance(extension.value, x509.CRLReason):
                reason = extension.value.reason.value
        if effective <= at:
            raise ValidationError(
                f"the certificate {cert.serial_number:x} was revoked on "
                f"{effective.isoformat()} ({reason})",
                code="certificate_revoked",
                revoked_at=effective.isoformat(),
                reason=reason,
            )


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        return False
    try:
        return crl.is_signature_valid(key)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False


# ==================================================================================== login


def make_challenge(nonce_bytes: int = 32) -> str:
    """A random login challenge (base64url, no padding) for the browser to sign."""
    if nonce_bytes < 16:
        raise ValidationError("a challenge needs at least 16 random bytes", code="invalid_input")
    return base64.urlsafe_b64encode(secrets.token_bytes(nonce_bytes)).rstrip(b"=").decode("ascii")


def verify_login_signature(
    challenge: bytes,
    signature: bytes,
    cert_pem: bytes,
    trust: TrustStore,
    at: datetime,
) -> VerifiedIdentity:
    """CA login: check that ``signature`` over ``challenge`` was made with the private key of
    a signing certificate ``cert_pem`` (PEM or DER) that ``trust`` verifies at ``at``.

    Accepted signatures (by key type): ECDSA with SHA-256 in DER or in the raw ``r||s``
    form (IEEE P1363) that WebCrypto produces; RSASSA-PKCS1-v1_5 with SHA-256; RSASSA-PSS
    with SHA-256 (any salt length). Refusals: ``bad_signature`` and the certificate codes.
    """
    cert = load_certificate(cert_pem)
    identity = trust.verify(cert, at=at, usage="signing")
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        candidates = [bytes(signature)]
        size = (key.curve.key_size + 7) // 8
        if len(signature) == 2 * size:
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            candidates.append(encode_dss_signature(r, s))
        for candidate in candidates:
            try:
                key.verify(candidate, challenge, ec.ECDSA(hashes.SHA256()))
                return identity
            except (InvalidSignature, ValueError):
                continue
    elif isinstance(key, rsa.RSAPublicKey):
        schemes: list[padding.AsymmetricPadding] = [
            padding.PKCS1v15(),
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
        ]
        for scheme in schemes:
            try:
                key.verify(signature, challenge, scheme, hashes.SHA256())
                return identity
            except (InvalidSignature, ValueError):
                continue
    else:
        raise _bad_certificate(f"a {type(key).__name__} key cannot sign a login")
    raise ValidationError(
        "the login signature does not verify with this certificate", code="bad_signature"
    )
