"""The fast executor: each auction command is one Lua script call (EVALSHA), atomic in Redis.

``room.lua`` decides exactly as ``rules.decide`` (the specification) does, using Redis' own
clock unless a time source is injected (tests). This module turns the script's replies and the
room's stream entries back into the rules' event types, so everything above it speaks one
language: the pure events.

Must not import: market, web.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import msgpack
from redis.exceptions import RedisError

from bidroom.auction.rules import (
    AuctionClosed,
    AuctionExtended,
    AuctionPaused,
    AuctionResult,
    AuctionResumed,
    AuctionSettings,
    AuctionState,
    BidAccepted,
    BidDuplicated,
    BidRejected,
    CommandRefused,
    Event,
    ExtensionTrigger,
    Improvement,
    SignedIn,
    Standing,
    StepKind,
    SuppliersInvited,
    valid_pause_reason,
)
from bidroom.errors import NotFoundError, StoreError, ValidationError
from bidroom.stores.autopipe import ScriptBatcher
from bidroom.stores.redis import RedisClient

__all__ = [
    "AuctionExecutor",
    "ResultPublished",
    "RoomEvent",
    "RoomKeys",
    "Snapshot",
    "event_from_wire",
    "room_channel",
]

SCRIPT = resources.files("bidroom.auction").joinpath("room.lua").read_text(encoding="utf-8")

NowSource = Callable[[], Awaitable[int | None]]


async def _redis_clock() -> int | None:
    return None  # '' tells the script to read Redis' own clock (TIME)


def room_channel(auction_id: str, prefix: str = "bidroom") -> str:
    return f"{prefix}:ev:{{a:{auction_id}}}"


@dataclass(frozen=True, slots=True)
class RoomKeys:
    """The keys of one auction; the ``{a:ID}`` hash tag keeps them in one Cluster slot."""

    cfg: str
    st: str
    inv: str
    sig: str
    sup: str
    ids: str
    log: str
    ev: str

    @classmethod
    def of(cls, auction_id: str, prefix: str = "bidroom") -> RoomKeys:
        base = f"{prefix}:{{a:{auction_id}}}"
        return cls(*(f"{base}:{name}" for name in ("cfg", "st", "inv", "sig", "sup", "ids",
                                                     "log", "ev")))

    def all(self) -> list[str]:
        return [self.cfg, self.st, self.inv, self.sig, self.sup, self.ids, self.log, self.ev]


@dataclass(frozen=True, slots=True)
class ResultPublished:
    """The stored result, announced to the room once after the close (identities revealed)."""

    seq: int
    at_ms: int
    result: dict[str, Any]


# What the room's stream holds: the events that happened (refusals and duplicates never do).
RoomEvent = (
    BidAccepted
    | AuctionExtended
    | SignedIn
    | SuppliersInvited
    | AuctionPaused
    | AuctionResumed
    | AuctionClosed
    | ResultPublished
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    state: AuctionState
    now_ms: int
    result_seq: int | None


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: Sequence[Any]) -> dict[str, str]:
    return {_s(flat[i]): _s(flat[i + 1]) for i in range(0, len(flat), 2)}


def event_from_wire(ev: dict[str, Any]) -> RoomEvent:
    """A room event as the Lua script wrote it (msgpack map) -> the rules' event type."""
    kind = ev["t"]
    if kind == "bid":
        return BidAccepted(ev["seq"], ev["sid"], ev["bid"], ev["p"], ev["at"], ev["al"],
                           ev["lo"], ev["ld"])
    if kind == "ext":
        return AuctionExtended(ev["seq"], ev["end"], ev["n"], ev["ms"], ev["at"])
    if kind == "signin":
        return SignedIn(ev["seq"], ev["sid"], ev["at"])
    if kind == "inv":
        return SuppliersInvited(ev["seq"], tuple(ev["sids"]), ev["at"])
    if kind == "pause":
        return AuctionPaused(ev["seq"], ev["reason"], ev["at"])
    if kind == "resume":
        return AuctionResumed(ev["seq"], ev["at"], ev["end"], ev["ms"])
    if kind == "closed":
        return AuctionClosed(ev["seq"], ev["at"], ev["end"], bool(ev["failed"]), ev["vb"])
    if kind == "result":
        # The result passed through a Lua table, where a nil value is no key at all: restore
        # the null fields (a failed auction has no winner) so every reader sees every field.
        return ResultPublished(ev["seq"], ev["at"], {**_RESULT_NULLS, **ev["result"]})
    raise ValueError(f"unknown room event type {kind!r}")


_RESULT_NULLS: dict[str, None] = dict.fromkeys(
    f.name for f in dataclasses.fields(AuctionResult)
)


def decode_event(payload: bytes | str) -> RoomEvent:
    return event_from_wire(msgpack.unpackb(payload, raw=False))


def _entry_payloads(entries: Any) -> list[bytes]:
    """The msgpack payloads of XRANGE entries ((id, {b"e": payload}), ...)."""
    return [fields[b"e"] for _id, fields in (entries or [])]


def _settings_fields(settings: AuctionSettings) -> list[str]:
    flat: list[str] = []
    for name, value in settings.to_dict().items():
        if value is None:
            continue
        flat.append(name)
        if isinstance(value, bool):
            flat.append("1" if value else "0")
        else:
            flat.append(str(value))
    return flat


def _settings_from_hash(fields: dict[str, str]) -> AuctionSettings:
    def opt(name: str) -> int | None:
        return int(fields[name]) if name in fields else None

    return AuctionSettings(
        auction_id=fields["auction_id"],
        ceiling_fen=int(fields["ceiling_fen"]),
        start_ms=int(fields["start_ms"]),
        end_ms=int(fields["end_ms"]),
        step_kind=StepKind(fields["step_kind"]),
        step_value=int(fields["step_value"]),
        improvement=Improvement(fields["improvement"]),
        budget_fen=opt("budget_fen"),
        sniping_window_ms=int(fields["sniping_window_ms"]),
        sniping_trigger=ExtensionTrigger(fields["sniping_trigger"]),
        extension_ms=int(fields["extension_ms"]),
        max_extensions=opt("max_extensions"),
        max_total_extension_ms=opt("max_total_extension_ms"),
        min_valid_bidders=int(fields["min_valid_bidders"]),
        show_lowest_to_suppliers=fields["show_lowest_to_suppliers"] == "1",
        sign_in_ms=int(fields["sign_in_ms"]),
    )


class AuctionExecutor:
    """Runs auction commands in Redis. One instance per process; safe for concurrent use."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        now_source: NowSource | None = None,
        stream_maxlen: int = 10_000,
        prefix: str = "bidroom",
    ) -> None:
        self._redis = redis
        self._now = now_source or _redis_clock
        self._maxlen = str(stream_maxlen)
        self._prefix = prefix
        self._script = redis.register_script(SCRIPT)
        self._run_script = ScriptBatcher(redis, self._script)

    @property
    def redis(self) -> RedisClient:
        return self._redis

    def keys(self, auction_id: str) -> RoomKeys:
        return RoomKeys.of(auction_id, self._prefix)

    def channel(self, auction_id: str) -> str:
        return room_channel(auction_id, self._prefix)

    async def _call(self, auction_id: str, op: str, *args: str | bytes) -> dict[str, Any]:
        now = await self._now()
        argv: list[str | bytes] = [
            op, "" if now is None else str(now), self.channel(auction_id), self._maxlen, *args
        ]
        try:
            raw = await self._run_script(self.keys(auction_id).all(), argv)
        except RedisError as exc:
            raise StoreError(f"Redis failed running {op!r}: {exc}") from exc
        reply: dict[str, Any] = msgpack.unpackb(raw, raw=False)
        if reply["r"] == "unknown":
            raise NotFoundError(f"auction {auction_id} not found", code="auction_not_found",
                                auction_id=auction_id)
        return reply

    # -- commands ------------------------------------------------------------------------------

    async def create(self, settings: AuctionSettings, invited: Sequence[str]) -> bool:
        """Create the room. Returns False (and changes nothing) when it exists already."""
        reply = await self._call(
            settings.auction_id,
            "init",
            msgpack.packb(_settings_fields(settings)),
            msgpack.packb(sorted(set(invited))),
        )
        created: bool = reply["r"] == "created"
        return created

    async def place_bid(
        self, auction_id: str, supplier_id: str, bid_id: str, price_fen: int
    ) -> tuple[Event, ...]:
        """Decide one bid: (BidAccepted[, AuctionExtended]) | (BidRejected,) | (BidDuplicated,)."""
        if isinstance(price_fen, bool) or not isinstance(price_fen, int):
            raise ValidationError("price_fen must be an integer", code="invalid_price")
        reply = await self._call(auction_id, "bid", supplier_id, bid_id, str(price_fen))
        kind = reply["r"]
        if kind == "duplicate":
            return (BidDuplicated(supplier_id, bid_id, reply["seq"], reply["p"], reply["at"]),)
        if kind == "rejected":
            return (BidRejected(supplier_id, bid_id, price_fen, reply["reason"], reply["now"],
                                reply.get("max")),)
        events: list[Event] = [
            BidAccepted(reply["seq"], supplier_id, bid_id, price_fen, reply["at"], reply["al"],
                        reply["lo"], reply["ld"])
        ]
        if "ext" in reply:
            seq, end, count, total = reply["ext"]
            events.append(AuctionExtended(seq, end, count, total, reply["at"]))
        return tuple(events)

    async def sign_in(self, auction_id: str, supplier_id: str) -> SignedIn | CommandRefused:
        reply = await self._call(auction_id, "signin", supplier_id)
        if reply["r"] == "refused":
            return CommandRefused("sign_in", reply["reason"])
        return SignedIn(reply["seq"], supplier_id, reply["now"])

    async def invite(
        self, auction_id: str, supplier_ids: Sequence[str]
    ) -> SuppliersInvited | CommandRefused:
        reply = await self._call(auction_id, "invite", msgpack.packb(list(supplier_ids)))
        if reply["r"] == "refused":
            return CommandRefused("invite", reply["reason"])
        return SuppliersInvited(reply["seq"], tuple(reply["sids"]), reply["now"])

    async def pause(self, auction_id: str, reason: str) -> AuctionPaused | CommandRefused:
        if not valid_pause_reason(reason):
            raise ValidationError("a pause needs a reason of 1..500 characters",
                                  code="reason_required")
        reply = await self._call(auction_id, "pause", reason)
        if reply["r"] == "refused":
            return CommandRefused("pause", reply["reason"])
        return AuctionPaused(reply["seq"], reason, reply["now"])

    async def resume(self, auction_id: str) -> AuctionResumed | CommandRefused:
        reply = await self._call(auction_id, "resume")
        if reply["r"] == "refused":
            return CommandRefused("resume", reply["reason"])
        return AuctionResumed(reply["seq"], reply["now"], reply["end"], reply["ms"])

    async def close(self, auction_id: str) -> AuctionClosed | CommandRefused:
        """Close a due auction. Exactly one caller ever gets ``AuctionClosed``."""
        reply = await self._call(auction_id, "close")
        if reply["r"] == "refused":
            return CommandRefused("close", reply["reason"])
        return AuctionClosed(reply["seq"], reply["now"], reply["end"], bool(reply["failed"]),
                             reply["vb"])

    async def publish_result(self, auction_id: str, result: dict[str, Any]) -> int:
        """Append the result event once; later calls return the first one's sequence."""
        reply = await self._call(auction_id, "result", msgpack.packb(result))
        if reply["r"] == "refused":
            raise ValidationError("the auction is not closed", code="not_closed")
        seq: int = reply["seq"]
        return seq

    # -- reads ---------------------------------------------------------------------------------

    async def exists(self, auction_id: str) -> bool:
        try:
            return bool(await self._redis.exists(self.keys(auction_id).cfg))
        except RedisError as exc:
            raise StoreError(f"Redis failed: {exc}") from exc

    async def snapshot(self, auction_id: str) -> Snapshot:
        """The whole room at one sequence number (a consistent read inside the script)."""
        reply = await self._call(auction_id, "snapshot")
        cfg = _pairs(reply["cfg"])
        st = _pairs(reply["st"])
        sup = _pairs(reply["sup"])
        settings = _settings_from_hash(cfg)
        standings: dict[str, Standing] = {}
        for name, value in sup.items():
            if name.startswith("p:"):
                sid = name[2:]
                standings[sid] = Standing(
                    supplier_id=sid,
                    alias=int(sup[f"a:{sid}"]),
                    best_fen=int(value),
                    best_seq=int(sup[f"s:{sid}"]),
                    bids=int(sup[f"n:{sid}"]),
                )
        state = AuctionState(
            settings=settings,
            invited=frozenset(_s(x) for x in reply["inv"]),
            end_ms=int(st["end"]),
            seq=int(st["seq"]),
            extensions=int(st["ext"]),
            extended_ms=int(st["extms"]),
            paused_at_ms=int(st["paused_at"]) if "paused_at" in st else None,
            pause_reason=st.get("reason"),
            paused_total_ms=int(st.get("pausedms", "0")),
            closed_at_ms=int(st["closed_at"]) if "closed_at" in st else None,
            signed_in=frozenset(_s(x) for x in reply["sig"]),
            standings=standings,
            leader=st.get("leader"),
            lowest_fen=int(st["lowest"]) if "lowest" in st else None,
        )
        result_seq = int(st["result_seq"]) if "result_seq" in st else None
        return Snapshot(state=state, now_ms=reply["now"], result_seq=result_seq)

    async def bid_log(self, auction_id: str) -> list[BidAccepted]:
        """Every accepted bid in order: the full log (never trimmed, unlike the stream)."""
        try:
            raw = await self._redis.lrange(self.keys(auction_id).log, 0, -1)
        except RedisError as exc:
            raise StoreError(f"Redis failed: {exc}") from exc
        log: list[BidAccepted] = []
        for item in raw:
            event = decode_event(item)
            assert isinstance(event, BidAccepted)
            log.append(event)
        return log

    async def events_after(self, auction_id: str, after_seq: int) -> list[RoomEvent] | None:
        """Exactly the events with seq > after_seq, or None when some have left the stream."""
        key = self.keys(auction_id).ev
        try:
            first = await self._redis.xrange(key, "-", "+", count=1)
            entries = await self._redis.xrange(key, f"0-{after_seq + 1}", "+")
        except RedisError as exc:
            raise StoreError(f"Redis failed: {exc}") from exc
        if first:
            first_seq = int(_s(first[0][0]).split("-")[1])
            if first_seq > after_seq + 1:
                return None  # the gap is no longer in the stream: the caller sends a snapshot
        elif after_seq > 0:
            return None
        return [decode_event(payload) for payload in _entry_payloads(entries)]

    async def result_event(self, auction_id: str) -> ResultPublished | None:
        """The result event, if published (read from the stream by its sequence)."""
        snap = await self.snapshot(auction_id)
        if snap.result_seq is None:
            return None
        key = self.keys(auction_id).ev
        try:
            entries = await self._redis.xrange(key, f"0-{snap.result_seq}",
                                               f"0-{snap.result_seq}")
        except RedisError as exc:
            raise StoreError(f"Redis failed: {exc}") from exc
        payloads = _entry_payloads(entries)
        if not payloads:
            return None
        event = decode_event(payloads[0])
        return event if isinstance(event, ResultPublished) else None
