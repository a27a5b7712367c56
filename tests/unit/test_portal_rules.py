"""The portal's query rules, without I/O: what a query may ask, how a keyword becomes terms,
the Beijing day bounds, the cursor, and the excerpt a result line shows."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.portal.rules import (
    Cursor,
    PortalQuery,
    QueryProblem,
    Term,
    day_bounds_ms,
    encode_cursor,
    excerpt,
    fts5_phrase,
    identifier_keys,
    is_identifier,
    like_pattern,
    parse_query,
    plan_search,
    reference_key,
    split_terms,
)


def ok(**params: str) -> PortalQuery:
    query = parse_query(params)
    assert isinstance(query, PortalQuery), query
    return query


def problem(**params: str) -> tuple[str, str]:
    refused = parse_query(params)
    assert isinstance(refused, QueryProblem), refused
    assert " / " in refused.message  # 中文 / English
    return refused.code, refused.field


def test_a_region_becomes_the_range_of_everything_below_it() -> None:
    assert (ok(region="440000").region_low, ok(region="440000").region_high) == ("440000",
                                                                                  "449999")
    assert (ok(region="440100").region_low, ok(region="440100").region_high) == ("440100",
                                                                                  "440199")
    assert ok(region="440106").region_low == ok(region="440106").region_high == "440106"
    assert ok().region_low is None
    for bad in ("44", "4400000", "040000", "44a000", "440006"):
        assert problem(region=bad) == ("invalid_region", "region")


def test_method_category_kind_are_checked() -> None:
    assert ok(method="inquiry").method == "inquiry"
    assert problem(method="auction") == ("invalid_method", "method")
    assert ok(category="a02").category == "A02"
    assert problem(category="A02%") == ("invalid_category", "category")
    assert problem(category="D01") == ("invalid_category", "category")
    assert ok(kind="correction").kind == "correction"
    assert problem(kind="award") == ("invalid_kind", "kind")
    assert problem(sort="title") == ("unknown_parameter", "sort")


def test_days_are_beijing_days_both_included() -> None:
    query = ok(**{"from": "2026-10-01", "to": "2026-10-07"})
    # 2026-10-01 00:00 Beijing = 2026-09-30 16:00 UTC; the end is 2026-10-08 00:00 Beijing.
    assert query.since_ms == 1_790_784_000_000
    assert query.until_ms == 1_790_784_000_000 + 7 * 86_400_000
    assert day_bounds_ms(date(2026, 10, 1)) == (1_790_784_000_000, 1_790_870_400_000)
    assert ok(**{"from": "2026-10-01", "to": "2026-10-01"}).until_ms == 1_790_870_400_000
    assert problem(**{"from": "2026-10-02", "to": "2026-10-01"}) == ("invalid_range", "to")
    assert problem(**{"from": "2026-13-01"}) == ("invalid_day", "from")
    assert problem(to="20261001") == ("invalid_day", "to")


def test_keywords_split_into_terms_and_short_ones_are_not_indexed() -> None:
    assert split_terms("  医疗设备　 超声  医疗设备 ") == (Term("医疗设备"), Term("超声"))
    assert split_terms("ＡＢＣ１２３") == (Term("ABC123"),)  # NFKC: full-width to ASCII
    assert [t.indexed for t in ok(q="医疗设备 超声 台").terms] == [True, False, False]
    assert problem(q="一 二 三 四 五 六") == ("too_many_terms", "q")
    assert problem(q="长" * 51) == ("term_too_long", "q")
    assert ok(q="").terms == ()


def test_terms_cannot_inject_query_syntax() -> None:
    assert fts5_phrase(Term('医疗" OR "x')) == '"医疗"" OR ""x"'
    assert like_pattern(Term("100%_\\")) == "%100\\%\\_\\\\%"


def test_limit_and_cursor() -> None:
    assert ok().limit == 20 and ok(limit="100").limit == 100
    for bad in ("0", "101", "-1", "1.5", "２"):
        assert problem(limit=bad) == ("invalid_query", "limit")
    assert ok(cursor="1790784000000.42").after == Cursor(1_790_784_000_000, 42)
    for bad in ("42", "a.b", "1.2.3", "-1.2"):
        assert problem(cursor=bad) == ("invalid_cursor", "cursor")


@given(st.integers(0, 10**15 - 1), st.integers(1, 10**18 - 1))
def test_a_cursor_reads_back_as_itself(at_ms: int, row_id: int) -> None:
    cursor = Cursor(at_ms, row_id)
    assert ok(cursor=encode_cursor(cursor)).after == cursor


def test_the_excerpt_is_cut_around_the_first_hit() -> None:
    body = "甲" * 100 + "医疗设备" + "乙" * 100
    cut = excerpt(body, (Term("医疗设备"),), width=40)
    assert cut.startswith("…") and cut.endswith("…") and "医疗设备" in cut
    assert len(cut) == 42
    assert excerpt("短文", (Term("医疗"),)) == "短文"
    assert excerpt(body, (), width=10) == "甲" * 10 + "…"
    assert excerpt("x" * 50 + "ABC", (Term("abc"),), width=20).endswith("ABC")


@pytest.mark.parametrize("region", ["110000", "440000", "650000"])
def test_any_province_is_accepted(region: str) -> None:
    assert ok(region=region).region_high == region[:2] + "9999"


# --- identifiers: looked up in announcements.reference before the full text ---------------

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@pytest.mark.parametrize(("text", "expected"), [
    ("GD20260012345", True), ("gd20260012345", True), ("P3f9a0c1b2d4e5f6", True),
    ("202612", True), ("A02010104", True), ("ABC123", True),
    ("AB123", False),  # 5 characters: a word, not a number
    ("Lenovo", False), ("ThinkPad", False),  # no digit
    ("计算机", False), ("GD2026号", False), ("GD-2026-0012345", False), ("GD_20260012345", False),
    ("Ｇ" + "D20260012345", False),  # full width before NFKC (split_terms normalises it)
])
def test_what_counts_as_an_identifier(text: str, expected: bool) -> None:
    assert is_identifier(text) is expected


@given(st.text(_ALNUM, min_size=6, max_size=50).filter(lambda t: any(c.isdigit() for c in t)))
def test_any_ascii_run_of_six_or_more_with_a_digit_is_an_identifier(text: str) -> None:
    assert is_identifier(text)
    assert reference_key(text) == reference_key(text.swapcase())  # case-insensitive lookup


@given(st.text(min_size=1, max_size=60))
def test_an_identifier_is_only_ascii_letters_and_digits_with_a_digit(text: str) -> None:
    expected = (6 <= len(text) <= 50 and all(c in _ALNUM for c in text)
                and any(c in "0123456789" for c in text))
    assert is_identifier(text) is expected


def test_full_width_identifiers_are_normalised_then_recognised() -> None:
    (term,) = split_terms("ＧＤ２０２６００１２３４５")
    assert term.identifier and reference_key(term.text) == "GD20260012345"


def test_identifier_keys_and_the_reference_plan() -> None:
    query = ok(q="gd20260012345 医疗设备 保安 AB123")
    assert identifier_keys(query) == ("GD20260012345",)
    assert identifier_keys(ok(q="医疗设备 保安")) == ()
    # a key some announcement carries: the reference index leads, whatever the text count
    plan = plan_search(query, 5_000, frozenset({"GD20260012345"}))
    assert plan.lead == "reference" and plan.references == frozenset({"GD20260012345"})
    # none found: the term is full text, planned as before
    assert plan_search(query, 5_000).lead == "order"
    assert plan_search(query, 3).lead == "text"
    assert plan_search(query, 3).references == frozenset()
