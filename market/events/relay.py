"""The relay: outbox rows → one Redis Stream, in outbox order, at least once.

One pass (``relay_once``) takes a lease in Redis so that of several server processes one relays
at a time (the order on the stream stays the outbox order), reads the oldest unrelayed rows,
``XADD``s them and marks them relayed. A crash between the ``XADD`` and the mark puts the same
events on the stream again on the next pass: consumers deduplicate by ``event_id``. The stream
is trimmed approximately to ``maxlen`` entries; the outbox keeps every event.

Must not import: web.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidroom.errors import BidroomError
from bidroom.stores.redis import RedisClient, store_errors
from bidroom.stores.sql import sql_errors
from market.events.outbox import OutboxRow

__all__ = ["EVENTS_STREAM", "Relay", "encode_entry"]

log = logging.getLogger("bidroom.events")

#: The one stream every module's events go through (one key: one Cluster slot, one order).
EVENTS_STREAM: Final = "bidroom:events"


def encode_entry(row: OutboxRow) -> dict[bytes, bytes]:
    return {
        b"event_id": row.event_id.encode(),
        b"kind": row.kind.encode(),
        b"aggregate": row.aggregate.encode(),
        b"at_ms": str(row.at_ms).encode(),
        b"payload": json.dumps(row.payload, ensure_ascii=False, sort_keys=True).encode(),
        b"outbox_id": str(row.id).encode(),
    }


class Relay:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], redis: RedisClient, *,
                 now_ms: Callable[[], Awaitable[int]], batch: int = 200,
                 maxlen: int = 1_000_000, lease_ms: int = 5_000,
                 stream: str = EVENTS_STREAM) -> None:
        self._sessions = sessions
        self._redis = redis
        self._now_ms = now_ms
        self._batch = batch
        self._maxlen = maxlen
        self._lease_ms = lease_ms
        self._stream = stream
        self._lease_key = f"{stream}:relay-lease"
        self._me = uuid.uuid4().hex.encode()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def relay_once(self) -> int:
        """Relay what is waiting (up to a batch); the number of events put on the stream, or 0
        when another process holds the lease."""
        with store_errors("take the relay lease"):
            held = await self._redis.set(self._lease_key, self._me, nx=True, px=self._lease_ms)
            if not held and await self._redis.get(self._lease_key) != self._me:
                return 0
            await self._redis.pexpire(self._lease_key, self._lease_ms)
        with sql_errors("read the outbox"):
            async with self._sessions() as session:
                rows = (await session.scalars(
                    select(OutboxRow).where(OutboxRow.relayed_at_ms.is_(None))
                    .order_by(OutboxRow.id).limit(self._batch))).all()
        if not rows:
            return 0
        with store_errors("put events on the stream"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for row in rows:
                    pipe.xadd(self._stream, encode_entry(row),  # type: ignore[arg-type]
                              maxlen=self._maxlen, approximate=True)
                await pipe.execute()
        now = await self._now_ms()
        with sql_errors("mark events relayed"):
            async with self._sessions.begin() as session:
                await session.execute(update(OutboxRow)
                                      .where(OutboxRow.id.in_([r.id for r in rows]))
                                      .values(relayed_at_ms=now))
        return len(rows)

    def poke(self) -> None:
        """Something was emitted: relay without waiting for the next interval."""
        self._wake.set()

    async def run(self, interval_s: float = 0.5) -> None:
        """Relay until cancelled: a pass per ``interval_s`` or ``poke``, at once again while
        a pass fills its batch."""
        while True:
            try:
                moved = await self.relay_once()
            except BidroomError as exc:
                log.warning("event relay pass failed: %s", exc.message)
                moved = 0
            if moved >= self._batch:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval_s):
                    await self._wake.wait()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="event-relay")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
