"""The supplier's side of a sealed remote opening (不见面开标), as a Python API.

What runs on the *supplier's* machine (the ``bidroom bid`` commands use it; a desktop helper
or a test can too):

* before the deadline, ``seal_bid_files`` builds the bid package from an opening form and
  document files, signs it with the signing certificate and seals it to the supplier's own
  encryption certificate (plus, if the tender uses one, the backup opening key's);
* at the opening, during the decryption window (DOMAIN.md §2, O87 41), the platform hands the
  supplier the wrapped content key of its envelope (``encrypted_key_b64_for`` finds it in a
  local copy) and the supplier answers with ``unwrap_for_submission``: the 32-byte content key,
  base64. The private key never leaves the supplier; the platform then opens the envelope
  with ``envelope.open_envelope``.

Base64 here is the standard alphabet with padding (what ``btoa`` and WebCrypto callers use);
url-safe input is accepted too. Unlike the core, this module may read the clock (the signing
time defaults to now).

Must not import: market, web.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from bidroom.errors import ValidationError
from bidroom.opening.ca import load_certificate, load_private_key
from bidroom.opening.envelope import (
    SealResult,
    inspect_envelope,
    recipient_for,
    seal_bid,
    unwrap_content_key,
)
from bidroom.opening.package import build_package

__all__ = [
    "content_key_for",
    "decode_b64",
    "encrypted_key_b64_for",
    "load_form",
    "seal_bid_files",
    "unwrap_for_submission",
]


def decode_b64(text: str) -> bytes:
    """Standard or url-safe base64, padding optional; ``invalid_input`` if neither."""
    if not isinstance(text, str):
        raise ValidationError("expected base64 text", code="invalid_input")
    cleaned = "".join(text.split()).rstrip("=")
    try:
        return base64.b64decode(
            cleaned.replace("-", "+").replace("_", "/") + "=" * (-len(cleaned) % 4),
            validate=True,
        )
    except (binascii.Error, ValueError):
        raise ValidationError("not base64", code="invalid_input") from None


def load_form(path: Path) -> dict[str, Any]:
    """Read an opening form JSON file (validated when the package is built)."""
    try:
        form = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc}", code="unreadable_file") from exc
    except ValueError as exc:
        raise ValidationError(
            f"{path} is not UTF-8 JSON: {exc}", code="invalid_opening_form"
        ) from exc
    if not isinstance(form, dict):
        raise ValidationError(f"{path} is not a JSON object", code="invalid_opening_form")
    return form


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc}", code="unreadable_file") from exc


def seal_bid_files(
    *,
    form: Mapping[str, Any] | Path,
    documents: Sequence[Path] | Mapping[str, Path | bytes] = (),
    sign_cert: Path,
    sign_key: Path,
    enc_cert: Path,
    out: Path,
    backup_cert: Path | None = None,
    now: datetime | None = None,
    key_password: bytes | None = None,
) -> SealResult:
    """Build, sign and seal a bid from files; return the envelope's SHA-256 and size.

    ``form`` is the opening form (a dict, or a JSON file); ``documents`` are files (named
    by their file names) or a mapping name → path/bytes. The package is built in a
    temporary file next to ``out`` and removed afterwards.
    """
    out = Path(out)
    form_doc = load_form(form) if isinstance(form, Path) else dict(form)
    if isinstance(documents, Mapping):
        named: dict[str, Path | bytes] = dict(documents)
    else:
        named = {}
        for doc in documents:
            doc = Path(doc)
            if doc.name in named:
                raise ValidationError(
                    f"two documents are named {doc.name!r}", code="invalid_package"
                )
            named[doc.name] = doc
    signing_cert = load_certificate(_read(sign_cert))
    signing_key = load_private_key(_read(sign_key), key_password)
    recipients: list[x509.Certificate] = [load_certificate(_read(enc_cert))]
    if backup_cert is not None:
        recipients.append(load_certificate(_read(backup_cert)))
    out.parent.mkdir(parents=True, exist_ok=True)
    package = out.with_name(f".{out.name}.{uuid.uuid4().hex}.package.zip")
    try:
        with package.open("xb") as sink:
            build_package(form_doc, named, sink)
        return seal_bid(
            package,
            out,
            signing_key=signing_key,
            signing_cert=signing_cert,
            recipients=recipients,
            now=now if now is not None else datetime.now(UTC),
        )
    finally:
        with contextlib.suppress(FileNotFoundError):
            package.unlink()


def encrypted_key_b64_for(envelope: Path, enc_cert: x509.Certificate | bytes) -> str:
    """The wrapped content key of ``enc_cert``'s recipient in a sealed file, base64."""
    cert = enc_cert if isinstance(enc_cert, x509.Certificate) else load_certificate(enc_cert)
    recipient = recipient_for(inspect_envelope(Path(envelope)), cert)
    return base64.b64encode(recipient.encrypted_key).decode("ascii")


def unwrap_for_submission(encrypted_key_b64: str, enc_key_pem: bytes | str) -> str:
    """Unwrap a content key with the supplier's encryption private key (PEM); return the
    32-byte content key, base64 — what the supplier submits at the opening."""
    encrypted = decode_b64(encrypted_key_b64)
    key_pem = enc_key_pem.encode("ascii") if isinstance(enc_key_pem, str) else enc_key_pem
    return base64.b64encode(unwrap_content_key(encrypted, key_pem)).decode("ascii")


def content_key_for(
    envelope: Path, enc_cert_pem: bytes, enc_key_pem: bytes, password: bytes | None = None
) -> bytes:
    """The content key of a sealed file, unwrapped with the given encryption pair."""
    cert = load_certificate(enc_cert_pem)
    recipient = recipient_for(inspect_envelope(Path(envelope)), cert)
    key = load_private_key(enc_key_pem, password)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValidationError("an encryption key is an RSA key", code="invalid_private_key")
    return unwrap_content_key(recipient.encrypted_key, key)
