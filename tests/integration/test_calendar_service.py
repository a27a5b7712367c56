"""The calendar service on real SQL: the administrator's days decide a year the package does
not know, and a local day overrides the package."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from bidroom.errors import ValidationError
from market.calendar import CalendarService, CalendarStore

pytestmark = pytest.mark.asyncio


async def test_next_years_days_entered_by_an_administrator_make_dates_final(
        session_factory: Any) -> None:
    calendar = CalendarService(CalendarStore(session_factory))
    guess = await calendar.compute("contract_publication", date(2026, 12, 31))
    assert guess.day == date(2027, 1, 4) and guess.provisional

    await calendar.enter_day(date(2027, 1, 1), working=False, name="元旦 / New Year's Day",
                             actor="admin-1", at_ms=1)
    entered = await calendar.compute("contract_publication", date(2026, 12, 31))
    assert entered.day == date(2027, 1, 5) and entered.provisional

    await calendar.declare_year(2027, complete=True, actor="admin-1", at_ms=2)
    final = await calendar.compute("contract_publication", date(2026, 12, 31))
    assert final.day == date(2027, 1, 5) and not final.provisional

    await calendar.declare_year(2027, complete=False, actor="admin-1", at_ms=3)
    assert (await calendar.compute("contract_publication", date(2026, 12, 31))).provisional


async def test_a_local_day_overrides_the_package_and_can_be_removed(
        session_factory: Any) -> None:
    calendar = CalendarService(CalendarStore(session_factory))
    facts = await calendar.enter_day(date(2026, 10, 10), working=False, name="本地停工",
                                     actor="admin-1", at_ms=1)
    assert not facts.working and facts.source == "administrator"
    assert (await calendar.compute("announcement_period", date(2026, 9, 28))).day == date(
        2026, 10, 12)
    listed = {f.day for f in await calendar.year(2026)}
    assert date(2026, 10, 10) in listed and date(2026, 10, 1) in listed
    restored = await calendar.remove_day(date(2026, 10, 10))
    assert restored.working and restored.source == "chinese-calendar"


async def test_bad_requests_are_refused_with_a_code(session_factory: Any) -> None:
    calendar = CalendarService(CalendarStore(session_factory))
    with pytest.raises(ValidationError) as unknown:
        await calendar.compute("no_such_period", date(2026, 1, 5))
    assert unknown.value.code == "unknown_period"
    with pytest.raises(ValidationError) as far:
        await calendar.enter_day(date(2200, 1, 1), working=True, name="", actor="a", at_ms=1)
    assert far.value.code == "day_out_of_range"
