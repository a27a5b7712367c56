"""The calendar's use cases: what a day is, every statutory date, and the administrator's
entries (one transaction each).

Every module that needs a statutory date asks ``CalendarService.compute`` (or ``data()`` and
the pure ``market.calendar.rules`` functions), so there is one place that knows the days.

Must not import: web.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Final

from bidroom.errors import ValidationError
from market.calendar.rules import (
    PERIODS,
    CalendarData,
    DayFacts,
    StatutoryDate,
    compute,
    day_facts,
)
from market.calendar.source import official_data
from market.calendar.store import CalendarStore

__all__ = ["MAX_YEAR", "MIN_YEAR", "CalendarService"]

MIN_YEAR: Final = 2000
MAX_YEAR: Final = 2100
_MAX_NAME: Final = 200


def _check_day(day: date) -> None:
    _check_year(day.year)


def _check_year(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValidationError(f"日期须在 {MIN_YEAR}–{MAX_YEAR} 年之间 / the day must lie in "
                              f"{MIN_YEAR}–{MAX_YEAR}", code="day_out_of_range")


class CalendarService:
    def __init__(self, store: CalendarStore, official: CalendarData | None = None) -> None:
        self.store = store
        self._official = official if official is not None else official_data()

    async def data(self) -> CalendarData:
        """The package's days with the administrator's on top (read fresh: a few rows a year)."""
        entries, complete = await self.store.entries()
        return replace(self._official, entries=entries, complete_years=complete)

    async def day(self, day: date) -> DayFacts:
        _check_day(day)
        return day_facts(await self.data(), day)

    async def year(self, year: int) -> list[DayFacts]:
        """Every day of ``year`` that is not an ordinary weekday or weekend."""
        _check_year(year)
        data = await self.data()
        first = date(year, 1, 1).toordinal()
        days = (day_facts(data, date.fromordinal(first + i))
                for i in range(date(year + 1, 1, 1).toordinal() - first))
        return [f for f in days if f.name or f.source == "administrator"
                or f.kind in ("holiday", "adjusted_workday")]

    async def compute(self, code: str, start: date) -> StatutoryDate:
        """The statutory date of period ``code`` from ``start`` (``unknown_period``)."""
        if code not in PERIODS:
            raise ValidationError(f"没有这一法定期限 / no statutory period {code!r}",
                                  code="unknown_period", known=sorted(PERIODS))
        _check_day(start)
        return compute(await self.data(), code, start)

    async def enter_day(self, day: date, *, working: bool, name: str, actor: str,
                        at_ms: int) -> DayFacts:
        _check_day(day)
        if len(name) > _MAX_NAME:
            raise ValidationError(f"名称最长 {_MAX_NAME} 字 / a name has at most {_MAX_NAME} "
                                  "characters", code="invalid_field", field="name")
        await self.store.put_day(day, working, name.strip(), actor=actor, at_ms=at_ms)
        return await self.day(day)

    async def remove_day(self, day: date) -> DayFacts:
        _check_day(day)
        await self.store.delete_day(day)
        return await self.day(day)

    async def declare_year(self, year: int, *, complete: bool, actor: str, at_ms: int) -> None:
        """An administrator says every holiday and 调休 day of ``year`` is entered (or takes
        that back): dates across it stop (or start) being provisional."""
        _check_year(year)
        await self.store.put_year(year, complete=complete, actor=actor, at_ms=at_ms)
