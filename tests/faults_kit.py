"""Load and fault helpers for tests/e2e/test_faults.py. Not a test module.

* ``RoomClient``: one participant of an auction room over a real WebSocket (msgpack), with a
  reader task that dispatches replies by request id and records every room event it receives
  (``seq``, kind, when). It reconnects by itself — to the next URL of its list, i.e. another
  server process — and rejoins with the last ``seq`` it saw (docs/protocol.md §1.6), recording
  every catch-up and every snapshot, so a test can check that the events it received, live and
  caught up, are exactly 1, 2, 3, … with no gap and no duplicate.
* ``Watcher``: a ``RoomClient`` that only listens. ``Bidder``: one that bids in a closed loop,
  a bounded number of bids, re-sending a bid whose reply it did not get with the **same**
  ``bid_id`` (idempotent) until it is acknowledged; every acknowledgement is recorded.
* ``RawSlowClient``: a WebSocket spoken by hand on a plain socket, which joins a room and then
  never reads again; ``server_side_tcp_state`` reads the server's end of it from
  ``/proc/net/tcp`` (Linux), which shows when the server lets go of a client that does not read.
* ``latency_summary``: median / p99 of bid → watcher latencies, for printing only.

Waits are for conditions with deadlines; the only pauses are reconnect/retry backoffs while a
server or Redis is down (polling a condition, not waiting for time).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import statistics
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from loadtest.rawws import client_frame

__all__ = [
    "Bidder",
    "ClientFailed",
    "ConnectionLost",
    "RawSlowClient",
    "RoomClient",
    "Watcher",
    "latency_summary",
    "server_side_tcp_state",
    "wait_until",
]

REPLY_TIMEOUT_S = 15.0
RECONNECT_DEADLINE_S = 45.0  # a client gives up reconnecting after this long
BACKOFF_FIRST_S = 0.02
BACKOFF_MAX_S = 0.25


class ConnectionLost(Exception):
    """The WebSocket went away (closed, reset, refused) before the reply came."""


class ClientFailed(AssertionError):
    """A client met something a correct server never does (an unexpected reply)."""


async def wait_until(predicate: Callable[[], bool], *, within_s: float, what: str,
                     poll_s: float = 0.02) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {within_s:g}s waiting for {what}")
        await asyncio.sleep(poll_s)


@dataclass
class Connection:
    """One WebSocket with its reader task and the replies it waits for."""

    ws: ClientConnection
    url: str
    welcome: dict[str, Any]
    pending: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None
    close_code: int | None = None


class RoomClient:
    """A participant of one auction room that survives losing its server.

    ``urls``: the ``/ws`` URLs it may use, the first one first; after losing a connection it
    moves on to the next one (round robin). Every room event it receives is appended to
    ``seqs`` (in order of receipt, duplicates included) with its receipt time in ``seen_at``.
    """

    def __init__(self, name: str, token: str, urls: Sequence[str], auction_id: str) -> None:
        self.name = name
        self.token = token
        self.urls = list(urls)
        self.auction_id = auction_id
        self.url_index = 0
        self.conn: Connection | None = None
        self.counter = 0
        self.first_seq: int | None = None  # the seq of the first snapshot: events start after
        self.first_snapshot: dict[str, Any] | None = None
        self.last_seq: int | None = None
        self.seqs: list[int] = []  # every event's seq, in order of receipt, live and caught up
        self.kinds: dict[int, str] = {}
        self.seen_at: dict[int, float] = {}  # seq -> time.monotonic() of first receipt
        self.connects: list[str] = []  # the URL of every successful connection
        self.catch_ups: list[tuple[int, int]] = []  # (last_seq sent, seq caught up to)
        self.snapshots_on_rejoin: list[tuple[int, int]] = []  # (last_seq sent, snapshot seq)
        self.close_codes: list[int | None] = []
        self.failures: list[str] = []  # why a connection was lost or a connect refused
        self.problems: list[str] = []  # protocol violations seen (for the assertions)
        self.on_event: Callable[[RoomClient, dict[str, Any]], None] | None = None

    # ------------------------------------------------------------------ connection

    @property
    def url(self) -> str:
        return self.urls[self.url_index % len(self.urls)]

    @property
    def connected(self) -> bool:
        return self.conn is not None

    async def _open(self, url: str) -> Connection:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            ws = await asyncio.wait_for(
                connect(url, subprotocols=["bidroom.v1.msgpack"],  # type: ignore[list-item]
                        additional_headers=headers, compression=None, open_timeout=10,
                        max_queue=None),
                REPLY_TIMEOUT_S)
        except (OSError, InvalidHandshake, InvalidStatus, TimeoutError, ConnectionClosed) as exc:
            raise ConnectionLost(f"connect {url}: {type(exc).__name__}: {exc}") from exc
        try:
            first = await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT_S)
        except (ConnectionClosed, OSError, TimeoutError) as exc:
            code = ws.close_code
            await ws.close()
            raise ConnectionLost(f"no welcome from {url} (close {code}): {exc}") from exc
        welcome = self._decode(first)
        if welcome.get("type") != "welcome":
            with contextlib.suppress(TimeoutError):  # the server closes it: with which code?
                await asyncio.wait_for(ws.wait_closed(), 5)
            await ws.close()
            raise ConnectionLost(f"{url} answered {welcome.get('type')} "
                                 f"{welcome.get('code')} instead of welcome, then closed "
                                 f"{ws.close_code}: {welcome.get('message')}")
        conn = Connection(ws, url, welcome)
        conn.reader = asyncio.create_task(self._read(conn), name=f"reader-{self.name}")
        return conn

    @staticmethod
    def _decode(frame: bytes | str) -> dict[str, Any]:
        if isinstance(frame, bytes):
            decoded: dict[str, Any] = msgpack.unpackb(frame, raw=False)
        else:
            decoded = json.loads(frame)
        return decoded

    async def _read(self, conn: Connection) -> None:
        try:
            async for frame in conn.ws:
                self._dispatch(conn, self._decode(frame))
        except (ConnectionClosed, OSError):
            pass
        finally:
            conn.close_code = conn.ws.close_code
            if self.conn is conn:
                self.conn = None
                self.close_codes.append(conn.close_code)
                self.failures.append(f"lost {conn.url} (close {conn.close_code})")
            for future in conn.pending.values():
                if not future.done():
                    future.set_exception(ConnectionLost(f"{conn.url} closed "
                                                        f"({conn.close_code})"))
            conn.pending.clear()

    def _dispatch(self, conn: Connection, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "event" and msg.get("auction_id") == self.auction_id:
            seq = int(msg["seq"])
            self.seqs.append(seq)
            self.kinds.setdefault(seq, msg["event"]["kind"])
            self.seen_at.setdefault(seq, time.monotonic())
            if self.last_seq is not None and seq != self.last_seq + 1:
                self.problems.append(f"{self.name}: event {seq} after {self.last_seq}")
            self.last_seq = seq if self.last_seq is None else max(self.last_seq, seq)
            if self.on_event is not None:
                self.on_event(self, msg)
        elif kind == "snapshot" and msg.get("auction_id") == self.auction_id:
            self._on_snapshot(msg)
        re = msg.get("re")
        if re is not None:
            future = conn.pending.pop(str(re), None)
            if future is not None and not future.done():
                future.set_result(msg)

    def _on_snapshot(self, msg: dict[str, Any]) -> None:
        seq = int(msg["seq"])
        if self.first_seq is None:
            self.first_seq = self.last_seq = seq
            self.first_snapshot = msg
            return
        # A snapshot on rejoin replaces the catch-up (allowed by the protocol when the gap is
        # older than the server's history). It must not go back in time, and for a watcher
        # its bid list must cover the gap: then the gap is filled from it, bid by bid.
        before = self.last_seq if self.last_seq is not None else self.first_seq
        self.snapshots_on_rejoin.append((before, seq))
        if seq < before:
            self.problems.append(f"{self.name}: snapshot at {seq} after event {before}")
            return
        bids = {int(b["seq"]) for b in (msg["room"].get("bids") or [])}
        for missing in range(before + 1, seq + 1):
            if missing not in bids:
                self.problems.append(f"{self.name}: snapshot {seq} lacks event {missing}")
            self.seqs.append(missing)
            self.kinds.setdefault(missing, "bid (from snapshot)")
        self.last_seq = seq

    async def request(self, type_: str, *, reply_within_s: float = REPLY_TIMEOUT_S,
                      **fields: Any) -> dict[str, Any]:
        """Send a request on the current connection and wait for its reply."""
        conn = self.conn
        if conn is None:
            raise ConnectionLost("not connected")
        self.counter += 1
        rid = f"{self.name}.{self.counter}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        conn.pending[rid] = future
        try:
            await conn.ws.send(msgpack.packb({"v": 1, "type": type_, "id": rid, **fields}))
        except (ConnectionClosed, OSError) as exc:
            conn.pending.pop(rid, None)
            raise ConnectionLost(f"send on {conn.url}: {exc}") from exc
        try:
            return await asyncio.wait_for(future, reply_within_s)
        except TimeoutError as exc:
            conn.pending.pop(rid, None)
            raise ConnectionLost(f"no reply to {type_} on {conn.url} in {reply_within_s:g}s"
                                 ) from exc

    async def ensure_joined(self) -> None:
        """Connect (moving to the next URL after a failure) and join the room, rejoining with
        the last seq seen; retry with backoff until joined or the deadline passes."""
        if self.conn is not None:
            return
        deadline = time.monotonic() + RECONNECT_DEADLINE_S
        pause = BACKOFF_FIRST_S
        while True:
            try:
                await self._connect_and_join()
                return
            except ConnectionLost as exc:
                self.failures.append(str(exc))
                if self.conn is not None:
                    await self._discard(self.conn)
                self.url_index += 1
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.name} could not rejoin within "
                                     f"{RECONNECT_DEADLINE_S:g}s: {self.failures[-5:]}")
            await asyncio.sleep(pause)  # a backoff while a server is down, as real clients do
            pause = min(pause * 2, BACKOFF_MAX_S)

    async def _connect_and_join(self) -> None:
        url = self.url
        self.conn = await self._open(url)
        last = self.last_seq
        fields: dict[str, Any] = {"auction_id": self.auction_id}
        if last is not None:
            fields["last_seq"] = last
        reply = await self.request("join", **fields)
        if reply.get("type") != "joined":
            code = reply.get("code")
            if code == "store_unavailable":
                raise ConnectionLost(f"join on {url}: store_unavailable")
            raise ClientFailed(f"{self.name}: join answered {reply}")
        if last is not None:
            self.catch_ups.append((last, int(reply["seq"])))
        self.connects.append(url)

    async def _discard(self, conn: Connection) -> None:
        if self.conn is conn:
            self.conn = None
        with contextlib.suppress(Exception):
            await conn.ws.close()
        if conn.reader is not None:
            with contextlib.suppress(Exception):
                await conn.reader

    async def close(self) -> None:
        if self.conn is not None:
            await self._discard(self.conn)

    def saw(self, seq: int) -> bool:
        return self.last_seq is not None and self.last_seq >= seq


class Watcher(RoomClient):
    """Listens to the room; reconnects and rejoins by itself whenever its connection is lost,
    until ``close()``."""

    def __init__(self, name: str, token: str, urls: Sequence[str], auction_id: str) -> None:
        super().__init__(name, token, urls, auction_id)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        await self.ensure_joined()
        self._task = asyncio.create_task(self._keep_joined(), name=f"watcher-{self.name}")

    async def _keep_joined(self) -> None:
        try:
            while not self._stopping:
                conn = self.conn
                if conn is not None and conn.reader is not None:
                    await asyncio.shield(conn.reader)
                    continue
                await self.ensure_joined()
        except Exception as exc:  # make it fail the test's checks rather than vanish
            self.problems.append(f"{self.name} stopped: {type(exc).__name__}: {exc}")
            raise

    async def close(self) -> None:
        """Stop listening (no more reconnecting) and close the connection."""
        self._stopping = True
        await super().close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


@dataclass(frozen=True)
class Ack:
    bid_id: str
    price_fen: int
    seq: int
    receipt: dict[str, Any]
    status: str
    sent_at: float  # time.monotonic() of the attempt that was answered
    first_try: bool


class Bidder(RoomClient):
    """A supplier bidding in a closed loop: one bid, its reply, the next bid.

    Bid ``k`` has ``bid_id`` ``f"{name}-{k}"`` and the price ``prices(k)``. A bid whose reply
    did not come (the connection died, or the server answered ``store_unavailable``) is sent
    again with the same ``bid_id`` and price until it is acknowledged: ``acks`` then holds, per
    ``bid_id``, every acknowledgement received (all must carry the same receipt).
    """

    def __init__(self, name: str, token: str, urls: Sequence[str], auction_id: str,
                 prices: Callable[[int], int]) -> None:
        super().__init__(name, token, urls, auction_id)
        self.prices = prices
        self.acks: dict[str, list[Ack]] = {}
        self.resends = 0
        self.store_errors = 0
        self.on_ack: Callable[[Bidder, Ack], Awaitable[None] | None] | None = None

    async def run(self, bids: int, *, start_at: int = 0) -> None:
        for k in range(start_at, start_at + bids):
            await self.place(f"{self.name}-{k}", self.prices(k))

    async def place(self, bid_id: str, price: int) -> Ack:
        deadline = time.monotonic() + RECONNECT_DEADLINE_S
        pause = BACKOFF_FIRST_S
        attempt = 0
        while True:
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.name}: bid {bid_id} not acknowledged within "
                                     f"{RECONNECT_DEADLINE_S:g}s: {self.failures[-5:]}")
            try:
                await self.ensure_joined()
                sent_at = time.monotonic()
                reply = await self.request("bid", auction_id=self.auction_id, bid_id=bid_id,
                                           price_fen=price)
            except ConnectionLost as exc:
                self.failures.append(f"bid {bid_id}: {exc}")
                attempt += 1
                self.resends += 1
                if self.conn is not None:  # no reply in time on a live connection: start over
                    await self._discard(self.conn)
                continue
            if reply.get("type") == "bid_accepted":
                receipt = reply["receipt"]
                ack = Ack(bid_id, price, int(receipt["seq"]), receipt, reply["status"], sent_at,
                          attempt == 0)
                if receipt["bid_id"] != bid_id or receipt["price_fen"] != price:
                    raise ClientFailed(f"{self.name}: receipt for another bid: {reply}")
                self.acks.setdefault(bid_id, []).append(ack)
                if self.on_ack is not None:
                    result = self.on_ack(self, ack)
                    if result is not None:
                        await result
                return ack
            if reply.get("type") == "error" and reply.get("code") == "store_unavailable":
                # Redis (or SQL) is down: the server says "retry". Same bid id, after a backoff.
                self.store_errors += 1
                self.failures.append(f"bid {bid_id}: store_unavailable")
                attempt += 1
                self.resends += 1
                await asyncio.sleep(pause)
                pause = min(pause * 2, BACKOFF_MAX_S)
                continue
            raise ClientFailed(f"{self.name}: bid {bid_id} at {price} answered {reply}")

    def receipts(self) -> dict[str, dict[str, Any]]:
        """The receipt of every acknowledged bid (failing if two acks of one bid differ)."""
        out: dict[str, dict[str, Any]] = {}
        for bid_id, acks in self.acks.items():
            first = acks[0].receipt
            for other in acks[1:]:
                if other.receipt != first:
                    raise ClientFailed(f"{bid_id} acknowledged twice with different receipts: "
                                       f"{first} vs {other.receipt}")
            out[bid_id] = first
        return out


def latency_summary(samples: Sequence[float]) -> str:
    """``n=…, median … ms, p99 … ms`` of latencies given in seconds."""
    if not samples:
        return "n=0"
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, max(0, round(0.99 * len(ordered)) - 1))]
    return (f"n={len(ordered)}, median {statistics.median(ordered) * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms")


# ==================================================================== a client that never reads




def _parse_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Take the complete server frames (unmasked, unfragmented) off the front of ``buf``."""
    frames: list[tuple[int, bytes]] = []
    while len(buf) >= 2:
        opcode = buf[0] & 0x0F
        size = buf[1] & 0x7F
        offset = 2
        if size == 126:
            if len(buf) < 4:
                break
            size = struct.unpack("!H", buf[2:4])[0]
            offset = 4
        elif size == 127:
            if len(buf) < 10:
                break
            size = struct.unpack("!Q", buf[2:10])[0]
            offset = 10
        if len(buf) < offset + size:
            break
        frames.append((opcode, bytes(buf[offset:offset + size])))
        del buf[:offset + size]
    return frames


class RawSlowClient:
    """A watcher that does the WebSocket handshake on a plain socket, joins one room (reading
    until ``joined``), and from then on never reads: the server's buffers for it fill up.

    ``rcvbuf`` and ``mss`` shrink the kernel's buffers for the connection before connecting,
    so that the server meets a full socket after about a hundred kilobytes instead of
    megabytes. ``drain()`` reads whatever is still in flight afterwards, up to the end of the
    stream.
    """

    def __init__(self, host: str, port: int, token: str, *, rcvbuf: int = 4096,
                 mss: int = 1000) -> None:
        self.host, self.port, self.token = host, port, token
        self.rcvbuf, self.mss = rcvbuf, mss
        self.sock: socket.socket | None = None
        self.local_port = 0
        self._buf = bytearray()
        self.messages: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.ended_by = ""  # "eof", "reset", "close frame" or "" (still open)

    def connect_and_join(self, auction_id: str, timeout: float = 15.0) -> dict[str, Any]:
        """Blocking (run it in a thread): handshake (JSON frames), join, read up to joined."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        if hasattr(socket, "TCP_MAXSEG"):
            # A small MSS keeps the server's socket buffer for this connection small too
            # (Linux sizes it from the MSS: ~3 MB on loopback's 64 KiB MSS, ~90 KB here).
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, self.mss)
        sock.settimeout(timeout)
        sock.connect((self.host, self.port))
        self.sock = sock
        self.local_port = sock.getsockname()[1]
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /ws HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: bidroom.v1.json\r\n"
            f"Authorization: Bearer {self.token}\r\n\r\n"
        )
        sock.sendall(request.encode())
        while b"\r\n\r\n" not in self._buf:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionLost("the server closed during the handshake")
            self._buf += chunk
        head, _, rest = bytes(self._buf).partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionLost(f"handshake refused: {head[:200]!r}")
        self._buf = bytearray(rest)
        join = {"v": 1, "type": "join", "id": "slow-join", "auction_id": auction_id}
        sock.sendall(client_frame(0x1, json.dumps(join).encode()))
        deadline = time.monotonic() + timeout
        while True:
            for opcode, payload in _parse_frames(self._buf):
                if opcode in (0x1, 0x2):
                    msg: dict[str, Any] = json.loads(payload)
                    self.messages.append(msg)
                    if msg.get("re") == "slow-join":
                        if msg.get("type") != "joined":
                            raise ClientFailed(f"the slow client's join answered {msg}")
                        return msg
            if time.monotonic() >= deadline:
                raise AssertionError("the slow client did not get joined in time")
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionLost("the server closed before joined")
            self._buf += chunk

    def drain(self, timeout: float = 20.0) -> None:
        """Blocking: read everything still in flight until the stream ends (EOF, a reset, or a
        close frame) or ``timeout`` passes without the end (``ended_by`` stays "")."""
        sock = self.sock
        assert sock is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
            try:
                chunk = sock.recv(1 << 20)
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                self.ended_by = "reset"
                break
            if not chunk:
                self.ended_by = self.ended_by or "eof"
                break
            self._take(chunk)
        self._take(b"")

    def _take(self, chunk: bytes) -> None:
        """Add ``chunk`` to what was read; keep every whole message, note a close frame."""
        self._buf += chunk
        for opcode, payload in _parse_frames(self._buf):
            if opcode in (0x1, 0x2):
                self.messages.append(json.loads(payload))
            elif opcode == 0x8:
                self.close_code = (struct.unpack("!H", payload[:2])[0]
                                   if len(payload) >= 2 else None)
                self.ended_by = "close frame"

    def read_until(self, predicate: Callable[[dict[str, Any]], bool],
                   timeout: float = 20.0) -> dict[str, Any]:
        """Blocking: read on (keeping every message) until one satisfies ``predicate``; return
        it. Fails if the stream ends or ``timeout`` passes first."""
        sock = self.sock
        assert sock is not None
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            for msg in self.messages[checked:]:
                if predicate(msg):
                    return msg
            checked = len(self.messages)
            if self.ended_by:
                raise ConnectionLost(f"closed by the server ({self.close_code})")
            if time.monotonic() >= deadline:
                raise AssertionError(f"no such message within {timeout} s "
                                     f"(last: {self.messages[-3:]})")
            sock.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
            try:
                chunk = sock.recv(1 << 20)
            except TimeoutError:
                continue
            if not chunk:
                self.ended_by = "eof"
                raise ConnectionLost("the server closed the connection")
            self._take(chunk)

    def event_seqs(self) -> list[int]:
        return [int(m["seq"]) for m in self.messages if m.get("type") == "event"]

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None


_TCP_STATES = {
    "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
    "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK",
    "0A": "LISTEN", "0B": "CLOSING",
}


def server_side_tcp_state(server_port: int, client_port: int) -> str | None:
    """The TCP state of the server's end of the connection from ``client_port`` (Linux
    ``/proc/net/tcp``): ``"ESTABLISHED"`` while the server holds it open, ``"FIN_WAIT1"`` etc.
    once it has closed its socket, ``"gone"`` when no such socket is left; None without procfs.
    """
    table = Path("/proc/net/tcp")
    if not table.exists():
        return None
    for line in table.read_text().splitlines()[1:]:
        parts = line.split()
        local, remote, state = parts[1], parts[2], parts[3]
        if (int(local.rsplit(":", 1)[1], 16) == server_port
                and int(remote.rsplit(":", 1)[1], 16) == client_port):
            return _TCP_STATES.get(state, state)
    return "gone"
