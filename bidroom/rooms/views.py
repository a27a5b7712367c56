"""What each audience of an auction room may see: pure projections of the room's state.

背靠背 (background-to-background, DOMAIN §1 visibility [P]): until the close, bidders are
anonymous (供应商1, 2, …) to everyone, purchaser and regulators included. A supplier sees its own
bids and rank and, when the rules allow, the current lowest price. Identities are revealed only
by the result, after the close.

Every event of the room produces a message for *every* audience (with what that audience may
see), so each client's sequence numbers have no holes and catch-up is exact.

Must not import: market, web.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bidroom.auction.executor import ResultPublished, RoomEvent
from bidroom.auction.rules import (
    AuctionClosed,
    AuctionExtended,
    AuctionPaused,
    AuctionResumed,
    AuctionState,
    BidAccepted,
    SignedIn,
    SuppliersInvited,
    evolve,
    max_allowed_price,
    phase_at,
    rank_of,
    ranking,
)

__all__ = ["Audience", "RoomReplica", "event_view", "personal_view", "snapshot_view"]


class Audience(StrEnum):
    WATCHER = "watcher"  # purchaser, agency, supervisor, admin: the anonymised ladder
    SUPPLIER = "supplier"  # an invited supplier: public facts only; its own facts come apart


@dataclass
class RoomReplica:
    """A process-local copy of one room, rebuilt from a snapshot and kept up by its events."""

    state: AuctionState
    bids: list[BidAccepted] = field(default_factory=list)
    result: ResultPublished | None = None

    @property
    def seq(self) -> int:
        return self.state.seq

    def apply(self, event: RoomEvent) -> None:
        if isinstance(event, ResultPublished):
            self.state = _with_seq(self.state, event.seq)
            self.result = event
            return
        self.state = evolve(self.state, event, keep_ids=False)
        if isinstance(event, BidAccepted):
            self.bids.append(event)


def _with_seq(state: AuctionState, seq: int) -> AuctionState:
    from dataclasses import replace

    return replace(state, seq=seq)


def _rules_view(state: AuctionState) -> dict[str, Any]:
    s = state.settings
    return {
        "ceiling_fen": s.ceiling_fen,
        "budget_fen": s.budget_fen,
        "step_kind": s.step_kind.value,
        "step_value": s.step_value,
        "improvement": s.improvement.value,
        "sniping_window_ms": s.sniping_window_ms,
        "sniping_trigger": s.sniping_trigger.value,
        "extension_ms": s.extension_ms,
        "max_extensions": s.max_extensions,
        "max_total_extension_ms": s.max_total_extension_ms,
        "min_valid_bidders": s.min_valid_bidders,
        "show_lowest_to_suppliers": s.show_lowest_to_suppliers,
        "sign_in_ms": s.sign_in_ms,
    }


def _ladder(state: AuctionState) -> list[dict[str, Any]]:
    return [
        {"rank": i, "alias": st.alias, "price_fen": st.best_fen, "seq": st.best_seq,
         "bids": st.bids}
        for i, st in enumerate(ranking(state), start=1)
    ]


def _lowest_for(state: AuctionState, audience: Audience) -> int | None:
    if audience is Audience.SUPPLIER and not state.settings.show_lowest_to_suppliers:
        return None
    return state.lowest_fen


def snapshot_view(replica: RoomReplica, audience: Audience, now_ms: int,
                  result: dict[str, Any] | None = None) -> dict[str, Any]:
    """The room as one audience sees it at the replica's sequence number."""
    state = replica.state
    s = state.settings
    view: dict[str, Any] = {
        "auction_id": s.auction_id,
        "seq": state.seq,
        "phase": phase_at(state, now_ms).value,
        "server_time_ms": now_ms,
        "start_ms": s.start_ms,
        "end_ms": state.end_ms,
        "original_end_ms": s.end_ms,
        "extensions": state.extensions,
        "extended_ms": state.extended_ms,
        "paused": (
            {"at_ms": state.paused_at_ms, "reason": state.pause_reason}
            if state.paused_at_ms is not None else None
        ),
        "closed_at_ms": state.closed_at_ms,
        "rules": _rules_view(state),
        "lowest_fen": _lowest_for(state, audience),
        "bidders": state.valid_bidders,
        "invited": len(state.invited),
        "signed_in": len(state.signed_in),
        "result": result,
    }
    if audience is Audience.WATCHER:
        view["ladder"] = _ladder(state)
        view["bids"] = [
            {"seq": b.seq, "alias": b.alias, "price_fen": b.price_fen, "at_ms": b.at_ms}
            for b in replica.bids
        ]
    return view


def event_view(event: RoomEvent, state: AuctionState, audience: Audience,
               result: dict[str, Any] | None = None) -> dict[str, Any]:
    """One room event for one audience; ``state`` is the room right after the event."""
    if isinstance(event, BidAccepted):
        view: dict[str, Any] = {"kind": "bid", "seq": event.seq, "at_ms": event.at_ms,
                                "lowest_fen": _lowest_for(state, audience),
                                "bidders": state.valid_bidders}
        if audience is Audience.WATCHER:
            view["alias"] = event.alias
            view["price_fen"] = event.price_fen
            view["ladder"] = _ladder(state)
        return view
    if isinstance(event, AuctionExtended):
        return {"kind": "extended", "seq": event.seq, "end_ms": event.end_ms,
                "extensions": event.extensions, "extended_ms": event.extended_ms,
                "at_ms": event.at_ms}
    if isinstance(event, SignedIn):
        return {"kind": "signed_in", "seq": event.seq, "signed_in": len(state.signed_in),
                "at_ms": event.at_ms}
    if isinstance(event, SuppliersInvited):
        return {"kind": "invited", "seq": event.seq, "invited": len(state.invited),
                "at_ms": event.at_ms}
    if isinstance(event, AuctionPaused):
        return {"kind": "paused", "seq": event.seq, "reason": event.reason,
                "at_ms": event.at_ms}
    if isinstance(event, AuctionResumed):
        return {"kind": "resumed", "seq": event.seq, "end_ms": event.end_ms,
                "paused_ms": event.paused_ms, "at_ms": event.at_ms}
    if isinstance(event, AuctionClosed):
        return {"kind": "closed", "seq": event.seq, "at_ms": event.at_ms,
                "end_ms": event.end_ms, "failed": event.failed,
                "valid_bidders": event.valid_bidders}
    if isinstance(event, ResultPublished):
        return {"kind": "result", "seq": event.seq, "at_ms": event.at_ms,
                "result": result if result is not None else event.result}
    raise TypeError(f"not a room event: {event!r}")


def personal_view(replica: RoomReplica, supplier_id: str, *, with_bids: bool) -> dict[str, Any]:
    """A supplier's own facts: its rank, best price, next allowed price (and its own bids)."""
    state = replica.state
    own = state.standings.get(supplier_id)
    view = {
        "auction_id": state.settings.auction_id,
        "seq": state.seq,
        "invited": supplier_id in state.invited,
        "signed_in": supplier_id in state.signed_in,
        "alias": own.alias if own else None,
        "rank": rank_of(state, supplier_id),
        "best_fen": own.best_fen if own else None,
        "bids": own.bids if own else 0,
        "max_allowed_fen": max_allowed_price(state, supplier_id),
    }
    if with_bids:
        view["own_bids"] = [
            {"seq": b.seq, "bid_id": b.bid_id, "price_fen": b.price_fen, "at_ms": b.at_ms}
            for b in replica.bids
            if b.supplier_id == supplier_id
        ]
    return view
