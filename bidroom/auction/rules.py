"""The reverse auction (反向竞价), as pure rules: the specification the Lua executor must match.

Plain, synchronous, deterministic code: state is a frozen dataclass, commands are named
imperatively (``PlaceBid``), events in the past tense (``BidAccepted``); ``decide(state,
command)`` returns the new state and the events. Time and ids come in as inputs. A business
refusal is an event with a reason code (``BidRejected``), never an exception.

The reverse auction is not a statutory method, so every parameter is a per-auction setting
(DOMAIN.md §1, [P]); the statutory anchors are cited where they apply (O87 12, O87 63).

Must not import: market, web, asyncio, Redis or SQL drivers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from bidroom.money import MAX_FEN

__all__ = [
    "AuctionClosed",
    "AuctionExtended",
    "AuctionPaused",
    "AuctionResult",
    "AuctionResumed",
    "AuctionSettings",
    "AuctionState",
    "BidAccepted",
    "BidDuplicated",
    "BidRejected",
    "Close",
    "Command",
    "CommandRefused",
    "Decision",
    "Event",
    "ExtensionTrigger",
    "Improvement",
    "Invite",
    "Pause",
    "Phase",
    "PlaceBid",
    "Problem",
    "RankedBidder",
    "Resume",
    "SignIn",
    "SignedIn",
    "Standing",
    "StepKind",
    "SuppliersInvited",
    "compute_result",
    "decide",
    "evolve",
    "max_allowed_price",
    "new_state",
    "percent_of",
    "phase_at",
    "rank_of",
    "ranking",
    "settings_from_dict",
    "valid_pause_reason",
    "validate_settings",
]

BASIS_POINTS = 10_000
MAX_DURATION_MS = 31 * 24 * 3600 * 1000  # an auction longer than a month is a typo
MAX_REASON_LENGTH = 500


class StepKind(StrEnum):
    AMOUNT = "amount"  # step_value is fen
    PERCENT = "percent"  # step_value is basis points (1/100 of a percent) of the reference price


class Improvement(StrEnum):
    """What a new bid must undercut by at least one step (DOMAIN §1 improvement rule [P])."""

    OWN_PREVIOUS = "own_previous"  # default; ProZorro's rule too
    CURRENT_LOWEST = "current_lowest"


class ExtensionTrigger(StrEnum):
    ANY_VALID_BID = "any_valid_bid"
    LEAD_CHANGE = "lead_change"  # "first place changes"


class Phase(StrEnum):
    SCHEDULED = "scheduled"
    SIGN_IN = "sign_in"
    OPEN = "open"
    EXTENDED = "extended"
    PAUSED = "paused"
    CLOSING = "closing"  # the end instant has passed; the closer has not yet run
    CLOSED = "closed"
    FAILED = "failed"  # 流标: fewer valid bidders than the minimum


# ---------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class AuctionSettings:
    auction_id: str
    ceiling_fen: int  # 最高限价
    start_ms: int
    end_ms: int  # the original end; the state keeps the current (possibly extended) end
    step_kind: StepKind = StepKind.AMOUNT
    step_value: int = 100  # fen, or basis points when step_kind is PERCENT
    improvement: Improvement = Improvement.OWN_PREVIOUS
    budget_fen: int | None = None
    sniping_window_ms: int = 0  # 0 disables anti-sniping (延时)
    sniping_trigger: ExtensionTrigger = ExtensionTrigger.ANY_VALID_BID
    extension_ms: int = 0
    max_extensions: int | None = None  # None: no cap on the count
    max_total_extension_ms: int | None = None  # None: no cap on the total
    min_valid_bidders: int = 3  # [M: O74 50 analogue] fewer at close -> failed (流标)
    show_lowest_to_suppliers: bool = True
    sign_in_ms: int = 0  # > 0: sign-in (签到) opens this long before the start and is required

    def to_dict(self) -> dict[str, Any]:
        return {
            "auction_id": self.auction_id,
            "ceiling_fen": self.ceiling_fen,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "step_kind": self.step_kind.value,
            "step_value": self.step_value,
            "improvement": self.improvement.value,
            "budget_fen": self.budget_fen,
            "sniping_window_ms": self.sniping_window_ms,
            "sniping_trigger": self.sniping_trigger.value,
            "extension_ms": self.extension_ms,
            "max_extensions": self.max_extensions,
            "max_total_extension_ms": self.max_total_extension_ms,
            "min_valid_bidders": self.min_valid_bidders,
            "show_lowest_to_suppliers": self.show_lowest_to_suppliers,
            "sign_in_ms": self.sign_in_ms,
        }


_INT_FIELDS = (
    "ceiling_fen",
    "start_ms",
    "end_ms",
    "step_value",
    "sniping_window_ms",
    "extension_ms",
    "min_valid_bidders",
    "sign_in_ms",
)
_OPTIONAL_INT_FIELDS = ("budget_fen", "max_extensions", "max_total_extension_ms")
_ENUM_FIELDS: dict[str, type[StrEnum]] = {
    "step_kind": StepKind,
    "improvement": Improvement,
    "sniping_trigger": ExtensionTrigger,
}
_DEFAULTS = AuctionSettings(auction_id="", ceiling_fen=1, start_ms=0, end_ms=1)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def settings_from_dict(data: Mapping[str, Any]) -> tuple[AuctionSettings | None, list[Problem]]:
    """Build settings from a wire/storage dict; types first, then ``validate_settings``.

    Returns the settings (or None) and every problem found, so a form can show them all at once.
    """
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    auction_id = data.get("auction_id", "")
    if not isinstance(auction_id, str):
        problems.append(Problem("invalid_field", "auction_id", "auction_id must be a string"))
    values["auction_id"] = auction_id if isinstance(auction_id, str) else ""
    known = {
        "auction_id",
        *_INT_FIELDS,
        *_OPTIONAL_INT_FIELDS,
        *_ENUM_FIELDS,
        "show_lowest_to_suppliers",
    }
    for name in sorted(set(data) - known):
        problems.append(Problem("unknown_field", name, f"unknown setting {name!r}"))
    for name in _INT_FIELDS:
        if name not in data:
            if name in ("ceiling_fen", "start_ms", "end_ms"):
                problems.append(Problem("missing_field", name, f"{name} is required"))
            values[name] = getattr(_DEFAULTS, name)
            continue
        if not _is_int(data[name]):
            code = "invalid_price" if name.endswith("_fen") else "invalid_field"
            problems.append(Problem(code, name, f"{name} must be a whole number"))
            values[name] = getattr(_DEFAULTS, name)
        else:
            values[name] = data[name]
    for name in _OPTIONAL_INT_FIELDS:
        value = data.get(name)
        if value is not None and not _is_int(value):
            code = "invalid_price" if name.endswith("_fen") else "invalid_field"
            problems.append(Problem(code, name, f"{name} must be a whole number or null"))
            value = None
        values[name] = value
    for name, enum in _ENUM_FIELDS.items():
        raw = data.get(name, getattr(_DEFAULTS, name).value)
        try:
            values[name] = enum(raw)
        except ValueError:
            allowed = ", ".join(m.value for m in enum)
            problems.append(Problem("invalid_field", name, f"{name} must be one of: {allowed}"))
            values[name] = getattr(_DEFAULTS, name)
    show = data.get("show_lowest_to_suppliers", True)
    if not isinstance(show, bool):
        problems.append(Problem("invalid_field", "show_lowest_to_suppliers", "must be a boolean"))
        show = True
    values["show_lowest_to_suppliers"] = show
    if problems:
        return None, problems
    settings = AuctionSettings(**values)
    problems = validate_settings(settings)
    return (None if problems else settings), problems


def validate_settings(s: AuctionSettings) -> list[Problem]:
    """Every rule the settings themselves must satisfy, each with a stable code."""
    p: list[Problem] = []
    if not (0 < s.ceiling_fen <= MAX_FEN):
        p.append(Problem("invalid_price", "ceiling_fen", f"ceiling must be 1..{MAX_FEN} fen"))
    if s.budget_fen is not None and s.budget_fen < s.ceiling_fen:
        # O87 12: the ceiling price may not exceed the budget.
        p.append(
            Problem(
                "ceiling_above_budget",
                "ceiling_fen",
                "the ceiling price must not exceed the budget (O87 12)",
            )
        )
    if s.end_ms <= s.start_ms:
        p.append(Problem("end_before_start", "end_ms", "the end must be after the start"))
    elif s.end_ms - s.start_ms > MAX_DURATION_MS:
        p.append(Problem("too_long", "end_ms", "an auction may last at most 31 days"))
    if s.start_ms < 0:
        p.append(Problem("invalid_field", "start_ms", "start_ms must not be negative"))
    if s.step_kind is StepKind.AMOUNT:
        if s.step_value < 1:
            p.append(Problem("invalid_step", "step_value", "the step must be at least 1 fen"))
        elif s.step_value >= s.ceiling_fen:
            p.append(
                Problem(
                    "step_too_large",
                    "step_value",
                    "the step must be smaller than the ceiling price",
                )
            )
    elif not (1 <= s.step_value < BASIS_POINTS):
        p.append(
            Problem(
                "invalid_step",
                "step_value",
                "a percentage step is 1..9999 basis points (0.01%..99.99%)",
            )
        )
    if s.sniping_window_ms < 0:
        p.append(Problem("invalid_field", "sniping_window_ms", "must not be negative"))
    if s.sniping_window_ms > 0:
        if s.extension_ms <= 0:
            p.append(
                Problem(
                    "invalid_extension",
                    "extension_ms",
                    "anti-sniping needs an extension length greater than zero",
                )
            )
        if s.sniping_window_ms > s.end_ms - s.start_ms:
            p.append(
                Problem(
                    "window_too_long",
                    "sniping_window_ms",
                    "the anti-sniping window must fit inside the auction",
                )
            )
    if s.extension_ms < 0:
        p.append(Problem("invalid_extension", "extension_ms", "must not be negative"))
    if s.max_extensions is not None and s.max_extensions < 0:
        p.append(Problem("invalid_field", "max_extensions", "must not be negative"))
    if s.max_total_extension_ms is not None and s.max_total_extension_ms < 0:
        p.append(Problem("invalid_field", "max_total_extension_ms", "must not be negative"))
    if not (1 <= s.min_valid_bidders <= 1000):
        p.append(Problem("invalid_field", "min_valid_bidders", "must be 1..1000"))
    if not (0 <= s.sign_in_ms <= MAX_DURATION_MS):
        p.append(Problem("invalid_field", "sign_in_ms", "must be 0..31 days"))
    return p


def percent_of(reference_fen: int, basis_points: int) -> int:
    """ceil(reference × bp / 10000), computed so that no intermediate exceeds 2^53.

    The Lua executor computes with IEEE doubles; splitting the reference keeps both sides exact
    for any reference <= MAX_FEN (10^13): (10^9 × 10^4) and (10^4 × 10^4) are far below 2^53.
    """
    high, low = divmod(reference_fen, BASIS_POINTS)
    return high * basis_points + -(-(low * basis_points) // BASIS_POINTS)


def _step(settings: AuctionSettings, reference_fen: int) -> int:
    if settings.step_kind is StepKind.AMOUNT:
        return settings.step_value
    return percent_of(reference_fen, settings.step_value)


# ---------------------------------------------------------------------------------------------
# State


@dataclass(frozen=True, slots=True)
class Standing:
    """One supplier's position: every accepted bid improves its own best (both rules)."""

    supplier_id: str
    alias: int  # 供应商N: numbered by order of first accepted bid (背靠背 anonymity)
    best_fen: int
    best_seq: int  # the sequence of the bid that set best_fen: the tie order
    bids: int


@dataclass(frozen=True, slots=True)
class AuctionState:
    settings: AuctionSettings
    invited: frozenset[str]
    end_ms: int
    seq: int = 0  # last event sequence number of the room
    extensions: int = 0
    extended_ms: int = 0
    paused_at_ms: int | None = None
    pause_reason: str | None = None
    paused_total_ms: int = 0
    closed_at_ms: int | None = None
    signed_in: frozenset[str] = frozenset()
    standings: Mapping[str, Standing] = field(default_factory=dict)
    # (supplier, bid id) -> (seq, price, at) of the accepted bid: idempotency by the client's id
    accepted_ids: Mapping[tuple[str, str], tuple[int, int, int]] = field(default_factory=dict)
    leader: str | None = None
    lowest_fen: int | None = None

    @property
    def closed(self) -> bool:
        return self.closed_at_ms is not None

    @property
    def valid_bidders(self) -> int:
        return len(self.standings)


def new_state(settings: AuctionSettings, invited: frozenset[str] | set[str]) -> AuctionState:
    return AuctionState(settings=settings, invited=frozenset(invited), end_ms=settings.end_ms)


def phase_at(state: AuctionState, now_ms: int) -> Phase:
    s = state.settings
    if state.closed:
        return Phase.FAILED if state.valid_bidders < s.min_valid_bidders else Phase.CLOSED
    if state.paused_at_ms is not None:
        return Phase.PAUSED
    if now_ms < s.start_ms - s.sign_in_ms:
        return Phase.SCHEDULED
    if now_ms < s.start_ms:
        return Phase.SIGN_IN
    if now_ms < state.end_ms:
        return Phase.EXTENDED if state.extensions > 0 else Phase.OPEN
    return Phase.CLOSING


def max_allowed_price(state: AuctionState, supplier_id: str) -> int:
    """The highest price this supplier may bid now (may be < 1: no valid bid remains)."""
    s = state.settings
    if s.improvement is Improvement.OWN_PREVIOUS:
        own = state.standings.get(supplier_id)
        if own is None:
            return s.ceiling_fen  # O87 63: a bid above the ceiling is invalid
        return own.best_fen - _step(s, own.best_fen)
    if state.lowest_fen is None:
        return s.ceiling_fen
    return state.lowest_fen - _step(s, state.lowest_fen)


def ranking(state: AuctionState) -> list[Standing]:
    """Lowest price first; equal prices by acceptance order (server sequence, never clocks)."""
    return sorted(state.standings.values(), key=lambda st: (st.best_fen, st.best_seq))


def rank_of(state: AuctionState, supplier_id: str) -> int | None:
    own = state.standings.get(supplier_id)
    if own is None:
        return None
    key = (own.best_fen, own.best_seq)
    return 1 + sum(1 for st in state.standings.values() if (st.best_fen, st.best_seq) < key)


# ---------------------------------------------------------------------------------------------
# Commands


@dataclass(frozen=True, slots=True)
class PlaceBid:
    supplier_id: str
    bid_id: str
    price_fen: int
    now_ms: int


@dataclass(frozen=True, slots=True)
class SignIn:
    supplier_id: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class Pause:
    reason: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class Resume:
    now_ms: int


@dataclass(frozen=True, slots=True)
class Close:
    """The tick that closes a due auction. Refused (harmlessly) when not yet due."""

    now_ms: int


@dataclass(frozen=True, slots=True)
class Invite:
    supplier_ids: tuple[str, ...]
    now_ms: int


Command = PlaceBid | SignIn | Pause | Resume | Close | Invite


# ---------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True, slots=True)
class BidAccepted:
    seq: int
    supplier_id: str
    bid_id: str
    price_fen: int
    at_ms: int
    alias: int
    lowest_fen: int
    leader: str


@dataclass(frozen=True, slots=True)
class BidRejected:
    supplier_id: str
    bid_id: str
    price_fen: int
    reason: str
    at_ms: int
    max_allowed_fen: int | None = None


@dataclass(frozen=True, slots=True)
class BidDuplicated:
    """The same (supplier, bid id) again: the original acceptance stands; nothing changes."""

    supplier_id: str
    bid_id: str
    original_seq: int
    price_fen: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class AuctionExtended:
    seq: int
    end_ms: int
    extensions: int
    extended_ms: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class SignedIn:
    seq: int
    supplier_id: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class SuppliersInvited:
    seq: int
    supplier_ids: tuple[str, ...]
    at_ms: int


@dataclass(frozen=True, slots=True)
class AuctionPaused:
    seq: int
    reason: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class AuctionResumed:
    seq: int
    at_ms: int
    end_ms: int
    paused_ms: int


@dataclass(frozen=True, slots=True)
class AuctionClosed:
    seq: int
    at_ms: int
    end_ms: int
    failed: bool
    valid_bidders: int


@dataclass(frozen=True, slots=True)
class CommandRefused:
    """A control command (sign-in, invite, pause, resume, close) that does not apply now."""

    command: str
    reason: str


Event = (
    BidAccepted
    | BidRejected
    | BidDuplicated
    | AuctionExtended
    | SignedIn
    | SuppliersInvited
    | AuctionPaused
    | AuctionResumed
    | AuctionClosed
    | CommandRefused
)


@dataclass(frozen=True, slots=True)
class Decision:
    state: AuctionState
    events: tuple[Event, ...]


# ---------------------------------------------------------------------------------------------
# The transition function: decide which events happen, then fold them into the state with
# ``evolve`` (the same fold the fan-out uses to rebuild a room from its event stream).


def decide(state: AuctionState, command: Command) -> Decision:
    if isinstance(command, PlaceBid):
        events = _place_bid(state, command)
    elif isinstance(command, SignIn):
        events = _sign_in(state, command)
    elif isinstance(command, Pause):
        events = _pause(state, command)
    elif isinstance(command, Resume):
        events = _resume(state, command)
    elif isinstance(command, Invite):
        events = _invite(state, command)
    else:
        events = _close(state, command)
    for event in events:
        state = evolve(state, event)
    return Decision(state, events)


def evolve(state: AuctionState, event: Event, *, keep_ids: bool = True) -> AuctionState:
    """Apply one event that happened. Refusals and duplicates change nothing.

    ``keep_ids=False`` skips the idempotency map (a read-only replica, e.g. the fan-out's,
    never decides a bid, and copying a map that grows with every bid would cost O(bids)).
    """
    if isinstance(event, BidAccepted):
        previous = state.standings.get(event.supplier_id)
        standings = dict(state.standings)
        standings[event.supplier_id] = Standing(
            supplier_id=event.supplier_id,
            alias=event.alias,
            best_fen=event.price_fen,
            best_seq=event.seq,
            bids=(previous.bids if previous is not None else 0) + 1,
        )
        accepted_ids = state.accepted_ids
        if keep_ids:
            accepted_ids = dict(accepted_ids)
            accepted_ids[(event.supplier_id, event.bid_id)] = (
                event.seq,
                event.price_fen,
                event.at_ms,
            )
        return replace(
            state,
            seq=event.seq,
            standings=standings,
            accepted_ids=accepted_ids,
            leader=event.leader,
            lowest_fen=event.lowest_fen,
        )
    if isinstance(event, AuctionExtended):
        return replace(
            state,
            seq=event.seq,
            end_ms=event.end_ms,
            extensions=event.extensions,
            extended_ms=event.extended_ms,
        )
    if isinstance(event, SignedIn):
        return replace(state, seq=event.seq, signed_in=state.signed_in | {event.supplier_id})
    if isinstance(event, SuppliersInvited):
        return replace(state, seq=event.seq, invited=state.invited | set(event.supplier_ids))
    if isinstance(event, AuctionPaused):
        return replace(state, seq=event.seq, paused_at_ms=event.at_ms, pause_reason=event.reason)
    if isinstance(event, AuctionResumed):
        return replace(
            state,
            seq=event.seq,
            end_ms=event.end_ms,
            paused_at_ms=None,
            pause_reason=None,
            paused_total_ms=state.paused_total_ms + event.paused_ms,
        )
    if isinstance(event, AuctionClosed):
        return replace(state, seq=event.seq, closed_at_ms=event.at_ms)
    return state


def _bid_refusal(state: AuctionState, cmd: PlaceBid) -> str | None:
    """The first rule the bid breaks, in a fixed order the Lua script follows too."""
    s = state.settings
    if cmd.supplier_id not in state.invited:
        return "not_invited"
    if state.closed:
        # A close is recorded only at or after the end instant, so a bid in a closed room is
        # late: the same code as just below, whether the closer ran before this bid or not.
        return "auction_ended"
    if state.paused_at_ms is not None:
        return "auction_paused"  # the pause gives its time back: not late, even past the end
    if cmd.now_ms < s.start_ms:
        return "not_started"
    if cmd.now_ms >= state.end_ms:
        # DOMAIN §1: a bid at or after the end instant is rejected.
        return "auction_ended"
    if s.sign_in_ms > 0 and cmd.supplier_id not in state.signed_in:
        return "not_signed_in"
    if not (0 < cmd.price_fen <= MAX_FEN):
        return "invalid_price"
    if cmd.price_fen > s.ceiling_fen:
        return "above_ceiling"  # O87 63
    if cmd.price_fen > max_allowed_price(state, cmd.supplier_id):
        return "insufficient_decrement"
    return None


def _place_bid(state: AuctionState, cmd: PlaceBid) -> tuple[Event, ...]:
    original = state.accepted_ids.get((cmd.supplier_id, cmd.bid_id))
    if original is not None:
        seq, price, at = original
        return (BidDuplicated(cmd.supplier_id, cmd.bid_id, seq, price, at),)
    reason = _bid_refusal(state, cmd)
    if reason is not None:
        allowed = (
            max_allowed_price(state, cmd.supplier_id)
            if reason in ("above_ceiling", "insufficient_decrement")
            else None
        )
        return (
            BidRejected(cmd.supplier_id, cmd.bid_id, cmd.price_fen, reason, cmd.now_ms, allowed),
        )

    s = state.settings
    previous = state.standings.get(cmd.supplier_id)
    alias = previous.alias if previous is not None else len(state.standings) + 1
    # Every accepted bid improves its bidder's own best, so the leader is either unchanged or
    # the bidder; on an equal price the earlier acceptance keeps first place (ties [P]).
    old_leader = state.leader
    if state.lowest_fen is None or cmd.price_fen < state.lowest_fen:
        leader, lowest = cmd.supplier_id, cmd.price_fen
    else:
        assert old_leader is not None
        leader, lowest = old_leader, state.lowest_fen
    accepted = BidAccepted(
        state.seq + 1, cmd.supplier_id, cmd.bid_id, cmd.price_fen, cmd.now_ms, alias, lowest, leader
    )

    # Anti-sniping (延时) [P]: a trigger inside the window (its endpoint included) extends the
    # end by a set length, within the caps on count and total; the original end is kept.
    window = s.sniping_window_ms
    triggered = (
        window > 0
        and cmd.now_ms >= state.end_ms - window
        and (s.sniping_trigger is ExtensionTrigger.ANY_VALID_BID or leader != old_leader)
    )
    if triggered and (s.max_extensions is None or state.extensions < s.max_extensions):
        length = s.extension_ms
        if s.max_total_extension_ms is not None:
            length = min(length, s.max_total_extension_ms - state.extended_ms)
        if length > 0:
            extended = AuctionExtended(
                accepted.seq + 1,
                state.end_ms + length,
                state.extensions + 1,
                state.extended_ms + length,
                cmd.now_ms,
            )
            return (accepted, extended)
    return (accepted,)


def _sign_in(state: AuctionState, cmd: SignIn) -> tuple[Event, ...]:
    s = state.settings
    reason: str | None = None
    if cmd.supplier_id not in state.invited:
        reason = "not_invited"
    elif state.closed:
        reason = "auction_ended"  # as for a bid: closed means the end has passed
    elif s.sign_in_ms == 0:
        reason = "sign_in_not_required"
    elif cmd.now_ms < s.start_ms - s.sign_in_ms:
        reason = "sign_in_not_open"
    elif cmd.now_ms >= state.end_ms:
        reason = "auction_ended"
    elif cmd.supplier_id in state.signed_in:
        reason = "already_signed_in"
    if reason is not None:
        return (CommandRefused("sign_in", reason),)
    return (SignedIn(state.seq + 1, cmd.supplier_id, cmd.now_ms),)


def _invite(state: AuctionState, cmd: Invite) -> tuple[Event, ...]:
    """Invitations may be added until the end; the invited list never shrinks (fairness)."""
    if state.closed or cmd.now_ms >= state.end_ms:  # closed or not yet: the end has passed
        return (CommandRefused("invite", "auction_ended"),)
    added = tuple(sorted(set(cmd.supplier_ids) - state.invited))
    if not added:
        return (CommandRefused("invite", "already_invited"),)
    return (SuppliersInvited(state.seq + 1, added, cmd.now_ms),)


def valid_pause_reason(reason: str) -> bool:
    """A pause needs a recorded reason: not blank, at most 500 characters.

    Checked at the edge (the executor, the HTTP route) before the command is built.
    """
    return bool(reason.strip()) and len(reason) <= MAX_REASON_LENGTH


def _pause(state: AuctionState, cmd: Pause) -> tuple[Event, ...]:
    """The agency may pause a running auction with a recorded reason (DOMAIN §1 phases [P])."""
    reason: str | None = None
    if state.closed:
        reason = "auction_closed"
    elif state.paused_at_ms is not None:
        reason = "already_paused"
    elif not (state.settings.start_ms <= cmd.now_ms < state.end_ms):
        reason = "not_running"
    if reason is not None:
        return (CommandRefused("pause", reason),)
    return (AuctionPaused(state.seq + 1, cmd.reason, cmd.now_ms),)


def _resume(state: AuctionState, cmd: Resume) -> tuple[Event, ...]:
    """Resuming gives back the time the pause took: the remaining time is what it was."""
    if state.paused_at_ms is None or state.closed:
        return (CommandRefused("resume", "not_paused"),)
    paused = max(0, cmd.now_ms - state.paused_at_ms)
    return (AuctionResumed(state.seq + 1, cmd.now_ms, state.end_ms + paused, paused),)


def _close(state: AuctionState, cmd: Close) -> tuple[Event, ...]:
    reason: str | None = None
    if state.closed:
        reason = "already_closed"
    elif state.paused_at_ms is not None:
        reason = "auction_paused"
    elif cmd.now_ms < state.end_ms:
        reason = "not_due"
    if reason is not None:
        return (CommandRefused("close", reason),)
    failed = state.valid_bidders < state.settings.min_valid_bidders
    return (AuctionClosed(state.seq + 1, cmd.now_ms, state.end_ms, failed, state.valid_bidders),)


# ---------------------------------------------------------------------------------------------
# The result


@dataclass(frozen=True, slots=True)
class RankedBidder:
    rank: int
    supplier_id: str
    alias: int
    price_fen: int
    seq: int
    bids: int


@dataclass(frozen=True, slots=True)
class AuctionResult:
    auction_id: str
    failed: bool
    failure_reason: str | None
    valid_bidders: int
    ceiling_fen: int
    winner_id: str | None
    winning_fen: int | None
    savings_fen: int | None
    savings_bp: int | None  # basis points of the ceiling, rounded down
    ranking: tuple[RankedBidder, ...]
    closed_at_ms: int
    final_end_ms: int
    extensions: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "auction_id": self.auction_id,
            "failed": self.failed,
            "failure_reason": self.failure_reason,
            "valid_bidders": self.valid_bidders,
            "ceiling_fen": self.ceiling_fen,
            "winner_id": self.winner_id,
            "winning_fen": self.winning_fen,
            "savings_fen": self.savings_fen,
            "savings_bp": self.savings_bp,
            "ranking": [
                {
                    "rank": r.rank,
                    "supplier_id": r.supplier_id,
                    "alias": r.alias,
                    "price_fen": r.price_fen,
                    "seq": r.seq,
                    "bids": r.bids,
                }
                for r in self.ranking
            ],
            "closed_at_ms": self.closed_at_ms,
            "final_end_ms": self.final_end_ms,
            "extensions": self.extensions,
        }


def compute_result(state: AuctionState) -> AuctionResult:
    """The lowest valid price wins; fewer valid bidders than the minimum -> failed (流标)."""
    if state.closed_at_ms is None:
        raise ValueError("the auction is not closed")
    s = state.settings
    ranked = tuple(
        RankedBidder(i, st.supplier_id, st.alias, st.best_fen, st.best_seq, st.bids)
        for i, st in enumerate(ranking(state), start=1)
    )
    failed = len(ranked) < s.min_valid_bidders
    winner = None if failed or not ranked else ranked[0]
    savings = None if winner is None else s.ceiling_fen - winner.price_fen
    return AuctionResult(
        auction_id=s.auction_id,
        failed=failed,
        failure_reason="too_few_bidders" if failed else None,
        valid_bidders=len(ranked),
        ceiling_fen=s.ceiling_fen,
        winner_id=None if winner is None else winner.supplier_id,
        winning_fen=None if winner is None else winner.price_fen,
        savings_fen=savings,
        savings_bp=None if savings is None else savings * BASIS_POINTS // s.ceiling_fen,
        ranking=ranked,
        closed_at_ms=state.closed_at_ms,
        final_end_ms=state.end_ms,
        extensions=state.extensions,
    )
