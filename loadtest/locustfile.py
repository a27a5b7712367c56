"""Locust users for Bidroom: suppliers bidding, watchers, purchasers (issue #5).

Small default scenario (about a minute; the auctions are created by the test itself)::

    bidroom serve &                                     # or any server you may load
    export BIDROOM_ADMIN_TOKEN=$(bidroom admin bootstrap \
        | python -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    locust -f loadtest/locustfile.py --headless -u 50 -r 10 -t 60s --host http://127.0.0.1:8000

Distributed (one master, N workers; the master creates the accounts and auctions once and sends
them to every worker with ``runner.send_message``)::

    locust -f loadtest/locustfile.py --master --headless -u 200 -r 20 -t 60s \
        --expect-workers 2 --host http://127.0.0.1:8000
    locust -f loadtest/locustfile.py --worker --master-host 127.0.0.1     # once per worker

Users
* ``SupplierUser`` — a supplier's program over the WebSocket (msgpack subprotocol
  ``bidroom.v1.msgpack``, bearer token on the upgrade request). Strategy from
  ``BIDROOM_LOAD_STRATEGY`` (``step``, ``random``, ``sniper`` or ``mix``, the default, which
  deals them out in turn): ``step`` bids the highest price it may (``max_allowed_fen``),
  ``random`` undercuts that by a random number of steps, ``sniper`` waits until the end is
  within the anti-sniping window (by the server's clock, from the ``time`` message) and bids
  then.
* ``WatcherUser`` — a purchaser's screen: joins a room and measures, for every bid event, the
  time from the server's stamp ``at_ms`` to its receipt, corrected by the clock offset measured
  with the ``time`` message.
* ``PurchaserUser`` — HTTP: lists auctions, opens one; rarely pauses and resumes it.
* ``OpeningParticipant`` — a party in a sealed-bid opening hall (不见面开标): joins it over the
  WebSocket (``join_opening``), times ``join_opening→snapshot`` (to ``opening_snapshot``),
  counts ``opening_event``s, and leaves and rejoins now and then. Active only when
  ``BIDROOM_LOAD_OPENING_ID`` names an existing opening (``opn_…``, e.g. from ``bidroom demo``
  or ``POST /api/openings``) and ``BIDROOM_LOAD_OPENING_TOKENS`` gives bearer tokens of its
  parties (comma-separated: invited suppliers, the purchaser, agency or supervisors; users take
  them in turn). With only those set (no ``BIDROOM_ADMIN_TOKEN``) nothing is created::

      BIDROOM_LOAD_OPENING_ID=opn_… BIDROOM_LOAD_OPENING_TOKENS=brt_…,brt_… \
          locust -f loadtest/locustfile.py --headless -u 100 -r 20 -t 60s \
          --host http://127.0.0.1:8000 OpeningParticipant

Latencies go into Locust's own statistics (request type ``WS``): ``bid→ack`` (accepted),
``bid→reject`` (refused by the rules, e.g. another user of the same supplier got there first),
``bid→watcher``, ``join→snapshot``, ``join_opening→snapshot``, ``opening_event``, ``time``,
and ``tick (fell behind)`` each time the server coalesced a watcher's backlog into one ``tick``
(its load generator did not keep up: see ``BIDROOM_WS_COALESCE_BUFFER``; the response length
is the number of events it skipped). Errors and timeouts are failures.

Settings (environment): ``BIDROOM_ADMIN_TOKEN`` (required, from ``bidroom admin bootstrap``),
``BIDROOM_LOAD_SUPPLIERS`` (20), ``BIDROOM_LOAD_AUCTIONS`` (2), ``BIDROOM_LOAD_AUCTION_S``
(auction length, 90), ``BIDROOM_LOAD_SNIPING_S`` (anti-sniping window, 60),
``BIDROOM_LOAD_STRATEGY`` (mix), ``BIDROOM_LOAD_PAUSE`` (1: purchasers sometimes pause).

The WebSocket client is the ``websockets`` library's synchronous client: Locust runs users as
gevent greenlets with the standard library monkey-patched, and that client is plain sockets and
threads underneath (checked: 50 greenlets × 50 round trips, no blocking). No extra dependency.
Must not import bidroom, market or web.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import time
from typing import Any
from urllib.parse import urlsplit

import gevent
from gevent.event import AsyncResult, Event
from locust import HttpUser, User, between, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from loadtest import wire
from loadtest.api import Api, auction_settings, create_auction, create_parties

log = logging.getLogger("bidroom.locust")

SETUP_MESSAGE = "bidroom_setup"
SETUP_WAIT_S = 120.0
REPLY_WAIT_S = 10.0

# What setup made (accounts and auctions), shared by every user of this process.
SHARED: dict[str, Any] = {}
READY = Event()
_next = itertools.count()
OPENING_ID = os.environ.get("BIDROOM_LOAD_OPENING_ID", "").strip()
OPENING_TOKENS = [t.strip() for t in os.environ.get("BIDROOM_LOAD_OPENING_TOKENS", "").split(",")
                  if t.strip()]


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def make_fixture(host: str) -> dict[str, Any]:
    """Create a purchaser, suppliers with tokens and auctions through the HTTP API."""
    token = os.environ.get("BIDROOM_ADMIN_TOKEN", "").strip()
    if not token:
        raise RuntimeError("set BIDROOM_ADMIN_TOKEN (from `bidroom admin bootstrap`)")
    admin = Api(host, token)
    label = f"locust{int(time.time())}"
    purchaser = create_parties(admin, "purchaser", 1, label=label)[0]
    suppliers = create_parties(admin, "supplier", _env_int("BIDROOM_LOAD_SUPPLIERS", 20),
                               label=label)
    as_purchaser = admin.with_token(purchaser.token)
    now = as_purchaser.server_time_ms()
    length_ms = _env_int("BIDROOM_LOAD_AUCTION_S", 90) * 1000
    window_ms = _env_int("BIDROOM_LOAD_SNIPING_S", 60) * 1000
    auctions = []
    for _ in range(_env_int("BIDROOM_LOAD_AUCTIONS", 2)):
        settings = auction_settings(now, now + length_ms, ceiling_fen=10_000_000, step_fen=100,
                                    sniping_window_ms=window_ms)
        settings.update(extension_ms=30_000, max_extensions=10)
        auctions.append(create_auction(as_purchaser, [s.org_id for s in suppliers],
                                       settings)["id"])
    log.info("setup: %d suppliers, auctions %s", len(suppliers), auctions)
    return {
        "host": host,
        "purchaser": purchaser.token,
        "suppliers": [s.token for s in suppliers],
        "auctions": auctions,
        "sniping_window_ms": window_ms,
    }


def _receive_setup(environment: Environment, msg: Any, **_: Any) -> None:
    SHARED.update(msg.data)
    READY.set()


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message(SETUP_MESSAGE, _receive_setup)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    """The master (or a local run) sets up once; workers wait for its message."""
    if isinstance(environment.runner, WorkerRunner):
        return
    if OPENING_ID and not os.environ.get("BIDROOM_ADMIN_TOKEN", "").strip():
        log.info("no BIDROOM_ADMIN_TOKEN: no auctions set up (opening %s only)", OPENING_ID)
        return
    if not READY.is_set():
        SHARED.update(make_fixture(environment.host or "http://127.0.0.1:8000"))
        READY.set()
    if isinstance(environment.runner, MasterRunner):
        environment.runner.send_message(SETUP_MESSAGE, dict(SHARED))


def _fire(environment: Environment, name: str, started: float, length: int = 0,
          exception: Exception | None = None, ms: float | None = None) -> None:
    environment.events.request.fire(
        request_type="WS", name=name,
        response_time=ms if ms is not None else (time.perf_counter() - started) * 1000.0,
        response_length=length, exception=exception, context={})


class BidroomSocket:
    """One WebSocket of a Locust user: a reader greenlet, replies matched by ``id``."""

    def __init__(self, environment: Environment, host: str, token: str) -> None:
        self.environment = environment
        parts = urlsplit(host)
        scheme = "wss" if parts.scheme == "https" else "ws"
        # ``connect(...)`` is meant as a context manager; the connection lives as long as the
        # user, so enter it by hand (``close()`` ends it). Works on websockets 15 to 17.
        self.ws: ClientConnection = connect(
            f"{scheme}://{parts.netloc}/ws", subprotocols=[wire.SUBPROTOCOL],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Bearer {token}"}, compression=None,
            open_timeout=REPLY_WAIT_S, max_size=2**22).__enter__()
        self.pending: dict[Any, AsyncResult] = {}
        self.offset_ms = 0.0  # server clock minus ours
        self.handlers: list[Any] = []
        self.welcome = wire.decode(self.ws.recv(timeout=REPLY_WAIT_S))  # type: ignore[arg-type]
        self.reader = gevent.spawn(self._read)

    def _read(self) -> None:
        try:
            for frame in self.ws:
                if not isinstance(frame, bytes):
                    continue
                message = wire.decode(frame)
                re = message.get("re")
                waiter = self.pending.pop(re, None) if re is not None else None
                if waiter is not None:
                    waiter.set((message, len(frame)))
                for handler in self.handlers:
                    handler(message, len(frame))
        except (WebSocketException, OSError):
            pass
        for waiter in self.pending.values():
            waiter.set_exception(ConnectionError("the WebSocket closed"))

    def request(self, message: dict[str, Any]) -> tuple[dict[str, Any], int]:
        waiter = AsyncResult()
        self.pending[message["id"]] = waiter
        self.ws.send(wire.encode(message))
        result: tuple[dict[str, Any], int] = waiter.get(timeout=REPLY_WAIT_S)
        return result

    def sync_clock(self) -> None:
        started = time.perf_counter()
        sent = wire.now_ms()
        try:
            reply, size = self.request(wire.time_msg())
        except Exception as exc:
            _fire(self.environment, "time", started, exception=exc)
            return
        received = wire.now_ms()
        self.offset_ms = float(reply["server_time_ms"]) - (sent + received) / 2.0
        _fire(self.environment, "time", started, size)

    def server_now_ms(self) -> float:
        return wire.now_ms() + self.offset_ms

    def join(self, auction_id: str) -> dict[str, Any]:
        """Join and time join → snapshot; returns the snapshot."""
        snapshot = AsyncResult()

        def on_snapshot(message: dict[str, Any], size: int) -> None:
            if message.get("type") == "snapshot" and not snapshot.ready():
                snapshot.set((message, size))

        self.handlers.append(on_snapshot)
        started = time.perf_counter()
        try:
            self.ws.send(wire.encode(wire.join_msg(auction_id)))
            message, size = snapshot.get(timeout=REPLY_WAIT_S)
        except Exception as exc:
            _fire(self.environment, "join→snapshot", started, exception=exc)
            raise
        finally:
            self.handlers.remove(on_snapshot)
        _fire(self.environment, "join→snapshot", started, size)
        result: dict[str, Any] = message
        return result

    def close(self) -> None:
        self.ws.close()
        self.reader.kill(block=False)


class SupplierUser(User):
    """A supplier's bidding program with a strategy: step, random or sniper."""

    weight = 5
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        if not READY.wait(SETUP_WAIT_S):
            raise RuntimeError("no setup data (is the master's test_start failing?)")
        n = next(_next)
        worker = getattr(self.environment.runner, "worker_index", 0) or 0
        index = worker * 1009 + n
        strategy = os.environ.get("BIDROOM_LOAD_STRATEGY", "mix")
        self.strategy = ("step", "random", "sniper")[n % 3] if strategy == "mix" else strategy
        tokens = SHARED["suppliers"]
        self.auction_id = SHARED["auctions"][index % len(SHARED["auctions"])]
        self.tag = f"L{worker}-{n}-{random.randrange(1 << 30):x}"
        self.seq = 0
        self.sock = BidroomSocket(self.environment, SHARED["host"], tokens[index % len(tokens)])
        self.sock.sync_clock()
        snapshot = self.sock.join(self.auction_id)
        room = snapshot["room"]
        self.end_ms = int(room["end_ms"])
        self.window_ms = int(room["rules"]["sniping_window_ms"])
        self.step = int(room["rules"]["step_value"])
        self.max_allowed = int(room["rules"]["ceiling_fen"])
        self.sock.handlers.append(self._on_push)

    def _on_push(self, message: dict[str, Any], size: int) -> None:
        kind = message.get("type")
        if kind == "you" and message.get("auction_id") == self.auction_id:
            if message.get("max_allowed_fen") is not None:
                self.max_allowed = int(message["max_allowed_fen"])
        elif kind == "event" and message.get("auction_id") == self.auction_id:
            event = message.get("event", {})
            if event.get("kind") in ("extended", "resumed") and "end_ms" in event:
                self.end_ms = int(event["end_ms"])
        elif kind == "tick" and message.get("auction_id") == self.auction_id:
            self.end_ms = int(message["room"]["end_ms"])  # the room now, after skipped events

    def on_stop(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None:
            sock.close()

    def price(self) -> int | None:
        if self.strategy == "sniper" and self.sock.server_now_ms() < self.end_ms - self.window_ms:
            return None  # not in the window yet
        if self.strategy == "random":
            return max(1, self.max_allowed - random.randint(0, 5) * self.step)
        return self.max_allowed

    @task
    def bid(self) -> None:
        price = self.price()
        if price is None or self.sock.server_now_ms() >= self.end_ms:
            return
        self.seq += 1
        started = time.perf_counter()
        try:
            reply, size = self.sock.request(
                wire.bid_msg(self.auction_id, f"{self.tag}-{self.seq}", price))
        except Exception as exc:
            _fire(self.environment, "bid→ack", started, exception=exc)
            return
        kind = reply.get("type")
        if kind == "bid_accepted":
            _fire(self.environment, "bid→ack", started, size)
            self.max_allowed = int(reply["price_fen"]) - self.step
            if "extended" in reply:
                self.end_ms = int(reply["extended"]["end_ms"])
        elif kind == "bid_rejected":
            _fire(self.environment, "bid→reject", started, size)
            if reply.get("max_allowed_fen") is not None:
                self.max_allowed = int(reply["max_allowed_fen"])
        else:
            _fire(self.environment, "bid→ack", started, size,
                  exception=RuntimeError(f"{reply.get('code')}: {reply.get('message')}"))

    @task
    def resync(self) -> None:
        """Now and then, as a real client does to keep its countdown right."""
        if random.random() < 0.05:
            self.sock.sync_clock()


class WatcherUser(User):
    """A purchaser's auction screen: bid → watcher latency from the server's stamp."""

    weight = 3
    wait_time = between(5, 10)

    def on_start(self) -> None:
        if not READY.wait(SETUP_WAIT_S):
            raise RuntimeError("no setup data")
        n = next(_next)
        self.auction_id = SHARED["auctions"][n % len(SHARED["auctions"])]
        self.sock = BidroomSocket(self.environment, SHARED["host"], SHARED["purchaser"])
        self.sock.sync_clock()
        self.sock.handlers.append(self._on_push)
        self.sock.join(self.auction_id)

    def _on_push(self, message: dict[str, Any], size: int) -> None:
        if message.get("type") == "tick":
            _fire(self.environment, "tick (fell behind)", 0.0, int(message["skipped"]), ms=0.0)
            return
        if message.get("type") != "event":
            return
        event = message.get("event", {})
        if event.get("kind") == "bid" and "at_ms" in event:
            latency = max(0.0, self.sock.server_now_ms() - float(event["at_ms"]))
            _fire(self.environment, "bid→watcher", 0.0, size, ms=latency)

    @task
    def resync(self) -> None:
        self.sock.sync_clock()

    def on_stop(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None:
            sock.close()


class OpeningParticipant(User):
    """A party in a sealed-bid opening hall: ``join_opening`` → ``opening_snapshot`` latency."""

    abstract = not OPENING_ID  # only with BIDROOM_LOAD_OPENING_ID (see the module's doc)
    weight = 1
    wait_time = between(5, 15)

    def on_start(self) -> None:
        if not OPENING_TOKENS:
            raise RuntimeError("set BIDROOM_LOAD_OPENING_TOKENS (tokens of the opening's parties)")
        self.token = OPENING_TOKENS[next(_next) % len(OPENING_TOKENS)]
        self.sock: BidroomSocket | None = None
        self.rejoin()

    def _on_push(self, message: dict[str, Any], size: int) -> None:
        if message.get("type") == "opening_event":
            _fire(self.environment, "opening_event", time.perf_counter(), size, ms=0.0)

    def _join(self) -> None:
        assert self.sock is not None
        snapshot = AsyncResult()

        def on_snapshot(message: dict[str, Any], size: int) -> None:
            if message.get("type") == "opening_snapshot" and not snapshot.ready():
                snapshot.set((message, size))
            elif message.get("type") == "error" and not snapshot.ready():
                snapshot.set_exception(RuntimeError(f"join_opening refused: {message}"))

        self.sock.handlers.append(on_snapshot)
        started = time.perf_counter()
        try:
            self.sock.ws.send(wire.encode(wire.msg("join_opening", opening_id=OPENING_ID)))
            _, size = snapshot.get(timeout=REPLY_WAIT_S)
        except Exception as exc:
            _fire(self.environment, "join_opening→snapshot", started, exception=exc)
            return
        finally:
            self.sock.handlers.remove(on_snapshot)
        _fire(self.environment, "join_opening→snapshot", started, size)

    @task
    def rejoin(self) -> None:
        """A fresh connection joining the hall (a bidder's page (re)loading)."""
        if self.sock is not None:
            self.sock.close()
        self.sock = BidroomSocket(self.environment, self.host or "http://127.0.0.1:8000",
                                  self.token)
        self.sock.handlers.append(self._on_push)
        self._join()

    def on_stop(self) -> None:
        if self.sock is not None:
            self.sock.close()


class PurchaserUser(HttpUser):
    """The purchaser's HTTP side: lists its auctions, opens one, rarely pauses and resumes."""

    weight = 1
    wait_time = between(2, 5)

    def on_start(self) -> None:
        if not READY.wait(SETUP_WAIT_S):
            raise RuntimeError("no setup data")
        self.client.headers["Authorization"] = f"Bearer {SHARED['purchaser']}"

    @task(5)
    def list_auctions(self) -> None:
        self.client.get("/api/auctions?limit=20", name="/api/auctions")

    @task(5)
    def get_auction(self) -> None:
        auction_id = random.choice(SHARED["auctions"])
        self.client.get(f"/api/auctions/{auction_id}", name="/api/auctions/{id}")

    @task(1)
    def pause_and_resume(self) -> None:
        if os.environ.get("BIDROOM_LOAD_PAUSE", "1") != "1" or random.random() > 0.2:
            return
        auction_id = random.choice(SHARED["auctions"])
        with self.client.post(f"/api/auctions/{auction_id}/pause", name="pause",
                              json={"reason": "压测: 暂停 / load test pause"},
                              catch_response=True) as reply:
            if reply.status_code == 409:  # already paused or not running: not a failure
                reply.success()
                return
        gevent.sleep(random.uniform(0.5, 1.5))
        with self.client.post(f"/api/auctions/{auction_id}/resume", name="resume", json={},
                              catch_response=True) as reply:
            if reply.status_code == 409:
                reply.success()
