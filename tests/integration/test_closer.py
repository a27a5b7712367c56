"""Closing on time, exactly once across processes, with the result stored in SQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidroom.auction.closer import AuctionCloser
from bidroom.auction.executor import AuctionExecutor, ResultPublished
from bidroom.auction.rules import AuctionClosed, AuctionSettings
from bidroom.stores.redis import connect_redis
from bidroom.stores.sql import AuctionRepository, AuctionRow

START = 1_900_000_000_000
END = START + 60_000


class Clock:
    def __init__(self) -> None:
        self.now = START

    async def script_now(self) -> int:
        return self.now


@pytest.fixture
async def setup(
    redis_url: str, session_factory: async_sessionmaker[AsyncSession]
) -> AsyncIterator[tuple[Clock, list[AuctionExecutor], list[AuctionCloser], AuctionRepository,
                         str]]:
    """Two 'processes': each with its own Redis client, executor and closer."""
    clock = Clock()
    repo = AuctionRepository(session_factory)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    clients = [connect_redis(redis_url) for _ in range(2)]
    executors = [AuctionExecutor(c, now_source=clock.script_now) for c in clients]
    closers = [AuctionCloser(e, repo, now_ms=clock.script_now, prefix=prefix)
               for e in executors]
    auction_id = f"auc_{uuid.uuid4().hex}"
    settings = AuctionSettings(auction_id=auction_id, ceiling_fen=100_000, start_ms=START,
                               end_ms=END, step_value=100, sniping_window_ms=10_000,
                               extension_ms=30_000)
    await repo.create_auction(
        AuctionRow(id=auction_id, title="t", purchaser_org_id="org_p",
                   created_by_user_id="usr_p", settings=settings.to_dict(), status="scheduled",
                   created_at_ms=START, start_ms=START, end_ms=END),
        ["a", "b", "c"], START)
    await executors[0].create(settings, ["a", "b", "c"])
    await closers[0].schedule(auction_id, END)
    try:
        yield clock, executors, closers, repo, auction_id
    finally:
        await clients[0].delete(*executors[0].keys(auction_id).all(), f"{prefix}:schedule")
        for c in clients:
            await c.aclose()


Setup = tuple[Clock, list[AuctionExecutor], list[AuctionCloser], AuctionRepository, str]


async def test_nothing_closes_before_the_end_and_an_extension_moves_the_close(
    setup: Setup,
) -> None:
    clock, executors, closers, repo, auction_id = setup
    ex = executors[0]
    for sid, price in (("a", 90_000), ("b", 85_000)):
        await ex.place_bid(auction_id, sid, sid, price)
    clock.now = END - 5_000
    await ex.place_bid(auction_id, "c", "c", 80_000)  # inside the window: end -> END + 30 s
    clock.now = END
    assert await closers[0].run_once() == END + 30_000
    assert not (await ex.snapshot(auction_id)).state.closed
    clock.now = END + 30_000
    assert await closers[0].run_once() is None
    stored = await repo.get_result(auction_id)
    assert stored is not None
    result, bids = stored
    assert result.winner_org_id == "c" and result.winning_fen == 80_000
    assert result.final_end_ms == END + 30_000 and result.extensions == 1
    assert [b.seq for b in bids] == [1, 2, 3]
    assert (await repo.get_auction(auction_id)).status == "closed"  # type: ignore[union-attr]


async def test_two_processes_racing_close_the_auction_exactly_once(setup: Setup) -> None:
    clock, executors, closers, repo, auction_id = setup
    await executors[0].place_bid(auction_id, "a", "a", 90_000)
    clock.now = END + 1
    closes: list[Any] = await asyncio.gather(
        *(ex.close(auction_id) for ex in executors for _ in range(3)))
    assert sum(isinstance(c, AuctionClosed) for c in closes) == 1
    await asyncio.gather(*(closer.run_once() for closer in closers))
    stored = await repo.get_result(auction_id)
    assert stored is not None and stored[0].failed  # one valid bidder of the 3 required
    events = await executors[1].events_after(auction_id, 0)
    assert events is not None
    assert sum(isinstance(e, AuctionClosed) for e in events) == 1
    assert sum(isinstance(e, ResultPublished) for e in events) == 1
    published = next(e for e in events if isinstance(e, ResultPublished))
    # a failed auction's null fields survive the trip through the Lua script
    assert published.result["failed"] is True and published.result["winner_id"] is None
    assert "savings_bp" in published.result and published.result["savings_bp"] is None


async def test_a_process_dying_after_the_close_leaves_the_result_to_the_next_pass(
    setup: Setup,
) -> None:
    clock, executors, closers, repo, auction_id = setup
    clock.now = END
    closed = await executors[0].close(auction_id)  # closed in Redis, then the process "dies"
    assert isinstance(closed, AuctionClosed)
    assert await repo.get_result(auction_id) is None
    await closers[1].run_once()  # another process's closer finds it due and finishes it
    stored = await repo.get_result(auction_id)
    assert stored is not None and stored[0].closed_at_ms == END


async def test_a_paused_auction_is_not_closed_until_resumed_and_its_time_given_back(
    setup: Setup,
) -> None:
    clock, executors, closers, repo, auction_id = setup
    ex = executors[0]
    clock.now = START + 10_000
    await ex.pause(auction_id, "network outage at the agency")
    clock.now = END + 5_000
    await closers[0].run_once()
    assert not (await ex.snapshot(auction_id)).state.closed
    resumed = await ex.resume(auction_id)
    assert getattr(resumed, "end_ms", None) == END + (END + 5_000 - (START + 10_000))
    new_end = END + 55_000
    clock.now = END + 6_000  # the paused re-check comes due, sees the moved end, waits for it
    assert await closers[0].run_once() == new_end
    assert await repo.get_result(auction_id) is None
    clock.now = new_end
    assert await closers[0].run_once() is None
    stored = await repo.get_result(auction_id)
    assert stored is not None and stored[0].final_end_ms == new_end


async def test_an_orphaned_schedule_entry_is_dropped_without_blocking_the_others(
    setup: Setup,
) -> None:
    clock, _executors, closers, repo, auction_id = setup
    await closers[0].schedule("auc_gone_from_everywhere", START)  # due first, exists nowhere
    clock.now = END
    assert await closers[0].run_once() is None
    assert await repo.get_result(auction_id) is not None
