"""Sealed remote bid opening (不见面开标): certificates, bid packages, CMS envelopes, shares.

The cryptography the opening session is built on (电子招标投标办法 26–31; O87 34, 39–42;
电子签名法 13–14; the envelope follows RFC 5652/5083/5084/4055, the shape of GB/T 35275):

* ``ca``: the platform CA (dual signing/encryption certificates, revocation, CRL), the
  ``TrustStore`` that verifies certificates, and CA login (``verify_login_signature``);
* ``package``: the bid package ZIP (``opening-form.json`` = 开标一览表, ``documents/``);
* ``envelope``: ``seal_bid`` / ``inspect_envelope`` / ``unwrap_content_key`` /
  ``open_envelope`` — AuthEnvelopedData (AES-256-GCM, RSAES-OAEP-SHA256) around a signed
  package, streamed in constant memory;
* ``shamir``: k-of-n shares of the backup opening key;
* ``client``: the supplier's side (seal from files, unwrap the content key for submission);
* ``certificates``: the use cases on a supplier's certificates (what a bid is sealed to, the
  envelope check of an upload, registering certificates, CA login's challenges).

Must not import: market, web.
"""

from __future__ import annotations

from bidroom.opening.ca import (
    IssuedPair,
    IssuedRecord,
    PlatformCA,
    TrustStore,
    Usage,
    VerifiedIdentity,
    certificate_fingerprint,
    identity_of,
    load_certificate,
    load_private_key,
    make_challenge,
    private_key_pem,
    verify_login_signature,
)
from bidroom.opening.client import seal_bid_files, unwrap_for_submission
from bidroom.opening.envelope import (
    EnvelopeInfo,
    OpenedBid,
    RecipientInfo,
    SealResult,
    decrypt_content,
    inspect_envelope,
    open_envelope,
    recipient_for,
    seal_bid,
    unwrap_content_key,
)
from bidroom.opening.package import PackageContents, build_package, read_package, validate_form
from bidroom.opening.shamir import (
    BackupKey,
    Share,
    combine,
    rebuild_backup_key,
    split,
    split_backup_key,
)

__all__ = [
    "BackupKey",
    "EnvelopeInfo",
    "IssuedPair",
    "IssuedRecord",
    "OpenedBid",
    "PackageContents",
    "PlatformCA",
    "RecipientInfo",
    "SealResult",
    "Share",
    "TrustStore",
    "Usage",
    "VerifiedIdentity",
    "build_package",
    "certificate_fingerprint",
    "combine",
    "decrypt_content",
    "identity_of",
    "inspect_envelope",
    "load_certificate",
    "load_private_key",
    "make_challenge",
    "open_envelope",
    "private_key_pem",
    "read_package",
    "rebuild_backup_key",
    "recipient_for",
    "seal_bid",
    "seal_bid_files",
    "split",
    "split_backup_key",
    "unwrap_content_key",
    "unwrap_for_submission",
    "validate_form",
    "verify_login_signature",
]
