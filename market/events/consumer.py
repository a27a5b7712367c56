"""Consumers: a module's handler reads the events stream through a Redis consumer group.

Delivery is at least once; handling is once. For each entry the consumer opens one SQL
transaction, skips the event if ``handled_events`` already has it for this group, else calls
the handler inside that transaction and records the event there too, commits, and only then
``XACK``s. A consumer killed anywhere in that sequence leaves the entry pending: the next
consumer of the group (or the same one restarted) claims it with ``XAUTOCLAIM`` once it has
been idle ``claim_idle_ms`` and handles it, and the committed ``handled_events`` row makes a
second delivery a no-op. A handler that raises leaves the entry pending too (retried after
``claim_idle_ms``); after ``max_deliveries`` it is acknowledged and logged as dead, so one bad
event cannot stop the group.

Must not import: web.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import redis.exceptions
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidroom.errors import BidroomError
from bidroom.stores.redis import RedisClient, store_errors
from bidroom.stores.sql import sql_errors
from market.events.outbox import DomainEvent, HandledEventRow
from market.events.relay import EVENTS_STREAM

__all__ = ["Consumer", "Handler", "decode_entry"]

log = logging.getLogger("bidroom.events")

#: A handler's effects go in the session it is given; it must not commit it.
Handler = Callable[[AsyncSession, DomainEvent], Awaitable[None]]

_MAX_DELIVERIES: Final = 5


def decode_entry(fields: dict[bytes, bytes]) -> DomainEvent:
    payload: Any = json.loads(fields[b"payload"])
    return DomainEvent(fields[b"event_id"].decode(), fields[b"kind"].decode(),
                       fields[b"aggregate"].decode(), int(fields[b"at_ms"]), payload)


class Consumer:
    """One member of consumer group ``group``; ``kinds`` filters what the handler sees (the
    rest is acknowledged unhandled)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], redis: RedisClient, *,
                 group: str, handler: Handler, now_ms: Callable[[], Awaitable[int]],
                 kinds: Sequence[str] | None = None, name: str | None = None,
                 claim_idle_ms: int = 30_000, batch: int = 50, block_ms: int = 1_000,
                 max_deliveries: int = _MAX_DELIVERIES, stream: str = EVENTS_STREAM) -> None:
        self._sessions = sessions
        self._redis = redis
        self.group = group
        self.name = name or f"{group}-{uuid.uuid4().hex[:8]}"
        self._handler = handler
        self._now_ms = now_ms
        self._kinds = frozenset(kinds) if kinds is not None else None
        self._claim_idle_ms = claim_idle_ms
        self._batch = batch
        self._block_ms = block_ms
        self._max_deliveries = max_deliveries
        self._stream = stream
        self._ready = False

    async def ensure_group(self) -> None:
        """Create the group (from the stream's beginning) if it does not exist yet."""
        if self._ready:
            return
        with store_errors("create the consumer group"):
            try:
                await self._redis.xgroup_create(self._stream, self.group, id="0", mkstream=True)
            except redis.exceptions.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._ready = True

    async def _handle(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        event = decode_entry(fields)
        if self._kinds is None or event.kind in self._kinds:
            with sql_errors(f"handle {event.kind}"):
                async with self._sessions.begin() as session:
                    done = await session.scalar(
                        select(HandledEventRow.id).where(
                            HandledEventRow.consumer_group == self.group,
                            HandledEventRow.event_id == event.event_id))
                    if done is None:
                        await self._handler(session, event)
                        session.add(HandledEventRow(consumer_group=self.group,
                                                    event_id=event.event_id,
                                                    handled_at_ms=await self._now_ms()))
        with store_errors("acknowledge an event"):
            await self._redis.xack(self._stream, self.group, entry_id)

    async def _deliveries(self, entry_id: bytes) -> int:
        with store_errors("read pending deliveries"):
            pending = await self._redis.xpending_range(self._stream, self.group, min=entry_id,
                                                       max=entry_id, count=1)
        return int(pending[0]["times_delivered"]) if pending else 0

    async def _handle_all(self, entries: Sequence[tuple[bytes, dict[bytes, bytes]]]) -> int:
        handled = 0
        for entry_id, fields in entries:
            if not fields:  # trimmed from the stream while pending: nothing to handle
                with store_errors("acknowledge a trimmed event"):
                    await self._redis.xack(self._stream, self.group, entry_id)
                continue
            try:
                await self._handle(entry_id, fields)
                handled += 1
            except (BidroomError, ValueError, KeyError) as exc:
                times = await self._deliveries(entry_id)
                if times >= self._max_deliveries:
                    log.error("event %s dropped by %s after %d deliveries: %s",
                              entry_id, self.group, times, exc)
                    with store_errors("acknowledge a dead event"):
                        await self._redis.xack(self._stream, self.group, entry_id)
                else:
                    log.warning("event %s failed in %s (delivery %d): %s",
                                entry_id, self.group, times, exc)
                    break  # keep order: the rest waits until this one is retried
        return handled

    async def claim_stale(self) -> int:
        """Handle entries another (dead) consumer of the group left pending."""
        await self.ensure_group()
        start: bytes | str = "0-0"
        handled = 0
        while True:
            with store_errors("claim pending events"):
                reply = await self._redis.xautoclaim(
                    self._stream, self.group, self.name, min_idle_time=self._claim_idle_ms,
                    start_id=start, count=self._batch)
            start, entries = reply[0], reply[1]
            handled += await self._handle_all(entries)
            if start in (b"0-0", "0-0") or not entries:
                return handled

    async def poll(self, *, block_ms: int | None = None) -> int:
        """One read of new entries (blocking up to ``block_ms``); how many were handled."""
        await self.ensure_group()
        block = self._block_ms if block_ms is None else block_ms
        with store_errors("read events"):
            reply: Any = await self._redis.xreadgroup(self.group, self.name, {self._stream: ">"},
                                                 count=self._batch,
                                                 block=block if block > 0 else None)
        entries: list[tuple[bytes, dict[bytes, bytes]]] = [
            entry for _, stream_entries in (reply or []) for entry in stream_entries]
        return await self._handle_all(entries)

    async def run(self) -> None:
        """Consume until cancelled: claim what dead consumers left, then read new entries."""
        while True:
            try:
                await self.claim_stale()
                await self.poll()
            except BidroomError as exc:
                log.warning("consumer %s: %s", self.name, exc.message)
                await asyncio.sleep(1.0)
