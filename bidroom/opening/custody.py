"""Custody of the backup opening key's shares: each share sealed to one official's certificate.

The backup opening key (``shamir.BackupKey``) is generated when an opening is created, split
k-of-n (``shamir.split_backup_key``) and destroyed; only its certificate is kept. Each share is
sealed at once to its official's *encryption* certificate, the same way a bid's content key
is: a fresh 32-byte key encrypts the share (AES-256-GCM), and that key is wrapped for the
certificate with RSAES-OAEP (SHA-256, MGF1-SHA-256). So the platform stores only sealed
shares: no one at the platform can rebuild the key, and the official never sends a private
key anywhere. After the decryption window the official unwraps the key locally (``bidroom bid
unwrap-key``, the same step as a bidder's) and submits it; the platform then opens the share.

A sealed share (JSON)::

    {"v": 1, "alg": "RSAES-OAEP-SHA256+A256GCM", "recipient_serial": "3f…",
     "recipient_fingerprint": "…", "encrypted_key": "<base64>", "nonce": "<base64>",
     "ciphertext": "<base64>"}

Must not import: market, web.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bidroom.errors import ValidationError
from bidroom.opening.ca import certificate_fingerprint

__all__ = ["SEALED_SHARE_ALG", "open_share", "seal_share"]

SEALED_SHARE_ALG: Final = "RSAES-OAEP-SHA256+A256GCM"
_AAD: Final = b"bidroom backup share v1"
_OAEP: Final = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                            label=None)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def seal_share(share: str, certificate: x509.Certificate) -> dict[str, Any]:
    """Seal one share text to an official's encryption certificate (RSA)."""
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValidationError("an official's encryption certificate holds an RSA key",
                              code="wrong_key_usage")
    content_key = secrets.token_bytes(32)
    nonce = secrets.token_bytes(12)
    ciphertext = AESGCM(content_key).encrypt(nonce, share.encode("utf-8"), _AAD)
    return {
        "v": 1,
        "alg": SEALED_SHARE_ALG,
        "recipient_serial": f"{certificate.serial_number:x}",
        "recipient_fingerprint": certificate_fingerprint(certificate),
        "encrypted_key": _b64(public_key.encrypt(content_key, _OAEP)),
        "nonce": _b64(nonce),
        "ciphertext": _b64(ciphertext),
    }


def open_share(sealed: Mapping[str, Any], content_key: bytes) -> str:
    """The share text, with the content key the official unwrapped; ``bad_key_or_tampered``
    when the key is wrong or the sealed share was changed."""
    try:
        nonce = base64.b64decode(str(sealed["nonce"]), validate=True)
        ciphertext = base64.b64decode(str(sealed["ciphertext"]), validate=True)
    except (KeyError, binascii.Error, ValueError) as exc:
        raise ValidationError("the sealed share is damaged", code="bad_key_or_tampered") from exc
    if len(content_key) != 32:
        raise ValidationError("a content key is 32 bytes", code="invalid_content_key")
    try:
        plain = AESGCM(content_key).decrypt(nonce, ciphertext, _AAD)
    except InvalidTag:
        raise ValidationError(
            "the share does not open with this key (another key, or a damaged share)",
            code="bad_key_or_tampered",
        ) from None
    return plain.decode("utf-8")
