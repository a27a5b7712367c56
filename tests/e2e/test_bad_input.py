"""Bad input on the WebSocket: each gets a clear error naming the request, nothing is stored,
and the connection stays up — unless the client floods it (closed with 4029)."""

from __future__ import annotations

import msgpack
import pytest
from websockets.exceptions import ConnectionClosed

from tests.e2e.test_auction_room import MINUTE, T0, create_auction
from tests.live import Client, LiveServer, join


async def assert_alive(client: Client) -> None:
    pong = await client.request("ping")
    assert pong["type"] == "pong"


async def test_malformed_frames_unknown_types_and_bad_fields_get_errors_and_store_nothing(
    live: LiveServer,
) -> None:
    acc = live.accounts
    auction_id = await create_auction(live)
    await live.set_clock(T0 + 2_000)
    async with Client.connect(live.ws_url, acc["s1"].token) as s1:
        await s1.send_raw(b"\xc1\xff not msgpack")
        err = await s1.recv()
        assert err["type"] == "error" and err["code"] == "malformed_frame"
        await s1.send_raw(msgpack.packb([1, 2, 3]))
        assert (await s1.recv())["code"] == "malformed_frame"
        await s1.send_raw(msgpack.packb({"v": 9, "type": "ping"}))
        assert (await s1.recv())["code"] == "unsupported_version"
        await assert_alive(s1)

        err = await s1.request("teleport", auction_id=auction_id)
        assert err["type"] == "error" and err["code"] == "unknown_type"
        assert err["request"] == "teleport"

        err = await s1.request("bid", auction_id=auction_id, bid_id="x")
        assert (err["code"], err["details"]["field"]) == ("missing_field", "price_fen")
        err = await s1.request("bid", bid_id="x", price_fen=1)
        assert err["code"] == "missing_field"

        for bad in (990_000.0, 990_000.5, -5, 0, "990000", True, 10**15):
            err = await s1.request("bid", auction_id=auction_id, bid_id="x", price_fen=bad)
            assert err["type"] == "error" and err["code"] == "invalid_price", (bad, err)
            assert err["request"] == "bid"

        err = await s1.request("bid", auction_id=auction_id, bid_id="bad id!", price_fen=1)
        assert err["code"] == "invalid_bid_id"

        rejected = await s1.request("bid", auction_id=auction_id, bid_id="x",
                                    price_fen=1_000_001)
        assert rejected["type"] == "bid_rejected" and rejected["reason"] == "above_ceiling"
        assert rejected["max_allowed_fen"] == 1_000_000
        assert "最高限价" in rejected["message"] and "ceiling" in rejected["message"]

        err = await s1.request("bid", auction_id=auction_id, bid_id="x", price_fen=900_000,
                               supplier_id=acc["s2"].org_id)
        assert err["code"] == "impersonation"

        err = await s1.request("bid", auction_id="auc_missing", bid_id="x", price_fen=900_000)
        assert err["code"] == "auction_not_found"
        await assert_alive(s1)

    async with Client.connect(live.ws_url, acc["outsider"].token) as outsider:
        rejected = await outsider.request("bid", auction_id=auction_id, bid_id="o",
                                          price_fen=900_000)
        assert rejected["type"] == "bid_rejected" and rejected["reason"] == "not_invited"
        err, _ = await join(outsider, auction_id)
        assert err["code"] == "not_invited"

    snap = await live.services.executor.snapshot(auction_id)
    assert snap.state.seq == 0 and snap.state.standings == {}
    assert await live.services.executor.bid_log(auction_id) == []


async def test_bids_before_the_start_and_at_the_end_are_refused(live: LiveServer) -> None:
    acc = live.accounts
    auction_id = await create_auction(live)
    async with (
        Client.connect(live.ws_url, acc["s1"].token) as s1,
        Client.connect(live.ws_url, acc["purchaser"].token) as watcher,
    ):
        early = await s1.request("bid", auction_id=auction_id, bid_id="e", price_fen=900_000)
        assert early["reason"] == "not_started"
        await join(watcher, auction_id)
        # At the end instant the server's closer closes the room; a bid sent at that instant
        # is late (auction_ended) whether it arrives before the close or after, as here.
        await live.set_clock(T0 + 10 * MINUTE)  # exactly the end instant
        closed, _ = await watcher.recv_until(
            lambda m: m["type"] == "event" and m["event"]["kind"] == "closed")
        assert closed["event"]["at_ms"] == T0 + 10 * MINUTE
        late = await s1.request("bid", auction_id=auction_id, bid_id="l", price_fen=900_000)
        assert (late["type"], late["reason"]) == ("bid_rejected", "auction_ended")
        assert "竞价时间已到" in late["message"] and "the bid is late" in late["message"]
        signed = await s1.request("sign_in", auction_id=auction_id)
        assert (signed["type"], signed["code"]) == ("error", "auction_ended")
    assert await live.services.executor.bid_log(auction_id) == []


async def test_json_text_frames_work_and_a_float_is_refused_by_name(live: LiveServer) -> None:
    acc = live.accounts
    auction_id = await create_auction(live)
    await live.set_clock(T0 + 2_000)
    async with Client.connect(live.ws_url, acc["s1"].token, wire="json") as s1:
        await s1.send_raw("{not json")
        assert (await s1.recv())["code"] == "malformed_frame"
        err = await s1.request("bid", auction_id=auction_id, bid_id="j", price_fen=12.5)
        assert err["code"] == "invalid_price" and err["re"] == "r1"
        ok = await s1.request("bid", auction_id=auction_id, bid_id="j", price_fen=990_000)
        assert ok["type"] == "bid_accepted"


async def test_authentication_by_message_and_refusal_of_a_bad_token(live: LiveServer) -> None:
    acc = live.accounts
    async with Client.connect(live.ws_url, None) as anon:
        err, _ = await join(anon, "auc_x")
        assert err["code"] == "unauthenticated"
        await assert_alive(anon)
        welcome = await anon.request("auth", token=acc["purchaser"].token)
        assert welcome["type"] == "welcome" and welcome["audience"] == "watcher"
        again = await anon.request("auth", token=acc["s1"].token)
        assert again["code"] == "already_authenticated"
    async with Client.connect(live.ws_url, None) as intruder:
        err = await intruder.request("auth", token="brt_forged")
        assert err["code"] == "invalid_token"
        with pytest.raises(ConnectionClosed) as closed:
            await intruder.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001


async def test_a_flooding_client_is_closed_with_4029(live: LiveServer) -> None:
    acc = live.accounts
    async with Client.connect(live.ws_url, acc["s1"].token) as flooder:
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(500):
                await flooder.send("ping")
            while True:
                await flooder.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4029
    async with Client.connect(live.ws_url, acc["s2"].token) as neighbour:
        await assert_alive(neighbour)
