"""The fan-out hub's pub/sub on Redis Cluster (a local 3-master cluster, tests/cluster.py).

A process that has just started holds no connection yet to the node its pub/sub connection is
pinned to; the first joins of several rooms then subscribe at the same moment (clients
reconnecting to a restarted worker do exactly that). redis-py creates the pub/sub connection
lazily and without a lock, so unserialised concurrent first subscribes each open a connection and
all but one are lost, with their rooms' subscriptions: those rooms would get no live events from
other processes. Every room must receive its events.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import msgpack

from bidroom.auction.executor import AuctionExecutor
from bidroom.auction.rules import AuctionSettings
from bidroom.protocol import EncodedMessage, WireFormat
from bidroom.rooms.hub import RoomHub
from bidroom.rooms.views import Audience
from bidroom.stores.redis import connect_redis

START = 1_900_000_000_000
ROOMS = 10


class Watcher:
    audience = Audience.WATCHER
    supplier_id = None
    wire = WireFormat.MSGPACK
    lagging = False

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    def offer(self, msg: EncodedMessage) -> bool:
        self.messages.append(msgpack.unpackb(msg.frame(self.wire), raw=False))
        self.arrived.set()
        return True

    def drop(self, code: int, reason: str) -> None:
        raise AssertionError(f"dropped: {code} {reason}")

    async def event(self, seq: int) -> dict[str, Any]:
        while True:
            for msg in self.messages:
                if msg["type"] == "event" and msg["seq"] == seq:
                    return msg
            self.arrived.clear()
            await self.arrived.wait()


async def test_rooms_first_joined_at_once_on_a_fresh_process_all_get_live_events(
    cluster_url: str,
) -> None:
    async def now() -> int:
        return START + 1_000

    other = connect_redis(cluster_url)  # "another process": creates the rooms, takes the bids
    fresh = connect_redis(cluster_url)  # the fresh process's client: no data connection yet
    await fresh.initialize()  # the slot map, as a running app has it: read from the first node
    first_node = cluster_url.split("://", 1)[1].split(",", 1)[0]
    writer = AuctionExecutor(other, now_source=now)
    rooms: list[str] = []
    while len(rooms) < ROOMS:  # rooms on the nodes the fresh client has no connection to yet
        auction_id = f"psc_{uuid.uuid4().hex}"
        if fresh.get_node_from_key(writer.channel(auction_id)).name != first_node:
            rooms.append(auction_id)
    for auction_id in rooms:
        await writer.create(AuctionSettings(auction_id=auction_id, ceiling_fen=100_000,
                                            start_ms=START, end_ms=START + 60_000,
                                            step_value=100), ["a", "b", "c"])
    hub = RoomHub(AuctionExecutor(fresh, now_source=now), now_ms=now)
    await hub.start()
    try:
        watchers = {auction_id: Watcher() for auction_id in rooms}
        await asyncio.gather(*(hub.join(a, w) for a, w in watchers.items()))
        for auction_id in rooms:
            await writer.place_bid(auction_id, "a", "1", 90_000)
        async with asyncio.timeout(10):
            for auction_id, watcher in watchers.items():
                event = await watcher.event(1)
                assert event["auction_id"] == auction_id
                assert event["event"]["price_fen"] == 90_000
    finally:
        await hub.stop()
        for auction_id in rooms:
            await other.delete(*writer.keys(auction_id).all())
        await fresh.aclose()
        await other.aclose()
