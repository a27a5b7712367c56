"""The statutory calendar's rules: worked cases on the real 2026 calendar (a holiday week, 调休
Saturdays, a year nobody has entered) and properties that hold for any calendar."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.calendar.rules import (
    PERIODS,
    CalendarData,
    DayEntry,
    DayKind,
    add_calendar_days,
    add_working_days,
    beijing_day,
    compute,
    day_facts,
    day_start_ms,
    earliest_deadline_after_correction,
    next_working_day,
    subtract_working_days,
    working_days_between,
)
from market.calendar.source import official_data

OFFICIAL = official_data()


def test_the_package_knows_2026_and_its_national_day_make_up_days() -> None:
    assert 2026 in OFFICIAL.official_years
    assert day_facts(OFFICIAL, date(2026, 10, 1)).kind is DayKind.HOLIDAY
    assert day_facts(OFFICIAL, date(2026, 10, 1)).name.startswith("国庆节")
    saturday = day_facts(OFFICIAL, date(2026, 10, 10))
    assert saturday.working and saturday.kind is DayKind.ADJUSTED_WORKDAY


@pytest.mark.parametrize(("code", "start", "expected", "why"), [
    # O87 16: 5 working days from Mon 28 Sep 2026: 29, 30 Sep; 1-7 Oct National Day; 8, 9 Oct;
    # Sat 10 Oct is a 调休 working day and the fifth.
    ("announcement_period", date(2026, 9, 28), date(2026, 10, 10), "调休 Saturday counts"),
    # GPL 35: 20 days from 28 Sep end on Sun 18 Oct, which rolls to Mon 19 Oct (O87 86).
    ("bid_deadline", date(2026, 9, 28), date(2026, 10, 19), "weekend rolls"),
    # GPL 35: 20 days from Fri 11 Sep end on 1 Oct, inside the holiday week: Thu 8 Oct.
    ("bid_deadline", date(2026, 9, 11), date(2026, 10, 8), "holiday week rolls"),
    # GPL 52: 7 working days from Thu 12 Feb 2026 across the Spring Festival: 13 Feb, Sat 14 Feb
    # (调休), 24-27 Feb, Sat 28 Feb (调休).
    ("challenge", date(2026, 2, 12), date(2026, 2, 28), "Spring Festival and two 调休 days"),
    # EXP 14: experts for an evaluation on Thu 8 Oct are drawn from Tue 29 Sep at the earliest.
    ("expert_draw_earliest", date(2026, 10, 8), date(2026, 9, 29), "counted backwards"),
    # O87 69: the award announced within 2 working days of Wed 30 Sep: 8 and 9 Oct.
    ("award_announcement", date(2026, 9, 30), date(2026, 10, 9), "holiday week skipped"),
    # GPL 46: 30 days from 1 Dec 2026 end on Thu 31 Dec, a working day.
    ("contract_signing", date(2026, 12, 1), date(2026, 12, 31), "no roll needed"),
])
def test_statutory_dates_match_the_statute_on_the_2026_calendar(
        code: str, start: date, expected: date, why: str) -> None:
    result = compute(OFFICIAL, code, start)
    assert result.day == expected, why
    assert not result.provisional and result.warning is None
    assert result.period is PERIODS[code]


def test_a_correction_too_close_to_the_deadline_moves_it_15_days_on() -> None:
    # O87 27: deadline Mon 19 Oct; a bid-affecting correction on Fri 9 Oct needs 15 days:
    # Sat 24 Oct, rolled to Mon 26 Oct.
    moved = earliest_deadline_after_correction(OFFICIAL, date(2026, 10, 19), date(2026, 10, 9))
    assert moved.day == date(2026, 10, 26)
    kept = earliest_deadline_after_correction(OFFICIAL, date(2026, 10, 19), date(2026, 9, 30))
    assert kept.day == date(2026, 10, 19)
    assert kept.period is PERIODS["correction_notice"]


def test_a_date_across_a_year_nobody_entered_is_provisional_with_a_warning() -> None:
    # Reg 50 from Thu 31 Dec 2026: the package does not know 2027.
    result = compute(OFFICIAL, "contract_publication", date(2026, 12, 31))
    assert result.day == date(2027, 1, 4)  # Fri 1 Jan counted as a working day: a guess
    assert result.provisional and result.unknown_years == (2027,)
    assert result.warning is not None and "2027" in result.warning
    assert "provisional" in result.warning


def test_the_administrators_days_decide_a_year_the_package_does_not_know() -> None:
    entered = CalendarData(
        official_years=OFFICIAL.official_years,
        official_holidays=OFFICIAL.official_holidays,
        official_workdays=OFFICIAL.official_workdays,
        entries={date(2027, 1, 1): DayEntry(False, "元旦 / New Year's Day")},
    )
    still_guessing = compute(entered, "contract_publication", date(2026, 12, 31))
    assert still_guessing.day == date(2027, 1, 5)
    assert still_guessing.provisional  # the rest of 2027 is not declared entered
    complete = CalendarData(**{**_fields(entered), "complete_years": frozenset({2027})})
    final = compute(complete, "contract_publication", date(2026, 12, 31))
    assert final.day == date(2027, 1, 5) and not final.provisional and final.warning is None


def test_an_administrators_local_day_wins_over_the_package() -> None:
    local = CalendarData(**{**_fields(OFFICIAL),
                            "entries": {date(2026, 9, 29): DayEntry(False, "本地停工")}})
    facts = day_facts(local, date(2026, 9, 29))
    assert not facts.working and facts.source == "administrator"
    # 5 working days from 28 Sep now end on Mon 12 Oct, not Sat 10 Oct.
    assert compute(local, "announcement_period", date(2026, 9, 28)).day == date(2026, 10, 12)


def test_skipped_days_name_the_holidays_passed_over() -> None:
    result = compute(OFFICIAL, "bid_deadline", date(2026, 9, 11))
    assert [f.day for f in result.skipped] == [date(2026, 10, d) for d in range(1, 8)]
    # the package lists the weekend inside the holiday week as holiday too
    assert {f.kind for f in result.skipped} == {DayKind.HOLIDAY}
    assert all(f.name.startswith("国庆节") for f in result.skipped)


def test_beijing_days_of_instants() -> None:
    # 2026-10-07 16:00 UTC is 8 Oct 00:00 in Beijing.
    ms = day_start_ms(date(2026, 10, 8))
    assert beijing_day(ms) == date(2026, 10, 8)
    assert beijing_day(ms - 1) == date(2026, 10, 7)
    assert ms == 1791388800000


def _fields(data: CalendarData) -> dict[str, object]:
    return {"official_years": data.official_years, "official_holidays": data.official_holidays,
            "official_workdays": data.official_workdays, "entries": data.entries,
            "complete_years": data.complete_years}


# ------------------------------------------------------------------ properties, any calendar

_DAYS = st.dates(min_value=date(2025, 6, 1), max_value=date(2027, 6, 30))
_ENTRIES = st.dictionaries(_DAYS, st.builds(DayEntry, st.booleans(), st.just("x")), max_size=40)


@st.composite
def calendars(draw: st.DrawFn) -> CalendarData:
    return CalendarData(**{**_fields(OFFICIAL), "entries": draw(_ENTRIES),
                           "complete_years": draw(st.frozensets(st.just(2027)))})


@settings(max_examples=200, deadline=None)
@given(calendars(), _DAYS, st.integers(0, 40))
def test_n_working_days_later_is_a_working_day_with_exactly_n_between(
        data: CalendarData, start: date, n: int) -> None:
    result = add_working_days(data, start, n)
    assert working_days_between(data, start, result.day) == n
    if n:
        assert result.day > start and day_facts(data, result.day).working


@settings(max_examples=200, deadline=None)
@given(calendars(), _DAYS, st.integers(1, 40))
def test_n_working_days_before_is_a_working_day_with_exactly_n_between(
        data: CalendarData, end: date, n: int) -> None:
    result = subtract_working_days(data, end, n)
    assert result.day < end and day_facts(data, result.day).working
    # the counted days are [result, end): end itself is not counted
    one = timedelta(days=1)
    assert working_days_between(data, result.day - one, end - one) == n


@settings(max_examples=200, deadline=None)
@given(calendars(), _DAYS, st.integers(0, 40))
def test_a_calendar_day_period_ends_on_the_first_working_day_from_its_last_day(
        data: CalendarData, start: date, n: int) -> None:
    result = add_calendar_days(data, start, n)
    last = start + timedelta(days=n)
    assert result.day >= last and day_facts(data, result.day).working
    assert all(not day_facts(data, last + timedelta(days=i)).working
               for i in range((result.day - last).days))
    assert next_working_day(data, last).day == result.day


@settings(max_examples=200, deadline=None)
@given(calendars(), _DAYS, _DAYS, st.sampled_from(sorted(PERIODS)))
def test_a_later_start_never_gives_an_earlier_date(
        data: CalendarData, a: date, b: date, code: str) -> None:
    first, second = sorted((a, b))
    assert compute(data, code, first).day <= compute(data, code, second).day


@settings(max_examples=200, deadline=None)
@given(calendars(), _DAYS, st.sampled_from(sorted(PERIODS)))
def test_a_date_is_provisional_exactly_when_it_walks_across_an_unknown_year(
        data: CalendarData, start: date, code: str) -> None:
    result = compute(data, code, start)
    lo, hi = sorted((start, result.day))
    walked = {lo.year, hi.year} | {y for y in range(lo.year, hi.year + 1)}
    unknown = {y for y in walked if not data.known(y)}
    # a walk that stays inside known years is never provisional ...
    if not unknown:
        assert not result.provisional
    # ... and every year it calls unknown is one
    assert set(result.unknown_years) <= unknown
    assert result.provisional == bool(result.unknown_years)
