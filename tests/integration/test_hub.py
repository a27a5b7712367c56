"""The fan-out hub on real Redis: encode once per audience, personal ranks, catch-up, a slow
consumer dropped without slowing the others, and gap repair from the room's stream."""

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
