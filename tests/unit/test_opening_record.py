"""The opening record (issue #10 §3, §7b): the signed document says what happened to every bid
and its bond, the agency's stated reasons, who could not act; the pages have words for every
code the session can produce."""

from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bidroom.errors import ConflictError
from bidroom.opening.record import (
    BOND_WORDS,
    REASON_WORDS,
    STATUS_WORDS,
    record_core,
    render_record_html,
    sign_record,
)
from bidroom.opening.session import (
    EVENT_REASONS,
    REFUSAL_REASONS,
    BidStatus,
    Bond,
    Confirm,
    MarkPlatformFault,
    OpeningSettings,
    OpeningState,
    RecordDecryption,
    Reveal,
    SignIn,
    SubmitBid,
    Tick,
    created,
    decide,
    event_to_dict,
    replay,
)
from bidroom.receipts import PlatformKey, canonical_json, verify_document

ROOT = Path(__file__).resolve().parents[2]
MIN = 60_000
DEADLINE = 1_900_000_000_000
WINDOW_END = DEADLINE + 30 * MIN
FORM = {"total_price_fen": 98_000_000, "delivery_days": 30, "warranty_months": 24,
        "items": []}
NAMES = {"s1": ("供应商一", "Supplier One"), "s2": ("供应商二", "Supplier Two"),
         "s3": ("供应商三", "Supplier Three"), "s4": ("供应商四", "Supplier Four"),
         "org_p": ("采购人", "Purchaser"), "org_a": ("代理机构", "Agency")}
FAULT = "CA 服务中断，供应商三无法签到和解密 / the CA service was down"


def _log(events: list[Any]) -> list[SimpleNamespace]:
    """The opening log as the store keeps it (kind, seq, data, hash)."""
    rows = []
    for event in events:
        data = event_to_dict(event)
        rows.append(SimpleNamespace(seq=event.seq, kind=data["kind"], data=data,
                                    hash=hashlib.sha256(canonical_json(data)).hexdigest()))
    return rows


def _opening() -> tuple[OpeningState, list[Any]]:
    """Four bids: s1 and s2 sign in and decrypt; s3 cannot sign in (a platform fault, ruled by
    the agency); s4 never comes (撤销). Read out and confirmed."""
    settings = OpeningSettings(opening_id="opn_rec", deadline_ms=DEADLINE)
    first = created(settings, ("s1", "s2", "s3", "s4"), DEADLINE - MIN)
    events: list[Any] = [first]
    state = replay([first])
    commands: list[Any] = [SubmitBid(s, f"{i:064x}", 100, DEADLINE - 10)
                           for i, s in enumerate(("s1", "s2", "s3", "s4"), start=1)]
    commands += [Tick(DEADLINE), SignIn("s1", DEADLINE + 1), SignIn("s2", DEADLINE + 1)]
    commands += [RecordDecryption(s, True, DEADLINE + 2, form=FORM,
                                  signer={"org_id": s}) for s in ("s1", "s2")]
    commands += [MarkPlatformFault("s3", FAULT, "usr_agency", DEADLINE + 3),
                 Tick(WINDOW_END), Reveal("usr_agency", WINDOW_END + 1),
                 Confirm("usr_agency", WINDOW_END + 1 + 15 * MIN)]
    for command in commands:
        decision = decide(state, command)
        assert decision.refusal is None, (command, decision.refusal)
        events.extend(decision.events)
        state = decision.state
    return state, events


def _row() -> SimpleNamespace:
    return SimpleNamespace(id="opn_rec", title="办公设备采购", title_en="Office equipment",
                           purchaser_org_id="org_p", agency_org_id="org_a")


def _document() -> tuple[dict[str, Any], PlatformKey]:
    state, events = _opening()
    key = PlatformKey.generate()
    core = record_core(_row(), state, _log(events), NAMES)  # type: ignore[arg-type]
    return sign_record(key, core), key


# ---------------------------------------------------------------------------- the document


def test_the_signed_record_says_what_becomes_of_each_bid_bond() -> None:
    doc, key = _document()

    assert (doc["v"], doc["kind"]) == (1, "opening_record")
    assert [(e["supplier_id"], e["bond"]) for e in doc["opened"]] == [
        ("s1", "ordinary"), ("s2", "ordinary")]
    assert [(e["supplier_id"], e["status"], e["reason"], e["bond"])
            for e in doc["not_opened"]] == [
        ("s3", "withdrawn", "withdrawn_platform_fault", "returned"),
        ("s4", "revoked", "revoked_by_bidder", "may_be_kept")]
    verify_document(doc, key.public_key_pem())


def test_the_agencys_stated_reason_is_in_the_signed_record() -> None:
    doc, _ = _document()

    s3 = doc["not_opened"][0]
    assert s3["ruling"] == {"kind": "platform_fault", "reason": FAULT, "by": "usr_agency",
                            "at_ms": DEADLINE + 3}
    assert doc["not_opened"][1]["ruling"] is None


def test_a_supplier_kept_out_by_a_platform_fault_is_not_deemed_to_accept() -> None:
    doc, _ = _document()

    assert [d["supplier_id"] for d in doc["deemed_accepted"]] == ["s4"]
    assert doc["platform_fault"] == [{"supplier_id": "s3", "name": "供应商三",
                                      "name_en": "Supplier Three", "reason": FAULT}]


def test_the_new_fields_are_signed_a_changed_bond_fails_verification() -> None:
    doc, key = _document()
    core = {k: v for k, v in doc.items() if k not in ("sha256", "key_id", "signature")}
    assert doc["sha256"] == hashlib.sha256(canonical_json(core)).hexdigest()

    doc["not_opened"][1]["bond"] = "returned"

    with pytest.raises(Exception, match="signature"):
        verify_document(doc, key.public_key_pem())


def test_there_is_no_record_before_the_reveal() -> None:
    _, events = _opening()
    before = replay(events[: next(i for i, e in enumerate(events)
                                  if type(e).__name__ == "RecordRevealed")])

    with pytest.raises(ConflictError) as caught:
        record_core(_row(), before, _log(events), NAMES)  # type: ignore[arg-type]
    assert caught.value.code == "not_revealed"


def test_the_printed_record_shows_words_and_the_reason_never_a_code() -> None:
    doc, _ = _document()

    page = render_record_html(doc)

    for words in ("撤销", "撤回", "投标保证金可不予退还", "投标保证金予以退还",
                  "the bid bond may be kept", "因投标人之外的原因未能解密", FAULT.split(" / ")[0],
                  "不视为认可"):
        assert words in page
    for code in ("revoked_by_bidder", "withdrawn_platform_fault", "may_be_kept",
                 "platform_fault<"):
        assert code not in page
    assert "供应商四" in page.split("视为认可开标结果")[1].split("</p>")[0]


def test_the_printed_record_has_words_for_every_status_reason_and_bond() -> None:
    assert set(STATUS_WORDS) == {s.value for s in BidStatus}
    assert set(BOND_WORDS) == {b.value for b in Bond}
    assert EVENT_REASONS <= set(REASON_WORDS)
    for zh, en in [*STATUS_WORDS.values(), *BOND_WORDS.values(), *REASON_WORDS.values()]:
        assert zh and en and zh != en


# ---------------------------------------------------------------------------- every code, in words


def _session_codes() -> set[str]:
    """Every string literal the session can give as a reason: refusals (``_refuse``, a
    ``reason = "…"``, a ``return "…"`` of a refusal helper, ``or "…"`` defaults) and the reasons
    its events carry."""
    tree = ast.parse((ROOT / "bidroom/opening/session.py").read_text(encoding="utf-8"))
    codes: set[str] = set()

    def literal(node: ast.AST | None) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            codes.add(node.value)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                literal(value)

    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "reason" for t in node.targets):
                literal(node.value)
            elif isinstance(node, ast.Call):
                name = getattr(node.func, "id", "")
                if name == "_refuse" and len(node.args) == 2:
                    literal(node.args[1])
                elif name in ("BidRevoked", "OpeningFailed", "DecryptionFailed",
                              "BackupRebuildFailed", "CommandRefused"):
                    for arg in node.args:
                        if isinstance(arg, ast.Constant | ast.BoolOp):
                            literal(arg)
                for kw in node.keywords:
                    if kw.arg == "reason":
                        literal(kw.value)
            elif (isinstance(node, ast.Return)
                  and (fn.name.startswith("can_") or fn.name == "_backup_refusal")):
                literal(node.value)
    return {c for c in codes if re.fullmatch(r"[a-z][a-z_]+", c)}


def _dictionaries() -> dict[str, dict[str, str]]:
    text = (ROOT / "web/static/i18n.js").read_text(encoding="utf-8")
    zh_part = text.split("const zh = {", 1)[1].split("\n};", 1)[0]
    en_part = text.split("const en = {", 1)[1].split("\n};", 1)[0]
    entry = re.compile(r"^\s*'?([\w.]+)'?:\s*'((?:[^'\\]|\\.)*)',?\s*$", re.M)
    return {"zh": dict(entry.findall(zh_part)), "en": dict(entry.findall(en_part))}


def test_the_declared_codes_are_exactly_the_codes_the_session_produces() -> None:
    produced = _session_codes()
    # the walk finds the refusal and event codes, and nothing the declaration misses
    assert produced - (REFUSAL_REASONS | EVENT_REASONS) == set()
    assert REFUSAL_REASONS <= produced
    assert EVENT_REASONS - {"withdrawn_platform_fault"} <= produced


@pytest.mark.parametrize("code", sorted(REFUSAL_REASONS))
def test_the_pages_have_chinese_and_english_words_for_every_refusal(code: str) -> None:
    words = _dictionaries()
    assert words["zh"].get(f"herr.{code}"), code
    assert words["en"].get(f"herr.{code}"), code
    assert words["zh"][f"herr.{code}"] != words["en"][f"herr.{code}"]


@pytest.mark.parametrize("code", sorted(EVENT_REASONS))
def test_the_pages_have_words_for_every_reason_a_bid_or_the_opening_carries(code: str) -> None:
    words = _dictionaries()
    assert words["zh"].get(f"hreason.{code}") and words["en"].get(f"hreason.{code}"), code


def test_the_pages_have_words_for_every_bid_status_and_bond() -> None:
    words = _dictionaries()
    for key in [f"bidstatus.{s.value}" for s in BidStatus] + [f"bond.{b.value}" for b in Bond]:
        assert words["zh"].get(key) and words["en"].get(key), key


def test_the_hall_and_the_record_page_print_no_raw_reason() -> None:
    """The pages put every code through the i18n table (``t(`hreason.…`)``), never print it."""
    for page in ("hall.js", "record.js"):
        source = (ROOT / "web/static" / page).read_text(encoding="utf-8")
        assert not re.search(r"(?<!\.)\$\{\s*\w+\.(reason|last_failure|bond)\s*\}", source), page
        assert "t(`hreason.${entry.reason}`" in source, page
        assert "t(`bond.${entry.bond}`" in source, page
