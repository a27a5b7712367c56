"""Every document the platform signs, in one registry, so that one command verifies them all.

The platform signs several kinds of JSON document with its Ed25519 key (``bidroom.receipts``
has the format: the signature covers the canonical JSON of every field but ``signature``).
Each names its kind and version in ``"kind"`` and ``"v"``. This module keeps the kinds in a
registry; ``bidroom verify DOC.json`` (and ``verify_document_file`` here) reads the kind from
the document, checks the signature offline against the platform's public key or certificate,
runs the kind's own integrity check and prints a one-line summary of what the document says.

The kinds signed today:

==========================  ===============================================================
``bid_receipt`` v1          an accepted auction bid (``bidroom.receipts.make_bid_receipt``)
``opening_bid_receipt`` v1  a sealed bid uploaded to an opening (``bidroom.opening.documents``)
``opening_record`` v1       the signed opening record, 开标记录 (``bidroom.opening.documents``)
==========================  ===============================================================

Adding a kind (a later module signs a new document)
    Describe it with a ``DocumentKind`` and call ``register_kind`` when the module is imported,
    and name the module in ``KIND_MODULES`` so the verifier imports it. The test
    ``tests/unit/test_documents.py`` fails when a module signs a kind nobody registered::

        register_kind(DocumentKind(
            kind="award_notice", versions=frozenset({1}),
            name_zh="成交通知书", name_en="award notice",
            summarise=lambda doc: f"auction {doc.get('auction_id')}",
        ))

What verification proves
    The platform key signed exactly these bytes (any changed, added or removed field fails),
    the kind and version are ones this verifier knows (an unknown kind is refused with
    ``unknown_kind``, an unknown version with ``unknown_version``, so a newer document is never
    passed off as understood), and the kind's own check holds (for the opening record, that
    its ``sha256`` is the digest of the rest). A kind's check looks only at fields it needs;
    fields added to a kind later are covered by the signature without the verifier knowing
    them.

Must not import: market, web.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bidroom.clock import TIME_LABEL, beijing_time
from bidroom.errors import ValidationError
from bidroom.receipts import (
    RECEIPT_KIND,
    RECEIPT_VERSION,
    load_public_key_pem,
    verify_document,
)

__all__ = [
    "KIND_MODULES",
    "DocumentKind",
    "VerifiedDocument",
    "field_text",
    "load_verification_key",
    "moment",
    "register_kind",
    "registered_kinds",
    "require_fields",
    "verify_document_file",
    "verify_signed_document",
    "yuan",
]

# Modules that register kinds when imported (besides this one). The verifier imports them all
# before it looks a kind up, so one command knows every kind the platform signs.
KIND_MODULES: tuple[str, ...] = ("bidroom.opening.documents",)


@dataclass(frozen=True, slots=True)
class DocumentKind:
    """One kind of signed document: its name, the versions understood, how to summarise it.

    ``summarise(doc)`` returns one line (after the signature and ``check`` passed); it must not
    fail on a field it does not find. ``check(doc)`` raises ``ValidationError`` when the
    document, although signed, is not a well-formed document of its kind.
    """

    kind: str
    versions: frozenset[int]
    name_zh: str
    name_en: str
    summarise: Callable[[Mapping[str, Any]], str]
    check: Callable[[Mapping[str, Any]], None] | None = None


@dataclass(frozen=True, slots=True)
class VerifiedDocument:
    """A document whose signature, kind, version and own check all held."""

    kind: DocumentKind
    document: dict[str, Any]

    def summary(self) -> str:
        """One line: ``出价回执 / bid receipt: auction …``."""
        return f"{self.kind.name_zh} / {self.kind.name_en}: {self.kind.summarise(self.document)}"


_REGISTRY: dict[str, DocumentKind] = {}
_loaded = False


def register_kind(kind: DocumentKind) -> DocumentKind:
    """Add ``kind`` to the registry (again is fine; another definition of the name is not)."""
    known = _REGISTRY.get(kind.kind)
    if known is not None and known != kind:
        raise ValueError(f"document kind {kind.kind!r} is registered twice, differently")
    _REGISTRY[kind.kind] = kind
    return kind


def registered_kinds() -> dict[str, DocumentKind]:
    """Every registered kind by name, after importing ``KIND_MODULES``."""
    global _loaded
    if not _loaded:
        for module in KIND_MODULES:
            importlib.import_module(module)
        _loaded = True
    return dict(_REGISTRY)


# ----------------------------------------------------------------------------- helpers


def field_text(doc: Mapping[str, Any], name: str) -> str:
    """A field for a summary line: the value as text, ``?`` when absent."""
    value = doc.get(name)
    return "?" if value is None else str(value)


def moment(value: Any) -> str:
    """An instant (ms) for a summary line, in Beijing time and labelled; ``—`` if not one."""
    if isinstance(value, bool) or not isinstance(value, int):
        return "—"
    return f"{beijing_time(value)} {TIME_LABEL}"


def yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def require_fields(doc: Mapping[str, Any], fields: Mapping[str, type], kind: str) -> None:
    """Each named field is present with its type (``bool`` is not an ``int``), or
    ``invalid_document`` naming the field."""
    for name, expected in fields.items():
        value = doc.get(name)
        if isinstance(value, bool) or not isinstance(value, expected):
            raise ValidationError(
                f"a signed {kind} whose field {name!r} is not a {expected.__name__}",
                code="invalid_document", field=name,
            )


# ------------------------------------------------------------------------- verification


def load_verification_key(data: str | bytes) -> Ed25519PublicKey:
    """The platform's public key from a PEM public key (``platform.pub``, ``GET
    /api/platform-key``) or from an X.509 certificate (PEM or DER) carrying that Ed25519 key.

    A certificate is used for its public key: its validity and chain are the reader's policy.
    ``invalid_public_key`` if neither.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if b"-----BEGIN CERTIFICATE-----" in raw or raw[:1] == b"\x30":
        try:
            certificate = (x509.load_pem_x509_certificate(raw) if raw[:1] != b"\x30"
                           else x509.load_der_x509_certificate(raw))
        except ValueError as exc:
            raise ValidationError(f"not an X.509 certificate: {exc}",
                                  code="invalid_public_key") from exc
        key = certificate.public_key()
        if not isinstance(key, Ed25519PublicKey):
            raise ValidationError(
                f"the certificate's key is {type(key).__name__}, not the platform's Ed25519 key",
                code="invalid_public_key",
            )
        return key
    return load_public_key_pem(raw)


def verify_signed_document(doc: Any, public_key: Ed25519PublicKey | str | bytes
                           ) -> VerifiedDocument:
    """Verify one signed document of any registered kind.

    Raises ``ValidationError`` with code ``invalid_document`` (not an object, no ``kind`` or
    ``v``, or its kind's check fails), ``bad_signature``, ``invalid_public_key``,
    ``unknown_kind`` or ``unknown_version``; the message is fit to print.
    """
    key = public_key if isinstance(public_key, Ed25519PublicKey) else \
        load_verification_key(public_key)
    if not isinstance(doc, dict):
        raise ValidationError("not a JSON object: a signed document is one",
                              code="invalid_document")
    kind_name, version = doc.get("kind"), doc.get("v")
    if not isinstance(kind_name, str) or isinstance(version, bool) or not isinstance(version, int):
        raise ValidationError(
            "not a platform-signed document: it has no \"kind\" (a string) and \"v\" (an "
            "integer)", code="invalid_document",
        )
    verify_document(doc, key)  # bad_signature before anything is read from the document
    kinds = registered_kinds()
    kind = kinds.get(kind_name)
    if kind is None:
        raise ValidationError(
            f"the signature holds, but this verifier does not know documents of kind "
            f"{kind_name!r} (it knows {', '.join(sorted(kinds))}); a newer bidroom may / "
            f"签名有效，但本程序不认识该类文件",
            code="unknown_kind", kind=kind_name,
        )
    if version not in kind.versions:
        raise ValidationError(
            f"the signature holds, but {kind_name} version {version} is not one this verifier "
            f"knows (versions {', '.join(map(str, sorted(kind.versions)))}) / "
            "签名有效，但文件版本未知",
            code="unknown_version", kind=kind_name,
        )
    if kind.check is not None:
        kind.check(doc)
    return VerifiedDocument(kind, doc)


def verify_document_file(doc_path: Path | str, key_path: Path | str) -> VerifiedDocument:
    """Read a signed JSON document and the platform's public key (PEM) or certificate (PEM or
    DER) from files and verify it (``verify_signed_document``).

    The file may hold the document itself or an answer that carries it under ``"receipt"``
    (a bid answer, an upload answer) — the form ``curl -o`` saves. Extra codes:
    ``unreadable_file``; ``invalid_document`` for a file that is not JSON.
    """
    doc_path, key_path = Path(doc_path), Path(key_path)
    text = _read_text(doc_path)
    key = load_verification_key(_read(key_path))
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{doc_path} is not JSON: {exc}", code="invalid_document",
                              path=str(doc_path)) from exc
    if isinstance(doc, dict) and "signature" not in doc and isinstance(doc.get("receipt"), dict):
        doc = doc["receipt"]  # integers stay integers through json: the signed bytes are kept
    return verify_signed_document(doc, key)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc}", code="unreadable_file",
                              path=str(path)) from exc


def _read_text(path: Path) -> str:
    try:
        return _read(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"cannot read {path}: not UTF-8 text ({exc})",
                              code="unreadable_file", path=str(path)) from exc


# ------------------------------------------------------------------- the bid receipt (v1)

_BID_RECEIPT_FIELDS: dict[str, type] = {
    "auction_id": str, "supplier_id": str, "bid_id": str, "price_fen": int, "seq": int,
    "server_time_ms": int,
}


def _bid_receipt_summary(doc: Mapping[str, Any]) -> str:
    price = doc["price_fen"]
    return (f"auction {doc['auction_id']}, supplier {doc['supplier_id']}, bid {doc['bid_id']}, "
            f"{price} fen ({yuan(price)}), seq {doc['seq']} (the auction's sequence), "
            f"server time {moment(doc['server_time_ms'])}, key {field_text(doc, 'key_id')}")


register_kind(DocumentKind(
    kind=RECEIPT_KIND,
    versions=frozenset({RECEIPT_VERSION}),
    name_zh="出价回执",
    name_en="bid receipt",
    summarise=_bid_receipt_summary,
    check=lambda doc: require_fields(doc, _BID_RECEIPT_FIELDS, RECEIPT_KIND),
))
