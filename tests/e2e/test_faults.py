"""Faults under load (issue #5): a part fails while bidders bid and watchers watch.

Each test runs real concurrent load — suppliers bidding in a closed loop (one bid, its reply,
the next bid; a bounded number of bids each) and several watchers — against real ``bidroom
serve`` processes, then breaks one part:

1. one of two server processes on shared stores is SIGKILLed: its clients reconnect to the
   other, rejoin with ``last_seq``, re-send an unanswered bid with the same ``bid_id``; nothing
   acknowledged is lost, every client's events stay 1, 2, 3, … and the auction closes once;
2. Redis (the embedded redis-server, AOF with ``appendfsync always``) is SIGKILLed and started
   again on the same data directory: every acknowledged bid is still in the room, the server
   process recovers by itself (bids fail with ``store_unavailable`` meanwhile, then succeed)
   and the room's sequence has no hole;
3. a client stops reading: the server closes it after a bounded number of events, and the
   others receive every event without a gap (the latency effect is printed, not asserted).

docs/operations.md §9 says what happens on each fault and what the operator does. The helpers
are in tests/faults_kit.py; time moves only through the test clock, never by sleeping.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bidroom.stores.embedded import EmbeddedRedis
from tests.e2e.server import (
    Seed,
    ServerFactory,
    ServerProcess,
    api_client,
    bootstrap_admin,
    seed,
    set_clock,
)
from tests.e2e.server import create_auction as create_room
from tests.faults_kit import (
    Ack,
    Bidder,
    RawSlowClient,
    RoomClient,
    Watcher,
    latency_summary,
    server_side_tcp_state,
    wait_until,
)

T0 = 1_900_000_000_000
MINUTE = 60_000
CEILING_FEN = 1_000_000_000  # ¥10,000,000.00
STEP_FEN = 100
BIDDERS = 4

# The load bids far faster than people do: lift the per-connection flood limit for it.
LOAD_ENV = {"BIDROOM_WS_FLOOD_LIMIT": "1000000", "BIDROOM_WS_FLOOD_BURST": "1000000"}


def prices_for(index: int) -> Callable[[int], int]:
    """Supplier ``index``'s k-th price: one step below its own previous bid (the default
    improvement rule), so concurrent bidders never refuse each other."""
    return lambda k: CEILING_FEN - (k + 1) * STEP_FEN - index


async def create_auction(server: ServerProcess, accounts: Seed) -> str:
    return await create_room(server, accounts, title="机房 UPS 电源 12 套",
                             title_en="12 UPS units for the server room", start_ms=T0,
                             end_ms=T0 + 60 * MINUTE, ceiling_fen=CEILING_FEN,
                             step_fen=STEP_FEN)


async def stored_result(server: ServerProcess, token: str, auction_id: str) -> dict[str, Any]:
    """The stored result (polled: the result event and the SQL row are written by the same
    closer, the event may arrive first)."""
    deadline = time.monotonic() + 20
    async with api_client(server, token) as http:
        while True:
            reply = await http.get(f"/api/auctions/{auction_id}/result")
            if reply.status_code == 200:
                doc: dict[str, Any] = reply.json()
                return doc
            assert reply.status_code == 404 and time.monotonic() < deadline, reply.text
            await asyncio.sleep(0.05)


def process_alive(pid: int) -> bool:
    """Is ``pid`` a live process (not a zombie)?"""
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
    except ProcessLookupError:
        return False
    except OSError:
        return True


def all_receipts(bidders: Sequence[Bidder]) -> dict[str, dict[str, Any]]:
    receipts: dict[str, dict[str, Any]] = {}
    for bidder in bidders:
        receipts.update(bidder.receipts())
    return receipts


def assert_contiguous(client: RoomClient, last: int) -> None:
    """The client received every event after its first snapshot up to ``last``, live or
    caught up, exactly once and in order."""
    assert not client.problems, f"{client.name}: {client.problems[:5]}"
    assert client.first_seq is not None
    expected = list(range(client.first_seq + 1, last + 1))
    got = client.seqs
    if got != expected:
        at = next((i for i, (x, y) in enumerate(zip(got, expected, strict=False)) if x != y),
                  min(len(got), len(expected)))
        raise AssertionError(f"{client.name}: {len(got)} events, expected {len(expected)}; "
                             f"first difference at index {at}: {got[at:at + 5]} vs "
                             f"{expected[at:at + 5]}")


def assert_log_matches_acks(stored: dict[str, Any], receipts: dict[str, dict[str, Any]],
                            total: int) -> None:
    """The stored bid log is exactly the acknowledged bids, each at its receipt's seq."""
    log = {b["bid_id"]: (b["seq"], b["price_fen"], b["supplier_id"]) for b in stored["bids"]}
    acked = {bid_id: (r["seq"], r["price_fen"], r["supplier_id"]) for bid_id, r in
             receipts.items()}
    missing = sorted(set(acked) - set(log))
    assert not missing, f"{len(missing)} acknowledged bids missing from the log: {missing[:10]}"
    assert log == acked
    assert len(log) == total
    assert sorted(seq for seq, _, _ in log.values()) == list(range(1, total + 1))


def latencies(watchers: Sequence[RoomClient], acks: Sequence[Ack]) -> list[float]:
    """bid sent → event received, per watcher, for bids answered at their first attempt."""
    out: list[float] = []
    for ack in acks:
        if not ack.first_try or ack.status != "accepted":
            continue
        for watcher in watchers:
            seen = watcher.seen_at.get(ack.seq)
            if seen is not None:
                out.append(seen - ack.sent_at)
    return out


# ============================================================================ 1. app process


async def test_killing_one_of_two_processes_under_load_loses_nothing(
    server_factory: ServerFactory,
) -> None:
    bids_each = 100
    total = BIDDERS * bids_each
    kill_after = total // 3

    a = server_factory(name="a", env=LOAD_ENV)
    # As in production (operations.md §5), both processes sign receipts with one platform key
    # (share_stores_with copies a's key into b's data dir).
    b = server_factory(name="b", share_stores_with=a, env=LOAD_ENV, start=False)
    await b.astart()
    await set_clock(b, T0)
    accounts = await seed(a, await bootstrap_admin(a), suppliers=BIDDERS)
    auction_id = await create_auction(b, accounts)
    await set_clock(b, T0 + MINUTE)

    via_a, via_b = [a.ws_url, b.ws_url], [b.ws_url, a.ws_url]
    watchers = [
        Watcher("wa-purchaser", accounts.purchaser.token, via_a, auction_id),
        Watcher("wa-supervisor", accounts.supervisor.token, via_a, auction_id),
        Watcher("wa-admin", accounts.admin_token, via_a, auction_id),
        Watcher("wb-purchaser", accounts.purchaser.token, via_b, auction_id),
        Watcher("wb-supervisor", accounts.supervisor.token, via_b, auction_id),
    ]
    bidders = [Bidder(f"s{i}", party.token, via_a if i % 2 == 0 else via_b, auction_id,
                      prices_for(i)) for i, party in enumerate(accounts.suppliers)]
    on_a = [c for c in (*watchers, *bidders) if c.urls[0] == a.ws_url]

    acked = 0
    kill_now = asyncio.Event()
    killed_at_ack = -1

    def count(_: Bidder, __: Ack) -> None:
        nonlocal acked
        acked += 1
        if acked == kill_after:
            kill_now.set()

    async def kill_a() -> None:
        nonlocal killed_at_ack
        await kill_now.wait()
        assert all(c.connected for c in on_a), "everyone on a is connected when it dies"
        killed_at_ack = acked
        await asyncio.to_thread(a.kill9)

    for bidder in bidders:
        bidder.on_ack = count
    try:
        for watcher in watchers:
            await watcher.start()
        for bidder in bidders:
            await bidder.ensure_joined()
        killer = asyncio.create_task(kill_a())
        await asyncio.gather(*(bidder.run(bids_each) for bidder in bidders))
        await killer
        assert not a.running
        assert killed_at_ack < total - BIDDERS * 10, "a died while the load was still running"

        everyone: list[RoomClient] = [*watchers, *bidders]
        await wait_until(lambda: all(w.saw(total) for w in everyone), within_s=30,
                         what=f"every client to see event {total}")
        await set_clock(b, T0 + 60 * MINUTE)  # time runs out: b's closer closes the auction
        await wait_until(lambda: all(w.saw(total + 2) for w in everyone), within_s=30,
                         what="every client to see the close and the result")
    finally:
        for client in (*watchers, *bidders):
            await client.close()

    # Nothing acknowledged is lost: the stored log is exactly the acknowledged bids.
    receipts = all_receipts(bidders)
    assert len({r["key_id"] for r in receipts.values()}) == 1  # signed by a or b: one key
    stored = await stored_result(b, accounts.supervisor.token, auction_id)
    assert_log_matches_acks(stored, receipts, total)
    assert stored["winner_id"] == accounts.suppliers[BIDDERS - 1].org_id  # lowest last price

    # Every client saw events 1..total+2, live and caught up, with no gap and no repeat; the
    # auction closed exactly once (one `closed`, one `result`, nothing after).
    for client in (*watchers, *bidders):
        assert_contiguous(client, total + 2)
        assert client.kinds[total + 1] == "closed" and client.kinds[total + 2] == "result"
    # The clients of a moved to b and rejoined with last_seq (catch-up, not a blind reload).
    for client in on_a:
        assert client.connects[0] == a.ws_url and client.connects[-1] == b.ws_url, client.name
        assert client.catch_ups, f"{client.name} never rejoined with last_seq"
    for client in (c for c in (*watchers, *bidders) if c not in on_a):
        assert client.connects == [b.ws_url], f"{client.name} on b was disturbed"
    a_bidders = [bd for bd in bidders if bd in on_a]
    resent = sum(bd.resends for bd in a_bidders)
    assert resent >= 1, "a bid in flight when a died was re-sent with its bid_id"
    duplicates = sum(1 for bd in bidders for acks in bd.acks.values() for x in acks
                     if x.status == "duplicate")
    print(f"\n[faults] kill -9 of process a after {killed_at_ack} of {total} acks: "
          f"{len(on_a)} clients moved to b; {resent} bids re-sent, {duplicates} answered as "
          f"duplicates; catch-ups {[len(c.catch_ups) for c in on_a]}; "
          f"snapshots on rejoin {sum(len(c.snapshots_on_rejoin) for c in on_a)}")


# ================================================================================ 2. Redis


async def test_redis_killed_and_restarted_under_load_keeps_every_acknowledged_bid(
    server_factory: ServerFactory, tmp_path: Path,
) -> None:
    bids_each = 100
    total = BIDDERS * bids_each
    kill_after = total // 3

    # The test owns its Redis, to kill it: an embedded redis-server (appendonly yes,
    # appendfsync always) on a data dir of its own; the database is the session's
    # (`stores` only resets a real database for this test, and is never started).
    stores = server_factory(name="stores", start=False)
    redis_dir = tmp_path / "faulty-redis"
    redis_server = EmbeddedRedis(redis_dir, appendfsync="always")
    url = redis_server.start()
    app: ServerProcess | None = None
    watchers: list[Watcher] = []
    bidders: list[Bidder] = []
    try:
        own = ServerProcess(tmp_path / "own-stores", redis_url=url,
                            database_url=stores.given_database_url)
        own.data_dir.mkdir(parents=True, exist_ok=True)
        app = server_factory(name="app", share_stores_with=own, env=LOAD_ENV)
        await set_clock(app, T0)
        accounts = await seed(app, await bootstrap_admin(app), suppliers=BIDDERS)
        auction_id = await create_auction(app, accounts)
        await set_clock(app, T0 + MINUTE)

        urls = [app.ws_url]
        watchers = [Watcher(name, token, urls, auction_id) for name, token in (
            ("w-purchaser", accounts.purchaser.token),
            ("w-supervisor", accounts.supervisor.token),
            ("w-admin", accounts.admin_token))]
        bidders = [Bidder(f"s{i}", p.token, urls, auction_id, prices_for(i))
                   for i, p in enumerate(accounts.suppliers)]
        kill_now = asyncio.Event()
        back_up = asyncio.Event()
        acked = 0

        times: dict[str, float] = {}

        def count(_: Bidder, __: Ack) -> None:
            nonlocal acked
            acked += 1
            if acked == kill_after:
                kill_now.set()
            if back_up.is_set():
                times.setdefault("first ack after restart", time.monotonic())

        failures_at_kill: dict[str, int] = {}
        acks_before_restart: dict[str, dict[str, Any]] = {}
        redis_pid = redis_server.pid
        assert redis_pid is not None

        # A watcher that arrives while Redis is down: refused until it is back, then joins.
        late = Watcher("late-supervisor", accounts.supervisor.token, urls, auction_id)
        late_start: asyncio.Task[None] | None = None
        outage_failures = 6  # per bidder: with its backoff, most of a second of outage

        async def kill_and_restart_redis() -> None:
            nonlocal late_start
            await kill_now.wait()
            failures_at_kill.update({bd.name: len(bd.failures) for bd in bidders})
            os.kill(redis_pid, signal.SIGKILL)  # not a shutdown: no final AOF flush
            times["killed"] = time.monotonic()
            await wait_until(lambda: not process_alive(redis_pid), within_s=10,
                             what="redis-server to die")
            late_start = asyncio.create_task(late.start())
            # Down: every bidder is refused (store_unavailable) or cut off, again and again,
            # and the newcomer cannot get in.
            await wait_until(
                lambda: bool(late.failures) and all(
                    len(bd.failures) >= failures_at_kill[bd.name] + outage_failures
                    for bd in bidders),
                within_s=30, what="every bidder and the newcomer to meet the outage")
            acks_before_restart.update(all_receipts(bidders))
            restarted = EmbeddedRedis(redis_dir, appendfsync="always")
            assert await asyncio.to_thread(restarted.start) == url  # same socket
            times["restarted"] = time.monotonic()
            back_up.set()

        for bidder in bidders:
            bidder.on_ack = count
        for watcher in watchers:
            await watcher.start()
        for bidder in bidders:
            await bidder.ensure_joined()
        fault = asyncio.create_task(kill_and_restart_redis())
        await asyncio.gather(*(bidder.run(bids_each) for bidder in bidders))
        await fault
        assert back_up.is_set() and late_start is not None
        await late_start
        watchers.append(late)

        # The newcomer joined once Redis was back, while the load went on: its snapshot holds
        # every bid acknowledged before the restart, at its seq and price (the AOF had them).
        snapshot = late.first_snapshot
        assert snapshot is not None
        in_room = {b["seq"]: b["price_fen"] for b in snapshot["room"]["bids"]}
        lost = {bid_id: r["seq"] for bid_id, r in acks_before_restart.items()
                if in_room.get(r["seq"]) != r["price_fen"]}
        assert not lost, f"acknowledged bids lost with Redis: {lost}"
        assert sorted(in_room) == list(range(1, snapshot["seq"] + 1))

        everyone: list[RoomClient] = [*watchers, *bidders]
        await wait_until(lambda: all(w.saw(total) for w in everyone), within_s=30,
                         what=f"every client to see event {total} after the restart")
        await set_clock(app, T0 + 60 * MINUTE)  # the closer still works after the outage
        await wait_until(lambda: all(w.saw(total + 2) for w in everyone), within_s=30,
                         what="every client to see the close and the result")

        receipts = all_receipts(bidders)
        stored = await stored_result(app, accounts.supervisor.token, auction_id)
        assert_log_matches_acks(stored, receipts, total)
        for client in everyone:
            assert_contiguous(client, total + 2)
        # The server process itself was never restarted; the clients' bids succeeded again.
        assert app.running and app.starts == 1
        assert "first ack after restart" in times
        errors = sum(bd.store_errors for bd in bidders)
        cut = sum(len(c.close_codes) for c in everyone)
        duplicates = sum(1 for bd in bidders for acks in bd.acks.values() for x in acks
                         if x.status == "duplicate")
        print(f"\n[faults] Redis SIGKILLed after {kill_after} of {total} acks, "
              f"{len(acks_before_restart)} acknowledged before the restart, all still there; "
              f"during the outage: {errors} store_unavailable answers, {cut} connections "
              f"closed (codes {[code for c in everyone for code in c.close_codes]}), "
              f"{sum(bd.resends for bd in bidders)} bids re-sent, {duplicates} answered as "
              f"duplicates; down {times['restarted'] - times['killed']:.2f} s, first bid "
              f"acknowledged {times['first ack after restart'] - times['restarted']:.2f} s "
              f"after Redis was back; the newcomer was first refused with: "
              f"{late.failures[0][:110]}")
    finally:
        for client in (*watchers, *bidders):
            await client.close()
        if app is not None:
            await asyncio.to_thread(app.close)
        await asyncio.to_thread(EmbeddedRedis(redis_dir).stop)


async def test_the_embedded_redis_killed_under_load_is_started_again_by_the_server(
    server_factory: ServerFactory,
) -> None:
    """A single-machine install (`bidroom serve` with its embedded Redis): nobody restarts
    Redis by hand. The server's watchdog starts it again on the same AOF and socket."""
    bids_each = 60
    total = BIDDERS * bids_each
    kill_after = total // 3
    app = server_factory(embedded_default=True, env=LOAD_ENV)
    await set_clock(app, T0)
    accounts = await seed(app, await bootstrap_admin(app), suppliers=BIDDERS)
    auction_id = await create_auction(app, accounts)
    await set_clock(app, T0 + MINUTE)
    urls = [app.ws_url]
    watcher = Watcher("w-purchaser", accounts.purchaser.token, urls, auction_id)
    bidders = [Bidder(f"s{i}", p.token, urls, auction_id, prices_for(i))
               for i, p in enumerate(accounts.suppliers)]
    pidfile = app.data_dir / "redis" / "redis.pid"
    kill_now = asyncio.Event()
    acked = 0
    acks_before: dict[str, dict[str, Any]] = {}
    pids: list[int] = []

    def count(_: Bidder, __: Ack) -> None:
        nonlocal acked
        acked += 1
        if acked == kill_after:
            kill_now.set()

    def new_pid() -> int | None:
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid != pids[0] and process_alive(pid) else None

    async def kill_redis() -> None:
        await kill_now.wait()
        pids.append(int(pidfile.read_text().strip()))
        acks_before.update(all_receipts(bidders))
        os.kill(pids[0], signal.SIGKILL)
        await wait_until(lambda: not process_alive(pids[0]), within_s=10,
                         what="redis-server to die")
        await wait_until(lambda: new_pid() is not None, within_s=30,
                         what="the server's watchdog to start its Redis again")
        pids.append(new_pid() or 0)

    try:
        for bidder in bidders:
            bidder.on_ack = count
        await watcher.start()
        for bidder in bidders:
            await bidder.ensure_joined()
        fault = asyncio.create_task(kill_redis())
        await asyncio.gather(*(bidder.run(bids_each) for bidder in bidders))
        await fault
        await wait_until(lambda: watcher.saw(total), within_s=30,
                         what=f"the watcher to see event {total}")
        await set_clock(app, T0 + 60 * MINUTE)
        await wait_until(lambda: watcher.saw(total + 2), within_s=30,
                         what="the close and the result")
        receipts = all_receipts(bidders)
        stored = await stored_result(app, accounts.supervisor.token, auction_id)
    finally:
        for client in (watcher, *bidders):
            await client.close()
    assert set(acks_before) <= set(receipts)  # nothing acknowledged before the kill was lost
    assert_log_matches_acks(stored, receipts, total)
    assert_contiguous(watcher, total + 2)
    assert app.running and app.starts == 1 and len(pids) == 2
    log_text = (app.data_dir / "server.log").read_text(errors="replace")
    assert "started again" in log_text, log_text[-2000:]


# ========================================================================= 3. a slow client


# A small bound on a connection's unread output (default 1 MiB) makes the test fast.
SLOW_ENV = {**LOAD_ENV, "BIDROOM_WS_SEND_BUFFER": "16384"}


async def test_a_client_that_stops_reading_is_closed_and_slows_no_one(
    server_factory: ServerFactory,
) -> None:
    baseline_each, slow_each, after_each = 60, 300, 60
    server = server_factory(env=SLOW_ENV)
    await set_clock(server, T0)
    accounts = await seed(server, await bootstrap_admin(server), suppliers=BIDDERS)
    auction_id = await create_auction(server, accounts)
    await set_clock(server, T0 + MINUTE)

    urls = [server.ws_url]
    watchers = [Watcher(f"w{i}-{name}", token, urls, auction_id) for i, (name, token) in
                enumerate((("purchaser", accounts.purchaser.token),
                           ("supervisor", accounts.supervisor.token),
                           ("admin", accounts.admin_token),
                           ("purchaser", accounts.purchaser.token)))]
    bidders = [Bidder(f"s{i}", p.token, urls, auction_id, prices_for(i))
               for i, p in enumerate(accounts.suppliers)]
    slow = RawSlowClient(server.host, server.port, accounts.supervisor.token)
    phases: dict[str, list[Ack]] = {"baseline": [], "slow": [], "after": []}
    phase = "baseline"
    monitor: asyncio.Task[None] | None = None

    def record(_: Bidder, ack: Ack) -> None:
        phases[phase].append(ack)

    took: dict[str, float] = {}

    async def run_phase(name: str, each: int, start_at: int) -> None:
        nonlocal phase
        phase = name
        started = time.monotonic()
        await asyncio.gather(*(bd.run(each, start_at=start_at) for bd in bidders))
        took[name] = time.monotonic() - started

    cut_at: list[tuple[int, float]] = []  # (room seq, time) when the server let go of it

    async def watch_the_slow_socket() -> None:
        # Seldom: reading /proc/net/tcp costs milliseconds on a busy machine, and this process
        # also runs the bidders and watchers whose latency is measured.
        await wait_until(
            lambda: server_side_tcp_state(server.port, slow.local_port) != "ESTABLISHED",
            within_s=120, what="(monitor) the slow client's connection to close", poll_s=0.25)
        cut_at.append((max(w.last_seq or 0 for w in watchers), time.monotonic()))

    for bidder in bidders:
        bidder.on_ack = record
    try:
        for watcher in watchers:
            await watcher.start()
        for bidder in bidders:
            await bidder.ensure_joined()

        await run_phase("baseline", baseline_each, 0)
        # The slow client joins, reads up to `joined`, and never reads again.
        joined = await asyncio.to_thread(slow.connect_and_join, auction_id)
        slow_from = int(joined["seq"])
        assert server_side_tcp_state(server.port, slow.local_port) in ("ESTABLISHED", None)
        slow_started = time.monotonic()
        monitor = asyncio.create_task(watch_the_slow_socket())
        await run_phase("slow", slow_each, baseline_each)
        slow_until = BIDDERS * (baseline_each + slow_each)

        # Within those events the server gave up on it: its end of the connection is closed
        # (a short grace for the close, measured in seconds; the events are what is bounded).
        state = server_side_tcp_state(server.port, slow.local_port)
        if state is not None:
            await wait_until(
                lambda: server_side_tcp_state(server.port, slow.local_port) != "ESTABLISHED",
                within_s=15, poll_s=0.1,
                what="the server to close the connection of the client that does not read")
            state = server_side_tcp_state(server.port, slow.local_port)
            await monitor
        await run_phase("after", after_each, baseline_each + slow_each)
        total = BIDDERS * (baseline_each + slow_each + after_each)
        await wait_until(lambda: all(w.saw(total) for w in watchers), within_s=30,
                         what=f"every watcher to see event {total}")

        # Reading now, the slow client finds the end of the stream after what was in flight.
        await asyncio.to_thread(slow.drain, 20.0)
    finally:
        slow.close()
        for client in (*watchers, *bidders):
            await client.close()
        if monitor is not None:
            monitor.cancel()

    got = slow.event_seqs()
    assert slow.ended_by, "the connection of the client that stopped reading is still open"
    assert got == list(range(slow_from + 1, slow_from + 1 + len(got))), "its events in order"
    assert len(got) < slow_until - slow_from, (
        "it was cut off within the slow phase, not after receiving everything")
    if slow.close_code is not None:  # the close frame, when it got out before the cut
        assert slow.close_code == 4008, slow.close_code
    # Everyone else: every event, no gap, never disconnected.
    for client in (*watchers, *bidders):
        assert_contiguous(client, total)
        assert len(client.connects) == 1 and not client.close_codes, client.name

    summary = {name: latency_summary(latencies(watchers, acks)) for name, acks in phases.items()}
    print(f"\n[faults] slow client: joined at seq {slow_from}, received {len(got)} of the "
          f"{slow_until - slow_from} events of the slow phase before the server cut it off "
          f"(server side now {state}; stream ended by {slow.ended_by}"
          f"{f', close code {slow.close_code}' if slow.close_code else ''})")
    if cut_at:
        seq, when = cut_at[0]
        print(f"[faults] the server's end of it was closed {when - slow_started:.2f} s after "
              f"the slow phase began (room at seq {seq}); the phases took "
              + ", ".join(f"{k} {v:.2f} s" for k, v in took.items()))
    for name, text in summary.items():
        print(f"[faults] bid → watcher latency, {name:8s} ({BIDDERS} bidders, "
              f"{len(watchers)} watchers): {text}")


# ============================================================= 4. a client that falls behind


# A small coalescing mark (default 256 KiB) makes the test fast; the drop bound stays 1 MiB.
BEHIND_ENV = {**LOAD_ENV, "BIDROOM_WS_COALESCE_BUFFER": "4096"}


async def test_a_client_that_falls_behind_gets_the_latest_state_and_stays_connected(
    server_factory: ServerFactory,
) -> None:
    each = 250
    server = server_factory(env=BEHIND_ENV)
    await set_clock(server, T0)
    accounts = await seed(server, await bootstrap_admin(server), suppliers=BIDDERS)
    auction_id = await create_auction(server, accounts)
    await set_clock(server, T0 + MINUTE)
    urls = [server.ws_url]
    watcher = Watcher("w-purchaser", accounts.purchaser.token, urls, auction_id)
    bidders = [Bidder(f"s{i}", p.token, urls, auction_id, prices_for(i))
               for i, p in enumerate(accounts.suppliers)]
    behind = RawSlowClient(server.host, server.port, accounts.supervisor.token)
    try:
        await watcher.start()
        for bidder in bidders:
            await bidder.ensure_joined()
        # It joins, reads up to `joined`, and does not read while the suppliers bid.
        joined = await asyncio.to_thread(behind.connect_and_join, auction_id)
        start = int(joined["seq"])
        await asyncio.gather(*(bd.run(each) for bd in bidders))
        total = BIDDERS * each
        await wait_until(lambda: watcher.saw(total), within_s=30,
                         what=f"the watcher to see event {total}")

        # Reading again: up to the room's last event. Each time it fell behind (the kernel's
        # buffers may let it drain and fall behind again) the events it skipped were not
        # queued: one tick took their place with the room as it was when it had read its
        # backlog, and live events went on right after the tick.
        await asyncio.to_thread(behind.read_until, lambda m: m["type"] in ("event", "tick")
                                and m["seq"] == total)
        expect, events, ticks = start + 1, 0, []
        for msg in behind.messages:
            if msg["type"] == "event":
                assert msg["seq"] == expect, f"event {msg['seq']}, expected {expect}"
                expect, events = expect + 1, events + 1
            elif msg["type"] == "tick":
                assert msg["from_seq"] == expect, (msg["from_seq"], expect)
                assert msg["seq"] == msg["from_seq"] + msg["skipped"] - 1 == msg["room"]["seq"]
                assert "bids" not in msg["room"] and len(msg["room"]["ladder"]) == BIDDERS
                expect = msg["seq"] + 1
                ticks.append(msg)
        assert expect == total + 1
        assert ticks and events < total - start, "it was sent every event: it never fell behind"
        if ticks[-1]["seq"] == total:
            lowest = min(prices_for(i)(each - 1) for i in range(BIDDERS))
            assert ticks[-1]["room"]["lowest_fen"] == lowest

        # Still connected, and live again: the next bid arrives as an event.
        await bidders[0].run(1, start_at=each)
        live = await asyncio.to_thread(
            behind.read_until, lambda m: m["type"] == "event" and m["seq"] == total + 1)
        assert live["event"]["kind"] == "bid"
        assert behind.close_code is None and not behind.ended_by
        await wait_until(lambda: watcher.saw(total + 1), within_s=30,
                         what="the watcher to see the last event")
    finally:
        behind.close()
        for client in (watcher, *bidders):
            await client.close()
    assert_contiguous(watcher, total + 1)  # the others: every event, no gap
    assert len(watcher.connects) == 1 and not watcher.close_codes
