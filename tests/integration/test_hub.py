"""The fan-out hub on real Redis: encode once per audience, personal ranks, catch-up, a slow
consumer dropped without slowing the others, a lagging one caught up with the latest state
(coalescing), and gap repair from the room's stream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest

from bidroom.auction.executor import AuctionExecutor
from bidroom.auction.rules import AuctionSettings
from bidroom.protocol import EncodedMessage, WireFormat
from bidroom.rooms.hub import CLOSE_SLOW_CONSUMER, RoomHub
from bidroom.rooms.views import Audience
from bidroom.stores.redis import RedisClient, connect_redis

START = 1_900_000_000_000


class FakeSink:
    def __init__(self, audience: Audience, supplier_id: str | None = None,
                 limit: int = 10_000) -> None:
        self.audience = audience
        self.supplier_id = supplier_id
        self.wire = WireFormat.MSGPACK
        self.frames: list[bytes | str] = []
        self.limit = limit
        self.dropped: tuple[int, str] | None = None
        self.arrived = asyncio.Event()
        self.lagging = False

    def offer(self, msg: EncodedMessage) -> bool:
        if len(self.frames) >= self.limit:
            return False
        self.frames.append(msg.frame(self.wire))
        self.arrived.set()
        return True

    def drop(self, code: int, reason: str) -> None:
        self.dropped = (code, reason)

    def messages(self) -> list[dict[str, Any]]:
        return [msgpack.unpackb(f, raw=False) for f in self.frames]  # type: ignore[arg-type]

    async def wait_for(self, predicate: Any) -> dict[str, Any]:
        async with asyncio.timeout(10):
            while True:
                for msg in self.messages():
                    if predicate(msg):
                        return msg
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def room(
    redis_url: str,
) -> AsyncIterator[tuple[AuctionExecutor, RoomHub, str, dict[str, int]]]:
    client: RedisClient = connect_redis(redis_url)
    clock = {"now": START}

    async def script_now() -> int:
        return clock["now"]

    executor = AuctionExecutor(client, now_source=script_now)
    auction_id = f"hub_{uuid.uuid4().hex}"
    await executor.create(AuctionSettings(auction_id=auction_id, ceiling_fen=100_000,
                                          start_ms=START, end_ms=START + 60_000,
                                          step_value=100), ["a", "b", "c"])
    hub = RoomHub(executor, now_ms=script_now)
    await hub.start()
    try:
        yield executor, hub, auction_id, clock
    finally:
        await hub.stop()
        await client.delete(*executor.keys(auction_id).all())
        await client.aclose()


async def test_every_audience_gets_each_event_and_suppliers_get_only_their_own_rank(
    room: tuple[AuctionExecutor, RoomHub, str, dict[str, int]],
) -> None:
    executor, hub, auction_id, _ = room
    watcher = FakeSink(Audience.WATCHER)
    watcher2 = FakeSink(Audience.WATCHER)
    sup_a = FakeSink(Audience.SUPPLIER, "a")
    sup_b = FakeSink(Audience.SUPPLIER, "b")
    for sink in (watcher, watcher2, sup_a, sup_b):
        await hub.join(auction_id, sink)
    await executor.place_bid(auction_id, "a", "1", 90_000)
    await executor.place_bid(auction_id, "b", "2", 80_000)
    ev = await watcher.wait_for(lambda m: m["type"] == "event" and m["seq"] == 2)
    assert ev["event"]["alias"] == 2 and ev["event"]["price_fen"] == 80_000
    await watcher2.wait_for(lambda m: m["type"] == "event" and m["seq"] == 2)
    # the same bytes went to both watchers: encoded once per audience
    assert watcher.frames[-1] == watcher2.frames[-1]
    pub = await sup_a.wait_for(lambda m: m["type"] == "event" and m["seq"] == 2)
    assert "alias" not in pub["event"] and "price_fen" not in pub["event"]
    you_a = await sup_a.wait_for(lambda m: m["type"] == "you" and m["rank"] == 2)
    assert you_a["best_fen"] == 90_000
    you_b = await sup_b.wait_for(lambda m: m["type"] == "you" and m["rank"] == 1)
    assert you_b["best_fen"] == 80_000
    assert all(m.get("best_fen") != 80_000 for m in sup_a.messages() if m["type"] == "you")


async def test_a_lagging_client_gets_the_latest_state_once_instead_of_every_event(
    room: tuple[AuctionExecutor, RoomHub, str, dict[str, int]],
) -> None:
    executor, hub, auction_id, _ = room
    lagging = FakeSink(Audience.WATCHER)
    sup_a = FakeSink(Audience.SUPPLIER, "a")
    fast = FakeSink(Audience.WATCHER)
    for sink in (lagging, sup_a, fast):
        await hub.join(auction_id, sink)
    await executor.place_bid(auction_id, "a", "a1", 90_000)
    await lagging.wait_for(lambda m: m["type"] == "event" and m["seq"] == 1)
    await sup_a.wait_for(lambda m: m["type"] == "you" and m["bids"] == 1)

    lagging.lagging = sup_a.lagging = True  # their unread bytes passed the coalescing mark
    held_from = (len(lagging.frames), len(sup_a.frames))
    for n, (who, price) in enumerate([("b", 89_000), ("c", 88_000), ("a", 87_000),
                                      ("b", 86_000)]):
        await executor.place_bid(auction_id, who, f"x{n}", price)
    await fast.wait_for(lambda m: m["type"] == "event" and m["seq"] == 5)
    assert (len(lagging.frames), len(sup_a.frames)) == held_from  # nothing queued for them
    await hub.resume(lagging, [auction_id])  # still lagging: nothing yet
    assert len(lagging.frames) == held_from[0]

    lagging.lagging = sup_a.lagging = False  # read their backlog
    await hub.resume(lagging, [auction_id, "some_other_room"])
    await hub.resume(sup_a, [auction_id])
    tick = lagging.messages()[held_from[0]:]
    assert [m["type"] for m in tick] == ["tick"]
    assert (tick[0]["seq"], tick[0]["from_seq"], tick[0]["skipped"]) == (5, 2, 4)
    room_now = tick[0]["room"]
    assert room_now["seq"] == 5 and room_now["lowest_fen"] == 86_000
    assert "bids" not in room_now and len(room_now["ladder"]) == 3
    mine = sup_a.messages()[held_from[1]:]
    assert [m["type"] for m in mine] == ["tick", "you"]
    assert mine[1]["rank"] == 2 and mine[1]["best_fen"] == 87_000 and mine[1]["bids"] == 2
    await hub.resume(lagging, [auction_id])  # caught up: a second resume sends nothing
    assert len(lagging.messages()) == held_from[0] + 1

    # Live again: the next event arrives as an event, exactly once.
    await executor.place_bid(auction_id, "c", "x9", 85_000)
    live = await lagging.wait_for(lambda m: m["type"] == "event" and m["seq"] == 6)
    assert live["event"]["price_fen"] == 85_000
    assert [m["seq"] for m in lagging.messages() if m["type"] == "event"] == [1, 6]
    assert lagging.dropped is None and sup_a.dropped is None
    # The exact events it skipped are still there for a rejoin with last_seq.
    again = FakeSink(Audience.WATCHER)
    await hub.join(auction_id, again, last_seq=1)
    assert [m["seq"] for m in again.messages() if m["type"] == "event"] == [2, 3, 4, 5, 6]


async def test_a_client_that_leaves_while_behind_is_forgotten(
    room: tuple[AuctionExecutor, RoomHub, str, dict[str, int]],
) -> None:
    executor, hub, auction_id, _ = room
    lagging = FakeSink(Audience.WATCHER)
    fast = FakeSink(Audience.WATCHER)
    await hub.join(auction_id, lagging)
    await hub.join(auction_id, fast)
    lagging.lagging = True
    await executor.place_bid(auction_id, "a", "a1", 90_000)
    await fast.wait_for(lambda m: m["type"] == "event" and m["seq"] == 1)
    await hub.leave(auction_id, lagging)
    lagging.lagging = False
    count = len(lagging.frames)
    await hub.resume(lagging, [auction_id])
    assert len(lagging.frames) == count
    # Rejoining without last_seq: a snapshot, then live events as usual.
    await hub.join(auction_id, lagging)
    await executor.place_bid(auction_id, "b", "b1", 89_000)
    await lagging.wait_for(lambda m: m["type"] == "event" and m["seq"] == 2)


async def test_a_slow_consumer_is_dropped_and_the_others_keep_receiving(
    room: tuple[AuctionExecutor, RoomHub, str, dict[str, int]],
) -> None:
    executor, hub, auction_id, _ = room
    slow = FakeSink(Audience.WATCHER, limit=3)
    fast = FakeSink(Audience.WATCHER)
    await hub.join(auction_id, slow)
    await hub.join(auction_id, fast)
    for n in range(5):
        await executor.place_bid(auction_id, "a", f"b{n}", 90_000 - n * 100)
    await fast.wait_for(lambda m: m["type"] == "event" and m["seq"] == 5)
    assert slow.dropped is not None and slow.dropped[0] == CLOSE_SLOW_CONSUMER
    assert hub.connection_count() == 1


async def test_a_rejoin_older_than_the_history_gets_a_snapshot_not_a_partial_gap(
    room: tuple[AuctionExecutor, RoomHub, str, dict[str, int]],
) -> None:
    executor, hub, auction_id, _ = room
    for n in range(3):
        await executor.place_bid(auction_id, "a", f"b{n}", 90_000 - n * 100)
    sink = FakeSink(Audience.WATCHER)
    await hub.join(auction_id, sink, last_seq=1)  # this process never saw events 2..3
    first = sink.messages()[0]
    assert first["type"] == "snapshot" and first["seq"] == 3
    assert [b["seq"] for b in first["room"]["bids"]] == [1, 2, 3]


async def test_the_hub_repairs_a_lost_pubsub_message_from_the_stream(
    room: tuple[AuctionExecutor, RoomHub, str, dict[str, int]],
) -> None:
    executor, hub, auction_id, _ = room
    sink = FakeSink(Audience.WATCHER)
    await hub.join(auction_id, sink)
    await executor.place_bid(auction_id, "a", "x1", 90_000)
    await sink.wait_for(lambda m: m["type"] == "event" and m["seq"] == 1)
    # Simulate a lost message: write event 2 to the stream by hand, without publishing it,
    # then let event 3 arrive normally. The hub must deliver 2 before 3, exactly once.
    channel = executor.channel(auction_id)
    original = executor.channel
    executor.channel = lambda _id: "nobody-listens"  # type: ignore[method-assign]
    try:
        await executor.place_bid(auction_id, "b", "x2", 89_000)
    finally:
        executor.channel = original  # type: ignore[method-assign]
    assert executor.channel(auction_id) == channel
    await executor.place_bid(auction_id, "c", "x3", 88_000)
    await sink.wait_for(lambda m: m["type"] == "event" and m["seq"] == 3)
    seqs = [m["seq"] for m in sink.messages() if m["type"] == "event"]
    assert seqs == [1, 2, 3]
