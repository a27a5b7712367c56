"""A background pass that runs when something is due or when woken: the shape shared by the
auction closer and the opening runner.

``run_once()`` does the due work and returns the next due instant (server ms) or None; the loop
sleeps until then, at most ``poll_ms`` (other processes may add work it is not woken for), and
a failed pass is logged and retried — a store outage must never end the loop.

Must not import: market, web.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from bidroom.errors import BidroomError

__all__ = ["DuePass"]

log = logging.getLogger("bidroom.schedule")


class DuePass(abc.ABC):
    def __init__(self, *, now_ms: Callable[[], Awaitable[int]], poll_ms: int, name: str) -> None:
        self._now_ms = now_ms
        self._poll_ms = poll_ms
        self._name = name
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @abc.abstractmethod
    async def run_once(self) -> int | None:
        """Do what is due now; return the next due instant (None: nothing is waiting)."""

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self._name)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """End the loop and wait until it has ended.

        The task is cancelled until it is done, and a flag ends the loop at its next turn
        anyway: a cancellation can be lost when it lands just as what the task awaits
        completes (Python 3.11's ``asyncio.wait_for`` then returns the result; a test hung on
        ``closer.stop()`` that way).
        """
        task = self._task
        if task is None:
            return
        self._stopping = True
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: the loop ended with %r", self._name, task.exception())

    async def _run(self) -> None:
        while not self._stopping:
            try:
                next_due = await self.run_once()
                now = await self._now_ms()
                wait_ms = self._poll_ms if next_due is None else max(
                    0, min(self._poll_ms, next_due - now))
            except asyncio.CancelledError:
                raise
            except (BidroomError, RedisError, OSError) as exc:
                log.warning("%s: pass failed (%s); retrying", self._name, exc)
                wait_ms = self._poll_ms
            except Exception:
                log.exception("%s: pass crashed; retrying", self._name)
                wait_ms = self._poll_ms
            self._wake.clear()
            if self._stopping:
                return
            # asyncio.timeout, not wait_for: it never turns a cancellation into a result.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_ms / 1000):
                    await self._wake.wait()
