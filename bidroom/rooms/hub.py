"""Fan-out: one process's auction rooms, their local connections, live events and catch-up.

Each app process holds the WebSocket connections of its clients. The hub keeps one Redis
pub/sub subscription for all rooms that have local connections, a ``RoomReplica`` per room, and
for every event encodes each audience's message once (per wire format), then hands the same
bytes to every connection of that audience. A supplier's own facts (its rank) go only to it.

Never await the slowest client: connections are sinks with bounded queues (``Sink.offer``
returns False when full, and the hub drops that connection with the slow-consumer close code).

Catch-up: a client that rejoins with the last sequence number it saw gets exactly the missing
events, as the audience messages live clients got (kept in a bounded per-room history), or a
fresh snapshot when the gap is older than that history. The hub repairs its own gaps (a lost
pub/sub message, a Redis reconnect) from the room's stream in Redis, or reloads the room when
the gap has left the stream.

Must not import: market, web.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgpack
from redis.exceptions import RedisError

from bidroom.auction.executor import AuctionExecutor, ResultPublished, RoomEvent, decode_event
from bidroom.protocol import EncodedMessage, WireFormat, encode, message
from bidroom.rooms.views import Audience, RoomReplica, event_view, personal_view, snapshot_view

__all__ = ["CLOSE_SLOW_CONSUMER", "RoomHub", "Sink"]

log = logging.getLogger("bidroom.hub")

CLOSE_SLOW_CONSUMER = 4008
HISTORY = 2_000  # per-room audience messages kept for exact catch-up

ResultDecorator = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
NowMs = Callable[[], Awaitable[int]]


class Sink(Protocol):
    """A connection as the hub sees it (implemented by web's WebSocket handler)."""

    audience: Audience
    supplier_id: str | None
    wire: WireFormat

    def offer(self, frame: bytes | str) -> bool:
        """Queue a frame without waiting; False when the bounded queue is full."""
        ...

    def drop(self, code: int, reason: str) -> None:
        """Close the connection soon (never awaits the client)."""
        ...


@dataclass
class _Room:
    auction_id: str
    replica: RoomReplica | None = None
    sinks: set[Sink] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: list[RoomEvent] = field(default_factory=list)
    last_personal: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    result_view: dict[str, Any] | None = None
    # (seq, {audience: encoded message}) of the latest events, oldest first
    history: deque[tuple[int, dict[Audience, EncodedMessage]]] = field(
        default_factory=lambda: deque(maxlen=HISTORY))


class RoomHub:
    def __init__(
        self,
        executor: AuctionExecutor,
        *,
        now_ms: NowMs,
        decorate_result: ResultDecorator | None = None,
    ) -> None:
        self._executor = executor
        self._now_ms = now_ms
        self._decorate = decorate_result
        self._rooms: dict[str, _Room] = {}
        self._channels: dict[bytes, str] = {}
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._pubsub = self._executor.redis.pubsub()
        self._task = asyncio.create_task(self._listen(), name="bidroom-hub-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()

    def room_count(self) -> int:
        return len(self._rooms)

    def connection_count(self) -> int:
        return sum(len(r.sinks) for r in self._rooms.values())

    # -- joining and leaving -------------------------------------------------------------------

    async def join(self, auction_id: str, sink: Sink, last_seq: int | None = None) -> int:
        """Attach a connection: send catch-up events or a snapshot; return the room's seq."""
        room = self._rooms.get(auction_id)
        if room is None:
            room = self._rooms[auction_id] = _Room(auction_id)
            channel = self._executor.channel(auction_id)
            self._channels[channel.encode()] = auction_id
            await self._pubsub.subscribe(channel)
            self._subscribed.set()
        async with room.lock:
            if room.replica is None:
                await self._load(room)
            assert room.replica is not None
            sent = False
            if last_seq is not None and 0 <= last_seq <= room.replica.seq:
                sent = await self._send_catch_up(room, sink, last_seq)
            if not sent:
                await self._send_snapshot(room, sink)
            room.sinks.add(sink)
            self._send_personal(room, sink, with_bids=not sent, force=True)
            return room.replica.seq

    async def leave(self, auction_id: str, sink: Sink) -> None:
        room = self._rooms.get(auction_id)
        if room is None:
            return
        room.sinks.discard(sink)
        room.last_personal.pop(id(sink), None)
        if not room.sinks:
            del self._rooms[auction_id]
            channel = self._executor.channel(auction_id)
            self._channels.pop(channel.encode(), None)
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe(channel)

    async def refresh(self, auction_id: str) -> None:
        """Pull events this process may have missed (after a local command, say)."""
        room = self._rooms.get(auction_id)
        if room is not None and room.replica is not None:
            async with room.lock:
                await self._catch_up_room(room)

    # -- loading -------------------------------------------------------------------------------

    async def _load(self, room: _Room) -> None:
        room.history.clear()
        snap = await self._executor.snapshot(room.auction_id)
        bids = [b for b in await self._executor.bid_log(room.auction_id)
                if b.seq <= snap.state.seq]
        room.replica = RoomReplica(state=snap.state, bids=bids)
        if snap.result_seq is not None:
            room.replica.result = await self._executor.result_event(room.auction_id)
            room.result_view = await self._result_view(room.replica.result)

    async def _result_view(self, event: ResultPublished | None) -> dict[str, Any] | None:
        if event is None:
            return None
        if self._decorate is None:
            return event.result
        return await self._decorate(event.result)

    async def _send_snapshot(self, room: _Room, sink: Sink) -> None:
        assert room.replica is not None
        now = await self._now_ms()
        view = snapshot_view(room.replica, sink.audience, now, room.result_view)
        self._offer(sink, encode(message("snapshot", auction_id=room.auction_id,
                                         seq=room.replica.seq, room=view), sink.wire))

    async def _send_catch_up(self, room: _Room, sink: Sink, last_seq: int) -> bool:
        """Send exactly the events after last_seq from the history, or return False."""
        assert room.replica is not None
        missed = room.replica.seq - last_seq
        if missed and (not room.history or room.history[0][0] > last_seq + 1):
            return False
        for seq, by_audience in room.history:
            if seq > last_seq:
                self._offer(sink, by_audience[sink.audience].frame(sink.wire))
        self._offer(sink, encode(message("caught_up", auction_id=room.auction_id,
                                         seq=room.replica.seq, missed=missed), sink.wire))
        return True

    # -- live events ---------------------------------------------------------------------------

    async def _listen(self) -> None:
        while True:
            try:
                if not self._channels:
                    self._subscribed.clear()
                    await self._subscribed.wait()
                    continue
                msg = await self._pubsub.get_message(ignore_subscribe_messages=True,
                                                     timeout=1.0)
                if msg is None or msg.get("type") != "message":
                    continue
                auction_id = self._channels.get(msg["channel"])
                if auction_id is not None:
                    await self._on_payload(auction_id, msg["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("pub/sub failed (%s); resubscribing and catching up", exc)
                await self._resubscribe()
            except Exception:
                log.exception("fan-out failed on a message; continuing")

    async def _resubscribe(self) -> None:
        while True:
            try:
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.aclose()
                self._pubsub = self._executor.redis.pubsub()
                channels = [self._executor.channel(a) for a in self._rooms]
                if channels:
                    await self._pubsub.subscribe(*channels)
                for room in list(self._rooms.values()):
                    async with room.lock:
                        await self._catch_up_room(room)
                return
            except (RedisError, OSError) as exc:
                log.warning("Redis unavailable for fan-out (%s); retrying", exc)
                await asyncio.sleep(0.5)

    async def _on_payload(self, auction_id: str, payload: bytes) -> None:
        room = self._rooms.get(auction_id)
        if room is None:
            return
        try:
            event = decode_event(payload)
        except (ValueError, KeyError, msgpack.UnpackException):
            log.error("undecodable event on %s", auction_id)
            return
        # The lock, not the replica, decides: a join may be loading the room right now, and
        # this event then either is in its snapshot or follows it.
        async with room.lock:
            if room.replica is None:
                return
            if event.seq <= room.replica.seq:
                return  # already applied (catch-up raced with pub/sub)
            if event.seq != room.replica.seq + 1:
                await self._catch_up_room(room)
                return
            await self._apply_and_fan_out(room, event)

    async def _catch_up_room(self, room: _Room) -> None:
        assert room.replica is not None
        events = await self._executor.events_after(room.auction_id, room.replica.seq)
        if events is None:
            await self._load(room)
            for sink in list(room.sinks):
                await self._send_snapshot(room, sink)
                self._send_personal(room, sink, with_bids=True, force=True)
            return
        for event in events:
            if event.seq == room.replica.seq + 1:
                await self._apply_and_fan_out(room, event)

    async def _apply_and_fan_out(self, room: _Room, event: RoomEvent) -> None:
        assert room.replica is not None
        room.replica.apply(event)
        if isinstance(event, ResultPublished):
            room.result_view = await self._result_view(event)
        by_audience = {
            audience: EncodedMessage(message(
                "event", auction_id=room.auction_id, seq=event.seq,
                event=event_view(event, room.replica.state, audience, room.result_view)))
            for audience in Audience
        }
        room.history.append((event.seq, by_audience))
        for sink in list(room.sinks):
            self._offer(sink, by_audience[sink.audience].frame(sink.wire))
        for sink in list(room.sinks):
            if sink.supplier_id is not None:
                self._send_personal(room, sink, with_bids=False, force=False)

    def _send_personal(self, room: _Room, sink: Sink, *, with_bids: bool, force: bool) -> None:
        if sink.supplier_id is None or room.replica is None:
            return
        view = personal_view(room.replica, sink.supplier_id, with_bids=with_bids)
        key = (view["rank"], view["best_fen"], view["bids"], view["max_allowed_fen"],
               view["signed_in"], view["invited"])
        if not force and room.last_personal.get(id(sink)) == key:
            return
        room.last_personal[id(sink)] = key
        self._offer(sink, encode(message("you", **view), sink.wire))

    def _offer(self, sink: Sink, frame: bytes | str) -> None:
        if not sink.offer(frame):
            sink.drop(CLOSE_SLOW_CONSUMER, "slow consumer: outgoing queue full")
            for room in self._rooms.values():
                room.sinks.discard(sink)
