"""The documents a sealed remote bid opening signs, registered with ``bidroom.documents`` so that
``bidroom verify`` checks them offline like a bid receipt.

``opening_bid_receipt`` v1 (``PUT /api/openings/{id}/bid``, docs/opening.md §3)::

    {"v": 1, "kind": "opening_bid_receipt", "opening_id": "opn_…", "supplier_id": "org_…",
     "sha256": "<hex of the envelope>", "size": 1048576, "server_time_ms": 1767229199000,
     "seq": 7, "replaces": null, "key_id": "…", "signature": "…"}

``opening_record`` v1 (``GET /api/openings/{id}/record``, docs/opening.md §7): the record as
read out (唱标), objections and answers, the confirmation and the log entry it rests on, with
``sha256`` = SHA-256 (hex) of the canonical JSON of every field but ``sha256``, ``key_id`` and
``signature``. The verifier recomputes that digest from whatever fields the record carries, so
fields added to the record later are checked without the verifier listing them.

Must not import: market, web.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from bidroom.documents import (
    DocumentKind,
    field_text,
    moment,
    register_kind,
    require_fields,
)
from bidroom.errors import ValidationError
from bidroom.receipts import canonical_json

__all__ = [
    "OPENING_BID_RECEIPT",
    "OPENING_RECORD",
    "record_digest",
]

OPENING_BID_RECEIPT = "opening_bid_receipt"
OPENING_RECORD = "opening_record"
_NOT_DIGESTED = ("sha256", "key_id", "signature")


def record_digest(record: Mapping[str, Any]) -> str:
    """The record's ``sha256``: over the canonical JSON of every field but ``sha256``,
    ``key_id`` and ``signature``."""
    core = {k: v for k, v in record.items() if k not in _NOT_DIGESTED}
    return hashlib.sha256(canonical_json(core)).hexdigest()


# ------------------------------------------------------------------------ the bid receipt

_RECEIPT_FIELDS: dict[str, type] = {
    "opening_id": str, "supplier_id": str, "sha256": str, "size": int, "seq": int,
    "server_time_ms": int,
}


def _check_receipt(doc: Mapping[str, Any]) -> None:
    require_fields(doc, _RECEIPT_FIELDS, OPENING_BID_RECEIPT)
    replaces = doc.get("replaces")
    if replaces is not None and not isinstance(replaces, str):
        raise ValidationError(f"a signed {OPENING_BID_RECEIPT} whose 'replaces' is not a "
                              "string or null", code="invalid_document", field="replaces")


def _receipt_summary(doc: Mapping[str, Any]) -> str:
    replaces = doc.get("replaces")
    return (f"opening {doc['opening_id']}, supplier {doc['supplier_id']}, envelope sha256 "
            f"{doc['sha256']}, {doc['size']} bytes, seq {doc['seq']}, server time "
            f"{moment(doc['server_time_ms'])}, "
            f"{'replaces ' + replaces if isinstance(replaces, str) else 'first upload'}, "
            f"key {field_text(doc, 'key_id')}")


register_kind(DocumentKind(
    kind=OPENING_BID_RECEIPT,
    versions=frozenset({1}),
    name_zh="投标文件回执",
    name_en="sealed bid receipt",
    summarise=_receipt_summary,
    check=_check_receipt,
))


# ------------------------------------------------------------------------------ the record


def _check_record(doc: Mapping[str, Any]) -> None:
    require_fields(doc, {"opening_id": str, "sha256": str}, OPENING_RECORD)
    if record_digest(doc) != doc["sha256"]:
        raise ValidationError(
            "the signature holds, but the record's sha256 is not the digest of its fields / "
            "开标记录摘要不符", code="bad_digest", field="sha256",
        )


def _count(doc: Mapping[str, Any], name: str) -> str:
    value = doc.get(name)
    return str(len(value)) if isinstance(value, list) else "?"


def _record_summary(doc: Mapping[str, Any]) -> str:
    title = doc.get("title")
    log = doc.get("log")
    log_seq = log.get("seq") if isinstance(log, Mapping) else None
    parts = [
        f"opening {doc['opening_id']}" + (f" 「{title}」" if isinstance(title, str) else ""),
        f"status {field_text(doc, 'status')}",
        f"bids at the deadline {field_text(doc, 'bids_at_deadline')}",
        f"opened {_count(doc, 'opened')}, not opened {_count(doc, 'not_opened')}",
        f"objections {_count(doc, 'objections')}",
        f"read out {moment(doc.get('revealed_at_ms'))}",
        f"confirmed {moment(doc.get('confirmed_at_ms'))}",
        f"log entry {'?' if log_seq is None else log_seq}",
        f"sha256 {doc['sha256']} (checked)",
        f"key {field_text(doc, 'key_id')}",
    ]
    return ", ".join(parts)


register_kind(DocumentKind(
    kind=OPENING_RECORD,
    versions=frozenset({1}),
    name_zh="开标记录",
    name_en="opening record",
    summarise=_record_summary,
    check=_check_record,
))
