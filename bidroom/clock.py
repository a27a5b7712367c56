"""Clocks. Server time is authoritative; on the hot path it is Redis' own clock (TIME inside
the Lua script). Everything else asks a ``Clock``, so tests inject a ``ManualClock`` instead of
sleeping. Times are integer milliseconds since the Unix epoch, UTC.

On screen (pages, the terminal, the opening record) a person reads Beijing time: ``beijing_time``
formats an instant in Asia/Shanghai (UTC+8 all year: China has no daylight saving time, so the
fixed offset needs no time-zone database) and ``TIME_LABEL`` names the zone next to it.

Must not import: market, web.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Protocol

__all__ = ["BEIJING", "TIME_LABEL", "Clock", "ManualClock", "SystemClock", "beijing_time"]

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
TIME_LABEL = "北京时间 / Beijing time (UTC+8)"


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock a test moves by hand."""

    def __init__(self, now_ms: int) -> None:
        self._now = now_ms

    def now_ms(self) -> int:
        return self._now

    def set(self, now_ms: int) -> None:
        self._now = now_ms

    def advance(self, ms: int) -> None:
        self._now += ms


def beijing_time(ms: int, *, date: bool = True) -> str:
    """``ms`` (since the epoch, UTC) in Beijing time: ``2030-03-18 01:46:40``, or ``01:46:40``
    with ``date=False``. No zone is written: put ``TIME_LABEL`` (or "北京时间") beside it."""
    moment = datetime.fromtimestamp(ms / 1000, tz=BEIJING)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")
