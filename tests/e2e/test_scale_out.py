"""Two server processes on the same Redis and database serve one consistent room: bids placed
on either reach watchers on both, in one order, and the auction closes exactly once."""

from __future__ import annotations

from typing import Any

from tests.e2e.server import (
    ServerFactory,
    api_client,
    bootstrap_admin,
    create_auction,
    seed,
    set_clock,
)
from tests.live import Client, join

T0 = 1_900_000_000_000
MINUTE = 60_000


def bid_events(messages: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(m["seq"], m["event"]["price_fen"]) for m in messages
            if m["type"] == "event" and m["event"]["kind"] == "bid"]


async def test_bidders_and_watchers_on_two_processes_see_one_room_that_closes_once(
    server_factory: ServerFactory,
) -> None:
    a = server_factory(name="a")
    b = server_factory(name="b", share_stores_with=a)
    await set_clock(a, T0)
    accounts = await seed(a, await bootstrap_admin(a), suppliers=3)
    s1, s2, s3 = accounts.suppliers
    auction_id = await create_auction(  # through process b
        b, accounts, title="服务器 8 台", title_en="8 servers", start_ms=T0,
        end_ms=T0 + 10 * MINUTE, ceiling_fen=2_000_000, step_fen=1_000)
    await set_clock(a, T0 + MINUTE)

    async with (
        Client.connect(a.ws_url, accounts.supervisor.token) as watcher_a,
        Client.connect(b.ws_url, accounts.purchaser.token) as watcher_b,
        Client.connect(a.ws_url, s1.token) as bidder_a,
        Client.connect(b.ws_url, s2.token) as bidder_b,
    ):
        for client in (watcher_a, watcher_b, bidder_a, bidder_b):
            await join(client, auction_id)
        plan = ((bidder_a, "x1", 1_990_000), (bidder_b, "y1", 1_980_000),
                (bidder_a, "x2", 1_970_000), (bidder_b, "y2", 1_960_000))
        key_ids = set()
        for client, bid_id, price in plan:
            reply = await client.request("bid", auction_id=auction_id, bid_id=bid_id,
                                         price_fen=price)
            assert reply["type"] == "bid_accepted", reply
            key_ids.add(reply["receipt"]["key_id"])
        assert len(key_ids) == 1  # one platform key, whichever process signed
        expected = [(1, 1_990_000), (2, 1_980_000), (3, 1_970_000), (4, 1_960_000)]
        for watcher in (watcher_a, watcher_b):
            last, seen = await watcher.recv_until(
                lambda m: m["type"] == "event" and m["seq"] == 4)
            assert bid_events([*seen, last]) == expected
        # s1, on process a, learns on its own connection that s2's bid on b outranked it
        you, _ = await bidder_a.recv_until(lambda m: m["type"] == "you" and m["seq"] == 4)
        assert you["rank"] == 2 and you["best_fen"] == 1_970_000

        # Both processes run a closer; the auction closes and its result is announced once.
        await set_clock(a, T0 + 10 * MINUTE)
        result_b, seen_b = await watcher_b.recv_until(
            lambda m: m["type"] == "event" and m["event"]["kind"] == "result", wait_s=20)
        result_a, seen_a = await watcher_a.recv_until(
            lambda m: m["type"] == "event" and m["event"]["kind"] == "result", wait_s=20)
        assert result_a["seq"] == result_b["seq"]
        for seen in (seen_a, seen_b):
            closes = [m for m in seen if m["type"] == "event" and m["event"]["kind"] == "closed"]
            assert len(closes) == 1
        published = result_b["event"]["result"]
        # two valid bidders of the three required: failed (流标), and no winner — as null fields
        assert published["failed"] is True and published["winner_id"] is None
        assert published["ranking"][0]["supplier_id"] == s2.org_id

    for server in (a, b):
        async with api_client(server, accounts.supervisor.token) as http:
            stored = (await http.get(f"/api/auctions/{auction_id}/result")).json()
        assert stored["failed"] is True and stored["winner_id"] is None
        assert stored["ranking"][0]["supplier_id"] == s2.org_id and len(stored["bids"]) == 4
    assert s3.org_id in accounts.supplier_ids
