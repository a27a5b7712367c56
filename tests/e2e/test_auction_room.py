"""A live auction end to end: a real server, four suppliers and a watching purchaser on
WebSockets, anonymity, ranks, an anti-sniping extension, the close with nobody connected, and
the stored result — on whichever Redis and SQL the test session uses."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import msgpack

from bidroom.receipts import verify_document
from tests.e2e.conftest import LIVE_T0 as T0  # the auction opens at T0 + 1 s
from tests.live import Client, LiveServer, join

MINUTE = 60_000


async def create_auction(live: LiveServer, **settings: Any) -> str:
    accounts = live.accounts
    body = {
        "title": f"台式计算机 {uuid.uuid4().hex[:6]}",
        "title_en": "Desktop computers",
        "invited_supplier_ids": [accounts[f"s{i}"].org_id for i in range(1, 5)],
        "settings": {
            "ceiling_fen": 1_000_000,
            "start_ms": T0 + 1_000,
            "end_ms": T0 + 10 * MINUTE,
            "step_kind": "amount",
            "step_value": 1_000,
            "sniping_window_ms": 2 * MINUTE,
            "extension_ms": 2 * MINUTE,
            "max_extensions": 3,
            **settings,
        },
    }
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        response = await http.post("/api/auctions", json=body, headers={
            "Authorization": f"Bearer {accounts['purchaser'].token}"})
    assert response.status_code == 201, response.text
    auction_id: str = response.json()["id"]
    return auction_id


def events(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m["event"] for m in messages if m["type"] == "event" and m["event"]["kind"] == kind]


async def test_four_suppliers_bid_live_a_purchaser_watches_and_the_auction_closes_alone(
    live: LiveServer,
) -> None:
    acc = live.accounts
    auction_id = await create_auction(live)
    await live.set_clock(T0 + 2_000)

    async with (
        Client.connect(live.ws_url, acc["purchaser"].token, wire="json") as watcher,
        Client.connect(live.ws_url, acc["s1"].token) as s1,
        Client.connect(live.ws_url, acc["s2"].token) as s2,
        Client.connect(live.ws_url, acc["s3"].token) as s3,
        Client.connect(live.ws_url, acc["s4"].token) as s4,
    ):
        suppliers = {"s1": s1, "s2": s2, "s3": s3, "s4": s4}
        snap, _ = await join(watcher, auction_id)
        assert snap["type"] == "snapshot" and snap["room"]["phase"] == "open"
        assert snap["room"]["ladder"] == []
        for client in suppliers.values():
            first, _ = await join(client, auction_id)
            assert first["type"] == "snapshot"
            assert "ladder" not in first["room"]  # suppliers never see the ladder

        prices = {"s1": 990_000, "s2": 980_000, "s3": 985_000, "s4": 970_000}
        for key, price in prices.items():
            reply = await suppliers[key].request("bid", auction_id=auction_id,
                                                 bid_id=f"{key}-1", price_fen=price)
            assert reply["type"] == "bid_accepted", reply
            receipt = reply["receipt"]
            assert receipt["supplier_id"] == acc[key].org_id and receipt["price_fen"] == price
            verify_document(receipt, live.services.platform_key.public_key_pem())

        # The watcher sees every bid, anonymised, and the ladder in rank order.
        last, seen = await watcher.recv_until(
            lambda m: m["type"] == "event" and m["seq"] == 4)
        bids = [*events(seen, "bid"), last["event"]]
        assert [b["alias"] for b in bids] == [1, 2, 3, 4]
        assert [row["alias"] for row in last["event"]["ladder"]] == [4, 2, 3, 1]
        wire_text = msgpack.packb([m for m in [*seen, last]]).decode("latin-1")
        for key in suppliers:
            assert acc[key].org_id not in wire_text and acc[key].name not in wire_text

        # Each supplier gets its own rank, and only its own.
        you, _ = await s1.recv_until(lambda m: m["type"] == "you" and m["seq"] == 4)
        assert you["rank"] == 4 and you["best_fen"] == 990_000
        assert you["max_allowed_fen"] == 989_000
        you4, _ = await s4.recv_until(lambda m: m["type"] == "you" and m["seq"] == 4)
        assert you4["rank"] == 1

        # A late bid inside the anti-sniping window extends the end for everyone.
        await live.set_clock(T0 + 9 * MINUTE)
        reply = await s1.request("bid", auction_id=auction_id, bid_id="s1-2", price_fen=960_000)
        assert reply["type"] == "bid_accepted"
        assert reply["extended"] == {"end_ms": T0 + 12 * MINUTE, "extensions": 1}
        ext, _ = await watcher.recv_until(
            lambda m: m["type"] == "event" and m["event"]["kind"] == "extended")
        assert ext["event"]["end_ms"] == T0 + 12 * MINUTE
        ext2, _ = await s3.recv_until(
            lambda m: m["type"] == "event" and m["event"]["kind"] == "extended")
        assert ext2["seq"] == ext["seq"]

        # A bid at the original end is now fine; one at the extended end is late.
        await live.set_clock(T0 + 10 * MINUTE)
        reply = await s2.request("bid", auction_id=auction_id, bid_id="s2-2", price_fen=950_000)
        assert reply["type"] == "bid_accepted" and reply["extended"]["extensions"] == 2
        # Past the end the late bid is refused as late (auction_ended), whether the server's
        # closer has closed the room by then or not.
        await live.set_clock(T0 + 14 * MINUTE)
        late = await s3.request("bid", auction_id=auction_id, bid_id="s3-2", price_fen=900_000)
        assert late["type"] == "bid_rejected" and late["reason"] == "auction_ended"

    # Everyone has disconnected. The closer closes the auction on its own.
    async with httpx.AsyncClient(base_url=live.base_url, headers={
            "Authorization": f"Bearer {acc['supervisor'].token}"}) as http:
        result = None
        for _ in range(200):
            response = await http.get(f"/api/auctions/{auction_id}/result")
            if response.status_code == 200:
                result = response.json()
                break
            assert response.status_code == 404, response.text
            await live.services.closer.run_once()
        assert result is not None, "the auction did not close"
    assert result["failed"] is False
    assert result["winner_id"] == acc["s2"].org_id
    assert result["winning_fen"] == 950_000
    assert result["savings_fen"] == 50_000 and result["savings_bp"] == 500
    assert [r["supplier_id"] for r in result["ranking"]] == [
        acc["s2"].org_id, acc["s1"].org_id, acc["s4"].org_id, acc["s3"].org_id]
    assert result["ranking"][0]["supplier_name"] == acc["s2"].name  # identities revealed
    assert len(result["bids"]) == 6


async def test_a_client_rejoining_with_its_last_seq_gets_exactly_the_missing_events(
    live: LiveServer,
) -> None:
    acc = live.accounts
    auction_id = await create_auction(live)
    await live.set_clock(T0 + 2_000)
    async with Client.connect(live.ws_url, acc["agency"].token) as watcher:
        # the agency of another org is not a party: refused, connection stays up
        refused, _ = await join(watcher, auction_id)
        assert refused["type"] == "error" and refused["code"] == "not_invited"
    async with Client.connect(live.ws_url, acc["purchaser"].token) as watcher:
        snap, _ = await join(watcher, auction_id)
        last_seq = snap["seq"]
    async with Client.connect(live.ws_url, acc["s1"].token) as s1:
        # s1 stays in the room, so this process keeps the room's recent history
        await join(s1, auction_id)
        for n in range(5):
            reply = await s1.request("bid", auction_id=auction_id, bid_id=f"b{n}",
                                     price_fen=900_000 - n * 1_000)
            assert reply["type"] == "bid_accepted"
        async with Client.connect(live.ws_url, acc["purchaser"].token) as again:
            await again.send("join", auction_id=auction_id, last_seq=last_seq)
            caught, missed = await again.recv_until(lambda m: m["type"] == "caught_up")
            assert caught["missed"] == 5 and caught["seq"] == 5
            assert [m["seq"] for m in missed] == [1, 2, 3, 4, 5]
            assert all(m["type"] == "event" and m["event"]["kind"] == "bid" for m in missed)
            assert [m["event"]["price_fen"] for m in missed] == [900_000 - n * 1_000
                                                                 for n in range(5)]
        async with Client.connect(live.ws_url, acc["purchaser"].token) as current:
            rid = await current.send("join", auction_id=auction_id, last_seq=5)
            joined, before = await current.recv_until(lambda m: m.get("re") == rid)
            assert joined["type"] == "joined" and joined["seq"] == 5
            assert [m["type"] for m in before] == ["caught_up"] and before[0]["missed"] == 0
        async with Client.connect(live.ws_url, acc["purchaser"].token) as ahead:
            # a claimed sequence the room never reached gets a fresh snapshot
            await ahead.send("join", auction_id=auction_id, last_seq=99)
            snap, _ = await ahead.recv_until(lambda m: m["type"] == "snapshot")
            assert snap["seq"] == 5 and len(snap["room"]["bids"]) == 5


async def test_equal_prices_rank_by_acceptance_and_the_window_includes_its_first_instant(
    live: LiveServer,
) -> None:
    # docs/protocol.md §1.3: ties rank by the server's sequence (the earlier accepted bid
    # first, even in the same millisecond); a bid at end − window extends, one 1 ms earlier
    # does not. Through the real server, its Lua executor and its closer.
    acc = live.accounts
    auction_id = await create_auction(live)  # window 2 min, extension 2 min, end T0 + 10 min
    await live.set_clock(T0 + 2_000)
    async with (
        Client.connect(live.ws_url, acc["purchaser"].token, wire="json") as watcher,
        Client.connect(live.ws_url, acc["s1"].token) as s1,
        Client.connect(live.ws_url, acc["s2"].token) as s2,
        Client.connect(live.ws_url, acc["s3"].token) as s3,
        Client.connect(live.ws_url, acc["s4"].token) as s4,
    ):
        await join(watcher, auction_id)
        for client in (s1, s2, s3, s4):
            await join(client, auction_id)

        async def bid(client: Client, bid_id: str, price: int) -> dict[str, Any]:
            reply = await client.request("bid", auction_id=auction_id, bid_id=bid_id,
                                         price_fen=price)
            assert reply["type"] == "bid_accepted", reply
            return reply

        await bid(s1, "a", 990_000)
        you, _ = await s1.recv_until(lambda m: m["type"] == "you" and m["seq"] == 1)
        assert you["rank"] == 1
        await bid(s2, "b", 990_000)  # the same price in the same millisecond: second
        you, _ = await s2.recv_until(lambda m: m["type"] == "you" and m["seq"] == 2)
        assert (you["rank"], you["best_fen"]) == (2, 990_000)

        await live.set_clock(T0 + 8 * MINUTE - 1)  # 1 ms before the window
        assert "extended" not in await bid(s3, "c", 995_000)
        await live.set_clock(T0 + 8 * MINUTE)  # end − window: the window's first instant
        reply = await bid(s4, "d", 995_000)
        assert reply["extended"] == {"end_ms": T0 + 12 * MINUTE, "extensions": 1}
        event, _ = await watcher.recv_until(lambda m: m["type"] == "event" and m["seq"] == 4)
        assert [(r["rank"], r["alias"], r["price_fen"], r["seq"])
                for r in event["event"]["ladder"]] == [
            (1, 1, 990_000, 1), (2, 2, 990_000, 2), (3, 3, 995_000, 3), (4, 4, 995_000, 4)]
        event, _ = await watcher.recv_until(lambda m: m["type"] == "event" and m["seq"] == 5)
        assert (event["event"]["kind"], event["event"]["end_ms"]) == (
            "extended", T0 + 12 * MINUTE)

        await live.set_clock(T0 + 12 * MINUTE)  # the extended end: the closer closes
        published, _ = await watcher.recv_until(
            lambda m: m["type"] == "event" and m["event"]["kind"] == "result")
    ranking = published["event"]["result"]["ranking"]
    assert [(r["supplier_id"], r["price_fen"], r["seq"]) for r in ranking] == [
        (acc["s1"].org_id, 990_000, 1), (acc["s2"].org_id, 990_000, 2),
        (acc["s3"].org_id, 995_000, 3), (acc["s4"].org_id, 995_000, 4)]
    assert published["event"]["result"]["winner_id"] == acc["s1"].org_id
