"""``/ws`` served natively inside uvicorn: a WebSocket protocol with no ASGI call per connection.

``bidroom serve`` runs uvicorn with ``ws="web.wsproto:BidroomWebSocketProtocol"``. uvicorn's
HTTP protocol parses the upgrade request and hands the connection to this class, which speaks
WebSocket with the websockets library's sans-I/O ``ServerProtocol`` and drives ``web.ws``'s
session directly:

* outgoing: the room fan-out builds each audience's message once as a whole WebSocket frame
  (``EncodedMessage.ws_frame``) and :meth:`write_frame` writes it as is to the transport; no
  per-connection task, queue, ``await`` or re-framing. A connection whose unread bytes pass
  ``BIDROOM_WS_SEND_BUFFER`` is a slow consumer (4008); before that, past
  ``BIDROOM_WS_COALESCE_BUFFER`` (the transport's high-water mark) it is lagging and gets the
  room's latest state once it has read its backlog instead of every event (``pause_writing`` /
  ``resume_writing``);
* incoming: messages go to a small inbox; a task runs only while there is something to handle
  (the credential check, then each message in order) and ends when the inbox is empty, so an
  idle connection costs no task, no ASGI scope, no Starlette ``WebSocket``, no ``asyncio.Queue``
  (row B3 of docs/benchmarks.md measures what that saves);
* keepalive pings every ``ws_ping_interval`` seconds (uvicorn's setting, 20 s): a client that has
  not answered the previous ping by the next one is closed (1011);
* uvicorn's graceful shutdown closes every connection with 1001 (going away: reconnect);
* a text message that is not UTF-8 closes the connection with 1007, as on the ASGI path.

Anything other than ``/ws`` is refused with 404; under another ASGI server the ASGI endpoint
``web.ws.ws_endpoint`` serves ``/ws`` instead, with the same session and messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from web.auth import parse_bearer
from web.errors import WS_CLOSE
from web.services import SERVICES_STATE_KEY, Services
from web.ws import (
    AUTH_TIMEOUT_S,
    Session,
    TokenBucket,
    WsConnection,
    authenticate_first,
    flooded,
    handle_frame,
    leave_all,
    negotiate,
    no_credential,
)

__all__ = ["PROTOCOL", "BidroomWebSocketProtocol"]

log = logging.getLogger("bidroom.ws")

#: What uvicorn's ``ws`` setting takes (an import string also works across worker processes).
PROTOCOL = "web.wsproto:BidroomWebSocketProtocol"
INVALID_UTF8 = 1007  # the close code for a text message that is not UTF-8 (RFC 6455 §7.4.1)
INBOX_PAUSE = 32  # messages waiting before the connection stops reading from the socket
WS_PATH = "/ws"


class BidroomWebSocketProtocol(asyncio.Protocol):
    __slots__ = (
        "_auth_timer", "_awaiting_pong", "_bucket", "_conn", "_fragments", "_inbox",
        "_ping_timer", "_server_state", "_services", "_token", "_worker", "close_sent", "config",
        "loop", "paused", "protocol", "session", "transport",
    )

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.config = config
        self.loop = _loop or asyncio.get_event_loop()
        self._server_state = server_state
        self._services: Services | None = app_state.get(SERVICES_STATE_KEY)
        self.protocol = ServerProtocol(max_size=config.ws_max_size)
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self._conn: WsConnection | None = None
        self._bucket: TokenBucket | None = None
        self._inbox: deque[bytes | str] | None = None
        self._fragments: tuple[Opcode, list[bytes]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._auth_timer: asyncio.TimerHandle | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._awaiting_pong = False
        self._token: str | None = None
        self.close_sent = False
        self.paused = False

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._server_state.connections.add(self)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        protocol = self.protocol
        protocol.receive_data(data)
        for event in protocol.events_received():
            if isinstance(event, Request):
                self._handshake(event)
            else:
                self._frame(event)
        self._flush()
        if protocol.parser_exc is not None:  # a protocol violation: the close frame is out
            self._close_transport_soon()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._server_state.connections.discard(self)  # type: ignore[arg-type]
        for timer in (self._auth_timer, self._ping_timer):
            if timer is not None:
                timer.cancel()
        self._auth_timer = self._ping_timer = None
        self._inbox = None
        if self.session is not None:
            self._spawn(self._cleanup(), "bidroom-ws-cleanup")

    def pause_writing(self) -> None:
        if self._conn is not None:
            self._conn.congested()

    def resume_writing(self) -> None:
        if self._conn is not None:
            self._conn.drained()

    # -- uvicorn's server calls this on shutdown ------------------------------------------------

    def shutdown(self) -> None:
        if self._conn is not None and not self._conn.closing:
            self._conn.drop(WS_CLOSE["going_away"], "server shutting down")
        elif self.transport is not None:
            self.transport.close()

    # -- web.ws.DirectFrames -------------------------------------------------------------------

    def write_frame(self, frame: bytes) -> int:
        transport = self.transport
        if self.close_sent or transport is None or transport.is_closing():
            return -1
        transport.write(frame)
        return transport.get_write_buffer_size()

    def close_now(self, code: int, reason: str, *, abort_after_s: float) -> None:
        transport = self.transport
        if self.close_sent or transport is None or transport.is_closing():
            return
        self.close_sent = True
        with contextlib.suppress(InvalidState):
            self.protocol.send_close(code, reason)
        self._flush()
        if self.paused:  # read on: the client's close frame ends the handshake
            self.paused = False
            transport.resume_reading()
        self.loop.call_later(abort_after_s, transport.abort)

    # -- internals -----------------------------------------------------------------------------

    def _flush(self) -> None:
        transport = self.transport
        assert transport is not None
        for chunk in self.protocol.data_to_send():
            if chunk:
                transport.write(chunk)
            else:  # the protocol is done with the connection (closing handshake over)
                self._close_transport_soon()

    def _close_transport_soon(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def _handshake(self, request: Request) -> None:
        protocol, services = self.protocol, self._services
        path = request.path.partition("?")[0]
        if path != WS_PATH:
            response = protocol.reject(404, f"no WebSocket endpoint at {path}; use {WS_PATH}\n")
        elif services is None:
            log.error("WebSocket refused: the app's lifespan did not publish its services")
            response = protocol.reject(503, "the server is starting or stopping\n")
        else:
            response = protocol.accept(request)
        if response.status_code != 101:
            protocol.send_response(response)  # then EOF: _flush writes it and closes
            return
        offered = [token.strip() for header in request.headers.get_all("Sec-WebSocket-Protocol")
                   for token in header.split(",")]
        wire, subprotocol = negotiate(offered)
        if subprotocol is not None:
            response.headers["Sec-WebSocket-Protocol"] = subprotocol
        protocol.send_response(response)
        assert services is not None
        settings = services.settings
        coalesce = settings.ws_coalesce_buffer
        conn = self._conn = WsConnection(None, wire, settings.ws_send_buffer, self,
                                         coalesce=coalesce)
        if coalesce and self.transport is not None:
            # The transport's flow control marks a lagging client: pause_writing past the
            # mark, resume_writing once a quarter of it is left (see the hub's ``resume``).
            self.transport.set_write_buffer_limits(high=coalesce, low=coalesce // 4)
        self.session = Session(services, conn)
        self._bucket = TokenBucket(settings.ws_flood_limit, settings.ws_flood_burst)
        token = parse_bearer(request.headers.get("Authorization", ""))
        # websockets' parser keeps the request for the connection's life (a generator local):
        # its headers are read and done with, so give their memory back (~2.5 KiB each).
        request.headers.clear()
        if token is not None:  # checked before any message the client sends (the worker's
            self._token = token  # first job), as a client may send its join right away
            self._worker = self._spawn(self._work(), "bidroom-ws-messages")
        self._auth_timer = self.loop.call_later(AUTH_TIMEOUT_S, self._auth_deadline)
        interval = self.config.ws_ping_interval
        if interval:  # the first ping at a random point of the interval: connections opened
            # together (a reconnect wave, a load test) do not all ping in the same loop turn
            first = interval * (0.5 + random.random() / 2)
            self._ping_timer = self.loop.call_later(first, self._ping)

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.PONG:
            self._awaiting_pong = False
            return
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if not frame.fin:  # the first of a fragmented message: its opcode is the message's
                self._fragments = (opcode, [bytes(frame.data)])
                return
            data: bytes = bytes(frame.data)
        elif opcode is Opcode.CONT and self._fragments is not None:
            opcode, parts = self._fragments
            parts.append(bytes(frame.data))
            if not frame.fin:
                return
            data, self._fragments = b"".join(parts), None
        else:
            return  # PING and CLOSE are answered by the protocol itself (see _flush)
        if opcode is Opcode.BINARY:
            self._message(data)
            return
        try:  # the sans-I/O protocol leaves a text message's UTF-8 to its user
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            # RFC 6455 §8.1: invalid UTF-8 in a text message fails the connection with 1007,
            # as uvicorn does on the ASGI path; the client gets the close frame, and nothing
            # raises into the transport.
            if self._conn is not None:
                self._conn.drop(INVALID_UTF8, "invalid UTF-8 in a text frame")
            return
        self._message(text)

    def _message(self, data: bytes | str) -> None:
        conn, bucket = self._conn, self._bucket
        if conn is None or bucket is None or conn.closing:
            return
        if flooded(conn, bucket):
            self._inbox = None
            return
        inbox = self._inbox
        if inbox is None:  # made when needed and dropped when drained: idle clients have none
            inbox = self._inbox = deque()
        inbox.append(data)
        if len(inbox) >= INBOX_PAUSE and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        if self._worker is None:
            self._worker = self._spawn(self._work(), "bidroom-ws-messages")

    async def _work(self) -> None:
        session = self.session
        assert session is not None
        try:
            if self._token is not None:
                token, self._token = self._token, None
                await authenticate_first(session, token)
            while (inbox := self._inbox) and not session.conn.closing:
                data = inbox.popleft()
                if self.paused and len(inbox) < INBOX_PAUSE // 2 and not self.close_sent:
                    self.paused = False
                    assert self.transport is not None
                    self.transport.resume_reading()
                await handle_frame(session, data)
        finally:
            self._worker = None
            if not self._inbox:
                self._inbox = None

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = self.loop.create_task(coro, name=name)
        tasks = self._server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    async def _cleanup(self) -> None:
        worker = self._worker
        if worker is not None:
            await asyncio.wait([worker])
        assert self.session is not None
        await leave_all(self.session)

    def _auth_deadline(self) -> None:
        self._auth_timer = None
        conn = self._conn
        if conn is not None and conn.principal is None and not conn.closing:
            no_credential(conn)

    def _ping(self) -> None:
        self._ping_timer = None
        conn = self._conn
        if conn is None or conn.closing or self.close_sent:
            return
        if self._awaiting_pong:  # no answer to the previous ping within a whole interval
            conn.drop(1011, "keepalive ping timeout")
            return
        self._awaiting_pong = True
        with contextlib.suppress(InvalidState):
            self.protocol.send_ping(b"")
        self._flush()
        interval = self.config.ws_ping_interval
        assert interval
        self._ping_timer = self.loop.call_later(interval, self._ping)
