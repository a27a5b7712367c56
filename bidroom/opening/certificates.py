"""The opening's certificate use cases: what a supplier's bid is sealed to, the envelope check
of an upload, a supplier's own certificates (登记证书), and CA login's challenge (证书登录).

``web.api.openings`` only maps HTTP to these; the rules are here:

* ``SupplierCertificates.encryption_certificates``: the organisation's encryption
  certificates, those it registered (``PUT /api/certificates/me``) before those the platform
  CA issued, each group newest first; ``seal_to`` is the first valid one, the certificate an
  opening names for sealing;
* ``SupplierCertificates.check_envelope``: an upload is a well-formed envelope, sealed to one
  of the supplier's encryption certificates that the trust store verifies at the upload's
  instant, and to the backup key's certificate when the opening has one;
* ``SupplierCertificates.register``: both certificates chain to a trusted root, are valid and
  unrevoked now, allow their usage and name the organisation (subject ``OU`` or
  ``serialNumber`` = its id or its unified social credit code);
* ``LoginChallenges``: single-use random challenges in Redis (2 minutes) and the check of a
  signed challenge against a signing certificate the trust store verifies now. Which user the
  verified organisation logs in as is the market's concern (``market.identity``).

Refusals are ``BidroomError`` subclasses with stable codes (``not_a_recipient``,
``certificate_not_yours``, ``invalid_challenge`` …), as the HTTP API documents them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from bidroom.errors import BidroomError, ConflictError, UnauthenticatedError, ValidationError
from bidroom.opening.ca import (
    PlatformCA,
    TrustStore,
    Usage,
    VerifiedIdentity,
    certificate_fingerprint,
    load_certificate,
    make_challenge,
    verify_login_signature,
)
from bidroom.opening.envelope import RecipientInfo, inspect_envelope, recipient_for
from bidroom.opening.runner import ms_to_datetime
from bidroom.opening.store import OpeningStore, SupplierCertificateRow
from bidroom.stores.redis import RedisClient, store_errors

__all__ = [
    "CERTIFICATE_FIELDS",
    "CHALLENGE_TTL_S",
    "IssuedChallenge",
    "LoginChallenges",
    "SupplierCertificates",
    "certificate_info",
    "certificate_pem",
    "organisation_names",
    "subject_values",
]

#: The two certificates a supplier registers, by the name of their field.
CERTIFICATE_FIELDS: Final = ("signing_certificate_pem", "encryption_certificate_pem")
_USAGES: Final[tuple[tuple[str, Usage], ...]] = (("signing_certificate_pem", "signing"),
                                                 ("encryption_certificate_pem", "encryption"))
#: How long a CA login challenge may be answered.
CHALLENGE_TTL_S: Final = 120


def certificate_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def subject_values(cert: x509.Certificate) -> set[str]:
    """The subject's OU and serialNumber values (where CAs put an organisation's id)."""
    found: set[str] = set()
    for oid in (NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.SERIAL_NUMBER):
        for attribute in cert.subject.get_attributes_for_oid(oid):
            value = attribute.value
            text = value if isinstance(value, str) else value.decode("utf-8", "replace")
            found.add(text.strip().upper())
    return found


def certificate_info(cert: x509.Certificate) -> dict[str, Any]:
    """What the API shows of a certificate: serial (hex), fingerprint, subject, issuer,
    expiry and the PEM."""
    return {"serial": f"{cert.serial_number:x}", "fingerprint": certificate_fingerprint(cert),
            "subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "not_after_ms": int(cert.not_valid_after_utc.timestamp() * 1000),
            "pem": certificate_pem(cert)}


def organisation_names(org_id: str, credit_code: str | None) -> frozenset[str]:
    """The values a certificate's ``OU`` or ``serialNumber`` may carry to name the
    organisation: its id, and its unified social credit code (统一社会信用代码) if it has one."""
    names = {org_id.upper()}
    if credit_code:
        names.add(credit_code.strip().upper())
    return frozenset(names)


class SupplierCertificates:
    """A supplier's certificates, as the opening uses them.

    ``store`` keeps the registrations, ``ca_dir`` is the platform CA's directory (what it
    issued, read afresh each time), ``trust`` gives the current trust store (roots and CRLs).
    """

    def __init__(self, store: OpeningStore, ca_dir: Path,
                 trust: Callable[[], TrustStore]) -> None:
        self._store = store
        self._ca_dir = ca_dir
        self._trust = trust

    async def registered_encryption(self, org_id: str) -> list[str]:
        """The encryption certificates (PEM) the organisation registered, newest first."""
        rows = await self._store.registered_certificates(org_id)
        return [r.encryption_certificate_pem for r in rows]

    def encryption_certificates(self, org_id: str, now_ms: int, *, valid_only: bool = True,
                                registered: Iterable[str] = ()) -> list[x509.Certificate]:
        """(thread) The organisation's encryption certificates: those it registered
        (``registered``, PEM, newest first: e.g. from a licensed CA) before those the platform
        CA issued, each group newest first. With ``valid_only``, those valid at ``now_ms``
        (and, for the platform's, unrevoked: what its bids must be sealed to); otherwise all
        of them (the trust store then says what is wrong with one)."""
        at = ms_to_datetime(now_ms)
        own = [load_certificate(pem) for pem in registered]
        own = [c for c in own if not valid_only
               or c.not_valid_before_utc <= at <= c.not_valid_after_utc]
        ca = PlatformCA.load(self._ca_dir)
        records = [r for r in ca.list_issued() if r.org_id == org_id and r.usage == "encryption"
                   and (not valid_only
                        or (r.revoked_at is None and r.not_before <= at <= r.not_after))]
        records.sort(key=lambda r: r.not_before, reverse=True)
        return own + [ca.issued_certificate(r.serial) for r in records]

    async def seal_to(self, org_id: str, now_ms: int) -> str | None:
        """The encryption certificate (PEM) the organisation's bids are sealed to now: its
        newest valid registered one, else the newest valid one the platform CA issued."""
        registered = await self.registered_encryption(org_id)
        certs = await asyncio.to_thread(self.encryption_certificates, org_id, now_ms,
                                        registered=registered)
        return certificate_pem(certs[0]) if certs else None

    def check_envelope(self, path: Path, supplier_id: str, now_ms: int, *,
                       registered: Iterable[str] = (),
                       backup_certificate_pem: str | None = None) -> None:
        """(thread) A well-formed envelope, sealed to one of the supplier's valid encryption
        certificates (registered or platform-issued; and to the backup key's certificate
        when there is one)."""
        info = inspect_envelope(path)
        certificates = self.encryption_certificates(supplier_id, now_ms, valid_only=False,
                                                    registered=registered)
        if not certificates:
            raise ValidationError(
                "you have no encryption certificate: register yours (PUT /api/certificates/me) "
                "or ask the platform CA for one (bidroom ca issue) before sealing",
                code="no_encryption_certificate")
        sealed_to = []
        for cert in certificates:
            try:
                recipient_for(info, cert)
            except BidroomError:
                continue
            sealed_to.append(cert)
        if not sealed_to:
            raise ValidationError(
                "the bid is not sealed to your encryption certificate (GET the opening: "
                "certificates.encryption_certificate_pem)", code="not_a_recipient")
        trust = self._trust()
        problem: BidroomError | None = None
        for cert in sealed_to:
            try:
                trust.verify(cert, at=ms_to_datetime(now_ms), usage="encryption")
                break
            except BidroomError as exc:
                problem = problem or exc
        else:
            assert problem is not None
            raise problem
        if backup_certificate_pem:
            try:
                recipient_for(info, load_certificate(backup_certificate_pem))
            except BidroomError as exc:
                raise ValidationError(
                    "this opening has a backup key: seal your bid to the backup certificate "
                    "too (GET the opening: certificates.backup_certificate_pem)",
                    code="not_sealed_to_backup") from exc

    async def check_upload(self, path: Path, supplier_id: str, now_ms: int, *,
                           backup_certificate_pem: str | None) -> None:
        """``check_envelope`` of an upload received at ``now_ms``, off the event loop."""
        registered = await self.registered_encryption(supplier_id)
        await asyncio.to_thread(self.check_envelope, path, supplier_id, now_ms,
                                registered=registered,
                                backup_certificate_pem=backup_certificate_pem)

    async def recipient_of(self, path: Path, supplier_id: str,
                           uploaded_at_ms: int) -> tuple[RecipientInfo, x509.Certificate]:
        """The recipient info of a stored bid for the supplier's own certificate (any of its
        encryption certificates, valid or not at ``uploaded_at_ms``: the check at upload
        already ran), and that certificate. ``ciphertext_corrupted`` if there is none."""
        registered = await self.registered_encryption(supplier_id)
        certificates = await asyncio.to_thread(self.encryption_certificates, supplier_id,
                                               uploaded_at_ms, valid_only=False,
                                               registered=registered)

        def find() -> tuple[RecipientInfo, x509.Certificate]:
            info = inspect_envelope(path)
            for cert in certificates:
                try:
                    return recipient_for(info, cert), cert
                except BidroomError:
                    continue
            raise ConflictError("the stored bid is not sealed to your certificate",
                                code="ciphertext_corrupted")

        return await asyncio.to_thread(find)

    async def register(self, org_id: str, names: Collection[str], fields: Mapping[str, Any],
                       *, user_id: str, now_ms: int) -> dict[str, Any]:
        """Register the organisation's signing and encryption certificates (``fields``: PEM
        by ``CERTIFICATE_FIELDS``), verified now and each naming one of ``names``
        (``organisation_names``). Answers the registration as ``in_force`` does."""
        certificates: dict[str, x509.Certificate] = {}
        for name in CERTIFICATE_FIELDS:
            value = fields.get(name)
            if not isinstance(value, str) or not value.strip():
                raise ValidationError(f"{name} is required", code="missing_field", field=name)
            certificates[name] = load_certificate(value.strip())
        trust = await asyncio.to_thread(self._trust)
        for name, usage in _USAGES:
            cert = certificates[name]
            trust.verify(cert, at=ms_to_datetime(now_ms), usage=usage)
            if not subject_values(cert) & set(names):
                raise ValidationError(
                    f"the {usage} certificate ({cert.subject.rfc4514_string()}) does not name "
                    "your organisation: its OU or serialNumber must be your organisation id or "
                    "your unified social credit code", code="certificate_not_yours", field=name)
        signing = certificates["signing_certificate_pem"]
        encryption = certificates["encryption_certificate_pem"]
        await self._store.register_certificates(SupplierCertificateRow(
            org_id=org_id,
            signing_certificate_pem=certificate_pem(signing),
            encryption_certificate_pem=certificate_pem(encryption),
            signing_fingerprint=certificate_fingerprint(signing),
            encryption_fingerprint=certificate_fingerprint(encryption),
            registered_by_user_id=user_id,
            registered_at_ms=now_ms,
        ))
        return {"source": "registered", "registered_at_ms": now_ms,
                "signing": certificate_info(signing), "encryption": certificate_info(encryption)}

    async def in_force(self, org_id: str, now_ms: int) -> dict[str, Any]:
        """The certificates in force: the newest registered pair (``source: registered``);
        without one, the newest valid encryption certificate the platform CA issued
        (``source: platform``, ``signing`` None: the CA keeps no link between the two);
        otherwise ``source: none``."""
        rows = await self._store.registered_certificates(org_id)
        if rows:
            row = rows[0]
            return {
                "source": "registered", "registered_at_ms": row.registered_at_ms,
                "signing": certificate_info(load_certificate(row.signing_certificate_pem)),
                "encryption": certificate_info(load_certificate(row.encryption_certificate_pem)),
            }
        issued = await asyncio.to_thread(self.encryption_certificates, org_id, now_ms)
        return {"source": "platform" if issued else "none", "registered_at_ms": None,
                "signing": None, "encryption": certificate_info(issued[0]) if issued else None}


@dataclass(frozen=True, slots=True)
class IssuedChallenge:
    challenge: str
    expires_at_ms: int


class LoginChallenges:
    """CA login (证书登录): single-use random challenges kept in Redis for ``CHALLENGE_TTL_S``,
    and the check of a challenge signed with a signing certificate's key."""

    def __init__(self, redis: RedisClient, trust: Callable[[], TrustStore], *,
                 prefix: str = "bidroom") -> None:
        self._redis = redis
        self._trust = trust
        self._prefix = prefix

    def _key(self, challenge: str) -> str:
        return f"{self._prefix}:ca-challenge:{challenge}"

    async def issue(self, now_ms: int) -> IssuedChallenge:
        """A new challenge, answerable once until ``expires_at_ms``."""
        challenge = make_challenge()
        with store_errors("Redis"):
            await self._redis.set(self._key(challenge), b"1", ex=CHALLENGE_TTL_S, nx=True)
        return IssuedChallenge(challenge, now_ms + CHALLENGE_TTL_S * 1000)

    async def verify(self, challenge: str, signature_b64: str, certificate_pem: str,
                     now_ms: int) -> VerifiedIdentity:
        """Use up ``challenge`` (``invalid_challenge`` if unknown, expired or used) and check
        ``signature_b64`` over its UTF-8 bytes with ``certificate_pem``, which the trust store
        must verify at ``now_ms`` for signing. Every refusal is an ``UnauthenticatedError``
        (``bad_signature`` and the certificate codes)."""
        with store_errors("Redis"):
            existed = await self._redis.delete(self._key(challenge))
        if not existed:
            raise UnauthenticatedError("the challenge is unknown, expired or already used",
                                       code="invalid_challenge")
        try:
            signature = base64.b64decode(signature_b64, validate=True)
        except (binascii.Error, ValueError):
            raise UnauthenticatedError("signature_b64 is not base64",
                                       code="bad_signature") from None
        trust = await asyncio.to_thread(self._trust)
        try:
            return verify_login_signature(challenge.encode("utf-8"), signature,
                                          certificate_pem.encode("utf-8"), trust,
                                          ms_to_datetime(now_ms))
        except ValidationError as exc:
            raise UnauthenticatedError(exc.message, code=exc.code) from exc
