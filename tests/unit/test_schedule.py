"""The due-pass loop shared by the closer and the opening runner: it runs when due or woken,
survives a failing pass, and stops when told — whatever the loop is doing at that instant."""

from __future__ import annotations

import asyncio

import pytest

from bidroom.errors import StoreError
from bidroom.schedule import DuePass


class Counting(DuePass):
    def __init__(self, *, fail_first: int = 0) -> None:
        self.now = 1_000
        super().__init__(now_ms=self._clock, poll_ms=60_000, name="test-pass")
        self.passes = 0
        self.fail_first = fail_first
        self.next_due: int | None = None
        self.ran = asyncio.Event()

    async def _clock(self) -> int:
        return self.now

    async def run_once(self) -> int | None:
        self.passes += 1
        self.ran.set()
        if self.passes <= self.fail_first:
            raise StoreError("Redis is down")
        return self.next_due


async def _stopped(loop_pass: Counting) -> None:
    """Stop it; fail (rather than hang) if that does not end the loop within 5 s. Not with
    wait_for: under Python 3.11 it can report success for what it cancelled."""
    stopping = asyncio.ensure_future(loop_pass.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5)
    assert stopping in done, "stop() did not return"
    stopping.result()
    assert not loop_pass.running


async def _turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_wake_runs_a_pass_at_once_and_a_failed_pass_does_not_end_the_loop() -> None:
    loop_pass = Counting(fail_first=1)
    loop_pass.start()
    try:
        await asyncio.wait_for(loop_pass.ran.wait(), 5)
        assert loop_pass.passes == 1  # failed, and now waits up to poll_ms (a minute)
        loop_pass.ran.clear()
        loop_pass.wake()
        await asyncio.wait_for(loop_pass.ran.wait(), 5)
        assert loop_pass.passes == 2
    finally:
        await _stopped(loop_pass)


@pytest.mark.parametrize("turns", range(8))
async def test_stop_ends_the_loop_even_when_a_wake_lands_in_the_same_instant(turns: int) -> None:
    """Python 3.11's ``asyncio.wait_for`` returns the result instead of raising when the task is
    cancelled just as the awaited event completes: a loop built on it did not stop (a test hung
    on ``closer.stop()`` in CI). Every interleaving of a wake and a stop must end the loop."""
    loop_pass = Counting()
    loop_pass.start()
    await asyncio.wait_for(loop_pass.ran.wait(), 5)
    await _turns(3)  # now waiting to be woken
    loop_pass.wake()
    await _turns(turns)
    await _stopped(loop_pass)
    passes = loop_pass.passes
    loop_pass.wake()
    await _turns(10)
    assert loop_pass.passes == passes  # stopped: a wake runs nothing
