"""The WebSocket endpoint ``/ws``: one connection, any number of auction rooms.

Encoding by subprotocol (``bidroom.v1.msgpack`` binary frames, ``bidroom.v1.json`` text frames;
JSON when none is offered). Authentication by ``Authorization: Bearer`` on the upgrade request,
or an ``auth`` message first (browsers cannot set headers). Then the client joins rooms, bids,
signs in, syncs its clock. Every bad message gets an ``error`` naming the request and the
connection stays up; only abuse closes it: flooding (4029), a client that does not read its
messages (4008), no credential within 10 seconds (4001), or a text frame that is not UTF-8
(1007, closed by the ASGI server or ``web.wsproto``). docs/protocol.md has every message.

Outgoing frames are written without waiting (``web.wsproto``: the audience's shared frame goes
straight to the transport), bounded per connection: the room's fan-out never waits for a slow
client, and one that stops reading is closed with 4008. Before that bound, a client whose unread
bytes pass ``BIDROOM_WS_COALESCE_BUFFER`` is ``lagging``: the hub holds room events back from
it and, once it has read its backlog, sends the latest state (``tick``) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from redis.exceptions import RedisError
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bidroom.auction.executor import RoomKeys
from bidroom.auction.rules import CommandRefused
from bidroom.errors import (
    BidroomError,
    ForbiddenError,
    NotFoundError,
    StoreError,
    ValidationError,
)
from bidroom.protocol import (
    MAX_SAFE_INT,
    SUBPROTOCOLS,
    EncodedMessage,
    FrameError,
    WireFormat,
    decode_frame,
    message,
)
from bidroom.rooms.views import Audience
from market.registry import Principal, Role
from web.api.openings import authorise_opening
from web.auth import audience_for, authenticate_token, bearer_token, can_view
from web.bidding import place_bid, reason_message
from web.errors import WS_CLOSE
from web.services import Services

__all__ = [
    "AUTH_TIMEOUT_S",
    "CLOSE_GRACE_S",
    "DirectFrames",
    "Session",
    "TokenBucket",
    "WsConnection",
    "authenticate_first",
    "flooded",
    "handle_frame",
    "leave_all",
    "negotiate",
    "no_credential",
    "routes",
]

log = logging.getLogger("bidroom.ws")

AUTH_TIMEOUT_S = 10.0
_ROOM_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # auction and opening ids (auc_…, opn_…)
CLOSE_GRACE_S = 5.0  # a closed client has this long to read what is left before it is cut off
# Which process serves this connection (one of several workers or machines): for operators
# reading logs and for the scale-out tests, which spread one room over several processes.
_HOST = socket.gethostname()


class DirectFrames(Protocol):
    """A connection's transport as ``web.wsproto`` offers it: whole frames, written now."""

    def write_frame(self, frame: bytes) -> int:
        """Write one whole server frame; return the unread bytes now buffered, -1 if closed."""
        ...

    def close_now(self, code: int, reason: str, *, abort_after_s: float) -> None:
        """Send a close frame behind what is buffered; cut the connection off later."""
        ...


_NO_QUEUE: deque[bytes | str] = deque(maxlen=0)  # shared by every direct-path connection


class WsConnection:
    """One client: the hub's ``Sink`` (never awaited) plus its session state.

    Under ``bidroom serve`` frames go straight to the transport (``web.wsproto``): the shared
    frame of each audience is written as is, and a connection whose unread bytes pass
    ``BIDROOM_WS_SEND_BUFFER`` is a slow consumer (4008). Under another ASGI server frames go
    through a queue with the same byte bound, drained by a writer task with ASGI sends.
    """

    def __init__(self, websocket: WebSocket | None, wire: WireFormat, send_buffer: int,
                 direct: DirectFrames | None, *, coalesce: int = 0) -> None:
        self.websocket = websocket
        self.wire = wire
        self.audience = Audience.WATCHER
        self.supplier_id: str | None = None
        self.principal: Principal | None = None
        self.rooms: set[str] = set()
        self._direct = direct
        self._limit = send_buffer
        # Latest value wins past this many unread bytes (0: off); see the hub's ``resume``.
        self._coalesce = coalesce
        self.lagging = False
        self.on_drained: Callable[[], None] | None = None
        self._close: tuple[int, str] | None = None
        # the ASGI fallback only (each idle connection of the direct path saves their memory)
        self._queue: deque[bytes | str] = _NO_QUEUE if direct is not None else deque()
        self._queued = 0
        self._ready: asyncio.Event | None = None if direct is not None else asyncio.Event()

    # -- the hub's Sink ------------------------------------------------------------------------

    def offer(self, msg: EncodedMessage) -> bool:
        if self._close is not None:
            return True  # closing anyway; nothing more to say
        if self._direct is not None:
            return self._direct.write_frame(msg.ws_frame(self.wire)) <= self._limit
        if self._queued >= self._limit:
            return False
        frame = msg.frame(self.wire)
        self._queue.append(frame)
        self._queued += len(frame)
        if self._coalesce and self._queued > self._coalesce:
            self.lagging = True
        assert self._ready is not None
        self._ready.set()
        return True

    @property
    def closing(self) -> bool:
        return self._close is not None

    def congested(self) -> None:
        """The transport's unread bytes passed the coalescing mark (its high-water mark)."""
        if self._coalesce:
            self.lagging = True

    def drained(self) -> None:
        """The client has read its backlog (down to a quarter of the mark): catch it up."""
        if self.lagging:
            self.lagging = False
            if self.on_drained is not None and self._close is None:
                self.on_drained()

    def drop(self, code: int, reason: str) -> None:
        if self._close is not None:
            return
        self._close = (code, reason)
        if self._direct is not None:
            self._direct.close_now(code, reason, abort_after_s=CLOSE_GRACE_S)
            return
        if self._queued >= self._limit:
            self._queue.clear()  # a slow consumer: what it did not read is not sent
        assert self._ready is not None
        self._ready.set()

    # -- helpers -------------------------------------------------------------------------------

    def send(self, type_: str, **fields: Any) -> None:
        if "re" in fields and fields["re"] is None:
            del fields["re"]  # a request without an id (or none at all): nothing to echo
        if not self.offer(EncodedMessage(message(type_, **fields))):
            self.drop(WS_CLOSE["slow_consumer"], "slow consumer: outgoing buffer full")

    def error(self, request: dict[str, Any] | None, code: str, text: str,
              **details: Any) -> None:
        fields: dict[str, Any] = {"code": code, "message": text}
        if request is not None:
            if request.get("type") is not None:
                fields["request"] = request["type"]
            if request.get("id") is not None:
                fields["re"] = request["id"]
        if details:
            fields["details"] = details
        self.send("error", **fields)

    async def writer(self) -> None:
        """The ASGI fallback's sender (not used under ``bidroom serve``)."""
        ws, ready = self.websocket, self._ready
        assert ws is not None and ready is not None
        while True:
            await ready.wait()
            while self._queue:
                frame = self._queue.popleft()
                self._queued -= len(frame)
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_text(frame)
                if self.lagging and self._queued <= self._coalesce // 4:
                    self.drained()
            if self._close is not None:
                code, reason = self._close
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(code, reason), CLOSE_GRACE_S)
                return
            ready.clear()


class TokenBucket:
    """Messages a client may send: ``rate`` per second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def negotiate(offered: list[str]) -> tuple[WireFormat, str | None]:
    """The wire format and the subprotocol to answer: the first offered one we speak."""
    for name in offered:
        if name in SUBPROTOCOLS:
            return WireFormat(name), name
    return WireFormat.JSON, None


def _room_id(msg: dict[str, Any], name: str) -> str:
    """``auction_id`` or ``opening_id``: required, 1–64 of ``A-Z a-z 0-9 _ . : -``."""
    value = msg.get(name)
    if value is None:
        raise ValidationError(f"{name} is required (a string)", code="missing_field",
                              field=name)
    if not isinstance(value, str) or not _ROOM_ID.fullmatch(value):
        raise ValidationError(f"{name} must be 1..64 characters of A-Z a-z 0-9 _ . : -",
                              code="invalid_field", field=name)
    return value


def _auction_id(msg: dict[str, Any]) -> str:
    return _room_id(msg, "auction_id")


def _last_seq(msg: dict[str, Any]) -> int | None:
    value = msg.get("last_seq")
    if value is not None and (type(value) is not int or not 0 <= value <= MAX_SAFE_INT):
        raise ValidationError("last_seq must be an integer from 0 to 2^53 - 1",
                              code="invalid_field", field="last_seq")
    return value


def _client_time(msg: dict[str, Any]) -> dict[str, int]:
    """The ``time`` request's optional ``client_time_ms``, echoed only when it is one."""
    value = msg.get("client_time_ms")
    if value is None:
        return {}
    if type(value) is not int or not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
        raise ValidationError("client_time_ms must be an integer (ms since the epoch)",
                              code="invalid_field", field="client_time_ms")
    return {"client_time_ms": value}


async def _authorise_room(services: Services, principal: Principal, auction_id: str) -> None:
    auction = await services.auctions.get_auction(auction_id)
    if auction is None or not await services.executor.exists(auction_id):
        raise NotFoundError(f"no auction {auction_id!r}", code="auction_not_found")
    invited = False
    if principal.has_role(Role.SUPPLIER):
        invited = bool(await services.redis.sismember(RoomKeys.of(auction_id).inv,
                                                      principal.org_id))
    if not can_view(principal, auction, invited):
        raise ForbiddenError("you are not a party to this auction", code="not_invited")


class Session:
    def __init__(self, services: Services, conn: WsConnection) -> None:
        self.services = services
        self.conn = conn
        self.openings: set[str] = set()  # opening halls this connection watches (issue #3)
        self._resuming: asyncio.Task[None] | None = None
        self._resume_again = False
        conn.on_drained = self._drained

    def _drained(self) -> None:
        """The connection read its backlog: the rooms it fell behind in send their latest
        state. One task at a time; a drain during its run makes it go round once more."""
        if not self.conn.rooms:
            return
        self._resume_again = True
        if self._resuming is None:
            self._resuming = asyncio.get_running_loop().create_task(
                self._resume(), name="bidroom-ws-resume")

    async def _resume(self) -> None:
        try:
            while self._resume_again and not self.conn.closing:
                self._resume_again = False
                await self.services.hub.resume(self.conn, tuple(self.conn.rooms))
        except (BidroomError, RedisError, OSError) as exc:
            log.warning("catching a lagging connection up failed: %s", exc)
        finally:
            self._resuming = None

    async def authenticate(self, token: str, request_id: Any = None) -> None:
        principal = await authenticate_token(self.services, token)
        conn = self.conn
        conn.principal = principal
        conn.audience = audience_for(principal)
        conn.supplier_id = principal.org_id if principal.has_role(Role.SUPPLIER) else None
        now = await self.services.clock.now_ms()
        conn.send("welcome", re=request_id, protocol=1, server_time_ms=now,
                  user={"id": principal.user_id, "name": principal.user_name},
                  org={"id": principal.org_id, "name": principal.org_name,
                       "kind": principal.org_kind},
                  roles=sorted(r.value for r in principal.roles), audience=conn.audience.value,
                  server={"host": _HOST, "pid": os.getpid()})

    async def handle(self, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        conn = self.conn
        if kind == "ping":
            conn.send("pong", re=msg.get("id"))
            return
        if kind == "time":
            conn.send("time", re=msg.get("id"), **_client_time(msg),
                      server_time_ms=await self.services.clock.now_ms())
            return
        if kind == "auth":
            if conn.principal is not None:
                raise ValidationError("this connection is already authenticated",
                                      code="already_authenticated")
            token = msg.get("token")
            if not isinstance(token, str):
                raise ValidationError("auth needs a token (a string)", field="token",
                                      code="missing_field" if token is None else "invalid_field")
            await self.authenticate(token, msg.get("id"))
            return
        principal = conn.principal
        if principal is None:
            raise ValidationError("authenticate first (an auth message)",
                                  code="unauthenticated")
        if kind == "join":
            await self.join(principal, msg)
        elif kind == "leave":
            auction_id = _auction_id(msg)
            conn.rooms.discard(auction_id)
            await self.services.hub.leave(auction_id, conn)
            conn.send("left", re=msg.get("id"), auction_id=auction_id)
        elif kind == "bid":
            await self.bid(principal, msg)
        elif kind == "sign_in":
            await self.sign_in(principal, msg)
        elif kind in ("join_opening", "leave_opening"):
            await self.opening_hall(principal, msg)
        else:
            raise ValidationError(f"unknown message type {kind!r}", code="unknown_type")

    async def join(self, principal: Principal, msg: dict[str, Any]) -> None:
        auction_id = _auction_id(msg)
        last_seq = _last_seq(msg)
        await _authorise_room(self.services, principal, auction_id)
        if auction_id in self.conn.rooms:
            await self.services.hub.leave(auction_id, self.conn)
        self.conn.rooms.add(auction_id)
        seq = await self.services.hub.join(auction_id, self.conn, last_seq)
        self.conn.send("joined", re=msg.get("id"), auction_id=auction_id, seq=seq,
                       audience=self.conn.audience.value)

    async def bid(self, principal: Principal, msg: dict[str, Any]) -> None:
        auction_id = _auction_id(msg)
        outcome = await place_bid(self.services, principal, auction_id, msg)
        body = outcome.as_dict()
        if outcome.status == "rejected":
            self.conn.send("bid_rejected", re=msg.get("id"), **body)
        else:
            self.conn.send("bid_accepted", re=msg.get("id"), **body)

    async def opening_hall(self, principal: Principal, msg: dict[str, Any]) -> None:
        """``join_opening`` / ``leave_opening``: the live opening hall (docs/protocol.md)."""
        opening_id = _room_id(msg, "opening_id")
        hall = self.services.hall
        if msg["type"] == "leave_opening":
            self.openings.discard(opening_id)
            await hall.leave(opening_id, self.conn)
            self.conn.send("opening_left", re=msg.get("id"), opening_id=opening_id)
            return
        last_seq = _last_seq(msg)
        await authorise_opening(self.services, principal, opening_id)
        if opening_id in self.openings:
            await hall.leave(opening_id, self.conn)
        self.openings.add(opening_id)
        seq = await hall.join(opening_id, self.conn, last_seq)
        self.conn.send("opening_joined", re=msg.get("id"), opening_id=opening_id, seq=seq,
                       audience=self.conn.audience.value)

    async def sign_in(self, principal: Principal, msg: dict[str, Any]) -> None:
        auction_id = _auction_id(msg)
        if not principal.has_role(Role.SUPPLIER):
            raise ForbiddenError("only suppliers sign in", code="suppliers_only")
        result = await self.services.executor.sign_in(auction_id, principal.org_id)
        if isinstance(result, CommandRefused):
            self.conn.error(msg, result.reason, reason_message(result.reason))
        else:
            self.conn.send("signed_in", re=msg.get("id"), auction_id=auction_id,
                           seq=result.seq, at_ms=result.at_ms)


async def authenticate_first(session: Session, token: str) -> None:
    """The credential of the upgrade request (``Authorization: Bearer``); a bad one closes."""
    conn = session.conn
    try:
        await session.authenticate(token)
    except BidroomError as exc:
        conn.error(None, exc.code, exc.message)
        # A store outage is not the client's fault: 1011 says "retry", 4001 "new token".
        code = "server_error" if isinstance(exc, StoreError) else "unauthenticated"
        conn.drop(WS_CLOSE[code], exc.code)


async def handle_frame(session: Session, frame: bytes | str) -> None:
    """One client message: decoded, handled, any refusal answered with an ``error`` naming it;
    the connection stays up (docs/protocol.md §1.6) except for a bad credential or a bug."""
    conn = session.conn
    msg: dict[str, Any] | None = None
    try:
        msg = decode_frame(frame, conn.wire)
        await session.handle(msg)
    except BidroomError as exc:
        # a frame refused whole still names its request where its type and id were readable
        request = exc.request if isinstance(exc, FrameError) else msg
        conn.error(request, exc.code, exc.message, **exc.details)
        if exc.code in ("invalid_token", "missing_token") and conn.principal is None:
            conn.drop(WS_CLOSE["unauthenticated"], exc.code)
    except Exception:
        log.exception("WebSocket handler failed")
        conn.drop(WS_CLOSE["server_error"], "server error")


def flooded(conn: WsConnection, bucket: TokenBucket) -> bool:
    """Take a token for one incoming message; close a flooding client (4029)."""
    if bucket.take():
        return False
    conn.error(None, "flooding", "too many messages; the connection is closed")
    conn.drop(WS_CLOSE["flooding"], "flooding")
    return True


def no_credential(conn: WsConnection) -> None:
    conn.error(None, "unauthenticated", "no credential within 10 seconds")
    conn.drop(WS_CLOSE["unauthenticated"], "unauthenticated")


async def leave_all(session: Session) -> None:
    services, conn = session.services, session.conn
    for auction_id in list(conn.rooms):
        with contextlib.suppress(Exception):
            await services.hub.leave(auction_id, conn)
    for opening_id in list(session.openings):
        with contextlib.suppress(Exception):
            await services.hall.leave(opening_id, conn)


async def ws_endpoint(websocket: WebSocket) -> None:
    """``/ws`` as an ASGI endpoint: what runs under an ASGI server other than ``bidroom
    serve`` (which serves ``/ws`` with ``web.wsproto`` and never calls this)."""
    services: Services = websocket.app.state.services
    settings = services.settings
    wire, subprotocol = negotiate(websocket.scope.get("subprotocols") or [])
    await websocket.accept(subprotocol=subprotocol)
    conn = WsConnection(websocket, wire, settings.ws_send_buffer, None,
                        coalesce=settings.ws_coalesce_buffer)
    session = Session(services, conn)
    writer = asyncio.create_task(conn.writer(), name="bidroom-ws-writer")
    bucket = TokenBucket(settings.ws_flood_limit, settings.ws_flood_burst)
    try:
        token = bearer_token(websocket)
        if token is not None:
            await authenticate_first(session, token)
        while not conn.closing:
            timeout = AUTH_TIMEOUT_S if conn.principal is None else None
            try:  # asyncio.timeout: unlike 3.11's wait_for it never loses a cancellation
                async with asyncio.timeout(timeout):
                    raw = await websocket.receive()
            except TimeoutError:
                no_credential(conn)
                return
            if raw["type"] == "websocket.disconnect":
                return
            frame = raw.get("bytes") if raw.get("bytes") is not None else raw.get("text")
            if frame is None:
                continue
            if flooded(conn, bucket):
                return
            await handle_frame(session, frame)
    except WebSocketDisconnect:
        pass
    finally:
        await leave_all(session)
        if conn.closing:
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(writer), CLOSE_GRACE_S)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer


def routes() -> list[BaseRoute]:
    return [WebSocketRoute("/ws", ws_endpoint, name="ws")]
