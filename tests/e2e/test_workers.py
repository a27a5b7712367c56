"""``bidroom serve --workers 2``: two processes on one port serve one consistent room.

Connections are spread over the workers by the kernel (uvicorn's workers accept on one shared
listening socket; the server fixture returns once both have started — before that the first one
up takes every connection); the ``welcome`` message names the process serving each connection
(``server.pid``), so the test keeps opening connections — in concurrent bursts, since an idle
worker that just accepted tends to win the next lone connection too, and a bounded number —
until bidders and watchers sit on both workers, then checks what tests/e2e/test_scale_out.py
checks for two separate servers: bids placed through different workers reach every watcher on
every worker in one identical order with contiguous sequence numbers, each supplier's own rank
is right on every one of its connections, and the auction closes, and its result is announced,
exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from typing import Any

from tests.e2e.server import (
    Party,
    ServerFactory,
    api_client,
    bootstrap_admin,
    create_auction,
    seed,
    set_clock,
)
from tests.live import Client, join

T0 = 1_900_000_000_000
MINUTE = 60_000
MAX_CONNECTIONS = 160  # opened in bursts until both workers serve both kinds
BURST = 8  # connections opened at once: while one worker accepts, the other gets the next


def events(messages: list[dict[str, Any]]) -> list[tuple[int, str, int | None]]:
    """(seq, kind, price) of every room event in ``messages``."""
    return [(m["seq"], m["event"]["kind"], m["event"].get("price_fen"))
            for m in messages if m["type"] == "event"]


async def test_bidders_and_watchers_spread_over_two_workers_see_one_room_that_closes_once(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(workers=2)
    await set_clock(server, T0)
    accounts = await seed(server, await bootstrap_admin(server), suppliers=3)
    s1, s2, s3 = accounts.suppliers
    auction_id = await create_auction(
        server, accounts, title="交换机 20 台", title_en="20 switches", start_ms=T0,
        end_ms=T0 + 10 * MINUTE, ceiling_fen=2_000_000, step_fen=1_000)
    await set_clock(server, T0 + MINUTE)

    watchers_of = (accounts.supervisor, accounts.purchaser)
    bidders_of = (s1, s2, s3)
    async with contextlib.AsyncExitStack() as stack:
        # (party, pid, client) of every connection opened, in order
        opened: list[tuple[Party, int, Client]] = []

        def pids(parties: tuple[Party, ...]) -> set[int]:
            return {pid for party, pid, _ in opened if party in parties}

        def spread() -> bool:
            """Watchers on two workers, and two suppliers on different workers."""
            if len(pids(watchers_of)) < 2:
                return False
            by_supplier = [pids((s,)) for s in bidders_of]
            if not all(by_supplier):
                return False
            return any(p != q for a, b in itertools.permutations(by_supplier, 2)
                       for p in a for q in b)

        async def open_as(party: Party) -> None:
            client = await stack.enter_async_context(Client.connect(server.ws_url, None))
            welcome = await client.request("auth", token=party.token)
            assert welcome["type"] == "welcome", welcome
            opened.append((party, welcome["server"]["pid"], client))

        parties = itertools.cycle((*watchers_of, *bidders_of))
        while not spread() and len(opened) < MAX_CONNECTIONS:
            await asyncio.gather(*(open_as(next(parties)) for _ in range(BURST)))
        served = Counter(pid for _, pid, _ in opened)
        print(f"{len(opened)} connections, per worker pid: {dict(served)}")
        assert spread(), (
            f"after {len(opened)} connections the kernel had not spread bidders and watchers "
            f"over both workers: connections per pid {dict(served)}")
        assert len(served) == 2 and server.pid not in served  # the workers, not the supervisor

        for _, _, client in opened:
            first, _ = await join(client, auction_id)
            assert first["type"] == "snapshot" and first["seq"] == 0, first

        # One bidding connection per supplier, the three of them spanning both workers.
        bidding = next(
            choice for choice in itertools.product(
                *([(pid, c) for p, pid, c in opened if p == s] for s in bidders_of))
            if len({pid for pid, _ in choice}) == 2)
        (_, bidder1), (_, bidder2), (_, bidder3) = bidding

        plan = ((bidder1, "x1", 1_990_000), (bidder2, "y1", 1_980_000),
                (bidder3, "z1", 1_975_000), (bidder1, "x2", 1_970_000),
                (bidder2, "y2", 1_960_000))
        for seq, (client, bid_id, price) in enumerate(plan, start=1):
            reply = await client.request("bid", auction_id=auction_id, bid_id=bid_id,
                                         price_fen=price)
            assert reply["type"] == "bid_accepted", reply
            assert reply["receipt"]["seq"] == seq, reply  # one sequence across both workers
        expected_bids = [(1, "bid", 1_990_000), (2, "bid", 1_980_000), (3, "bid", 1_975_000),
                         (4, "bid", 1_970_000), (5, "bid", 1_960_000)]

        # Every supplier connection, on either worker, learns its own final rank at seq 5.
        final = {s1.org_id: (2, 1_970_000), s2.org_id: (1, 1_960_000),
                 s3.org_id: (3, 1_975_000)}
        for party, pid, client in opened:
            if party not in bidders_of:
                continue
            you, _ = await client.recv_until(lambda m: m["type"] == "you" and m["seq"] == 5)
            assert (you["rank"], you["best_fen"]) == final[party.org_id], (party.name, pid, you)

        # The auction closes on time; both workers run a closer, exactly one closes it.
        await set_clock(server, T0 + 10 * MINUTE)
        seen_by: list[tuple[int, list[tuple[int, str, int | None]]]] = []
        result_seqs = set()
        for party, pid, client in opened:
            if party not in watchers_of:
                continue
            result, seen = await client.recv_until(
                lambda m: m["type"] == "event" and m["event"]["kind"] == "result", wait_s=20)
            result_seqs.add(result["seq"])
            seen_by.append((pid, events([*seen, result])))
            published = result["event"]["result"]
            assert published["failed"] is False and published["winner_id"] == s2.org_id
        assert {pid for pid, _ in seen_by} == set(served)  # watchers on both workers
        reference = seen_by[0][1]
        for pid, seen in seen_by:
            assert seen == reference, (pid, seen, reference)
        assert [e for e in reference if e[1] == "bid"] == expected_bids
        assert [seq for seq, _, _ in reference] == list(range(1, len(reference) + 1))
        assert [kind for _, kind, _ in reference].count("closed") == 1
        assert [kind for _, kind, _ in reference].count("result") == 1
        assert result_seqs == {reference[-1][0]}

    async with api_client(server, accounts.supervisor.token) as http:
        stored = (await http.get(f"/api/auctions/{auction_id}/result")).json()
    assert stored["failed"] is False and stored["winner_id"] == s2.org_id
    assert [r["supplier_id"] for r in stored["ranking"]] == [s2.org_id, s1.org_id, s3.org_id]
    assert [b["price_fen"] for b in stored["bids"]] == [p for _, _, p in expected_bids]
