"""The administrator's calendar days in SQL: local holidays and working days, and next year's
State Council days entered before the holiday package knows them (``calendar_days``), and the
years an administrator declared fully entered (``calendar_years``).

Must not import: web.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Boolean, Integer, String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bidroom.stores.sql import Base, sql_errors
from market.calendar.rules import DayEntry

__all__ = ["CalendarDayRow", "CalendarStore", "CalendarYearRow"]


class CalendarDayRow(Base):
    """One administrator's day: ``working`` says whether it is worked; ``name`` why."""

    __tablename__ = "calendar_days"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # ISO date, Beijing day
    working: Mapped[bool] = mapped_column(Boolean, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    entered_by: Mapped[str] = mapped_column(String(64), nullable=False)
    entered_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)


class CalendarYearRow(Base):
    """A year an administrator declared complete: every holiday and 调休 day of it is entered."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    entered_by: Mapped[str] = mapped_column(String(64), nullable=False)
    entered_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)


class CalendarStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def entries(self) -> tuple[dict[date, DayEntry], frozenset[int]]:
        """Every administrator's day and every year declared complete."""
        with sql_errors("read the calendar"):
            async with self._sessions() as session:
                days = (await session.scalars(select(CalendarDayRow))).all()
                years = (await session.scalars(select(CalendarYearRow.year))).all()
        return ({date.fromisoformat(r.day): DayEntry(r.working, r.name) for r in days},
                frozenset(years))

    async def put_day(self, day: date, working: bool, name: str, *, actor: str,
                      at_ms: int) -> None:
        with sql_errors("enter a calendar day"):
            async with self._sessions.begin() as session:
                row = await session.get(CalendarDayRow, day.isoformat())
                if row is None:
                    session.add(CalendarDayRow(day=day.isoformat(), working=working, name=name,
                                               entered_by=actor, entered_at_ms=at_ms))
                else:
                    row.working, row.name = working, name
                    row.entered_by, row.entered_at_ms = actor, at_ms

    async def delete_day(self, day: date) -> bool:
        with sql_errors("remove a calendar day"):
            async with self._sessions.begin() as session:
                result = await session.execute(
                    delete(CalendarDayRow).where(CalendarDayRow.day == day.isoformat()))
        return bool(getattr(result, "rowcount", 0))

    async def put_year(self, year: int, *, complete: bool, actor: str, at_ms: int) -> None:
        with sql_errors("declare a calendar year"):
            async with self._sessions.begin() as session:
                row = await session.get(CalendarYearRow, year)
                if complete and row is None:
                    session.add(CalendarYearRow(year=year, entered_by=actor,
                                                entered_at_ms=at_ms))
                elif not complete and row is not None:
                    await session.delete(row)
