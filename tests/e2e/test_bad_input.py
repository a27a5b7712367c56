"""Bad input on the WebSocket: each gets a clear error naming the request, nothing is stored,
and the connection stays up — unless the client floods it (closed with 4029) or sends a text
frame that is not UTF-8 (closed with 1007). The strict-frame checks run on both WebSocket paths:
``bidroom serve``'s native protocol (``web.wsproto``) and the ASGI fallback (``web.ws``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bidroom.config import Settings
from tests.e2e.test_auction_room import MINUTE, T0, create_auction
from tests.live import Client, LiveServer, join, live_server
from web.wsproto import PROTOCOL

BOTH_PATHS = pytest.mark.parametrize("ws_path", [PROTOCOL, "websockets-sansio"],
                                     ids=["native", "asgi"])


@pytest.fixture
async def live_on(ws_path: str, tmp_path: Path, redis_url: str, migrated_database_url: str
                  ) -> AsyncIterator[LiveServer]:
    """``live`` on the WebSocket path the test is parametrized with (``BOTH_PATHS``)."""
    settings = Settings(data_dir=tmp_path, redis_url=redis_url,
                        database_url=migrated_database_url, test_clock=True)
    async with live_server(settings, ws=ws_path) as server:
        await server.set_clock(T0)
        await server.seed()
        yield server


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


async def answer(client: Client, frame: bytes | str) -> dict[str, Any]:
    """Send one raw frame; its answer is the next message (nothing else is going on)."""
    await client.send_raw(frame)
    return await client.recv()


def deep(depth: int, **fields: Any) -> str:
    """A JSON message ``depth`` levels deep (its ``pad`` nests arrays)."""
    body = json.dumps({"v": 1, **fields})
    return body[:-1] + ', "pad": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


@BOTH_PATHS
async def test_the_version_is_the_integer_1_and_is_required(live_on: LiveServer) -> None:
    acc = live_on.accounts
    async with Client.connect(live_on.ws_url, acc["s1"].token, wire="json") as s1:
        for version in ("1.0", "true", '"1"', "2"):
            err = await answer(s1, f'{{"v": {version}, "type": "ping", "id": "v"}}')
            assert (err["code"], err["request"], err["re"], err["details"]) == (
                "unsupported_version", "ping", "v", {"field": "v"}), (version, err)
        err = await answer(s1, '{"type": "ping", "id": "nov"}')
        assert (err["code"], err["re"]) == ("unsupported_version", "nov")
        await assert_alive(s1)
    async with Client.connect(live_on.ws_url, acc["s1"].token) as s1:  # msgpack
        for version in (1.0, True):
            err = await answer(s1, msgpack.packb({"v": version, "type": "ping", "id": 1}))
            assert (err["code"], err["re"]) == ("unsupported_version", 1)
        await assert_alive(s1)


@BOTH_PATHS
async def test_a_frame_without_a_string_type_is_a_malformed_frame(live_on: LiveServer) -> None:
    acc = live_on.accounts
    async with Client.connect(live_on.ws_url, acc["s1"].token, wire="json") as s1:
        for frame in ('{"v": 1, "id": "t"}', '{"v": 1, "id": "t", "type": ["bid"]}'):
            err = await answer(s1, frame)
            assert (err["code"], err["re"], err["details"]) == (
                "malformed_frame", "t", {"field": "type"})
            assert "request" not in err
        await assert_alive(s1)


@BOTH_PATHS
async def test_deep_nesting_is_a_malformed_frame_and_the_connection_stays_up(
    live_on: LiveServer,
) -> None:
    acc = live_on.accounts
    async with Client.connect(live_on.ws_url, acc["s1"].token, wire="json") as s1:
        # past 32 levels: refused by name
        err = await answer(s1, deep(40, type="ping", id="d40"))
        assert (err["code"], err["request"], err["re"]) == ("malformed_frame", "ping", "d40")
        # far past it (10 KiB, under the 16 KiB frame limit): refused before decoding at all,
        # where decoding raised RecursionError and closed the connection with 1011
        err = await answer(s1, deep(5_000, type="ping", id="d5000"))
        assert err["code"] == "malformed_frame" and "re" not in err
        await assert_alive(s1)
    async with Client.connect(live_on.ws_url, acc["s1"].token) as s1:  # msgpack
        pad: list[Any] = []
        for _ in range(900):  # echoed as is, this passed the encoder's nesting limit (1011)
            pad = [pad]
        err = await answer(s1, msgpack.packb(
            {"v": 1, "type": "time", "id": "deep", "client_time_ms": pad}))
        assert (err["code"], err["request"], err["re"]) == ("malformed_frame", "time", "deep")
        await assert_alive(s1)


@BOTH_PATHS
async def test_a_lone_surrogate_is_a_malformed_frame_naming_the_request(
    live_on: LiveServer,
) -> None:
    acc = live_on.accounts
    async with Client.connect(live_on.ws_url, acc["s1"].token, wire="json") as s1:
        for kind, frame in (
            ("join", '{"v": 1, "type": "join", "id": "s", "auction_id": "\\ud800"}'),
            ("auth", '{"v": 1, "type": "auth", "id": "s", "token": "brt_\\udfff"}'),
            ("bid", '{"v": 1, "type": "bid", "id": "s", "auction_id": "auc_x", '
                    '"bid_id": "\\ud83d", "price_fen": 1}'),
        ):
            err = await answer(s1, frame)
            assert (err["code"], err["request"], err["re"]) == ("malformed_frame", kind, "s")
        # in the type itself: the error cannot echo it, but still names the id
        err = await answer(s1, '{"v": 1, "type": "\\ud800", "id": "s4"}')
        assert (err["code"], err["re"]) == ("malformed_frame", "s4") and "request" not in err
        await assert_alive(s1)


@BOTH_PATHS
async def test_huge_integers_and_wrong_types_name_the_field_and_the_request(
    live_on: LiveServer,
) -> None:
    acc = live_on.accounts
    async with Client.connect(live_on.ws_url, acc["s1"].token, wire="json") as s1:
        err = await answer(s1, '{"v": 1, "type": "ping", "id": ' + "9" * 30 + "}")
        assert (err["code"], err["request"], err["details"]) == (
            "invalid_field", "ping", {"field": "id"})
        err = await answer(s1, '{"v": 1, "type": "ping", "id": true}')
        assert (err["code"], err["details"]) == ("invalid_field", {"field": "id"})
        for value in (10**30, "now", True):
            err = await answer(s1, json.dumps(
                {"v": 1, "type": "time", "id": "x", "client_time_ms": value}))
            assert (err["code"], err["re"], err["details"]) == (
                "invalid_field", "x", {"field": "client_time_ms"}), err
        for fields, code in (({"auction_id": 5}, "invalid_field"),
                             ({"auction_id": ["auc_x"]}, "invalid_field"),
                             ({"auction_id": "auc x\u0000"}, "invalid_field"),
                             ({}, "missing_field"),
                             ({"auction_id": "auc_x", "last_seq": 10**30}, "invalid_field"),
                             ({"auction_id": "auc_x", "last_seq": True}, "invalid_field")):
            err = await answer(s1, json.dumps({"v": 1, "type": "join", "id": "j", **fields}))
            assert (err["code"], err["request"], err["re"]) == (code, "join", "j"), fields
        await assert_alive(s1)
    async with Client.connect(live_on.ws_url, acc["s1"].token) as s1:  # msgpack
        # a JSON text frame on a msgpack connection is read too; msgpack cannot carry an
        # integer past 64 bits, so echoing these closed the connection with 1011
        err = await answer(s1, '{"v": 1, "type": "ping", "id": ' + "9" * 30 + "}")
        assert (err["code"], err["details"]) == ("invalid_field", {"field": "id"})
        err = await answer(s1, json.dumps(
            {"v": 1, "type": "time", "id": "t", "client_time_ms": 10**20}))
        assert (err["code"], err["re"]) == ("invalid_field", "t")
        reply = await s1.request("time", client_time_ms=1_900_000_000_123)
        assert reply["client_time_ms"] == 1_900_000_000_123
        await assert_alive(s1)


@BOTH_PATHS
async def test_invalid_utf8_in_a_text_frame_closes_with_1007_on_both_paths(
    live_on: LiveServer,
) -> None:
    acc = live_on.accounts
    async with Client.connect(live_on.ws_url, acc["s1"].token, wire="json") as s1:
        await assert_alive(s1)
        await s1.ws.send(b'{"v": 1, "type": "ping", "id": "\xff\xfe"}', text=True)
        with pytest.raises(ConnectionClosed) as closed:
            await s1.recv()
        # a close frame, not a dropped connection: the server said why
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
    async with Client.connect(live_on.ws_url, acc["s2"].token, wire="json") as s2:
        await assert_alive(s2)  # the server is fine


@BOTH_PATHS
async def test_replies_carry_re_only_for_a_request_with_an_id(live_on: LiveServer) -> None:
    acc = live_on.accounts
    async with Client.connect(live_on.ws_url, None, wire="json") as c:
        err = await answer(c, json.dumps({"v": 1, "type": "auth", "id": "a", "token": 5}))
        assert (err["code"], err["request"], err["re"]) == ("invalid_field", "auth", "a")
        await c.send_raw(json.dumps({"v": 1, "type": "ping"}))
        assert await c.recv() == {"v": 1, "type": "pong"}
        await c.send_raw(json.dumps({"v": 1, "type": "time"}))
        time_reply = await c.recv()
        assert set(time_reply) == {"v", "type", "server_time_ms"}
        await c.send_raw(json.dumps({"v": 1, "type": "auth", "token": acc["s1"].token}))
        welcome = await c.recv()
        assert welcome["type"] == "welcome" and "re" not in welcome
    async with Client.connect(live_on.ws_url, None, wire="json") as c:
        welcome = await c.request("auth", token=acc["s1"].token)
        assert (welcome["type"], welcome["re"]) == ("welcome", "r1")
    # authenticated by the upgrade request's header: the first frame answers no request
    headers = {"Authorization": f"Bearer {acc['s1'].token}"}
    async with connect(live_on.ws_url, subprotocols=["bidroom.v1.json"],  # type: ignore[list-item]
                       additional_headers=headers, compression=None) as ws:
        welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome" and "re" not in welcome
    assert set(welcome) == {"v", "type", "protocol", "server_time_ms", "user", "org", "roles",
                            "audience", "server"}
