"""market.experts.rules: the status machine, day ranges, availability and specialties."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.catalog.rules import category_ancestors
from market.experts.rules import (
    TRANSITIONS,
    DayRange,
    ExpertStatus,
    available_on,
    check_transition,
    covers,
    parse_day,
    parse_range,
)

A, S, R = ExpertStatus.ACTIVE, ExpertStatus.SUSPENDED, ExpertStatus.RETIRED


@pytest.mark.parametrize(("current", "target", "reason", "code"), [
    (A, S, "考核不合格", None),
    (S, A, None, None),
    (A, R, "本人申请", None),
    (S, R, "本人申请", None),
    (A, A, None, "invalid_status_change"),
    (S, S, "x", "invalid_status_change"),
    (R, A, None, "expert_retired"),
    (R, S, "x", "expert_retired"),
    (R, R, "x", "expert_retired"),
    (A, S, None, "status_reason_required"),
    (A, S, "   ", "status_reason_required"),
    (S, R, "", "status_reason_required"),
])
def test_the_status_machine(current: ExpertStatus, target: ExpertStatus, reason: str | None,
                            code: str | None) -> None:
    refusal = check_transition(current, target, reason)
    assert (None if refusal is None else refusal.reason) == code


@given(st.sampled_from(list(ExpertStatus)), st.sampled_from(list(ExpertStatus)))
def test_a_move_with_a_reason_is_allowed_exactly_when_listed(current: ExpertStatus,
                                                             target: ExpertStatus) -> None:
    allowed = check_transition(current, target, "理由") is None
    assert allowed == (target in TRANSITIONS[current])
    assert not (current is R and allowed)  # retired is final


def test_days_and_ranges() -> None:
    assert parse_day("2026-12-05") == date(2026, 12, 5)
    for bad in ("2026-13-01", "2026-2-1", "20261205", None, 3, "２０２６-12-05"):
        assert parse_day(bad) is None
    assert parse_range("2026-12-05", None) == DayRange(date(2026, 12, 5), None)
    assert parse_range("2026-12-05", "2026-12-05") == DayRange(date(2026, 12, 5),
                                                               date(2026, 12, 5))
    assert parse_range("2026-12-05", "2026-12-04") is None
    assert parse_range("2026-12-05", "nope") is None


@given(st.dates(date(2000, 1, 1), date(2099, 1, 1)), st.integers(0, 400), st.integers(-5, 405))
def test_a_range_holds_exactly_its_days(start: date, length: int, offset: int) -> None:
    r = DayRange(start, start + timedelta(days=length))
    day = start + timedelta(days=offset)
    assert r.holds(day) == (0 <= offset <= length)
    assert available_on([r], day) == (not 0 <= offset <= length)
    assert DayRange(start, None).holds(day) == (offset >= 0)


def test_availability_with_no_ranges() -> None:
    assert available_on([], date(2026, 1, 1))


def test_a_specialty_covers_its_category_and_below() -> None:
    assert covers("A02", "A020101")
    assert covers("A0201", "A0201")
    assert not covers("A020101", "A02")
    assert not covers("A03", "A0201")


_CODES = st.builds(lambda letter, parts: letter + "".join(parts), st.sampled_from("ABC"),
                   st.lists(st.sampled_from(["01", "02", "10", "99"]), max_size=6))


@given(_CODES, _CODES)
def test_a_specialty_covers_exactly_the_category_and_its_descendants(specialty: str,
                                                                     wanted: str) -> None:
    assert covers(specialty, wanted) == (specialty in (*category_ancestors(wanted), wanted))
