"""An in-process live server for end-to-end tests: the real app under uvicorn on a free port.

Real sockets, real WebSocket clients (the ``websockets`` library), real Redis and SQL; the
server clock is the test clock (a Redis key the test sets), so nothing sleeps to wait for time.
Also seeding helpers that create organisations, users and tokens through the registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from bidroom.config import Settings
from market.registry import Role
from web.app import create_app
from web.services import TEST_CLOCK_KEY, Services
from web.wsproto import PROTOCOL as WS_PROTOCOL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Account:
    role: str
    org_id: str
    user_id: str
    token: str
    name: str


@dataclass
class LiveServer:
    base_url: str
    ws_url: str
    services: Services
    accounts: dict[str, Account] = field(default_factory=dict)

    async def set_clock(self, ms: int) -> None:
        await self.services.redis.set(TEST_CLOCK_KEY, ms)

    async def seed(self, *, suppliers: int = 4) -> dict[str, Account]:
        reg = self.services.registry
        now = 0
        tag = uuid.uuid4().hex[:6]

        async def make(key: str, kind: str, role: Role, name: str, size: str | None) -> None:
            org = await reg.create_organisation(name, kind, name_en=f"{key} {tag}",
                                                size_class=size, now_ms=now)
            user = await reg.create_user(org.id, f"{key} user", [role], now_ms=now)
            token, _ = await reg.issue_token(user.id, now_ms=now)
            self.accounts[key] = Account(role.value, org.id, user.id, token, name)

        await make("purchaser", "purchaser", Role.PURCHASER, f"采购单位{tag}", None)
        await make("agency", "agency", Role.AGENCY, f"代理机构{tag}", None)
        await make("supervisor", "supervisor", Role.SUPERVISOR, f"财政局{tag}", None)
        for i in range(1, suppliers + 1):
            await make(f"s{i}", "supplier", Role.SUPPLIER, f"供应商公司{i}-{tag}",
                       ["large", "medium", "small", "micro"][i % 4])
        await make("outsider", "supplier", Role.SUPPLIER, f"未受邀公司{tag}", "small")
        return self.accounts


@contextlib.asynccontextmanager
async def live_server(settings: Settings, *, ws: str = WS_PROTOCOL
                      ) -> AsyncIterator[LiveServer]:
    """``ws``: uvicorn's WebSocket protocol; the default is ``bidroom serve``'s, with the direct
    frame path; ``"websockets-sansio"`` runs the plain ASGI path (``web.ws``'s fallback)."""
    port = free_port()
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, ws=ws,
                            ws_per_message_deflate=False, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.01)  # waiting for the server to come up, not for time
        assert server.started, "the live server did not start"
        yield LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws",
                         app.state.services)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


class Client:
    """A WebSocket client speaking msgpack (or JSON) with request ids and a message inbox."""

    def __init__(self, ws: ClientConnection, wire: str) -> None:
        self.ws = ws
        self.wire = wire
        self.counter = 0
        # Messages received while waiting for something else (a reply can arrive after the
        # room events it caused): later waits look here first, so nothing is lost.
        self.stash: list[dict[str, Any]] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str, token: str | None, *, wire: str = "msgpack",
                      header_auth: bool = True) -> AsyncIterator[Client]:
        headers = {"Authorization": f"Bearer {token}"} if token and header_auth else None
        async with connect(url, subprotocols=[f"bidroom.v1.{wire}"],  # type: ignore[list-item]
                           additional_headers=headers, compression=None) as ws:
            client = cls(ws, wire)
            if token and header_auth:
                welcome = await client.recv()
                assert welcome["type"] == "welcome", welcome
            yield client

    async def send(self, type_: str, **fields: Any) -> str:
        self.counter += 1
        rid = f"r{self.counter}"
        msg = {"v": 1, "type": type_, "id": rid, **fields}
        await self.send_raw(msgpack.packb(msg) if self.wire == "msgpack" else json.dumps(msg))
        return rid

    async def send_raw(self, frame: bytes | str) -> None:
        await self.ws.send(frame)

    async def recv(self, wait_s: float = 10.0) -> dict[str, Any]:
        frame = await asyncio.wait_for(self.ws.recv(), wait_s)
        if isinstance(frame, bytes):
            decoded: dict[str, Any] = msgpack.unpackb(frame, raw=False)
        else:
            decoded = json.loads(frame)
        return decoded

    async def recv_until(self, predicate: Any, wait_s: float = 10.0) -> tuple[
        dict[str, Any], list[dict[str, Any]]
    ]:
        """Receive until a message matches; return it and everything received before it."""
        seen: list[dict[str, Any]] = []
        while self.stash:
            msg = self.stash.pop(0)
            if predicate(msg):
                return msg, seen
            seen.append(msg)
        async with asyncio.timeout(wait_s):
            while True:
                msg = await self.recv(wait_s)
                if predicate(msg):
                    return msg, seen
                seen.append(msg)

    async def request(self, type_: str, **fields: Any) -> dict[str, Any]:
        """Send and wait for the reply (or error) carrying this request's id."""
        rid = await self.send(type_, **fields)
        msg, seen = await self.recv_until(lambda m: m.get("re") == rid)
        self.stash.extend(seen)
        return msg


def data_dir(tmp: Path) -> Path:
    path = tmp / "data"
    path.mkdir(exist_ok=True)
    return path


async def join(client: Client, auction_id: str, **fields: Any) -> tuple[
    dict[str, Any], list[dict[str, Any]]
]:
    """Join a room: return the first message of the join (snapshot, event or error) and all
    messages up to and including ``joined`` (or the error)."""
    rid = await client.send("join", auction_id=auction_id, **fields)
    reply, before = await client.recv_until(lambda m: m.get("re") == rid)
    messages = [*before, reply]
    return messages[0], messages
