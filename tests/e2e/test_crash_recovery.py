"""Nothing lost: kill -9 the server mid-auction, start it again; clients reconnect, catch up,
keep bidding, and the auction closes correctly with every acknowledged bid in the result."""

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


async def test_after_kill_9_clients_catch_up_keep_bidding_and_the_auction_closes(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(embedded_default=True)
    await set_clock(server, T0)
    accounts = await seed(server, await bootstrap_admin(server), suppliers=3)
    s1, s2, s3 = accounts.suppliers
    auction_id = await create_auction(
        server, accounts, title="网络交换机 20 台", title_en="20 network switches", start_ms=T0,
        end_ms=T0 + 10 * MINUTE, ceiling_fen=5_000_000, step_fen=10_000)
    await set_clock(server, T0 + MINUTE)

    receipts: dict[str, dict[str, Any]] = {}
    async with Client.connect(server.ws_url, accounts.purchaser.token) as watcher:
        _, _ = await join(watcher, auction_id)
        for party, bid_id, price in ((s1, "a1", 4_900_000), (s2, "b1", 4_800_000)):
            async with Client.connect(server.ws_url, party.token) as client:
                reply = await client.request("bid", auction_id=auction_id, bid_id=bid_id,
                                             price_fen=price)
                assert reply["type"] == "bid_accepted"
                receipts[bid_id] = reply["receipt"]
        seen, _ = await watcher.recv_until(lambda m: m["type"] == "event" and m["seq"] == 2)
        last_seq = seen["seq"]

        # s3's bid is acknowledged... and the server dies before s3 reads anything else.
        async with Client.connect(server.ws_url, s3.token) as client:
            reply = await client.request("bid", auction_id=auction_id, bid_id="c1",
                                         price_fen=4_700_000)
            assert reply["type"] == "bid_accepted"
            receipts["c1"] = reply["receipt"]
        server.kill9()

    await server.astart()

    # The watcher reconnects with the last sequence it saw. The new process never saw event 3
    # go by, so it cannot replay it exactly: it sends a snapshot that contains it (never a gap).
    async with Client.connect(server.ws_url, accounts.purchaser.token) as watcher:
        first, _ = await join(watcher, auction_id, last_seq=last_seq)
        assert first["type"] == "snapshot" and first["seq"] == 3
        assert [b["price_fen"] for b in first["room"]["bids"]] == [4_900_000, 4_800_000,
                                                                 4_700_000]

        # s1 never got its reply to a4 (say): re-sending the same bid id is safe.
        async with Client.connect(server.ws_url, s1.token) as client:
            again = await client.request("bid", auction_id=auction_id, bid_id="a1",
                                         price_fen=4_900_000)
            assert again["status"] == "duplicate" and again["receipt"] == receipts["a1"]
            more = await client.request("bid", auction_id=auction_id, bid_id="a2",
                                        price_fen=4_600_000)
            assert more["type"] == "bid_accepted" and more["receipt"]["seq"] == 4
        live, _ = await watcher.recv_until(lambda m: m["type"] == "event" and m["seq"] == 4)
        assert live["event"]["price_fen"] == 4_600_000

        # Time runs out with the watcher still connected: it sees the close and the result.
        await set_clock(server, T0 + 10 * MINUTE)
        result_msg, before = await watcher.recv_until(
            lambda m: m["type"] == "event" and m["event"]["kind"] == "result", wait_s=20)
        assert any(m["type"] == "event" and m["event"]["kind"] == "closed" for m in before)
        result = result_msg["event"]["result"]
        assert result["winner_id"] == s1.org_id and result["winning_fen"] == 4_600_000
        assert result["winner_name"] == s1.name

    async with api_client(server, accounts.supervisor.token) as http:
        stored = (await http.get(f"/api/auctions/{auction_id}/result")).json()
    assert [b["bid_id"] for b in stored["bids"]] == ["a1", "b1", "c1", "a2"]
    assert [b["seq"] for b in stored["bids"]] == [r["seq"] for r in receipts.values()] + [4]
