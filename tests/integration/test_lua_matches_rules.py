"""The Lua executor decides every command exactly as the pure rules do.

Hypothesis generates random auctions (every setting) and random command sequences: many
bidders, bids landing exactly on the end instant and on the window's edges, extension caps,
duplicates, pauses, invitations and closes. Both the pure ``decide`` and the Redis script (with
the same injected clock) run them; every decision and the final state must agree.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bidroom.auction.executor import AuctionExecutor
from bidroom.auction.rules import (
    AuctionSettings,
    AuctionState,
    Close,
    Command,
    Event,
    ExtensionTrigger,
    Improvement,
    Invite,
    Pause,
    PlaceBid,
    Resume,
    SignIn,
    StepKind,
    decide,
    new_state,
    percent_of,
)
from bidroom.stores.redis import connect_redis

START = 1_800_000_000_000
SUPPLIERS = ["s1", "s2", "s3", "s4", "s5", "s6"]


@st.composite
def auction_settings(draw: st.DrawFn) -> AuctionSettings:
    ceiling = draw(st.sampled_from([1_000, 100_000, 10_000_000, 10**13]))
    kind = draw(st.sampled_from(StepKind))
    step = (
        draw(st.integers(1, min(ceiling - 1, 5_000)))
        if kind is StepKind.AMOUNT
        else draw(st.integers(1, 3_000))
    )
    duration = draw(st.integers(1_000, 100_000))
    window = draw(st.sampled_from([0, 1, 500, duration]))
    return AuctionSettings(
        auction_id=f"prop_{uuid.uuid4().hex}",
        ceiling_fen=ceiling,
        start_ms=START,
        end_ms=START + duration,
        step_kind=kind,
        step_value=step,
        improvement=draw(st.sampled_from(Improvement)),
        sniping_window_ms=window,
        sniping_trigger=draw(st.sampled_from(ExtensionTrigger)),
        extension_ms=draw(st.integers(1, 5_000)) if window else draw(st.sampled_from([0, 10])),
        max_extensions=draw(st.none() | st.integers(0, 3)),
        max_total_extension_ms=draw(st.none() | st.integers(0, 8_000)),
        min_valid_bidders=draw(st.integers(1, 4)),
        show_lowest_to_suppliers=draw(st.booleans()),
        sign_in_ms=draw(st.sampled_from([0, 0, 2_000])),
    )


@st.composite
def scenario(draw: st.DrawFn) -> tuple[AuctionSettings, list[str], list[tuple[str, Any]]]:
    s = draw(auction_settings())
    invited = draw(st.lists(st.sampled_from(SUPPLIERS), min_size=1, max_size=5, unique=True))
    duration = s.end_ms - s.start_ms
    # Instants that matter: the edges of the start, the window and the (original) end; the
    # executor and the rules may extend the end, so steps also aim at "the current end" later.
    offsets = st.sampled_from(
        [-s.sign_in_ms - 1, -s.sign_in_ms, -1, 0, 1, duration - s.sniping_window_ms - 1,
         duration - s.sniping_window_ms, duration - 1, duration, duration + 1]
    ) | st.integers(-3_000, duration + 20_000)
    steps: list[tuple[str, Any]] = []
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(
            ["bid"] * 8 + ["bid_at_end", "dup", "signin", "pause", "resume", "close", "invite"]
        ))
        supplier = draw(st.sampled_from(SUPPLIERS))
        if kind in ("bid", "bid_at_end"):
            price = draw(
                st.sampled_from([s.ceiling_fen, s.ceiling_fen + 1, s.ceiling_fen - s.step_value])
                | st.integers(-1, s.ceiling_fen)
            )
            steps.append((kind, (supplier, price, draw(offsets), draw(st.integers(-2, 1)))))
        elif kind == "dup":
            steps.append((kind, (supplier, draw(offsets))))
        elif kind == "invite":
            steps.append((kind, (tuple(draw(st.lists(st.sampled_from(SUPPLIERS), min_size=1,
                                                      max_size=2))), draw(offsets))))
        else:
            steps.append((kind, (supplier, draw(offsets))))
    return s, invited, steps


def to_command(state: AuctionState, kind: str, args: Any, counter: int,
               last_bid: dict[str, str]) -> Command:
    start = state.settings.start_ms
    if kind == "bid":
        supplier, price, offset, _ = args
        last_bid[supplier] = f"b{counter}"
        return PlaceBid(supplier, f"b{counter}", price, start + offset)
    if kind == "bid_at_end":
        # lands relative to the *current* (maybe extended) end: -2, -1, 0 (rejected), +1
        supplier, price, _, delta = args
        last_bid[supplier] = f"b{counter}"
        return PlaceBid(supplier, f"b{counter}", price, state.end_ms + delta)
    if kind == "dup":
        supplier, offset = args
        return PlaceBid(supplier, last_bid.get(supplier, "never"), 1, start + offset)
    if kind == "signin":
        return SignIn(args[0], start + args[1])
    if kind == "pause":
        return Pause(f"reason {counter}", start + args[1])
    if kind == "resume":
        return Resume(start + args[1])
    if kind == "invite":
        return Invite(args[0], start + args[1])
    return Close(start + args[1])


async def execute(
    executor: AuctionExecutor, auction_id: str, command: Command
) -> tuple[Event, ...]:
    if isinstance(command, PlaceBid):
        return await executor.place_bid(auction_id, command.supplier_id, command.bid_id,
                                        command.price_fen)
    if isinstance(command, SignIn):
        return (await executor.sign_in(auction_id, command.supplier_id),)
    if isinstance(command, Pause):
        return (await executor.pause(auction_id, command.reason),)
    if isinstance(command, Resume):
        return (await executor.resume(auction_id),)
    if isinstance(command, Invite):
        return (await executor.invite(auction_id, command.supplier_ids),)
    return (await executor.close(auction_id),)


def test_percent_of_matches_exact_integer_arithmetic() -> None:
    for reference in (1, 9_999, 10_000, 123_456_789, 10**13 - 1, 10**13):
        for bp in (1, 50, 3_333, 9_999):
            assert percent_of(reference, bp) == -(-(reference * bp) // 10_000)


Case = tuple[AuctionSettings, list[str], list[tuple[str, Any]]]


@pytest.mark.asyncio
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=scenario())
async def test_the_lua_executor_decides_every_command_as_the_rules_do(
    redis_url: str, case: Case
) -> None:
    await run_case(redis_url, case)


@pytest.mark.asyncio
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=scenario())
async def test_the_lua_executor_runs_unchanged_on_redis_cluster(
    cluster_url: str, case: Case
) -> None:
    await run_case(cluster_url, case)


async def run_case(url: str, case: Case) -> None:
    auction, invited, steps = case
    clock = {"now": auction.start_ms}

    async def now() -> int:
        return clock["now"]

    client = connect_redis(url)
    try:
        executor = AuctionExecutor(client, now_source=now, stream_maxlen=1_000)
        assert await executor.create(auction, invited)
        state = new_state(auction, frozenset(invited))
        last_bid: dict[str, str] = {}
        for counter, (kind, args) in enumerate(steps):
            command = to_command(state, kind, args, counter, last_bid)
            clock["now"] = command.now_ms
            expected = decide(state, command)
            actual = await execute(executor, auction.auction_id, command)
            assert actual == expected.events, (command, state)
            state = expected.state

        snap = await executor.snapshot(auction.auction_id)
        # the executor does not keep the idempotency map in the snapshot view
        from dataclasses import replace

        assert snap.state == replace(state, accepted_ids={})
        log = await executor.bid_log(auction.auction_id)
        assert len(log) == sum(st_.bids for st_ in state.standings.values())
        replay = await executor.events_after(auction.auction_id, 0)
        assert replay is not None and [e.seq for e in replay] == list(range(1, state.seq + 1))
    finally:
        await client.delete(*executor.keys(auction.auction_id).all())
        await client.aclose()

