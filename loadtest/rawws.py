"""A lean asyncio WebSocket client for the benchmark runner: thousands of connections, one core.

Why not the ``websockets`` asyncio client here: the load generator shares a 2-core machine with
the server, and in the fan-out rows it must receive 100,000+ frames per second on one core. A
per-message coroutine hand-off costs more than the server's work per delivery, so the
benchmark would measure its own client. This client is an ``asyncio.Protocol`` that parses
RFC 6455 frames in ``data_received`` and calls ``on_frame(opcode, payload)`` synchronously:
a couple of microseconds per frame. It does the opening handshake itself (``Sec-WebSocket-
Accept`` checked), masks what it sends, answers pings, and supports an abrupt drop
(``abort()``, no close frame) for the reconnect storm. No extensions (compression is off for
room traffic, docs/protocol.md §1.1).

Must not import bidroom, market or web.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["OP_BINARY", "OP_CLOSE", "OP_TEXT", "WsError", "WsProtocol", "client_frame",
           "connect"]

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

FrameHandler = Callable[[int, bytes], None]


class WsError(ConnectionError):
    """The handshake failed or the connection broke."""


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return payload
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One masked client-to-server frame (RFC 6455 §5.2)."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + key + _mask(payload, key)


class WsProtocol(asyncio.Protocol):
    """One client connection. Set ``on_frame`` to receive text/binary messages."""

    def __init__(self, request: bytes, key: bytes, on_frame: FrameHandler | None = None) -> None:
        self._request = request
        self._accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        self._on_frame: FrameHandler | None = on_frame
        self._early: list[tuple[int, bytes]] = []  # frames that came before a handler was set
        self.on_close: Callable[[WsProtocol], None] | None = None
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.closed = False
        self.close_code: int | None = None
        self.subprotocol: str | None = None
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buf = bytearray()
        self._frag_op = 0
        self._frag: list[bytes] = []
        self.frames_in = 0
        self.bytes_in = 0

    @property
    def on_frame(self) -> FrameHandler | None:
        return self._on_frame

    @on_frame.setter
    def on_frame(self, handler: FrameHandler | None) -> None:
        """Set the message handler; frames that arrived before it (say, in the same TCP
        segment as the handshake reply) are handed to it first."""
        self._on_frame = handler
        if handler is not None:
            early, self._early = self._early, []
            for opcode, payload in early:
                handler(opcode, payload)

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        self.bytes_in += len(data)
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 65536:
                    self._fail(WsError("handshake reply too long"))
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[: end + 4]
            if not self._check_handshake(head):
                return
        self._parse()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.open = False
        if not self.handshake.done():
            self.handshake.set_exception(WsError(f"connection lost during handshake: {exc}"))
        if not self.done.done():
            self.done.set_result(None)
        if self.on_close is not None:
            self.on_close(self)

    # -- handshake and frames ------------------------------------------------------------------

    def _check_handshake(self, head: str) -> bool:
        lines = head.split("\r\n")
        if not lines[0].startswith("HTTP/1.1 101"):
            self._fail(WsError(f"handshake refused: {lines[0]!r}"))
            return False
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("sec-websocket-accept", "").encode() != self._accept:
            self._fail(WsError("bad Sec-WebSocket-Accept"))
            return False
        self.subprotocol = headers.get("sec-websocket-protocol")
        self.open = True
        if not self.handshake.done():
            self.handshake.set_result(None)
        return True

    def _parse(self) -> None:
        buf = self._buf
        pos = 0
        size = len(buf)
        handler = self._on_frame
        while size - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            n = b1 & 0x7F
            at = pos + 2
            if n == 126:
                if size - at < 2:
                    break
                n = (buf[at] << 8) | buf[at + 1]
                at += 2
            elif n == 127:
                if size - at < 8:
                    break
                n = int.from_bytes(buf[at:at + 8], "big")
                at += 8
            if b1 & 0x80:  # a masked server frame is a protocol error; tolerate by unmasking
                if size - at < 4 + n:
                    break
                key = bytes(buf[at:at + 4])
                at += 4
                payload = _mask(bytes(buf[at:at + n]), key)
            else:
                if size - at < n:
                    break
                payload = bytes(buf[at:at + n])
            pos = at + n
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            if opcode >= 8:
                self._control(opcode, payload)
                continue
            if not fin or opcode == OP_CONT:
                if opcode != OP_CONT:
                    self._frag_op = opcode
                self._frag.append(payload)
                if not fin:
                    continue
                opcode, payload = self._frag_op, b"".join(self._frag)
                self._frag = []
            self.frames_in += 1
            if handler is not None:
                handler(opcode, payload)
            else:
                self._early.append((opcode, payload))
        if pos:
            del buf[:pos]

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_PING:
            self._write(OP_PONG, payload)
        elif opcode == OP_CLOSE:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            if self.transport is not None and not self.transport.is_closing():
                self._write(OP_CLOSE, payload[:2])
                self.transport.close()

    def _fail(self, exc: Exception) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def _write(self, opcode: int, payload: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(client_frame(opcode, payload))

    # -- public --------------------------------------------------------------------------------

    def send_binary(self, payload: bytes) -> None:
        """Queue one binary message (no waiting: the transport buffers)."""
        if not self.open:
            raise WsError("the connection is not open")
        self._write(OP_BINARY, payload)

    def send_text(self, text: str) -> None:
        if not self.open:
            raise WsError("the connection is not open")
        self._write(OP_TEXT, text.encode())

    def close(self, code: int = 1000) -> None:
        """A clean close: a close frame, then the TCP connection."""
        if self.transport is not None and not self.transport.is_closing():
            self._write(OP_CLOSE, struct.pack("!H", code))
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection abruptly (no close frame), as a lost network would."""
        if self.transport is not None:
            self.transport.abort()


async def connect(
    host: str,
    port: int,
    path: str = "/",
    *,
    subprotocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    on_frame: FrameHandler | None = None,
    wait_s: float = 30.0,
) -> WsProtocol:
    """Open one WebSocket connection and finish the opening handshake (within ``wait_s``)."""
    loop = asyncio.get_running_loop()
    key = base64.b64encode(os.urandom(16))
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    proto_box: dict[str, Any] = {}

    def factory() -> WsProtocol:
        proto_box["p"] = WsProtocol(request, key, on_frame)
        return proto_box["p"]

    async with asyncio.timeout(wait_s):
        await loop.create_connection(factory, host, port)
        proto: WsProtocol = proto_box["p"]
        await proto.handshake
    return proto
