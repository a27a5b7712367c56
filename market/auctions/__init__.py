"""Procurement auctions as the market opens them: a reverse auction put on the books.

Opening an auction is four writes in a fixed order, shared by ``POST /api/auctions`` and the
demo: the live room in Redis first (so a failure leaves an invisible room, never a visible
auction without a room), then the durable SQL row with its invitations, then the close on the
schedule, then the audit record (全程留痕: every action leaves a trace).

Must not import: web.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bidroom.auction.closer import AuctionCloser
from bidroom.auction.executor import AuctionExecutor
from bidroom.auction.rules import AuctionSettings
from bidroom.stores.sql import AuctionRepository, AuctionRow

__all__ = ["open_auction"]


async def open_auction(
    executor: AuctionExecutor,
    repository: AuctionRepository,
    closer: AuctionCloser,
    *,
    settings: AuctionSettings,
    title: str,
    title_en: str,
    purchaser_org_id: str,
    agency_org_id: str | None,
    created_by_user_id: str,
    actor_org_id: str,
    invited: Sequence[str],
    now_ms: int,
    audit_details: dict[str, Any] | None = None,
) -> AuctionRow:
    """Create the room, the row, the scheduled close and the audit record of a new auction."""
    await executor.create(settings, invited)
    row = AuctionRow(
        id=settings.auction_id,
        title=title,
        title_en=title_en,
        purchaser_org_id=purchaser_org_id,
        agency_org_id=agency_org_id,
        created_by_user_id=created_by_user_id,
        settings=settings.to_dict(),
        status="scheduled",
        created_at_ms=now_ms,
        start_ms=settings.start_ms,
        end_ms=settings.end_ms,
        closed_at_ms=None,
    )
    await repository.create_auction(row, list(invited), now_ms)
    await closer.schedule(settings.auction_id, settings.end_ms)
    await repository.append_audit(
        at_ms=now_ms,
        action="create",
        subject=settings.auction_id,
        actor_user_id=created_by_user_id,
        details={"org_id": actor_org_id, "title": title, "invited": list(invited),
                 "settings": settings.to_dict(), **(audit_details or {})},
    )
    return row
