"""The platform's Ed25519 signing key and signed bid receipts.

When a bid is accepted the supplier gets a *receipt*: a small JSON object, signed by the
platform, that proves the platform accepted that price at that sequence number and server time.
A supplier can keep it and verify it later, offline, with nothing but the platform's public key
(published as ``platform.pub``, PEM).

A receipt (every field as issued; integers stay integers)::

    {"v": 1, "kind": "bid_receipt", "auction_id": "auc_…", "supplier_id": "org_…",
     "bid_id": "…", "price_fen": 1234500, "seq": 17, "server_time_ms": 1767225600123,
     "key_id": "3f9a…(16 hex)", "signature": "…base64url, no padding…"}

What is signed
    The UTF-8 bytes of the *canonical JSON* of every field except ``signature`` (``key_id``
    included)::

        json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    i.e. keys sorted, no whitespace, non-ASCII characters written as themselves. Verification
    checks those bytes exactly: a field re-typed along the way (``1234500`` turned into
    ``1234500.0`` by a tool that reads numbers as floats) no longer verifies, so keep the file
    as received. ``key_id`` is the first 16 hex digits of SHA-256 over the raw 32-byte public
    key; it names which platform key signed, so a key rotation never makes old receipts
    ambiguous. Ed25519 signatures are deterministic: issuing the receipt of the same bid again
    gives the same bytes.

Verifying offline
    With the CLI: ``bidroom verify RECEIPT.json --public-key platform.pub`` (``bidroom receipt
    verify`` is the same command); it verifies every kind of document the platform signs
    (``bidroom.documents``), reading the kind from the document.
    Or with a few lines of Python and only the ``cryptography`` package (no openssl command)::

        import base64, hashlib, json
        from cryptography.hazmat.primitives import serialization

        receipt = json.load(open("RECEIPT.json", encoding="utf-8"))
        public_key = serialization.load_pem_public_key(open("platform.pub", "rb").read())
        raw = public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        assert receipt["key_id"] == hashlib.sha256(raw).hexdigest()[:16], "another key"
        signature = receipt.pop("signature")
        signature = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        signed = json.dumps(
            receipt, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
        public_key.verify(signature, signed)  # raises InvalidSignature if anything changed
        print("valid:", receipt["price_fen"], "fen at seq", receipt["seq"])

    Any Ed25519 implementation works the same way (libsodium ``crypto_sign_verify_detached``,
    Go ``ed25519.Verify``…); beware that a JavaScript ``JSON.parse`` loses integers above
    2^53, which no price (≤ 10^13 fen), sequence or millisecond time here reaches.

The private key is a PKCS#8 PEM file, unencrypted, mode 0600 (``PlatformKey.load_or_create``);
protect it like any server secret.

Must not import: market, web.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bidroom.errors import ValidationError
from bidroom.money import parse_fen

__all__ = [
    "RECEIPT_KIND",
    "RECEIPT_VERSION",
    "PlatformKey",
    "canonical_json",
    "key_id_for",
    "load_public_key_pem",
    "make_bid_receipt",
    "sign_document",
    "verify_document",
    "verify_receipt_file",
]

RECEIPT_VERSION = 1
RECEIPT_KIND = "bid_receipt"

_RECEIPT_FIELDS: dict[str, type] = {
    "v": int,
    "kind": str,
    "auction_id": str,
    "supplier_id": str,
    "bid_id": str,
    "price_fen": int,
    "seq": int,
    "server_time_ms": int,
    "key_id": str,
    "signature": str,
}
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def canonical_json(doc: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: sorted keys, no spaces, UTF-8, no NaN/Infinity."""
    return json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def key_id_for(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 over the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url without padding")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # One spelling per signature: the last character's unused bits must be zero, so no
    # changed byte of a signed document still verifies.
    if _b64url_encode(data) != text:
        raise ValueError("not the canonical base64url of its bytes")
    return data


def _bad_signature(why: str) -> ValidationError:
    return ValidationError(f"the signature does not verify: {why}", code="bad_signature")


def load_public_key_pem(public_key_pem: str | bytes) -> Ed25519PublicKey:
    """Parse a PEM (SubjectPublicKeyInfo) Ed25519 public key; ``invalid_public_key`` if not."""
    data = public_key_pem.encode("ascii") if isinstance(public_key_pem, str) else public_key_pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise ValidationError(f"not a PEM public key: {exc}", code="invalid_public_key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValidationError(
            f"the public key is {type(key).__name__}, not Ed25519", code="invalid_public_key"
        )
    return key


class PlatformKey:
    """The platform's Ed25519 private key: signs receipts and other platform documents."""

    __slots__ = ("_private", "key_id")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.key_id: str = key_id_for(private_key.public_key())

    def __repr__(self) -> str:
        return f"PlatformKey(key_id={self.key_id!r})"

    @classmethod
    def generate(cls) -> PlatformKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> PlatformKey:
        """Load an unencrypted PKCS#8 PEM Ed25519 private key."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ValidationError(
                f"not an unencrypted PEM private key: {exc}", code="invalid_private_key"
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ValidationError(
                f"the platform key is {type(key).__name__}, not Ed25519",
                code="invalid_private_key",
            )
        return cls(key)

    @classmethod
    def load_or_create(cls, path: Path) -> PlatformKey:
        """Load the key at ``path``, or create it there (mode 0600, parent directory too).

        Never overwrites an existing file. Safe when several processes start at once: the new
        key is written to a private temporary file and hard-linked into place, so a reader sees
        either no file or a complete one, and exactly one key wins.
        """
        path = Path(path)
        try:
            return cls.from_pem(path.read_bytes())
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        candidate = cls.generate()
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                os.fchmod(fd, 0o600)  # whatever the umask
                os.write(fd, candidate.private_key_pem())
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)  # fails if the key exists: never overwrite
            except FileExistsError:
                return cls.from_pem(path.read_bytes())
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        with contextlib.suppress(OSError):  # make the new directory entry durable
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return candidate

    def private_key_pem(self) -> bytes:
        """PKCS#8 PEM, unencrypted (keep it secret)."""
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_key(self) -> Ed25519PublicKey:
        return self._private.public_key()

    def public_key_pem(self) -> str:
        """The public key to publish (SubjectPublicKeyInfo PEM), e.g. as ``platform.pub``."""
        return (
            self._private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    def sign(self, payload: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``payload`` (deterministic)."""
        return self._private.sign(payload)


def sign_document(key: PlatformKey, doc: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``doc`` with ``key_id`` set and ``signature`` over its canonical JSON.

    ``doc`` must be JSON-serialisable (str keys; str, int, bool, None, lists, dicts; finite
    floats) and must not already carry a ``signature``.
    """
    if "signature" in doc:
        raise ValidationError("the document is already signed", code="invalid_input")
    signed: dict[str, Any] = dict(doc)
    signed["key_id"] = key.key_id
    try:
        payload = canonical_json(signed)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"the document cannot be signed: {exc}", code="invalid_input"
        ) from exc
    signed["signature"] = _b64url_encode(key.sign(payload))
    return signed


def verify_document(doc: Mapping[str, Any],
                    public_key_pem: str | bytes | Ed25519PublicKey) -> None:
    """Check ``doc``'s signature with the platform public key (PEM, or the key itself); raise if
    it does not hold. Any kind of signed document: ``bidroom.documents`` checks the kind too.

    Raises ``ValidationError(code="bad_signature")`` for a missing or malformed signature, a
    ``key_id`` of another key, or any changed, added or removed field; and
    ``ValidationError(code="invalid_public_key")`` if ``public_key_pem`` is not an Ed25519 key.
    """
    public_key = (public_key_pem if isinstance(public_key_pem, Ed25519PublicKey)
                  else load_public_key_pem(public_key_pem))
    if not isinstance(doc, Mapping):
        raise _bad_signature("not a JSON object")
    signature_text = doc.get("signature")
    if not isinstance(signature_text, str) or not signature_text:
        raise _bad_signature("no signature")
    expected_key_id = key_id_for(public_key)
    if doc.get("key_id") != expected_key_id:
        raise _bad_signature(
            f"signed by key {doc.get('key_id')!r}, not by this public key ({expected_key_id})"
        )
    try:
        signature = _b64url_decode(signature_text)
    except (ValueError, binascii.Error):
        raise _bad_signature("the signature is not base64url") from None
    if len(signature) != 64:
        raise _bad_signature("an Ed25519 signature is 64 bytes")
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    try:
        payload = canonical_json(unsigned)
    except (TypeError, ValueError):
        raise _bad_signature("the document is not plain JSON") from None
    try:
        public_key.verify(signature, payload)
    except InvalidSignature:
        raise _bad_signature("the document was changed or signed by another key") from None


def make_bid_receipt(
    key: PlatformKey,
    *,
    auction_id: str,
    supplier_id: str,
    bid_id: str,
    price_fen: int,
    seq: int,
    server_time_ms: int,
) -> dict[str, Any]:
    """The signed receipt of one accepted bid (see the module doc for its format)."""
    for name, text in (
        ("auction_id", auction_id),
        ("supplier_id", supplier_id),
        ("bid_id", bid_id),
    ):
        if not isinstance(text, str) or not text:
            raise ValidationError(f"{name} must be a non-empty string", code="invalid_input")
    parse_fen(price_fen)
    for name, number in (("seq", seq), ("server_time_ms", server_time_ms)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ValidationError(f"{name} must be a non-negative integer", code="invalid_input")
    return sign_document(
        key,
        {
            "v": RECEIPT_VERSION,
            "kind": RECEIPT_KIND,
            "auction_id": auction_id,
            "supplier_id": supplier_id,
            "bid_id": bid_id,
            "price_fen": price_fen,
            "seq": seq,
            "server_time_ms": server_time_ms,
        },
    )


def verify_receipt_file(receipt_path: Path | str, public_key_path: Path | str) -> dict[str, Any]:
    """Read a receipt JSON file and a PEM public key file; return the receipt if it verifies.

    For ``bidroom receipt verify``. Raises ``ValidationError`` with code ``unreadable_file``
    (missing/unreadable file), ``invalid_receipt`` (not JSON, or not a v1 bid receipt),
    ``invalid_public_key`` or ``bad_signature``; the message is fit to print.
    """
    receipt_text = _read_text(Path(receipt_path))
    public_key_pem = _read_text(Path(public_key_path))
    try:
        receipt = json.loads(receipt_text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{receipt_path} is not JSON: {exc}", code="invalid_receipt", path=str(receipt_path)
        ) from exc
    if not isinstance(receipt, dict):
        raise ValidationError(
            f"{receipt_path} is not a JSON object", code="invalid_receipt", path=str(receipt_path)
        )
    verify_document(receipt, public_key_pem)
    # The signature holds; now make sure what was signed is a bid receipt of a known version.
    if receipt.get("kind") != RECEIPT_KIND or receipt.get("v") != RECEIPT_VERSION:
        raise ValidationError(
            f"{receipt_path} is a signed platform document but not a version "
            f"{RECEIPT_VERSION} bid receipt (kind={receipt.get('kind')!r}, "
            f"v={receipt.get('v')!r})",
            code="invalid_receipt",
            path=str(receipt_path),
        )
    for name, kind in _RECEIPT_FIELDS.items():
        value = receipt.get(name)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ValidationError(
                f"{receipt_path}: field {name!r} should be {kind.__name__}",
                code="invalid_receipt",
                path=str(receipt_path),
            )
    return receipt


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(
            f"cannot read {path}: {exc}", code="unreadable_file", path=str(path)
        ) from exc
