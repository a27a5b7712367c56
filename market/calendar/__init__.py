"""The statutory calendar: Chinese working days (public holidays and 调休 from
``chinese-calendar``, local and next-year days entered by an administrator) and every
statutory period the procurement law counts, each with its article.

Must not import: web.
"""

from __future__ import annotations

from market.calendar.rules import (
    BEIJING,
    PERIODS,
    CalendarData,
    DayEntry,
    DayFacts,
    Period,
    StatutoryDate,
    compute,
    day_facts,
)
from market.calendar.service import CalendarService
from market.calendar.store import CalendarStore

__all__ = [
    "BEIJING",
    "PERIODS",
    "CalendarData",
    "CalendarService",
    "CalendarStore",
    "DayEntry",
    "DayFacts",
    "Period",
    "StatutoryDate",
    "compute",
    "day_facts",
]
