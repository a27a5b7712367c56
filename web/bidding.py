"""Placing a bid, shared by the WebSocket and the HTTP route: checks, the executor, a receipt.

A supplier bids only as its own organisation (the principal's); the price must be a positive
whole number of fen; the bid id is the client's idempotency key. The executor's decision comes
back as an outcome with a stable reason code and a bilingual message, and every accepted bid
(or a repeat of one) carries a receipt signed with the platform key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bidroom.auction.rules import AuctionExtended, BidAccepted, BidDuplicated, BidRejected
from bidroom.errors import ForbiddenError, ValidationError
from bidroom.money import parse_fen
from bidroom.receipts import make_bid_receipt
from market.registry import Principal, Role
from web.services import Services

__all__ = ["REASONS", "BidOutcome", "check_bid_id", "place_bid", "reason_message"]

_BID_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

# Every refusal reason: (中文, English). Documented in docs/protocol.md.
REASONS: dict[str, tuple[str, str]] = {
    "not_invited": ("您未受邀参加本次竞价", "you are not invited to this auction"),
    "auction_closed": ("竞价已结束", "the auction is closed"),
    "auction_paused": ("竞价已暂停", "the auction is paused"),
    "not_started": ("竞价尚未开始", "the auction has not started"),
    "auction_ended": ("竞价时间已到，报价无效", "the auction's end has passed; the bid is late"),
    "not_signed_in": ("请先签到", "sign in (签到) before bidding"),
    "invalid_price": ("报价须为正整数（分）", "the price must be a positive whole number of fen"),
    "above_ceiling": ("报价高于最高限价", "the price is above the ceiling price"),
    "insufficient_decrement": ("降价幅度不足", "the price does not undercut by the minimum step"),
    "sign_in_not_required": ("本场竞价无需签到", "this auction has no sign-in"),
    "sign_in_not_open": ("签到尚未开始", "sign-in has not opened yet"),
    "already_signed_in": ("已签到", "already signed in"),
    "already_invited": ("供应商均已受邀", "every supplier named is already invited"),
    "already_paused": ("竞价已处于暂停状态", "the auction is already paused"),
    "not_running": ("竞价不在进行中", "the auction is not running"),
    "not_paused": ("竞价未暂停", "the auction is not paused"),
}


def reason_message(reason: str) -> str:
    zh, en = REASONS.get(reason, (reason, reason))
    return f"{zh} / {en}"


def check_bid_id(value: Any) -> str:
    if not isinstance(value, str) or not _BID_ID.fullmatch(value):
        raise ValidationError("bid_id must be 1..64 characters of A-Z a-z 0-9 _ . : -",
                              code="invalid_bid_id", field="bid_id")
    return value


@dataclass(frozen=True)
class BidOutcome:
    status: str  # accepted | duplicate | rejected
    auction_id: str
    bid_id: str
    price_fen: int
    reason: str | None = None
    message: str | None = None
    max_allowed_fen: int | None = None
    receipt: dict[str, Any] | None = None
    extended: AuctionExtended | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "auction_id": self.auction_id,
                                "bid_id": self.bid_id, "price_fen": self.price_fen}
        if self.receipt is not None:
            body["receipt"] = self.receipt
        if self.reason is not None:
            body["reason"] = self.reason
            body["message"] = self.message
            body["max_allowed_fen"] = self.max_allowed_fen
        if self.extended is not None:
            body["extended"] = {"end_ms": self.extended.end_ms,
                                "extensions": self.extended.extensions}
        return body


async def place_bid(services: Services, principal: Principal, auction_id: str,
                    body: dict[str, Any]) -> BidOutcome:
    """Validate a bid request ({bid_id, price_fen[, supplier_id]}) and decide it."""
    if not principal.has_role(Role.SUPPLIER):
        raise ForbiddenError("only suppliers bid", code="suppliers_only")
    claimed = body.get("supplier_id")
    if claimed is not None and claimed != principal.org_id:
        # A supplier acts only as itself: naming another supplier is refused, never honoured.
        raise ForbiddenError("you may bid only as your own organisation", code="impersonation")
    if "price_fen" not in body:
        raise ValidationError("price_fen is required", code="missing_field", field="price_fen")
    price = parse_fen(body["price_fen"])
    if "bid_id" not in body:
        raise ValidationError("bid_id is required", code="missing_field", field="bid_id")
    bid_id = check_bid_id(body["bid_id"])
    supplier = principal.org_id
    events = await services.executor.place_bid(auction_id, supplier, bid_id, price)
    first = events[0]
    if isinstance(first, BidRejected):
        return BidOutcome("rejected", auction_id, bid_id, price, first.reason,
                          reason_message(first.reason), first.max_allowed_fen)
    if isinstance(first, BidDuplicated):
        receipt = make_bid_receipt(services.platform_key, auction_id=auction_id,
                                   supplier_id=supplier, bid_id=bid_id,
                                   price_fen=first.price_fen, seq=first.original_seq,
                                   server_time_ms=first.at_ms)
        return BidOutcome("duplicate", auction_id, bid_id, first.price_fen, receipt=receipt)
    assert isinstance(first, BidAccepted)
    receipt = make_bid_receipt(services.platform_key, auction_id=auction_id,
                               supplier_id=supplier, bid_id=bid_id, price_fen=price,
                               seq=first.seq, server_time_ms=first.at_ms)
    extended = events[1] if len(events) > 1 and isinstance(events[1], AuctionExtended) else None
    return BidOutcome("accepted", auction_id, bid_id, price, receipt=receipt, extended=extended)
