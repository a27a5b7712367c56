"""The WebSocket endpoint ``/ws``: one connection, any number of auction rooms.

Encoding by subprotocol (``bidroom.v1.msgpack`` binary frames, ``bidroom.v1.json`` text frames;
JSON when none is offered). Authentication by ``Authorization: Bearer`` on the upgrade request,
or an ``auth`` message first (browsers cannot set headers). Then the client joins rooms, bids,
signs in, syncs its clock. Every bad message gets an ``error`` naming the request and the
connection stays up; only abuse closes it: flooding (4029), a client that does not read its
messages (4008), or no credential within 10 seconds (4001). docs/protocol.md has every message.

Outgoing frames go through a bounded per-connection queue drained by a writer task: the room's
fan-out never waits for a slow client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

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
from bidroom.protocol import SUBPROTOCOLS, WireFormat, decode_frame, encode, message
from bidroom.rooms.views import Audience
from market.registry import Principal, Role
from web.api.openings import authorise_opening
from web.auth import audience_for, authenticate_token, bearer_token, can_view
from web.bidding import place_bid, reason_message
from web.errors import WS_CLOSE
from web.services import Services

__all__ = ["AUTH_TIMEOUT_S", "WsConnection", "routes"]

log = logging.getLogger("bidroom.ws")

AUTH_TIMEOUT_S = 10.0


class WsConnection:
    """One client: the hub's ``Sink`` (bounded queue, never awaited) plus its session state."""

    def __init__(self, websocket: WebSocket, wire: WireFormat, queue_limit: int) -> None:
        self.websocket = websocket
        self.wire = wire
        self.audience = Audience.WATCHER
        self.supplier_id: str | None = None
        self.principal: Principal | None = None
        self.rooms: set[str] = set()
        self._queue: deque[bytes | str] = deque()
        self._limit = queue_limit
        self._ready = asyncio.Event()
        self._close: tuple[int, str] | None = None

    # -- the hub's Sink ------------------------------------------------------------------------

    def offer(self, frame: bytes | str) -> bool:
        if self._close is not None:
            return True  # closing anyway; nothing more to say
        if len(self._queue) >= self._limit:
            return False
        self._queue.append(frame)
        self._ready.set()
        return True

    @property
    def closing(self) -> bool:
        return self._close is not None

    def drop(self, code: int, reason: str) -> None:
        if self._close is None:
            self._close = (code, reason)
            if len(self._queue) >= self._limit:
                self._queue.clear()  # a slow consumer: what it did not read is not sent
            self._ready.set()

    # -- helpers -------------------------------------------------------------------------------

    def send(self, type_: str, **fields: Any) -> None:
        if not self.offer(encode(message(type_, **fields), self.wire)):
            self.drop(WS_CLOSE["slow_consumer"], "slow consumer: outgoing queue full")

    def error(self, request: dict[str, Any] | None, code: str, text: str,
              **details: Any) -> None:
        fields: dict[str, Any] = {"code": code, "message": text}
        if request is not None:
            fields["request"] = request.get("type")
            if request.get("id") is not None:
                fields["re"] = request.get("id")
        if details:
            fields["details"] = details
        self.send("error", **fields)

    async def writer(self) -> None:
        ws = self.websocket
        while True:
            await self._ready.wait()
            while self._queue:
                frame = self._queue.popleft()
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_text(frame)
            if self._close is not None:
                code, reason = self._close
                with contextlib.suppress(Exception):
                    await ws.close(code, reason)
                return
            self._ready.clear()


class _TokenBucket:
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


def _negotiate(websocket: WebSocket) -> tuple[WireFormat, str | None]:
    offered = list(websocket.scope.get("subprotocols") or [])
    for name in offered:
        if name in SUBPROTOCOLS:
            return WireFormat(name), name
    return WireFormat.JSON, None


def _auction_id(msg: dict[str, Any]) -> str:
    value = msg.get("auction_id")
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ValidationError("auction_id is required (a string)", code="missing_field",
                              field="auction_id")
    return value


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


class _Session:
    def __init__(self, services: Services, conn: WsConnection) -> None:
        self.services = services
        self.conn = conn
        self.openings: set[str] = set()  # opening halls this connection watches (issue #3)

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
                  roles=sorted(r.value for r in principal.roles), audience=conn.audience.value)

    async def handle(self, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        conn = self.conn
        if kind == "ping":
            conn.send("pong", re=msg.get("id"))
            return
        if kind == "time":
            conn.send("time", re=msg.get("id"), client_time_ms=msg.get("client_time_ms"),
                      server_time_ms=await self.services.clock.now_ms())
            return
        if kind == "auth":
            if conn.principal is not None:
                raise ValidationError("this connection is already authenticated",
                                      code="already_authenticated")
            token = msg.get("token")
            if not isinstance(token, str):
                raise ValidationError("auth needs a token", code="missing_field", field="token")
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
        last_seq = msg.get("last_seq")
        if last_seq is not None and (isinstance(last_seq, bool) or not isinstance(last_seq, int)
                                     or last_seq < 0):
            raise ValidationError("last_seq must be a non-negative integer",
                                  code="invalid_field", field="last_seq")
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
        opening_id = msg.get("opening_id")
        if not isinstance(opening_id, str) or not opening_id or len(opening_id) > 64:
            raise ValidationError("opening_id is required (a string)", code="missing_field",
                                  field="opening_id")
        hall = self.services.hall
        if msg["type"] == "leave_opening":
            self.openings.discard(opening_id)
            await hall.leave(opening_id, self.conn)
            self.conn.send("opening_left", re=msg.get("id"), opening_id=opening_id)
            return
        last_seq = msg.get("last_seq")
        if last_seq is not None and (isinstance(last_seq, bool) or not isinstance(last_seq, int)
                                     or last_seq < 0):
            raise ValidationError("last_seq must be a non-negative integer",
                                  code="invalid_field", field="last_seq")
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


async def ws_endpoint(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    settings = services.settings
    wire, subprotocol = _negotiate(websocket)
    await websocket.accept(subprotocol=subprotocol)
    conn = WsConnection(websocket, wire, settings.ws_queue_limit)
    session = _Session(services, conn)
    writer = asyncio.create_task(conn.writer(), name="bidroom-ws-writer")
    bucket = _TokenBucket(settings.ws_flood_limit, settings.ws_flood_burst)
    try:
        token = bearer_token(websocket)
        if token is not None:
            try:
                await session.authenticate(token)
            except BidroomError as exc:
                conn.error(None, exc.code, exc.message)
                # A store outage is not the client's fault: 1011 says "retry", 4001 "new token".
                code = "server_error" if isinstance(exc, StoreError) else "unauthenticated"
                conn.drop(WS_CLOSE[code], exc.code)
                return
        while not writer.done():
            timeout = AUTH_TIMEOUT_S if conn.principal is None else None
            try:
                raw = await asyncio.wait_for(websocket.receive(), timeout)
            except TimeoutError:
                conn.error(None, "unauthenticated", "no credential within 10 seconds")
                conn.drop(WS_CLOSE["unauthenticated"], "unauthenticated")
                return
            if raw["type"] == "websocket.disconnect":
                return
            frame = raw.get("bytes") if raw.get("bytes") is not None else raw.get("text")
            if frame is None:
                continue
            if not bucket.take():
                conn.error(None, "flooding", "too many messages; the connection is closed")
                conn.drop(WS_CLOSE["flooding"], "flooding")
                return
            msg: dict[str, Any] | None = None
            try:
                msg = decode_frame(frame, wire)
                await session.handle(msg)
            except BidroomError as exc:
                conn.error(msg, exc.code, exc.message, **exc.details)
                if exc.code in ("invalid_token", "missing_token") and conn.principal is None:
                    conn.drop(WS_CLOSE["unauthenticated"], exc.code)
                    return
    except WebSocketDisconnect:
        pass
    except Exception:
        log.exception("WebSocket handler failed")
        conn.drop(WS_CLOSE["server_error"], "server error")
    finally:
        for auction_id in list(conn.rooms):
            with contextlib.suppress(Exception):
                await services.hub.leave(auction_id, conn)
        for opening_id in list(session.openings):
            with contextlib.suppress(Exception):
                await services.hall.leave(opening_id, conn)
        if conn.closing:
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(writer), 2.0)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer


def routes() -> list[BaseRoute]:
    return [WebSocketRoute("/ws", ws_endpoint, name="ws")]
