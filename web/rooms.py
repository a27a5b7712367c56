"""One auction room as a caller may see it right now: the snapshot view (and a supplier's own).

Shared by the HTTP routes (``GET /api/auctions/{id}``) and anything else that needs a one-off
view of a live room without joining the fan-out hub. The room is read from Redis in one
consistent snapshot; the bid log is read after it and cut at the snapshot's sequence number, so
the view is exactly the room at that sequence. Identities stay hidden (背靠背) until the result
is published; the result then carries the suppliers' names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bidroom.auction.executor import Snapshot
from bidroom.errors import NotFoundError
from bidroom.rooms.views import Audience, RoomReplica, personal_view, snapshot_view
from bidroom.stores.sql import AuctionRow
from market.registry import Principal
from web.auth import audience_for, require_view
from web.services import Services

__all__ = ["LiveRoom", "auction_not_found", "load_room", "room_view", "view_for"]


@dataclass(frozen=True, slots=True)
class LiveRoom:
    """A room read at one sequence number, with the named result once it is published."""

    snapshot: Snapshot
    replica: RoomReplica
    result_view: dict[str, Any] | None

    def is_invited(self, org_id: str) -> bool:
        return org_id in self.snapshot.state.invited


def auction_not_found(auction_id: str) -> NotFoundError:
    return NotFoundError(
        f"auction {auction_id} not found", code="auction_not_found", auction_id=auction_id
    )


async def load_room(services: Services, auction_id: str) -> LiveRoom:
    """Read the room (``NotFoundError`` ``auction_not_found`` when it has no live room)."""
    executor = services.executor
    snap = await executor.snapshot(auction_id)
    bids = [b for b in await executor.bid_log(auction_id) if b.seq <= snap.state.seq]
    replica = RoomReplica(state=snap.state, bids=bids)
    result_view: dict[str, Any] | None = None
    if snap.result_seq is not None:
        published = await executor.result_event(auction_id)
        if published is not None:
            result_view = await services.result_with_names(published.result)
    return LiveRoom(snapshot=snap, replica=replica, result_view=result_view)


def view_for(room: LiveRoom, principal: Principal) -> dict[str, Any]:
    """``{"room": …}`` for the caller's audience, plus ``"you"`` for a supplier."""
    audience = audience_for(principal)
    view: dict[str, Any] = {
        "room": snapshot_view(room.replica, audience, room.snapshot.now_ms, room.result_view)
    }
    if audience is Audience.SUPPLIER:
        view["you"] = personal_view(room.replica, principal.org_id, with_bids=True)
    return view


async def room_view(
    services: Services,
    auction_id: str,
    principal: Principal,
    auction: AuctionRow | None = None,
) -> dict[str, Any]:
    """The live view of one auction for this caller, after checking the caller may see it.

    ``auction`` is the SQL row if the caller has it already (else it is read). Raises
    ``NotFoundError`` (``auction_not_found``) and ``ForbiddenError`` (``not_invited``).
    """
    if auction is None:
        auction = await services.auctions.get_auction(auction_id)
        if auction is None:
            raise auction_not_found(auction_id)
    room = await load_room(services, auction_id)
    require_view(principal, auction, room.is_invited(principal.org_id))
    return view_for(room, principal)
