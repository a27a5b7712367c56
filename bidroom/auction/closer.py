"""Closing on time, exactly once, with nobody connected — and the result stored.

Every app process runs a ``AuctionCloser``. Auctions wait in one Redis sorted set (member: the
auction id, score: the end instant it is due to close). Each pass takes the due ones and asks the
room's Lua script to close them: the script decides against Redis' clock and the room's current
(possibly extended, paused) end, and exactly one caller in the whole cluster ever gets
``AuctionClosed``. A refusal with a later end (an extension, a resume) puts the auction back
with that end.

Finishing (result computed by the pure rules, written to SQL, then announced to the room) is
idempotent: SQL keeps one result per auction and the Lua script publishes the result event once.
An auction leaves the schedule only after its result is stored, so a process that dies between
the close and the write leaves the work to the next pass of any process.

``on_result`` (set by the composition root) is awaited with the stored result: the market
reacts at once. A failed or missed call loses nothing; the market reconciles from the stored
results (docs/procurement.md, "Feeding the core").

Must not import: market, web.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from bidroom.auction.executor import AuctionExecutor
from bidroom.auction.rules import AuctionClosed, AuctionResult, compute_result
from bidroom.errors import BidroomError, NotFoundError, StoreError
from bidroom.schedule import DuePass
from bidroom.stores.sql import AuctionBidRow, AuctionRepository, AuctionResultRow

__all__ = ["AuctionCloser", "result_digest"]

log = logging.getLogger("bidroom.closer")

NowMs = Callable[[], Awaitable[int]]
OnResult = Callable[[AuctionResult], Awaitable[None]]
PAUSED_RECHECK_MS = 1_000


def result_digest(result: AuctionResult) -> str:
    """SHA-256 of the canonical JSON of the result: printed on the result, kept in SQL."""
    canonical = json.dumps(result.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class AuctionCloser(DuePass):
    def __init__(
        self,
        executor: AuctionExecutor,
        repository: AuctionRepository,
        *,
        now_ms: NowMs,
        poll_ms: int = 1_000,
        prefix: str = "bidroom",
    ) -> None:
        super().__init__(now_ms=now_ms, poll_ms=poll_ms, name="bidroom-closer")
        self._executor = executor
        self._repo = repository
        self._key = f"{prefix}:schedule"
        #: Awaited with each stored result; wired by the composition root.
        self.on_result: OnResult | None = None

    async def schedule(self, auction_id: str, end_ms: int) -> None:
        try:
            await self._executor.redis.zadd(self._key, {auction_id: end_ms})
        except RedisError as exc:
            raise StoreError(f"Redis failed scheduling the close: {exc}") from exc
        self.wake()

    async def run_once(self) -> int | None:
        """Close every due auction; return the next due instant (or None when none is left)."""
        now = await self._now_ms()
        due = await self._executor.redis.zrangebyscore(self._key, "-inf", now, start=0, num=100)
        for raw in due:
            auction_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            try:
                await self._close_one(auction_id)
            except NotFoundError as exc:
                # The room or its SQL row is gone (a wiped database, a half-created auction):
                # nothing can ever be closed or stored, so it must not block the others.
                log.error("dropping %s from the close schedule: %s", auction_id, exc.message)
                await self._executor.redis.zrem(self._key, auction_id)
            except BidroomError as exc:
                log.warning("closing %s failed (%s); retrying next pass", auction_id, exc)
        head = await self._executor.redis.zrange(self._key, 0, 0, withscores=True)
        return int(head[0][1]) if head else None

    async def _close_one(self, auction_id: str) -> None:
        closed = await self._executor.close(auction_id)
        if not isinstance(closed, AuctionClosed):
            snap = await self._executor.snapshot(auction_id)
            if not snap.state.closed:
                # not due yet (extended or resumed later), or paused: check again then
                when = snap.state.end_ms
                if snap.state.paused_at_ms is not None:
                    when = snap.now_ms + PAUSED_RECHECK_MS
                await self._executor.redis.zadd(self._key, {auction_id: when})
                return
        else:
            log.info("auction %s closed at %s (failed=%s)", auction_id, closed.at_ms,
                     closed.failed)
        result = await self.finish(auction_id)
        await self._executor.redis.zrem(self._key, auction_id)
        if self.on_result is not None:
            try:
                await self.on_result(result)
            except Exception as exc:  # the market reconciles from the stored result later
                log.warning("auction %s: the result hook failed (%s)", auction_id, exc)

    async def finish(self, auction_id: str) -> AuctionResult:
        """Store and announce the result of a closed auction (idempotent)."""
        snap = await self._executor.snapshot(auction_id)
        result = compute_result(snap.state)
        log_ = await self._executor.bid_log(auction_id)
        digest = result_digest(result)
        row = AuctionResultRow(
            auction_id=auction_id,
            failed=result.failed,
            failure_reason=result.failure_reason,
            winner_org_id=result.winner_id,
            winning_fen=result.winning_fen,
            ceiling_fen=result.ceiling_fen,
            savings_fen=result.savings_fen,
            savings_bp=result.savings_bp,
            valid_bidders=result.valid_bidders,
            ranking=result.to_dict()["ranking"],
            closed_at_ms=result.closed_at_ms,
            final_end_ms=result.final_end_ms,
            extensions=result.extensions,
            result_sha256=digest,
            persisted_at_ms=snap.now_ms,
        )
        bids = [
            AuctionBidRow(auction_id=auction_id, seq=b.seq, supplier_org_id=b.supplier_id,
                          alias=b.alias, bid_id=b.bid_id, price_fen=b.price_fen, at_ms=b.at_ms)
            for b in log_
        ]
        await self._repo.save_result(row, bids)
        await self._executor.publish_result(auction_id, {**result.to_dict(), "sha256": digest})
        return result
