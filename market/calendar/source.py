"""The holiday package's days: public holidays and make-up working days (调休) from
``chinese-calendar`` (maintained from the State Council's yearly notices, 2004 onwards).

The package knows the years it was released with (1.11: up to 2026); the State Council publishes
the next year's days each winter, so for a later year the administrator's entries
(``market.calendar.store``) take over until a newer package knows it. Nothing here reads a clock.

Must not import: web.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Final

import chinese_calendar

from market.calendar.rules import CalendarData

__all__ = ["HOLIDAY_NAMES", "official_data"]

#: The package names holidays in English; pages show Chinese first.
HOLIDAY_NAMES: Final = {
    "New Year's Day": "元旦 / New Year's Day",
    "Spring Festival": "春节 / Spring Festival",
    "Tomb-sweeping Day": "清明节 / Tomb-sweeping Day",
    "Labour Day": "劳动节 / Labour Day",
    "Dragon Boat Festival": "端午节 / Dragon Boat Festival",
    "National Day": "国庆节 / National Day",
    "Mid-autumn Festival": "中秋节 / Mid-autumn Festival",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日 / Anti-Fascist 70th Day",
}


def _named(days: dict[date, object]) -> dict[date, str]:
    return {day: HOLIDAY_NAMES.get(str(name), str(name)) for day, name in days.items()}


@cache
def official_data() -> CalendarData:
    """The package's days as calendar data (no administrator entries)."""
    holidays: dict[date, object] = dict(chinese_calendar.holidays)
    workdays: dict[date, object] = dict(chinese_calendar.workdays)
    years = {day.year for day in holidays} | {day.year for day in workdays}
    return CalendarData(
        official_years=frozenset(range(min(years), max(years) + 1)),
        official_holidays=_named(holidays),
        official_workdays=_named(workdays),
    )
