"""Both ways frames leave ``/ws``: the direct path of ``bidroom serve`` (``web.wsproto``: the
audience's shared frame written straight to each transport) and the plain ASGI path any other
ASGI server gets (a byte-bounded queue and a writer task). Same room, same messages, both wire
formats; and the ASGI path's slow-consumer bound."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from bidroom.config import Settings
from bidroom.protocol import EncodedMessage, WireFormat, message
from tests.e2e.conftest import LIVE_T0 as T0
from tests.e2e.test_auction_room import create_auction
from tests.live import Client, join, live_server
from web.ws import WsConnection
from web.wsproto import PROTOCOL


@pytest.mark.parametrize("ws", [PROTOCOL, "websockets-sansio"])
async def test_a_room_works_the_same_on_the_direct_and_the_asgi_path(
    ws: str, tmp_path: Path, redis_url: str, migrated_database_url: str,
) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=redis_url,
                        database_url=migrated_database_url, test_clock=True)
    async with live_server(settings, ws=ws) as live:
        await live.set_clock(T0)
        acc = await live.seed()
        auction_id = await create_auction(live)
        await live.set_clock(T0 + 2_000)
        async with (
            Client.connect(live.ws_url, acc["purchaser"].token, wire="json") as watcher,
            Client.connect(live.ws_url, acc["s1"].token) as s1,
        ):
            snapshot, _ = await join(watcher, auction_id)
            assert snapshot["type"] == "snapshot"
            await join(s1, auction_id)
            reply = await s1.request("bid", auction_id=auction_id, bid_id="b1",
                                     price_fen=990_000)
            assert reply["type"] == "bid_accepted", reply
            event, _ = await watcher.recv_until(lambda m: m["type"] == "event")
            assert event["event"]["price_fen"] == 990_000
            assert event["seq"] == reply["receipt"]["seq"]
            you, _ = await s1.recv_until(lambda m: m["type"] == "you" and m["seq"] == 1)
            assert you["rank"] == 1
            # a longer frame (16-bit length header): an error echoing a 3 KiB request id
            long_id = "竞" * 1_000
            await watcher.send_raw(json.dumps({"v": 1, "type": "bogus", "id": long_id}))
            error, _ = await watcher.recv_until(lambda m: m.get("re") == long_id)
            assert error["type"] == "error" and error["code"] == "unknown_type"


class _StalledWebSocket:
    """An ASGI WebSocket whose client never reads: every send waits forever."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.closed: tuple[int, str] | None = None
        self.stall = asyncio.Event()

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)
        await self.stall.wait()

    async def send_text(self, data: str) -> None:
        await self.send_bytes(data.encode())

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


async def test_the_asgi_path_bounds_a_stalled_client_by_bytes_and_closes_it() -> None:
    ws = _StalledWebSocket()
    conn = WsConnection(ws, WireFormat.MSGPACK, 2_048, None)  # type: ignore[arg-type]
    writer = asyncio.create_task(conn.writer())
    frame = EncodedMessage(message("event", auction_id="a", seq=1, event={"pad": "x" * 200}))
    offered = 0
    while conn.offer(frame):
        offered += 1
        await asyncio.sleep(0)  # let the writer take the first frame and stall on it
        assert offered < 100, "the byte bound never tripped"
    assert 2_048 // len(frame.frame(WireFormat.MSGPACK)) <= offered
    conn.drop(4008, "slow consumer")
    assert conn.closing and conn.offer(frame)  # closing: further frames are not queued
    ws.stall.set()
    await asyncio.wait_for(writer, 5)
    assert ws.closed == (4008, "slow consumer")
    assert len(ws.sent) == 1  # the stalled frame only: what it did not read was discarded


async def test_the_asgi_path_marks_a_lagging_client_and_says_when_it_has_drained() -> None:
    ws = _StalledWebSocket()
    conn = WsConnection(ws, WireFormat.MSGPACK, 65_536, None,  # type: ignore[arg-type]
                        coalesce=1_024)
    drained: list[bool] = []
    conn.on_drained = lambda: drained.append(conn.lagging)
    writer = asyncio.create_task(conn.writer())
    frame = EncodedMessage(message("event", auction_id="a", seq=1, event={"pad": "x" * 200}))
    offered = 0
    while not conn.lagging:
        assert conn.offer(frame)
        offered += 1
        await asyncio.sleep(0)
        assert offered < 100, "the coalescing mark never tripped"
    assert 1_024 // len(frame.frame(WireFormat.MSGPACK)) <= offered
    assert not conn.closing and not drained
    ws.stall.set()  # the client reads again
    for _ in range(offered + 5):
        await asyncio.sleep(0)
    assert drained == [False] and not conn.lagging  # once, after it left the lagging state
    assert len(ws.sent) == offered
    writer.cancel()


# ------------------------------------------------------------- the native protocol (web.wsproto)


async def test_native_ws_refuses_other_paths_reassembles_fragments_and_closes_1001_on_shutdown(
    tmp_path: Path, redis_url: str, migrated_database_url: str,
) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    settings = Settings(data_dir=tmp_path, redis_url=redis_url,
                        database_url=migrated_database_url, test_clock=True)
    async with live_server(settings) as live:
        await live.set_clock(T0)
        acc = await live.seed()
        auction_id = await create_auction(live)
        with pytest.raises(InvalidStatus) as refused:
            async with connect(live.ws_url.replace("/ws", "/elsewhere")):
                pass
        assert refused.value.response.status_code == 404

        # the credential is checked before the first message even when the client does not
        # wait for its welcome: a join sent at once is answered as an authenticated one
        headers = {"Authorization": f"Bearer {acc['supervisor'].token}"}
        ws = await connect(live.ws_url, subprotocols=["bidroom.v1.json"],  # type: ignore[list-item]
                           additional_headers=headers, compression=None)
        await ws.send(json.dumps({"v": 1, "type": "join", "auction_id": auction_id, "id": "j"}))
        # a fragmented text message is one message
        await ws.send(['{"v": 1, "type": "ping",', ' "id": "frag"}'])
        seen: list[dict[str, Any]] = []
        while not any(m.get("re") == "frag" for m in seen):
            seen.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        kinds = [(m["type"], m.get("re")) for m in seen]
        assert kinds[0] == ("welcome", None)
        assert ("joined", "j") in kinds and ("pong", "frag") in kinds
    # the server stopped: the client was told "going away" (1001) and may reconnect
    await asyncio.wait_for(ws.wait_closed(), 10)
    assert ws.close_code == 1001
