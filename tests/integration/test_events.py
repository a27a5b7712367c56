"""Domain events: the outbox commits with the change, the relay moves it to the stream, and a
consumer group handles every event exactly once even when a consumer dies mid-stream (real
Redis: embedded, or the server/cluster CI points at; real SQL)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from market.events import Consumer, DomainEvent, OutboxRow, Relay, emit

pytestmark = pytest.mark.asyncio


class _Clock:
    def __init__(self) -> None:
        self.ms = 1_790_000_000_000

    async def __call__(self) -> int:
        self.ms += 1
        return self.ms


async def _emit(sessions: async_sessionmaker[AsyncSession], n: int, kind: str = "test.happened",
                start: int = 0) -> None:
    async with sessions.begin() as session:
        for i in range(start, start + n):
            emit(session, kind, f"thing:{i}", {"i": i, "名": "事件"}, at_ms=1000 + i)


async def _count(sessions: async_sessionmaker[AsyncSession], kind: str) -> dict[int, int]:
    """How many outbox rows of ``kind`` each ``i`` has (counted here: PostgreSQL's JSON type
    has no equality to group by)."""
    async with sessions() as session:
        payloads = (await session.scalars(
            select(OutboxRow.payload).where(OutboxRow.kind == kind))).all()
    counts: dict[int, int] = {}
    for payload in payloads:
        counts[int(payload["i"])] = counts.get(int(payload["i"]), 0) + 1
    return counts


def _echo(calls: list[str], before_commit: Callable[[DomainEvent], Awaitable[None]] | None = None
          ) -> Callable[[AsyncSession, DomainEvent], Awaitable[None]]:
    """A handler whose effect is an SQL row in its own transaction: an echo event."""
    async def handle(session: AsyncSession, event: DomainEvent) -> None:
        calls.append(event.event_id)
        emit(session, "test.echoed", event.aggregate, {"i": event.payload["i"]},
             at_ms=event.at_ms)
        if before_commit is not None:
            await before_commit(event)
    return handle


@pytest.fixture
def stream(unique_id: str) -> str:
    return f"{{test-events-{unique_id}}}:stream"


async def test_an_event_exists_exactly_when_its_transaction_commits(
        session_factory: Any) -> None:
    with pytest.raises(RuntimeError):
        async with session_factory.begin() as session:
            emit(session, "test.rolled_back", "thing:1", {"i": 1}, at_ms=1)
            raise RuntimeError("the change fails")
    await _emit(session_factory, 1, kind="test.committed")
    assert await _count(session_factory, "test.rolled_back") == {}
    assert await _count(session_factory, "test.committed") == {0: 1}


async def test_relay_puts_events_on_the_stream_in_outbox_order_once_marked(
        session_factory: Any, redis_client: Any, stream: str, monkeypatch: Any) -> None:
    await _emit(session_factory, 5)
    relay = Relay(session_factory, redis_client, stream=stream, now_ms=_Clock(), batch=3)
    assert await relay.relay_once() == 3
    assert await relay.relay_once() == 2
    assert await relay.relay_once() == 0
    entries = await redis_client.xrange(stream)
    assert [int(f[b"aggregate"].split(b":")[1]) for _, f in entries] == [0, 1, 2, 3, 4]
    # another process's relay waits while this one holds the lease
    other = Relay(session_factory, redis_client, stream=stream, now_ms=_Clock())
    await _emit(session_factory, 1, start=5)
    assert await other.relay_once() == 0
    assert await relay.relay_once() == 1


async def _setup(session_factory: Any, redis_client: Any, stream: str,
                 n: int) -> None:
    await _emit(session_factory, n)
    relay = Relay(session_factory, redis_client, stream=stream, now_ms=_Clock(), batch=1000)
    assert await relay.relay_once() == n


class _Killed(BaseException):
    """Stands for the process dying: nothing after it runs (not an Exception: no handler
    catches it)."""


async def test_a_consumer_killed_mid_stream_resumes_and_handles_nothing_twice(
        session_factory: Any, redis_client: Any, stream: str, monkeypatch: Any) -> None:
    n = 30
    await _setup(session_factory, redis_client, stream, n)
    calls: list[str] = []
    seen = 0

    async def die_inside_the_handler(event: DomainEvent) -> None:
        nonlocal seen
        seen += 1
        if seen == 8:  # killed before its transaction commits: the effect is rolled back
            raise _Killed

    first = Consumer(session_factory, redis_client, group="g", name="first", stream=stream,
                     handler=_echo(calls, die_inside_the_handler), now_ms=_Clock(), batch=10,
                     claim_idle_ms=0)
    with pytest.raises(_Killed):
        for _ in range(5):
            await first.poll(block_ms=0)
    handled_before_death = len(await _count(session_factory, "test.echoed"))
    assert handled_before_death == 7

    # the next one dies after committing an event but before acknowledging it
    acks = 0
    real_xack = redis_client.xack

    async def dying_xack(*args: Any) -> Any:
        nonlocal acks
        acks += 1
        if acks == 4:
            raise _Killed
        return await real_xack(*args)

    second = Consumer(session_factory, redis_client, group="g", name="second", stream=stream,
                      handler=_echo(calls), now_ms=_Clock(), batch=10, claim_idle_ms=0)
    monkeypatch.setattr(redis_client, "xack", dying_xack)
    with pytest.raises(_Killed):
        await second.claim_stale()
        for _ in range(5):
            await second.poll(block_ms=0)
    monkeypatch.setattr(redis_client, "xack", real_xack)

    third = Consumer(session_factory, redis_client, group="g", name="third", stream=stream,
                     handler=_echo(calls), now_ms=_Clock(), batch=10, claim_idle_ms=0)
    await third.claim_stale()
    while await third.poll(block_ms=0):
        pass
    await third.claim_stale()

    echoed = await _count(session_factory, "test.echoed")
    assert echoed == {i: 1 for i in range(n)}  # every event's effect exactly once
    assert (await redis_client.xpending(stream, "g"))["pending"] == 0
    # the event whose ack was lost was delivered again and skipped, not handled again
    assert len(calls) == n + 1  # + the call whose transaction was rolled back


async def test_each_group_gets_every_event_and_a_handled_event_is_skipped(
        session_factory: Any, redis_client: Any, stream: str, monkeypatch: Any) -> None:
    await _setup(session_factory, redis_client, stream, 4)
    calls_a: list[str] = []
    calls_b: list[str] = []
    a = Consumer(session_factory, redis_client, group="a", stream=stream, handler=_echo(calls_a),
                 now_ms=_Clock())
    b = Consumer(session_factory, redis_client, group="b", stream=stream, handler=_echo(calls_b),
                 now_ms=_Clock(), kinds=["test.other"])
    assert await a.poll(block_ms=0) == 4
    assert await b.poll(block_ms=0) == 4  # acknowledged, but not its kind: not handled
    assert len(calls_a) == 4 and calls_b == []
    # the same entries delivered again (a replay of the stream) do nothing
    await redis_client.xgroup_setid(stream, "a", id="0")
    assert await a.poll(block_ms=0) == 4
    assert len(calls_a) == 4
    assert await _count(session_factory, "test.echoed") == {0: 1, 1: 1, 2: 1, 3: 1}


async def test_a_failing_handler_is_retried_then_given_up_without_blocking_the_group(
        session_factory: Any, redis_client: Any, stream: str, monkeypatch: Any) -> None:
    await _setup(session_factory, redis_client, stream, 3)
    tries: dict[str, int] = {}

    async def flaky(session: AsyncSession, event: DomainEvent) -> None:
        tries[event.aggregate] = tries.get(event.aggregate, 0) + 1
        if event.aggregate == "thing:1":
            raise ValueError("cannot handle this one")
        emit(session, "test.echoed", event.aggregate, {"i": event.payload["i"]}, at_ms=1)

    consumer = Consumer(session_factory, redis_client, group="g", stream=stream, handler=flaky,
                        now_ms=_Clock(), claim_idle_ms=0, max_deliveries=3)
    await consumer.poll(block_ms=0)
    for _ in range(5):
        await consumer.claim_stale()
    assert tries["thing:1"] == 3
    assert await _count(session_factory, "test.echoed") == {0: 1, 2: 1}
    assert (await redis_client.xpending(stream, "g"))["pending"] == 0
