"""One Redis pub/sub connection per process for many channels, kept alive across failures.

The room hub and the opening hall both keep a subscription per live room (auction or opening)
with local connections, on one pub/sub connection, and hand each message to a callback. This
class is that shared part: subscribe and unsubscribe one at a time (redis-py opens the pub/sub
connection lazily and without a lock, so concurrent first subscribes, on Redis Cluster to a node
not yet connected to, would each open one and lose all but the last's subscriptions), listen
while there is anything to listen to, and after a failure (a Redis restart, a failover) open a
new connection, subscribe every channel again and call ``on_resubscribed`` so the owner can
repair what it may have missed from its durable log. Messages lost meanwhile are the owner's to
recover (the room stream, the opening log); pub/sub is only the doorbell.

Must not import: market, web.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from bidroom.stores.redis import RedisClient

__all__ = ["ChannelListener"]

log = logging.getLogger("bidroom.channels")

OnMessage = Callable[[str, bytes], Awaitable[None]]
OnResubscribed = Callable[[], Awaitable[None]]
RETRY_S = 0.5


class ChannelListener:
    """Channels by name, each with the key its owner knows it by (an auction or opening id)."""

    def __init__(self, redis: RedisClient, *, name: str, on_message: OnMessage,
                 on_resubscribed: OnResubscribed | None = None) -> None:
        self._redis = redis
        self._name = name
        self._on_message = on_message
        self._on_resubscribed = on_resubscribed
        self._channels: dict[bytes, str] = {}
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._subscribing = asyncio.Lock()

    async def start(self) -> None:
        # A cluster client learns its slot map on its first command; a pub/sub subscribe needs
        # it already (redis-py looks the channel's slot up), so learn it now if Redis is there.
        with contextlib.suppress(RedisError, OSError):
            await self._redis.initialize()
        self._pubsub = self._redis.pubsub()
        self._task = asyncio.create_task(self._listen(), name=f"bidroom-{self._name}-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()

    async def add(self, channel: str, key: str) -> None:
        """Subscribe (raises the driver's error if Redis is down; the owner reports it)."""
        self._channels[channel.encode()] = key
        async with self._subscribing:
            await self._pubsub.subscribe(channel)
        self._subscribed.set()

    async def remove(self, channel: str) -> None:
        self._channels.pop(channel.encode(), None)
        with contextlib.suppress(RedisError, OSError):
            async with self._subscribing:
                await self._pubsub.unsubscribe(channel)

    async def _listen(self) -> None:
        while True:
            try:
                if not self._channels:
                    self._subscribed.clear()
                    await self._subscribed.wait()
                    continue
                if self._pubsub.connection is None:  # no subscribe has succeeded on it yet
                    if self._subscribing.locked():  # one is under way: wait for it
                        async with self._subscribing:
                            continue
                    raise RedisConnectionError("the pub/sub connection is not open")
                msg = await self._pubsub.get_message(ignore_subscribe_messages=True,
                                                     timeout=1.0)
                if msg is None or msg.get("type") != "message":
                    continue
                key = self._channels.get(msg["channel"])
                if key is not None:
                    await self._on_message(key, msg["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("%s pub/sub failed (%s); resubscribing", self._name, exc)
                await self._resubscribe()
            except Exception:
                log.exception("%s: handling a pub/sub message failed; continuing", self._name)

    async def _resubscribe(self) -> None:
        while True:
            try:
                async with self._subscribing:
                    with contextlib.suppress(RedisError, OSError):
                        await self._pubsub.aclose()
                    self._pubsub = self._redis.pubsub()
                    channels = [c.decode() for c in self._channels]
                    if channels:
                        await self._pubsub.subscribe(*channels)
                if self._on_resubscribed is not None:
                    await self._on_resubscribed()
                return
            except (RedisError, OSError) as exc:
                log.warning("Redis unavailable for %s pub/sub (%s); retrying", self._name, exc)
                await asyncio.sleep(RETRY_S)
