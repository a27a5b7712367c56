"""The opening record (开标记录): the signed document and its printable page. Issue #10 §3, §8.

The record as read out at 唱标 (``bidroom.opening.session.opening_record``) becomes a document
the platform signs: the record with the bidders' names, what became of every bid and of its
bid bond (DOMAIN §2), the agency's stated reason for every platform-fault ruling, the
objections and their answers, who is deemed to accept (O87 42) and who could not act because
of a platform fault, and the opening-log entry it rests on. ``record_core`` builds it from the
state and the log (pure), ``sign_record`` hashes and signs it, ``record_document`` reads what
it needs from the runner; ``render_record_html`` prints it, in words, Chinese first.

The web layer only maps HTTP to these (``web/api/openings.py``).

Must not import: market, web.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from bidroom.errors import ConflictError, NotFoundError
from bidroom.opening.session import BidStatus, Bond, OpeningState
from bidroom.opening.store import OpeningLogRow, OpeningRow, OpeningStore
from bidroom.receipts import PlatformKey, canonical_json, sign_document

__all__ = [
    "BOND_WORDS",
    "REASON_WORDS",
    "RECORD_KIND",
    "RECORD_VERSION",
    "STATUS_WORDS",
    "named_record",
    "record_core",
    "record_document",
    "render_record_html",
    "sign_record",
]

RECORD_KIND: Final = "opening_record"
RECORD_VERSION: Final = 1
BEIJING: Final = timezone(timedelta(hours=8), "Asia/Shanghai")

#: org id → (name, English name)
Names = Mapping[str, tuple[str, str]]
NameSource = Callable[[Iterable[str]], Awaitable[dict[str, tuple[str, str]]]]

#: Words (中文, English) for what the record says in codes; the pages use the same words
#: (``web/static/i18n.js``: ``bidstatus.*``, ``hreason.*``, ``bond.*``).
STATUS_WORDS: Final[dict[str, tuple[str, str]]] = {
    BidStatus.SEALED.value: ("密封", "sealed"),
    BidStatus.DECRYPTED.value: ("已解密", "decrypted"),
    BidStatus.REVOKED.value: ("撤销", "revoked"),
    BidStatus.WITHDRAWN.value: ("撤回", "withdrawn"),
}
REASON_WORDS: Final[dict[str, tuple[str, str]]] = {
    "revoked_by_bidder": ("解密时间内投标人未解密，视为撤销投标文件（投标人原因）",
                          "not decrypted by the bidder within the window: revoked, the "
                          "bidder's own fault"),
    "withdrawn_platform_fault": ("因投标人之外的原因未能解密，视为撤回投标文件",
                                 "not decrypted for a reason outside the bidder: withdrawn"),
    "too_few_bids": ("截止时投标文件不足（87号令第41条）",
                     "too few bids at the deadline (Order 87, art. 41)"),
    "decryption_failed": ("解密失败", "the decryption failed"),
    "bad_share": ("密钥分片无法重建备用密钥", "the shares did not rebuild the backup key"),
}
BOND_WORDS: Final[dict[str, tuple[str, str]]] = {
    Bond.MAY_BE_KEPT.value: ("投标保证金可不予退还", "the bid bond may be kept"),
    Bond.RETURNED.value: ("投标保证金予以退还", "the bid bond is returned"),
    Bond.ORDINARY.value: ("投标保证金按规定退还", "the bid bond is refunded by the ordinary "
                          "rules"),
}


def _name(names: Names, org_id: str) -> dict[str, Any]:
    zh, en = names.get(org_id, ("", ""))
    return {"supplier_id": org_id, "name": zh, "name_en": en}


def named_record(record: Mapping[str, Any] | None, names: Names) -> dict[str, Any] | None:
    """The 唱标 record with each supplier's names."""
    if record is None:
        return None
    out = dict(record)
    out["opened"] = [{**entry, **_name(names, entry["supplier_id"])}
                     for entry in record.get("opened", [])]
    out["not_opened"] = [{**entry, **_name(names, entry["supplier_id"])}
                         for entry in record.get("not_opened", [])]
    return out


def _org(org_id: str | None, names: Names) -> dict[str, Any] | None:
    if org_id is None:
        return None
    zh, en = names.get(org_id, ("", ""))
    return {"id": org_id, "name": zh, "name_en": en}


def _with_outcome(entry: Mapping[str, Any], state: OpeningState) -> dict[str, Any]:
    """A record entry with its bond and ruling: a record revealed before they were recorded
    (an older log) takes them from the bid."""
    out = dict(entry)
    bid = state.bids.get(entry["supplier_id"])
    if "bond" not in out:
        out["bond"] = None if bid is None or bid.bond is None else bid.bond.value
    if "ruling" not in out:
        out["ruling"] = None if bid is None else bid.ruling
    return out


def record_core(row: OpeningRow, state: OpeningState, log: Sequence[OpeningLogRow],
                names: Names) -> dict[str, Any]:
    """The record's fields before its hash and signature (``names``: every bidder's, the
    purchaser's and the agency's). Raises ``not_revealed`` before 唱标."""
    if state.record is None:
        raise ConflictError("尚未唱标 / the record has not been revealed yet",
                            code="not_revealed")
    anchor = [r for r in log if r.kind != "noted"][-1]
    confirmed = next((r.data for r in reversed(log) if r.kind == "record_confirmed"), None)
    record = named_record(state.record, names) or {}

    def person(supplier_id: str) -> dict[str, Any]:
        return _name(names, supplier_id)

    fault = [] if confirmed is None else [
        {**person(s), "reason": state.bids[s].fault_reason if s in state.bids else None}
        for s in confirmed.get("platform_fault", [])
    ]
    return {
        "v": RECORD_VERSION,
        "kind": RECORD_KIND,
        "opening_id": row.id,
        "title": row.title,
        "title_en": row.title_en,
        "purchaser": _org(row.purchaser_org_id, names),
        "agency": _org(row.agency_org_id, names),
        "deadline_ms": state.settings.deadline_ms,
        "opened_at_ms": state.settings.deadline_ms,  # O87 39: the opening is the deadline
        "bids_closed_at_ms": state.closed_at_ms,  # when the server recorded it
        "revealed_at_ms": state.revealed_at_ms,
        "confirmed_at_ms": state.confirmed_at_ms,
        "status": "confirmed" if state.confirmed_at_ms is not None else "revealed",
        "bids_at_deadline": len(state.bidders),
        "opened": [_with_outcome(e, state) for e in record.get("opened", [])],
        "not_opened": [_with_outcome(e, state) for e in record.get("not_opened", [])],
        "objections": [
            {"objection_id": o.objection_id, "supplier_id": o.supplier_id,
             "name": names.get(o.supplier_id, ("", ""))[0], "text": o.text,
             "raised_at_ms": o.raised_at_ms, "answer": o.answer,
             "answered_at_ms": o.answered_at_ms}
            for o in state.objections
        ],
        "deemed_accepted": [] if confirmed is None else [
            {"supplier_id": s, "name": names.get(s, ("", ""))[0],
             "name_en": names.get(s, ("", ""))[1]}
            for s in confirmed.get("deemed_accepted", [])
        ],
        "platform_fault": fault,
        "log": {"seq": anchor.seq, "hash": anchor.hash},
    }


def sign_record(platform_key: PlatformKey, core: Mapping[str, Any]) -> dict[str, Any]:
    """``sha256`` over the canonical JSON of ``core``, then the platform's signature over all
    of it (``bidroom.receipts.sign_document``)."""
    digest = hashlib.sha256(canonical_json(core)).hexdigest()
    return sign_document(platform_key, {**core, "sha256": digest})


async def record_document(store: OpeningStore, state: OpeningState,
                          platform_key: PlatformKey, names: NameSource) -> dict[str, Any]:
    """The signed record of the opening ``state`` describes, from its row and log in
    ``store``; ``names`` looks up organisations' names (the registry, at the edge)."""
    opening_id = state.settings.opening_id
    row = await store.get(opening_id)
    if row is None:
        raise NotFoundError(f"opening {opening_id} not found", code="opening_not_found",
                            opening_id=opening_id)
    if state.record is None:
        raise ConflictError("尚未唱标 / the record has not been revealed yet",
                            code="not_revealed")
    orgs = [o for o in (row.purchaser_org_id, row.agency_org_id) if o is not None]
    known = await names([*state.bidders, *orgs])
    log = await store.log(opening_id)
    return sign_record(platform_key, record_core(row, state, log, known))


# ---------------------------------------------------------------------------- the printed page


def _when(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _yuan(fen: Any) -> str:
    if isinstance(fen, bool) or not isinstance(fen, int):
        return "—"
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def _words(table: Mapping[str, tuple[str, str]], code: Any) -> str:
    """``中文 English`` for a code; a code the table lacks is shown as it is."""
    if not isinstance(code, str) or not code:
        return "—"
    zh, en = table.get(code, (code, ""))
    return f"{zh} {en}".strip()


def _ruling(entry: Mapping[str, Any]) -> str:
    ruling = entry.get("ruling")
    if not isinstance(ruling, Mapping):
        return "—"
    return (f"平台故障认定 platform-fault ruling（{_when(ruling.get('at_ms'))}）："
            f"{ruling.get('reason', '')}")


def render_record_html(doc: Mapping[str, Any]) -> str:
    """A printable page of a signed record, in words (Chinese first); every value escaped."""
    e = html.escape

    def cell(value: Any) -> str:
        return f"<td>{e(str(value))}</td>"

    opened_rows = []
    for entry in doc["opened"]:
        form = entry.get("form", {})
        items = "; ".join(f"{i.get('name', '')}: {i.get('value', '')}"
                          for i in form.get("items", []) if isinstance(i, dict))
        opened_rows.append(
            "<tr>" + cell(entry["order"]) + cell(f"{entry['name']} {entry.get('name_en', '')}")
            + cell(_yuan(form.get("total_price_fen"))) + cell(form.get("delivery_days", "—"))
            + cell(form.get("warranty_months", "—")) + cell(items or "—")
            + cell("备用密钥 backup key" if entry.get("by_backup") else "投标人 bidder")
            + cell(_words(BOND_WORDS, entry.get("bond"))) + cell(_ruling(entry))
            + f"<td class=mono>{e(entry['sha256'])}</td></tr>")
    not_opened_rows = [
        "<tr>" + cell(f"{entry['name']} {entry.get('name_en', '')}")
        + cell(_words(STATUS_WORDS, entry.get("status")))
        + cell(_words(REASON_WORDS, entry.get("reason")))
        + cell(_words(BOND_WORDS, entry.get("bond"))) + cell(_ruling(entry))
        + "</tr>" for entry in doc["not_opened"]]
    objection_rows = [
        "<tr>" + cell(o["objection_id"]) + cell(o["name"]) + cell(o["text"])
        + cell(o.get("answer") or "—") + "</tr>" for o in doc["objections"]]
    deemed = ", ".join(d["name"] for d in doc["deemed_accepted"]) or "—"
    fault = ", ".join(f"{d['name']}（{d.get('reason') or '—'}）"
                      for d in doc.get("platform_fault", [])) or "—"
    agency = (doc.get("agency") or {}).get("name", "—")
    purchaser = (doc.get("purchaser") or {}).get("name", "—")
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>开标记录 Opening record — {e(doc['title'])}</title>
<style>
body {{ font-family: "Noto Serif CJK SC", "Songti SC", serif; margin: 2em; }}
table {{ border-collapse: collapse; width: 100%; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #444; padding: 4px 6px; text-align: left; vertical-align: top; }}
th {{ background: #eee; }} .mono {{ font-family: monospace; font-size: 0.75em; }}
footer {{ font-size: 0.8em; word-break: break-all; }}
@media print {{ body {{ margin: 0; }} }}
</style></head><body>
<h1>开标记录 <small>Opening record</small></h1>
<p>时间均为北京时间 / all times are Beijing time (Asia/Shanghai)</p>
<table>
<tr><th>项目 Project</th><td>{e(doc['title'])}<br>{e(doc.get('title_en') or '')}</td></tr>
<tr><th>开标编号 Opening</th><td class=mono>{e(doc['opening_id'])}</td></tr>
<tr><th>采购人 Purchaser</th><td>{e(purchaser)}</td></tr>
<tr><th>代理机构 Agency</th><td>{e(agency)}</td></tr>
<tr><th>投标截止 / 开标时间 Deadline = opening (O87 39)</th>
<td>{_when(doc['deadline_ms'])} (北京时间 Beijing time)</td></tr>
<tr><th>唱标时间 Revealed</th><td>{_when(doc['revealed_at_ms'])}</td></tr>
<tr><th>确认时间 Confirmed</th><td>{_when(doc['confirmed_at_ms'])}</td></tr>
<tr><th>截止时投标人数 Bids at the deadline</th><td>{e(str(doc['bids_at_deadline']))}</td></tr>
</table>
<h2>唱标 <small>Bids opened</small></h2>
<table><tr><th>序号 No.</th><th>投标人 Bidder</th><th>投标总价 Total price</th>
<th>交货期（天）Delivery (days)</th><th>质保期（月）Warranty (months)</th>
<th>开标一览表 Items</th><th>解密 Decrypted by</th><th>投标保证金 Bid bond</th>
<th>认定 Ruling</th><th>密文 SHA-256 Ciphertext</th></tr>
{''.join(opened_rows) or '<tr><td colspan=10>—</td></tr>'}</table>
<h2>未解密的投标 <small>Bids not opened (撤销: bidder's fault; 撤回: platform fault)</small></h2>
<table><tr><th>投标人 Bidder</th><th>状态 Status</th><th>原因 Reason</th>
<th>投标保证金 Bid bond</th><th>认定 Ruling</th></tr>
{''.join(not_opened_rows) or '<tr><td colspan=5>—</td></tr>'}</table>
<h2>异议与答复 <small>Objections and answers (O87 42)</small></h2>
<table><tr><th>编号 No.</th><th>投标人 Bidder</th><th>异议 Objection</th><th>答复 Answer</th></tr>
{''.join(objection_rows) or '<tr><td colspan=4>—</td></tr>'}</table>
<p>未参加开标、视为认可开标结果的投标人 / absent, deemed to accept (O87 42): {e(deemed)}</p>
<p>因平台故障未能参加开标的投标人（不视为认可）/ could not take part because of a platform
fault (not deemed to accept): {e(fault)}</p>
<footer>
<p>记录摘要 SHA-256: <span class=mono>{e(doc['sha256'])}</span></p>
<p>平台签名 Platform signature (Ed25519, key {e(doc['key_id'])}):
<span class=mono>{e(doc['signature'])}</span></p>
<p>开标日志 Opening log: entry {e(str(doc['log']['seq']))},
<span class=mono>{e(doc['log']['hash'])}</span></p>
</footer></body></html>
"""
