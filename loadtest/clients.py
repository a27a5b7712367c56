"""Benchmark clients on top of ``rawws``: Bidroom sessions, bare-websockets and Socket.IO watchers.

A ``Session`` is one authenticated Bidroom connection (msgpack subprotocol, bearer token on the
upgrade request) with request/reply matching (``id`` → ``re``) and a hook for pushed messages.
``Counter`` is what a fan-out watcher turns into once it has joined: it counts every frame and
decodes the server's ``at_ms`` only on sampled connections, so the load generator stays cheap.

Must not import bidroom, market or web.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, ClassVar

from loadtest import rawws, wire

__all__ = ["Counter", "RefusedError", "Session", "connect_many", "socketio_watcher"]

PushHandler = Callable[[dict[str, Any]], None]


class RefusedError(ConnectionError):
    """The server refused the connection's credential (it sent ``error``, then closes)."""


class Session:
    """One Bidroom WebSocket connection with replies matched to requests."""

    def __init__(self, proto: rawws.WsProtocol) -> None:
        self.proto = proto
        self.pending: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self.on_push: PushHandler | None = None
        self.welcome: asyncio.Future[dict[str, Any]] = (
            asyncio.get_running_loop().create_future())
        proto.on_frame = self._on_frame

    refused: ClassVar[dict[str, int]] = {}  # refusals seen by open(), by reason

    @classmethod
    async def open(cls, host: str, port: int, token: str, wait_s: float = 30.0,
                   retries: int = 5) -> Session:
        """Connect and authenticate (bearer header). A refusal (e.g. ``store_unavailable``)
        is retried ``retries`` times with a growing pause, as docs/protocol.md asks of
        clients, and counted in ``Session.refused``."""
        for attempt in range(retries + 1):
            proto = await rawws.connect(host, port, "/ws", subprotocol=wire.SUBPROTOCOL,
                                        headers={"Authorization": f"Bearer {token}"},
                                        wait_s=wait_s)
            session = cls(proto)
            try:
                async with asyncio.timeout(wait_s):
                    await session.welcome
                return session
            except RefusedError as exc:
                reason = str(exc).split(":", 1)[0]
                cls.refused[reason] = cls.refused.get(reason, 0) + 1
                proto.abort()
                if attempt == retries:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def _on_frame(self, opcode: int, payload: bytes) -> None:
        message = wire.decode(payload)
        kind = message.get("type")
        if not self.welcome.done():
            if kind == "welcome":
                self.welcome.set_result(message)
                return
            if kind == "error":  # the credential was refused: say why
                self.welcome.set_exception(RefusedError(
                    f"{message.get('code')}: {message.get('message')}"))
                return
        re = message.get("re")
        if re is not None:
            future = self.pending.pop(re, None)
            if future is not None and not future.done():
                future.set_result(message)
                return
        if self.on_push is not None:
            self.on_push(message)

    def send(self, message: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
        """Send a request; the future resolves with the reply carrying its ``re``."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[message["id"]] = future
        self.proto.send_binary(wire.encode(message))
        return future

    async def request(self, message: dict[str, Any], wait_s: float = 30.0) -> dict[str, Any]:
        async with asyncio.timeout(wait_s):
            return await self.send(message)

    async def join(self, auction_id: str, last_seq: int | None = None,
                   wait_s: float = 30.0, retries: int = 5) -> dict[str, Any]:
        """Join a room; ``store_unavailable`` answers are retried (counted in ``refused``)."""
        for attempt in range(retries + 1):
            reply = await self.request(wire.join_msg(auction_id, last_seq), wait_s)
            if reply.get("type") == "joined":
                return reply
            if reply.get("code") != "store_unavailable" or attempt == retries:
                break
            key = "join:store_unavailable"
            Session.refused[key] = Session.refused.get(key, 0) + 1
            await asyncio.sleep(0.2 * (attempt + 1))
        raise RuntimeError(f"join {auction_id} failed: {reply}")

    def fail_pending(self) -> None:
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ConnectionError("connection lost"))
        self.pending.clear()

    def close(self) -> None:
        self.proto.close()


class Counter:
    """Fan-out watcher mode: count frames; on sampled connections record bid → receipt latency.

    ``extract`` pulls the server's ``at_ms`` stamp out of a frame (msgpack for Bidroom and the
    bare server, Socket.IO JSON text for the socketio reference); None skips the frame.
    """

    def __init__(self) -> None:
        self.frames = 0
        self.last_at = 0.0  # perf_counter() of the last frame
        self.latencies: list[tuple[float, float]] = []  # (at_ms, latency ms)
        self.closed = 0

    def attach(self, proto: rawws.WsProtocol, sampled: bool,
               extract: Callable[[bytes], float | None], *, socketio: bool = False) -> None:
        """Count this connection's frames from now on (a Socket.IO one keeps its ping reply)."""

        def on_frame(opcode: int, payload: bytes) -> None:
            self.frames += 1
            self.last_at = time.perf_counter()
            if sampled:
                at = extract(payload)
                if at is not None:
                    self.latencies.append((at, time.time() * 1000.0 - at))

        def on_close(_: rawws.WsProtocol) -> None:
            self.closed += 1

        if socketio:
            proto.rebind(on_frame)  # type: ignore[attr-defined]
        else:
            proto.on_frame = on_frame
        proto.on_close = on_close

    def reset(self) -> None:
        self.frames = 0
        self.last_at = 0.0
        self.latencies = []


def at_ms_msgpack(payload: bytes) -> float | None:
    """``event.at_ms`` of a Bidroom (or bare reference) event frame."""
    message = wire.decode(payload)
    event = message.get("event")
    if isinstance(event, dict) and "at_ms" in event:
        return float(event["at_ms"])
    return None


def at_ms_socketio(payload: bytes) -> float | None:
    """``event.at_ms`` of a Socket.IO ``42["event", {...}]`` frame; pings are not events."""
    if not payload.startswith(b"42"):
        return None
    name, body = json.loads(payload[2:])
    if name != "event":
        return None
    event = body.get("event", body)
    return float(event["at_ms"]) if "at_ms" in event else None


async def socketio_watcher(host: str, port: int, query: str = "",
                           wait_s: float = 30.0) -> rawws.WsProtocol:
    """An Engine.IO v4 WebSocket connection that has connected to the ``/`` namespace.

    Answers Engine.IO pings ("2" → "3") itself; the caller's frame handler sees the rest.
    """
    opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    proto = await rawws.connect(host, port, f"/socket.io/?EIO=4&transport=websocket{query}",
                                wait_s=wait_s)
    handler: dict[str, Callable[[int, bytes], None] | None] = {"next": None}

    def on_frame(opcode: int, payload: bytes) -> None:
        if payload == b"2":
            proto.send_text("3")
            return
        if payload.startswith(b"0{"):
            proto.send_text("40")
            return
        if payload.startswith(b"40") and not opened.done():
            opened.set_result(None)
            return
        nxt = handler["next"]
        if nxt is not None:
            nxt(opcode, payload)

    proto.on_frame = on_frame

    def rebind(fn: Callable[[int, bytes], None] | None) -> None:
        handler["next"] = fn

    proto.rebind = rebind  # type: ignore[attr-defined]
    async with asyncio.timeout(wait_s):
        await opened
    return proto


async def connect_many(count: int, factory: Callable[[int], Any],
                       parallel: int = 64) -> list[Any]:
    """Run ``factory(i)`` for i in range(count), at most ``parallel`` at once; results in order."""
    semaphore = asyncio.Semaphore(parallel)
    results: list[Any] = [None] * count

    async def one(i: int) -> None:
        async with semaphore:
            results[i] = await factory(i)

    await asyncio.gather(*(one(i) for i in range(count)))
    return results
