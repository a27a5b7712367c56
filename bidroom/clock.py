"""Clocks. Server time is authoritative; on the hot path it is Redis' own clock (TIME inside
the Lua script). Everything else asks a ``Clock``, so tests inject a ``ManualClock`` instead of
sleeping. Times are integer milliseconds since the Unix epoch, UTC.

Must not import: market, web.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


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
