"""Fan-out: one process's auction rooms, their local connections, live events and catch-up.

Each app process holds the WebSocket connections of its clients. The hub keeps one Redis
pub/sub subscription for all rooms that have local connections, a ``RoomReplica`` per room, and
for every event encodes each audience's message once (per wire format), then hands the same
bytes to every connection of that audience. A supplier's own facts (its rank) go only to it.

Never await the slowest client: connections are sinks with bounded send buffers (``Sink.offer``
returns False when full, and ``offer_or_drop`` closes that connection with the slow-consumer
code; the opening hall uses it too).

Latest value wins for a client that falls behind (PERFORMANCE.md: coalesce price ticks): while a
sink is ``lagging`` (its unread bytes passed the coalescing mark) the room's events and its
personal updates are held back from it, not queued; when it has read its backlog, ``resume``
sends one ``tick`` — the room as it is now, without the bid list — and its personal view. Its
connection stays up; the exact events it skipped stay available by rejoining with ``last_seq``.

Catch-up: a client that rejoins with the last sequence number it saw gets exactly the missing
events, as the audience messages live clients got (kept in a bounded per-room history), or a
fresh snapshot when the gap is older than that history. The hub repairs its own gaps (a lost
pub/sub message, a Redis reconnect) from the room's stream in Redis, or reloads the room when
the gap has left the stream.

Must not import: market, web.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgpack

from bidroom.auction.executor import AuctionExecutor, ResultPublished, RoomEvent, decode_event
from bidroom.protocol import EncodedMessage, WireFormat, message
from bidroom.rooms.views import Audience, RoomReplica, event_view, personal_view, snapshot_view
from bidroom.stores.channels import ChannelListener

__all__ = ["CLOSE_SLOW_CONSUMER", "RoomHub", "Sink", "offer_or_drop"]

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
    #: True while the client's unread bytes are past the coalescing mark; the sink calls the
    #: hub's ``resume`` once it has read its backlog.
    lagging: bool

    def offer(self, msg: EncodedMessage) -> bool:
        """Send the message without waiting (``msg.frame``/``msg.ws_frame`` in the connection's
        wire format, encoded once for all); False when its bounded send buffer is full."""
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
    # sinks that fell behind: the seq of the last event each was sent in full
    behind: dict[Sink, int] = field(default_factory=dict)
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
        self._channels = ChannelListener(executor.redis, name="hub", on_message=self._on_payload,
                                         on_resubscribed=self._catch_up_all)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        await self._channels.start()

    async def stop(self) -> None:
        await self._channels.stop()

    def room_count(self) -> int:
        return len(self._rooms)

    def connection_count(self) -> int:
        return sum(len(r.sinks) for r in self._rooms.values())

    def connections(self, auction_id: str) -> tuple[Sink, ...]:
        """This process's connections to one room (for operators' tools and tests)."""
        room = self._rooms.get(auction_id)
        return tuple(room.sinks) if room is not None else ()

    # -- joining and leaving -------------------------------------------------------------------

    async def join(self, auction_id: str, sink: Sink, last_seq: int | None = None) -> int:
        """Attach a connection: send catch-up events or a snapshot; return the room's seq."""
        room = self._rooms.get(auction_id)
        if room is None:
            room = self._rooms[auction_id] = _Room(auction_id)
            await self._channels.add(self._executor.channel(auction_id), auction_id)
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
        room.behind.pop(sink, None)
        if not room.sinks:
            del self._rooms[auction_id]
            await self._channels.remove(self._executor.channel(auction_id))

    async def refresh(self, auction_id: str) -> None:
        """Pull events this process may have missed (after a local command, say)."""
        room = self._rooms.get(auction_id)
        if room is not None and room.replica is not None:
            async with room.lock:
                await self._catch_up_room(room)

    async def resume(self, sink: Sink, auction_ids: Iterable[str]) -> None:
        """The sink has read its backlog: in each room where it fell behind, send the latest
        state (one ``tick`` and its personal view) instead of the events it skipped."""
        for auction_id in auction_ids:
            room = self._rooms.get(auction_id)
            if room is None or sink not in room.behind:
                continue
            async with room.lock:
                if sink.lagging or sink not in room.sinks or sink not in room.behind:
                    continue
                since = room.behind.pop(sink)
                await self._send_tick(room, sink, since)
                self._send_personal(room, sink, with_bids=True, force=True)

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
        self._offer(sink, EncodedMessage(message("snapshot", auction_id=room.auction_id,
                                         seq=room.replica.seq, room=view)))

    async def _send_tick(self, room: _Room, sink: Sink, since: int) -> None:
        """The room now, as a snapshot without the bid list (the ladder stays: one line per
        bidder), after the sink skipped the events since ``since``."""
        assert room.replica is not None
        now = await self._now_ms()
        view = snapshot_view(room.replica, sink.audience, now, room.result_view)
        view.pop("bids", None)
        self._offer(sink, EncodedMessage(message(
            "tick", auction_id=room.auction_id, seq=room.replica.seq, from_seq=since + 1,
            skipped=room.replica.seq - since, room=view)))

    async def _send_catch_up(self, room: _Room, sink: Sink, last_seq: int) -> bool:
        """Send exactly the events after last_seq from the history, or return False."""
        assert room.replica is not None
        missed = room.replica.seq - last_seq
        if missed and (not room.history or room.history[0][0] > last_seq + 1):
            return False
        for seq, by_audience in room.history:
            if seq > last_seq:
                self._offer(sink, by_audience[sink.audience])
        self._offer(sink, EncodedMessage(message("caught_up", auction_id=room.auction_id,
                                         seq=room.replica.seq, missed=missed)))
        return True

    # -- live events ---------------------------------------------------------------------------

    async def _catch_up_all(self) -> None:
        """After a pub/sub reconnect: what every room may have missed, from its stream."""
        for room in list(self._rooms.values()):
            async with room.lock:
                await self._catch_up_room(room)

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
            room.behind.clear()  # everyone gets the whole room again
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
        behind = room.behind
        for sink in list(room.sinks):
            if sink.lagging or (behind and sink in behind):
                # Latest value wins: nothing more is queued for a client that fell behind
                # (the one event that took it past the mark was sent in full).
                behind.setdefault(sink, event.seq - 1)
                continue
            self._offer(sink, by_audience[sink.audience])
        for sink in list(room.sinks):
            if sink.supplier_id is not None and not (behind and sink in behind):
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
        self._offer(sink, EncodedMessage(message("you", **view)))

    def _offer(self, sink: Sink, msg: EncodedMessage) -> None:
        offer_or_drop(sink, msg, (room.sinks for room in self._rooms.values()))


def offer_or_drop(sink: Sink, msg: EncodedMessage, rooms: Iterable[set[Sink]]) -> None:
    """Send without waiting; a sink whose buffer is full is closed (4008) and leaves ``rooms``."""
    if not sink.offer(msg):
        sink.drop(CLOSE_SLOW_CONSUMER, "slow consumer: outgoing buffer full")
        for sinks in rooms:
            sinks.discard(sink)
