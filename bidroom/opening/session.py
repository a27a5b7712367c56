"""The sealed-bid opening session (不见面开标) as pure rules: the specification of the hall.

Plain, synchronous, deterministic code in the style of ``bidroom.auction.rules``: the state is a
frozen dataclass, commands are imperative (``SubmitBid``, ``Tick``, ``RecordDecryption``), events
are in the past tense (``BidSubmitted``, ``BidDecrypted``, ``RecordRevealed``), and
``decide(state, command)`` returns the new state and the events that happened. Time comes in on
every command (``now_ms``); a business refusal is a ``CommandRefused`` event with a reason code,
never an exception. The crypto (decrypting, verifying signatures) happens outside: the runner
tries the supplier's key and tells the session what came out (``RecordDecryption``).

The life of an opening, by the rules it implements:

* **Bidding** until the deadline: a supplier submits, replaces or withdraws its sealed bid
  (O87 34; 电子招标投标办法 27). An upload whose completion instant is at or after the deadline
  is refused (``deadline_passed``): "投标截止时间前未完成投标文件传输的，视为撤回投标文件".
  Nobody can decrypt before the deadline (电子招标投标办法 28). Sign-in (签到) opens
  ``sign_in_ms`` before it.
* **Invitations**: the suppliers invited at creation, and any invited later (``Invite`` →
  ``BidderInvited``, e.g. a supplier that registered for the lot) until the deadline; after
  it the bids are fixed (``deadline_passed``); inviting twice is ``already_invited``.
* **The deadline is the opening** (O87 39: 开标应当在投标截止时间的同一时间进行). The bids are
  closed; fewer than ``min_bids`` (3) → no opening, the opening has failed (O87 41, DOMAIN §2).
* **Decryption window** (``decryption_window_ms``, default 30 min [P]; 电子招标投标办法 30): each
  bidder decrypts its own bid; a failed attempt is recorded and may be retried within the window.
  When the window ends, every bid still sealed is 撤销 (``revoked_by_bidder``): the bidder's own
  fault, its bid bond may be kept (``Bond.MAY_BE_KEPT``). The agency may mark a bid as a
  platform fault first, with its stated reason: 撤回 (``withdrawn_platform_fault``),
  "因投标人之外的原因造成投标文件未解密的，视为撤回" (电子招标投标办法 31), the bond is returned
  (``Bond.RETURNED``). The other bids proceed. Bids that share a completion millisecond keep
  the order of their uploads in the log.
* **Backup key** (optional [M]): k ≥ 2 of the n opening officials rebuild it, never one alone
  (``threshold_too_low``). After the window a *ceremony* collects their shares: it is started by
  the process that will rebuild the key (``StartCeremony``: its id, the public half of a key only
  that process holds, and, on a restart, the ceremony it replaces, whose submissions are void);
  a share counts only for the ceremony it was sealed to (``ceremony_restarted``). With k shares
  the key is rebuilt, opens the bids the agency ruled a platform fault (撤回), never one revoked
  (撤销) or withdrawn by its supplier, and the ceremony is closed (``CloseCeremony``).
* **唱标** (``Reveal``): once every bid is decrypted or accounted for, or the window has ended,
  names, prices and the 开标一览表 are revealed to all at once (O87 41; 电子招标投标办法 30).
* **Objections** (O87 42): within ``objection_window_ms`` after 唱标 bidders raise objections,
  the agency answers them; all are visible. Absent bidders are deemed to accept; a bidder that
  did not sign in and whose bid the agency ruled a platform fault was not absent (it could not
  act) and is recorded apart (``RecordConfirmed.platform_fault``).
* **Confirmation**: the agency confirms the record once the objection window has ended and every
  objection is answered; the opening is concluded (O87 39: fully recorded).

Must not import: market, web, asyncio, Redis or SQL drivers, clocks, randomness.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final

__all__ = [
    "BID_STATUS_ZH",
    "EVENT_REASONS",
    "MAX_TEXT_LENGTH",
    "REFUSAL_REASONS",
    "AnswerObjection",
    "BackupCeremonyClosed",
    "BackupCeremonyStarted",
    "BackupPolicy",
    "BackupRebuildFailed",
    "BackupRebuilt",
    "BidDecrypted",
    "BidEntry",
    "BidReplaced",
    "BidRevoked",
    "BidStatus",
    "BidSubmitted",
    "BidWithdrawn",
    "BidderInvited",
    "BidsClosed",
    "Bond",
    "Ceremony",
    "CloseCeremony",
    "Command",
    "CommandRefused",
    "Confirm",
    "Decision",
    "DecryptionFailed",
    "DecryptionWindowEnded",
    "Event",
    "Invite",
    "MarkPlatformFault",
    "Note",
    "Noted",
    "Objection",
    "ObjectionAnswered",
    "ObjectionRaised",
    "OpeningCreated",
    "OpeningFailed",
    "OpeningSettings",
    "OpeningState",
    "Phase",
    "PlatformFaultMarked",
    "Problem",
    "RaiseObjection",
    "RecordBackupOpening",
    "RecordBackupRebuild",
    "RecordConfirmed",
    "RecordDecryption",
    "RecordRevealed",
    "ReplaceBid",
    "Reveal",
    "ShareSubmitted",
    "SignIn",
    "SignedIn",
    "StartCeremony",
    "SubmitBid",
    "SubmitShare",
    "Tick",
    "WithdrawBid",
    "backup_openable",
    "bond_of",
    "can_decrypt",
    "can_open_with_backup",
    "can_submit_share",
    "created",
    "decide",
    "event_from_dict",
    "event_to_dict",
    "evolve",
    "next_due",
    "opening_record",
    "phase_at",
    "replay",
    "settings_from_dict",
    "valid_text",
    "validate_settings",
]

MINUTE: Final = 60_000
DAY: Final = 24 * 60 * MINUTE
MAX_TEXT_LENGTH: Final = 2000  # an objection, an answer, a fault reason
MAX_OFFICIALS: Final = 20
MIN_THRESHOLD: Final = 2  # k: no official may rebuild the backup key alone
DEFAULT_MAX_BID_BYTES: Final = 1024 * 1024 * 1024  # 1 GiB
_SHA256 = re.compile(r"[0-9a-f]{64}")


class Phase(StrEnum):
    SCHEDULED = "scheduled"  # bids accepted; sign-in not open yet
    SIGN_IN = "sign_in"  # bids still accepted; sign-in (签到) open
    DECRYPTION = "decryption"  # the deadline has passed: the opening runs, bidders decrypt
    WINDOW_CLOSED = "window_closed"  # the decryption window has ended; 唱标 not yet
    OBJECTIONS = "objections"  # 唱标 done: the record is public; objections (O87 42)
    CONCLUDED = "concluded"  # the record is confirmed
    FAILED = "failed"  # fewer than min_bids at the deadline: no opening (O87 41)


class BidStatus(StrEnum):
    SEALED = "sealed"  # uploaded (and, after the deadline, waiting for its owner)
    DECRYPTED = "decrypted"  # opened with its owner's key (or the backup key)
    REVOKED = "revoked"  # 撤销: not decrypted in the window, by the bidder's fault
    WITHDRAWN = "withdrawn"  # 撤回: not decrypted because of a platform fault


BID_STATUS_ZH: Final = {
    BidStatus.SEALED: "密封",
    BidStatus.DECRYPTED: "已解密",
    BidStatus.REVOKED: "撤销",
    BidStatus.WITHDRAWN: "撤回",
}


class Bond(StrEnum):
    """What becomes of the supplier's bid bond (投标保证金), by what became of its bid
    (DOMAIN §2; 电子招标投标办法 31): the opening records the consequence; the refund itself is
    not done here."""

    MAY_BE_KEPT = "may_be_kept"  # 撤销, the bidder's own fault: the bond may be kept
    RETURNED = "returned"  # 撤回, a fault outside the bidder: the bond is returned
    ORDINARY = "ordinary"  # opened: the ordinary refund rules apply (Reg 33; O87 38)


def bond_of(status: BidStatus) -> Bond | None:
    """The bond consequence of a bid's status (None while it is still sealed)."""
    return {BidStatus.DECRYPTED: Bond.ORDINARY, BidStatus.REVOKED: Bond.MAY_BE_KEPT,
            BidStatus.WITHDRAWN: Bond.RETURNED}.get(status)


#: Every reason code a ``CommandRefused`` of this module can carry (the pages have words for
#: each: ``web/static/i18n.js``, ``herr.*``; ``tests/unit/test_opening_record.py`` checks both).
REFUSAL_REASONS: Final = frozenset({
    "already_answered", "already_confirmed", "already_decrypted", "already_invited",
    "already_rebuilt",
    "already_revealed", "already_signed_in", "already_submitted", "already_withdrawn",
    "backup_not_rebuilt", "ceremony_changed", "ceremony_restarted", "invalid_ceremony",
    "bid_too_large", "bid_withdrawn", "deadline_passed",
    "decryption_in_progress", "decryption_not_open", "invalid_digest", "no_backup", "no_bid",
    "not_a_bidder", "not_an_official", "not_enough_shares", "not_invited", "not_revealed",
    "not_signed_in", "not_withdrawn_for_fault", "objection_window_closed",
    "objection_window_open", "objections_unanswered", "opening_failed", "reason_required",
    "rebuild_in_progress",
    "record_revealed", "same_bid", "share_already_submitted", "sign_in_closed",
    "sign_in_not_open", "text_required", "unknown_objection", "window_closed", "window_open",
})
#: Every reason code this module itself puts in an event or on a bid (``hreason.*``): why a
#: bid was not opened, why the opening failed, the defaults of a failed decryption or rebuild.
EVENT_REASONS: Final = frozenset({
    "revoked_by_bidder", "withdrawn_platform_fault", "too_few_bids", "decryption_failed",
    "bad_share",
})

# ---------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class BackupPolicy:
    """k of the n named officials (user ids) rebuild the backup opening key [M]."""

    k: int
    officials: tuple[str, ...]

    @property
    def n(self) -> int:
        return len(self.officials)


@dataclass(frozen=True, slots=True)
class OpeningSettings:
    opening_id: str
    deadline_ms: int  # bids close and the opening starts at this same instant (O87 39)
    sign_in_ms: int = 30 * MINUTE  # sign-in opens this long before the deadline [P]
    decryption_window_ms: int = 30 * MINUTE  # [P] "typically 30 minutes"
    objection_window_ms: int = 15 * MINUTE  # [P] objections "on the spot" (O87 42)
    min_bids: int = 3  # fewer at the deadline: no opening (O87 41)
    max_bid_bytes: int = DEFAULT_MAX_BID_BYTES
    backup: BackupPolicy | None = None

    @property
    def sign_in_opens_ms(self) -> int:
        return self.deadline_ms - self.sign_in_ms

    @property
    def window_ends_ms(self) -> int:
        return self.deadline_ms + self.decryption_window_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "opening_id": self.opening_id,
            "deadline_ms": self.deadline_ms,
            "sign_in_ms": self.sign_in_ms,
            "decryption_window_ms": self.decryption_window_ms,
            "objection_window_ms": self.objection_window_ms,
            "min_bids": self.min_bids,
            "max_bid_bytes": self.max_bid_bytes,
            "backup": None if self.backup is None else {
                "k": self.backup.k, "n": self.backup.n, "officials": list(self.backup.officials)
            },
        }


_INT_SETTINGS: Final = ("sign_in_ms", "decryption_window_ms", "objection_window_ms",
                        "min_bids", "max_bid_bytes")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def settings_from_dict(data: Mapping[str, Any]) -> tuple[OpeningSettings | None, list[Problem]]:
    """Settings from a wire/storage dict: types first, then ``validate_settings``; every problem
    is reported at once."""
    problems: list[Problem] = []
    known = {"opening_id", "deadline_ms", "backup", *_INT_SETTINGS}
    for name in sorted(set(data) - known):
        problems.append(Problem("unknown_field", name, f"unknown setting {name!r}"))
    opening_id = data.get("opening_id", "")
    if not isinstance(opening_id, str):
        problems.append(Problem("invalid_field", "opening_id", "opening_id must be a string"))
        opening_id = ""
    deadline = data.get("deadline_ms")
    if deadline is None:
        problems.append(Problem("missing_field", "deadline_ms", "deadline_ms is required"))
    elif not _is_int(deadline):
        problems.append(Problem("invalid_field", "deadline_ms", "deadline_ms must be ms"))
    values: dict[str, Any] = {}
    for name in _INT_SETTINGS:
        if name in data and data[name] is not None:
            if _is_int(data[name]):
                values[name] = data[name]
            else:
                problems.append(Problem("invalid_field", name, f"{name} must be a whole number"))
    backup: BackupPolicy | None = None
    raw_backup = data.get("backup")
    if raw_backup is not None:
        if not isinstance(raw_backup, Mapping):
            problems.append(Problem("invalid_field", "backup", "backup must be an object"))
        else:
            k = raw_backup.get("k")
            officials = raw_backup.get("officials")
            if not _is_int(k):
                problems.append(Problem("invalid_field", "backup.k", "k must be a whole number"))
            if not isinstance(officials, list | tuple) or not all(
                isinstance(o, str) and 0 < len(o) <= 64 for o in officials
            ):
                problems.append(Problem("invalid_field", "backup.officials",
                                        "officials must be a list of user ids"))
            elif isinstance(k, int):
                backup = BackupPolicy(k, tuple(officials))
    if problems or not isinstance(deadline, int):
        return None, problems
    settings = OpeningSettings(opening_id=opening_id, deadline_ms=deadline, backup=backup,
                               **values)
    problems = validate_settings(settings)
    return (None if problems else settings), problems


def validate_settings(s: OpeningSettings) -> list[Problem]:
    """Every rule the settings themselves must satisfy, each with a stable code."""
    p: list[Problem] = []
    if not s.opening_id:
        p.append(Problem("invalid_field", "opening_id", "an opening needs an id"))
    if s.deadline_ms <= 0:
        p.append(Problem("invalid_field", "deadline_ms", "deadline_ms must be positive"))
    if not (0 <= s.sign_in_ms <= DAY):
        p.append(Problem("invalid_field", "sign_in_ms", "sign-in opens 0..24 h before"))
    if not (MINUTE <= s.decryption_window_ms <= DAY):
        p.append(Problem("invalid_field", "decryption_window_ms",
                         "the decryption window is 1 minute..24 hours"))
    if not (0 <= s.objection_window_ms <= DAY):
        p.append(Problem("invalid_field", "objection_window_ms", "0..24 hours"))
    if not (1 <= s.min_bids <= 1000):
        p.append(Problem("invalid_field", "min_bids", "must be 1..1000"))
    if not (1024 <= s.max_bid_bytes <= 64 * 1024**3):
        p.append(Problem("invalid_field", "max_bid_bytes", "must be 1 KiB..64 GiB"))
    if s.backup is not None:
        b = s.backup
        if len(set(b.officials)) != len(b.officials):
            p.append(Problem("duplicate_official", "backup.officials",
                             "each official is named once"))
        if not (2 <= b.n <= MAX_OFFICIALS):
            p.append(Problem("invalid_backup", "backup.officials",
                             f"name 2..{MAX_OFFICIALS} officials"))
        # k >= 2: with k = 1 each official alone holds the whole backup key (a share of a
        # 1-of-n split is the key), so one person could open every bid.
        if b.k < MIN_THRESHOLD:
            p.append(Problem("threshold_too_low", "backup.k",
                             f"k must be at least {MIN_THRESHOLD}: with k = 1 one official "
                             "alone could rebuild the backup key"))
        elif b.k > b.n:
            p.append(Problem("invalid_backup", "backup.k",
                             "k must be at most the number of officials"))
    return p


# ---------------------------------------------------------------------------------------------
# State


@dataclass(frozen=True, slots=True)
class BidEntry:
    """A supplier's current bid: its ciphertext's digest, and what became of it."""

    supplier_id: str
    sha256: str
    size: int
    uploaded_at_ms: int  # the completion instant, as on the receipt
    status: BidStatus = BidStatus.SEALED
    attempts: int = 0  # failed decryption attempts
    last_failure: str | None = None
    reason: str | None = None  # why it was revoked / withdrawn (a code of EVENT_REASONS)
    decrypted_at_ms: int | None = None
    by_backup: bool = False
    form: Mapping[str, Any] | None = None  # the 开标一览表, hidden until 唱标
    signer: Mapping[str, Any] | None = None
    upload_seq: int = 0  # the log sequence of the upload: orders uploads of one millisecond
    bond: Bond | None = None  # the bid bond's consequence, once the bid is not sealed
    # The agency's ruling that the bid was not decrypted because of a platform fault: its
    # stated reason, who ruled and when. Kept when the backup key opens the bid afterwards.
    fault_reason: str | None = None
    fault_by: str | None = None
    fault_at_ms: int | None = None

    @property
    def ruling(self) -> dict[str, Any] | None:
        """The agency's platform-fault ruling as the record shows it, or None."""
        if self.fault_reason is None:
            return None
        return {"kind": "platform_fault", "reason": self.fault_reason, "by": self.fault_by,
                "at_ms": self.fault_at_ms}


@dataclass(frozen=True, slots=True)
class Objection:
    objection_id: int
    supplier_id: str
    text: str
    raised_at_ms: int
    answer: str | None = None
    answered_by: str | None = None
    answered_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Ceremony:
    """The backup key's ceremony in progress: who started it (``holder``: the process that
    alone holds the private half of ``public_key`` in memory) and when."""

    ceremony_id: str
    public_key: str  # base64 of the raw X25519 public key the shares are sealed to
    holder: str
    started_at_ms: int


@dataclass(frozen=True, slots=True)
class OpeningState:
    settings: OpeningSettings
    invited: frozenset[str]
    seq: int = 0  # the last event's sequence number (the opening log's length)
    bids: Mapping[str, BidEntry] = field(default_factory=dict)
    signed_in: frozenset[str] = frozenset()
    closed_at_ms: int | None = None  # the deadline was processed (bids closed)
    bidders: tuple[str, ...] = ()  # the bids at the deadline, in upload order
    failed: bool = False
    failure_reason: str | None = None
    window_ended_at_ms: int | None = None
    shares_submitted: frozenset[str] = frozenset()  # in the current ceremony
    backup_rebuilt_at_ms: int | None = None
    ceremony: Ceremony | None = None
    ceremony_restarts: int = 0
    resubmit: frozenset[str] = frozenset()  # voided by a restart, not submitted again yet
    backup_closed_at_ms: int | None = None  # the key was rebuilt, used and dropped
    revealed_at_ms: int | None = None
    record: Mapping[str, Any] | None = None
    objections: tuple[Objection, ...] = ()
    confirmed_at_ms: int | None = None

    @property
    def closed(self) -> bool:
        return self.closed_at_ms is not None

    @property
    def revealed(self) -> bool:
        return self.revealed_at_ms is not None

    @property
    def objection_ends_ms(self) -> int | None:
        if self.revealed_at_ms is None:
            return None
        return self.revealed_at_ms + self.settings.objection_window_ms

    def bid_of(self, supplier_id: str) -> BidEntry | None:
        return self.bids.get(supplier_id)


def phase_at(state: OpeningState, now_ms: int) -> Phase:
    """The phase at ``now_ms``, as if every due time rule had been applied (``Tick``)."""
    state = _advance_state(state, now_ms)
    s = state.settings
    if state.failed:
        return Phase.FAILED
    if state.confirmed_at_ms is not None:
        return Phase.CONCLUDED
    if state.revealed:
        return Phase.OBJECTIONS
    if state.window_ended_at_ms is not None:
        return Phase.WINDOW_CLOSED
    if state.closed:
        return Phase.DECRYPTION
    if now_ms < s.sign_in_opens_ms:
        return Phase.SCHEDULED
    return Phase.SIGN_IN


def next_due(state: OpeningState) -> int | None:
    """The next instant a time rule applies (for the scheduler), or None when none is left."""
    if not state.closed:
        return state.settings.deadline_ms
    if state.failed or state.revealed or state.window_ended_at_ms is not None:
        return None
    return state.settings.window_ends_ms


def valid_text(text: object) -> bool:
    """An objection, an answer or a reason: 1..2000 characters, not blank (checked at the edge)."""
    return isinstance(text, str) and bool(text.strip()) and len(text) <= MAX_TEXT_LENGTH


# ---------------------------------------------------------------------------------------------
# Commands


@dataclass(frozen=True, slots=True)
class SubmitBid:
    supplier_id: str
    sha256: str
    size: int
    now_ms: int  # the upload's completion instant


@dataclass(frozen=True, slots=True)
class ReplaceBid:
    supplier_id: str
    sha256: str
    size: int
    now_ms: int


@dataclass(frozen=True, slots=True)
class Invite:
    """Invite one more supplier (e.g. one that registered for the lot, 报名), allowed only
    before the deadline: after it the bids are fixed (O87 39)."""

    supplier_id: str
    by: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class WithdrawBid:
    supplier_id: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class Tick:
    """Apply the time rules due at ``now_ms`` (every command does this first, too)."""

    now_ms: int


@dataclass(frozen=True, slots=True)
class SignIn:
    supplier_id: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class RecordDecryption:
    """What came of the owner's key: ``ok`` with the opening form, or a reason code."""

    supplier_id: str
    ok: bool
    now_ms: int
    reason: str | None = None
    form: Mapping[str, Any] | None = None
    signer: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class MarkPlatformFault:
    supplier_id: str
    reason: str
    by: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class StartCeremony:
    """Start the backup key's ceremony (``replaces``: the id of the current one, whose holder
    is gone; None when there is none)."""

    ceremony_id: str
    public_key: str
    holder: str
    replaces: str | None
    now_ms: int


@dataclass(frozen=True, slots=True)
class SubmitShare:
    official: str
    now_ms: int
    ceremony_id: str = ""  # the ceremony the share was sealed to


@dataclass(frozen=True, slots=True)
class CloseCeremony:
    """The rebuilt key has opened what it may (``opened``, ``failed``) and is dropped."""

    ceremony_id: str
    opened: tuple[str, ...]
    failed: tuple[str, ...]
    now_ms: int


@dataclass(frozen=True, slots=True)
class RecordBackupRebuild:
    ok: bool
    now_ms: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RecordBackupOpening:
    supplier_id: str
    form: Mapping[str, Any]
    signer: Mapping[str, Any]
    now_ms: int


@dataclass(frozen=True, slots=True)
class Reveal:
    by: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class RaiseObjection:
    supplier_id: str
    text: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class AnswerObjection:
    objection_id: int
    text: str
    by: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class Confirm:
    by: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class Note:
    """A step worth keeping in the log that changes nothing (a key handed out, an export)."""

    what: str
    details: Mapping[str, Any]
    now_ms: int


Command = (
    SubmitBid
    | ReplaceBid
    | WithdrawBid
    | Invite
    | Tick
    | SignIn
    | RecordDecryption
    | MarkPlatformFault
    | StartCeremony
    | SubmitShare
    | RecordBackupRebuild
    | RecordBackupOpening
    | CloseCeremony
    | Reveal
    | RaiseObjection
    | AnswerObjection
    | Confirm
    | Note
)

# ---------------------------------------------------------------------------------------------
# Events (every one that happened has a sequence number; refusals have none)


@dataclass(frozen=True, slots=True)
class OpeningCreated:
    seq: int
    at_ms: int
    settings: Mapping[str, Any]
    invited: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BidSubmitted:
    seq: int
    supplier_id: str
    sha256: str
    size: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class BidReplaced:
    seq: int
    supplier_id: str
    sha256: str
    size: int
    previous_sha256: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class BidWithdrawn:
    seq: int
    supplier_id: str
    sha256: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class BidderInvited:
    """A supplier was invited after the opening was created (before the deadline)."""

    seq: int
    supplier_id: str
    at_ms: int
    by: str


@dataclass(frozen=True, slots=True)
class SignedIn:
    seq: int
    supplier_id: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class BidsClosed:
    """The deadline: the bids are fixed and the opening starts (O87 39)."""

    seq: int
    at_ms: int
    deadline_ms: int
    bidders: tuple[str, ...]
    window_ends_ms: int


@dataclass(frozen=True, slots=True)
class OpeningFailed:
    seq: int
    at_ms: int
    reason: str  # "too_few_bids" (O87 41)
    bids: int


@dataclass(frozen=True, slots=True)
class BidDecrypted:
    seq: int
    supplier_id: str
    at_ms: int
    form: Mapping[str, Any]
    signer: Mapping[str, Any]
    by_backup: bool = False


@dataclass(frozen=True, slots=True)
class DecryptionFailed:
    seq: int
    supplier_id: str
    at_ms: int
    reason: str
    attempts: int


@dataclass(frozen=True, slots=True)
class PlatformFaultMarked:
    """撤回: the bid was not decrypted because of a platform fault (电子招标投标办法 31)."""

    seq: int
    supplier_id: str
    at_ms: int
    reason: str  # the agency's stated reason (1..2000 characters), kept in the record
    by: str
    bond: str = Bond.RETURNED.value  # 撤回: the bid bond is returned


@dataclass(frozen=True, slots=True)
class DecryptionWindowEnded:
    seq: int
    at_ms: int
    window_ends_ms: int


@dataclass(frozen=True, slots=True)
class BidRevoked:
    """撤销: still sealed when the window ended, by the bidder's fault (电子招标投标办法 31)."""

    seq: int
    supplier_id: str
    at_ms: int
    reason: str  # "revoked_by_bidder"
    bond: str = Bond.MAY_BE_KEPT.value  # 撤销: the bid bond may be kept


@dataclass(frozen=True, slots=True)
class BackupCeremonyStarted:
    """A ceremony began; with ``replaces`` it restarts one whose holder is gone: the
    submissions of ``discarded`` are void and must be made again."""

    seq: int
    at_ms: int
    ceremony_id: str
    public_key: str
    holder: str
    replaces: str | None
    discarded: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ShareSubmitted:
    seq: int
    official: str
    at_ms: int
    submitted: int  # shares in hand now
    needed: int  # k
    ceremony_id: str = ""


@dataclass(frozen=True, slots=True)
class BackupCeremonyClosed:
    """The rebuilt key opened the platform-fault bids it could and was dropped."""

    seq: int
    at_ms: int
    ceremony_id: str
    opened: tuple[str, ...]
    failed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BackupRebuilt:
    seq: int
    at_ms: int
    officials: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BackupRebuildFailed:
    """The shares did not rebuild the key: they are discarded and must be submitted again."""

    seq: int
    at_ms: int
    reason: str
    officials: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RecordRevealed:
    """唱标: the opening record, revealed to everyone at the same instant (O87 41)."""

    seq: int
    at_ms: int
    by: str
    record: Mapping[str, Any]
    objection_ends_ms: int


@dataclass(frozen=True, slots=True)
class ObjectionRaised:
    seq: int
    objection_id: int
    supplier_id: str
    text: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class ObjectionAnswered:
    seq: int
    objection_id: int
    text: str
    by: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class RecordConfirmed:
    seq: int
    at_ms: int
    by: str
    deemed_accepted: tuple[str, ...]  # absent bidders (O87 42)
    # Bidders that did not sign in and whose bid the agency ruled a platform fault: they could
    # not act, so they are not absent and not deemed to accept.
    platform_fault: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Noted:
    seq: int
    at_ms: int
    what: str
    details: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CommandRefused:
    """A command that does not apply now (business refusal; nothing is stored)."""

    command: str
    reason: str


Event = (
    OpeningCreated
    | BidSubmitted
    | BidReplaced
    | BidWithdrawn
    | BidderInvited
    | SignedIn
    | BidsClosed
    | OpeningFailed
    | BidDecrypted
    | DecryptionFailed
    | PlatformFaultMarked
    | DecryptionWindowEnded
    | BidRevoked
    | BackupCeremonyStarted
    | ShareSubmitted
    | BackupRebuilt
    | BackupRebuildFailed
    | BackupCeremonyClosed
    | RecordRevealed
    | ObjectionRaised
    | ObjectionAnswered
    | RecordConfirmed
    | Noted
    | CommandRefused
)


@dataclass(frozen=True, slots=True)
class Decision:
    state: OpeningState
    events: tuple[Event, ...]

    @property
    def refusal(self) -> CommandRefused | None:
        for event in self.events:
            if isinstance(event, CommandRefused):
                return event
        return None


# ---------------------------------------------------------------------------------------------
# Creating and replaying


def created(settings: OpeningSettings, invited: frozenset[str] | set[str] | tuple[str, ...],
            now_ms: int) -> OpeningCreated:
    """The first event of every opening (sequence 1): its settings and invited suppliers."""
    return OpeningCreated(1, now_ms, settings.to_dict(), tuple(sorted(set(invited))))


def replay(events: Sequence[Event]) -> OpeningState:
    """The state after a log of events, the first of which is ``OpeningCreated``."""
    if not events or not isinstance(events[0], OpeningCreated):
        raise ValueError("an opening's log starts with OpeningCreated")
    first = events[0]
    settings, problems = settings_from_dict(first.settings)
    if settings is None:
        raise ValueError(f"the stored settings are not valid: {problems}")
    state = OpeningState(settings=settings, invited=frozenset(first.invited), seq=first.seq)
    for event in events[1:]:
        state = evolve(state, event)
    return state


# ---------------------------------------------------------------------------------------------
# The transition function


def decide(state: OpeningState, command: Command) -> Decision:
    """Apply the time rules due at the command's instant, then the command."""
    timed = _advance(state, command.now_ms)
    for event in timed:
        state = evolve(state, event)
    own = _handle(state, command)
    for event in own:
        state = evolve(state, event)
    return Decision(state, (*timed, *own))


def _handle(state: OpeningState, cmd: Command) -> tuple[Event, ...]:
    if isinstance(cmd, Tick):
        return ()
    if isinstance(cmd, SubmitBid | ReplaceBid):
        return _submit(state, cmd)
    if isinstance(cmd, WithdrawBid):
        return _withdraw(state, cmd)
    if isinstance(cmd, Invite):
        return _invite(state, cmd)
    if isinstance(cmd, SignIn):
        return _sign_in(state, cmd)
    if isinstance(cmd, RecordDecryption):
        return _record_decryption(state, cmd)
    if isinstance(cmd, MarkPlatformFault):
        return _platform_fault(state, cmd)
    if isinstance(cmd, StartCeremony):
        return _start_ceremony(state, cmd)
    if isinstance(cmd, SubmitShare):
        return _submit_share(state, cmd)
    if isinstance(cmd, CloseCeremony):
        return _close_ceremony(state, cmd)
    if isinstance(cmd, RecordBackupRebuild):
        return _backup_rebuild(state, cmd)
    if isinstance(cmd, RecordBackupOpening):
        return _backup_opening(state, cmd)
    if isinstance(cmd, Reveal):
        return _reveal(state, cmd)
    if isinstance(cmd, RaiseObjection):
        return _raise(state, cmd)
    if isinstance(cmd, AnswerObjection):
        return _answer(state, cmd)
    if isinstance(cmd, Confirm):
        return _confirm(state, cmd)
    return (Noted(state.seq + 1, cmd.now_ms, cmd.what, dict(cmd.details)),)


def _advance(state: OpeningState, now_ms: int) -> tuple[Event, ...]:
    """The time rules: the deadline closes the bids (and fails an opening with too few, O87 41);
    the end of the decryption window revokes every bid still sealed (电子招标投标办法 31)."""
    s = state.settings
    events: list[Event] = []

    def add(event: Event) -> None:
        nonlocal state
        events.append(event)
        state = evolve(state, event)

    if not state.closed and now_ms >= s.deadline_ms:
        # Upload order: the completion instant, then (same millisecond) the upload's sequence.
        order = sorted(state.bids.values(), key=lambda b: (b.uploaded_at_ms, b.upload_seq))
        add(BidsClosed(state.seq + 1, now_ms, s.deadline_ms,
                       tuple(b.supplier_id for b in order), s.window_ends_ms))
        if len(order) < s.min_bids:
            add(OpeningFailed(state.seq + 1, now_ms, "too_few_bids", len(order)))
    if (state.closed and not state.failed and not state.revealed
            and state.window_ended_at_ms is None and now_ms >= s.window_ends_ms):
        add(DecryptionWindowEnded(state.seq + 1, now_ms, s.window_ends_ms))
        for supplier_id in state.bidders:
            bid = state.bids[supplier_id]
            if bid.status is BidStatus.SEALED:
                add(BidRevoked(state.seq + 1, supplier_id, now_ms, "revoked_by_bidder"))
    return tuple(events)


def _advance_state(state: OpeningState, now_ms: int) -> OpeningState:
    for event in _advance(state, now_ms):
        state = evolve(state, event)
    return state


def _refuse(command: str, reason: str) -> tuple[Event, ...]:
    return (CommandRefused(command, reason),)


def _submit(state: OpeningState, cmd: SubmitBid | ReplaceBid) -> tuple[Event, ...]:
    name = "submit_bid" if isinstance(cmd, SubmitBid) else "replace_bid"
    current = state.bids.get(cmd.supplier_id)
    if cmd.supplier_id not in state.invited:
        return _refuse(name, "not_invited")
    # O87 34 / 电子招标投标办法 27: until the deadline, and an upload completing at the deadline
    # instant or later is not submitted.
    if state.closed or cmd.now_ms >= state.settings.deadline_ms:
        return _refuse(name, "deadline_passed")
    if not _SHA256.fullmatch(cmd.sha256):
        return _refuse(name, "invalid_digest")
    if not (0 < cmd.size <= state.settings.max_bid_bytes):
        return _refuse(name, "bid_too_large")
    if isinstance(cmd, SubmitBid):
        if current is not None:
            return _refuse(name, "already_submitted")
        return (BidSubmitted(state.seq + 1, cmd.supplier_id, cmd.sha256, cmd.size, cmd.now_ms),)
    if current is None:
        return _refuse(name, "no_bid")
    if current.sha256 == cmd.sha256:
        return _refuse(name, "same_bid")
    return (BidReplaced(state.seq + 1, cmd.supplier_id, cmd.sha256, cmd.size, current.sha256,
                        cmd.now_ms),)


def _withdraw(state: OpeningState, cmd: WithdrawBid) -> tuple[Event, ...]:
    if state.closed or cmd.now_ms >= state.settings.deadline_ms:
        return _refuse("withdraw_bid", "deadline_passed")
    current = state.bids.get(cmd.supplier_id)
    if current is None:
        return _refuse("withdraw_bid", "no_bid")
    return (BidWithdrawn(state.seq + 1, cmd.supplier_id, current.sha256, cmd.now_ms),)


def _invite(state: OpeningState, cmd: Invite) -> tuple[Event, ...]:
    # The bids are fixed at the deadline (O87 39): nobody can join an opening after it.
    if state.closed or cmd.now_ms >= state.settings.deadline_ms:
        return _refuse("invite", "deadline_passed")
    if cmd.supplier_id in state.invited:
        return _refuse("invite", "already_invited")
    return (BidderInvited(state.seq + 1, cmd.supplier_id, cmd.now_ms, cmd.by),)


def _is_bidder(state: OpeningState, supplier_id: str) -> bool:
    """Before the deadline: has a bid now; after: had one at the deadline."""
    if state.closed:
        return supplier_id in state.bidders
    return supplier_id in state.bids


def _sign_in(state: OpeningState, cmd: SignIn) -> tuple[Event, ...]:
    reason: str | None = None
    if not _is_bidder(state, cmd.supplier_id):
        reason = "not_a_bidder"
    elif state.failed:
        reason = "opening_failed"
    elif cmd.now_ms < state.settings.sign_in_opens_ms:
        reason = "sign_in_not_open"
    elif state.revealed or state.window_ended_at_ms is not None:
        reason = "sign_in_closed"
    elif cmd.supplier_id in state.signed_in:
        reason = "already_signed_in"
    if reason is not None:
        return _refuse("sign_in", reason)
    return (SignedIn(state.seq + 1, cmd.supplier_id, cmd.now_ms),)


def can_decrypt(state: OpeningState, supplier_id: str, now_ms: int) -> str | None:
    """Why this supplier may not decrypt now (a reason code), or None: checked before the
    runner spends time on the crypto, and again by ``RecordDecryption``."""
    state = _advance_state(state, now_ms)
    if not _is_bidder(state, supplier_id):
        return "not_a_bidder"
    if state.failed:
        return "opening_failed"
    if not state.closed:
        return "decryption_not_open"  # 电子招标投标办法 28: nobody decrypts before the deadline
    if state.revealed or state.window_ended_at_ms is not None:
        return "window_closed"
    bid = state.bids[supplier_id]
    if bid.status is BidStatus.DECRYPTED:
        return "already_decrypted"
    if bid.status is BidStatus.WITHDRAWN:
        return "bid_withdrawn"
    if supplier_id not in state.signed_in:
        return "not_signed_in"
    return None


def _record_decryption(state: OpeningState, cmd: RecordDecryption) -> tuple[Event, ...]:
    reason = can_decrypt(state, cmd.supplier_id, cmd.now_ms)
    if reason is not None:
        return _refuse("decrypt", reason)
    if cmd.ok:
        if cmd.form is None or cmd.signer is None:
            raise ValueError("a successful decryption carries the form and the signer")
        return (BidDecrypted(state.seq + 1, cmd.supplier_id, cmd.now_ms, dict(cmd.form),
                             dict(cmd.signer)),)
    attempts = state.bids[cmd.supplier_id].attempts + 1
    return (DecryptionFailed(state.seq + 1, cmd.supplier_id, cmd.now_ms,
                             cmd.reason or "decryption_failed", attempts),)


def _platform_fault(state: OpeningState, cmd: MarkPlatformFault) -> tuple[Event, ...]:
    reason: str | None = None
    bid = state.bids.get(cmd.supplier_id)
    if not state.closed:
        reason = "decryption_not_open"
    elif state.failed:
        reason = "opening_failed"
    elif cmd.supplier_id not in state.bidders or bid is None:
        reason = "not_a_bidder"
    elif state.revealed:
        reason = "record_revealed"
    elif bid.status is BidStatus.DECRYPTED:
        reason = "already_decrypted"
    elif bid.status is BidStatus.WITHDRAWN:
        reason = "already_withdrawn"
    elif not valid_text(cmd.reason):
        reason = "reason_required"
    if reason is not None:
        return _refuse("platform_fault", reason)
    # A bid revoked at the window's end may still be found a platform fault before 唱标.
    return (PlatformFaultMarked(state.seq + 1, cmd.supplier_id, cmd.now_ms, cmd.reason,
                                cmd.by),)


def _backup_refusal(state: OpeningState) -> str | None:
    if state.settings.backup is None:
        return "no_backup"
    if state.failed:
        return "opening_failed"
    if state.revealed:
        return "record_revealed"
    # The backup key may be rebuilt only after the decryption window: never early.
    if state.window_ended_at_ms is None:
        return "window_open"
    return None


def can_submit_share(state: OpeningState, official: str) -> str | None:
    """Why this official's share is not taken now (whatever the ceremony), or None."""
    reason = _backup_refusal(state)
    backup = state.settings.backup
    if reason is not None or backup is None:
        return reason or "no_backup"
    if official not in backup.officials:
        return "not_an_official"
    if state.backup_closed_at_ms is not None:
        return "already_rebuilt"
    if state.backup_rebuilt_at_ms is not None:
        # rebuilt, the platform-fault bids are being opened; should the holder be lost
        # meanwhile, a restarted ceremony takes shares again
        return "rebuild_in_progress"
    if official in state.shares_submitted:
        return "share_already_submitted"
    return None


def _start_ceremony(state: OpeningState, cmd: StartCeremony) -> tuple[Event, ...]:
    reason = _backup_refusal(state)
    current = state.ceremony.ceremony_id if state.ceremony is not None else None
    if reason is None:
        if state.backup_closed_at_ms is not None:
            reason = "already_rebuilt"
        elif cmd.replaces != current:
            reason = "ceremony_changed"  # another process started or restarted it first
        elif not cmd.ceremony_id or not cmd.public_key or cmd.ceremony_id == current:
            reason = "invalid_ceremony"
    if reason is not None:
        return _refuse("start_ceremony", reason)
    return (BackupCeremonyStarted(state.seq + 1, cmd.now_ms, cmd.ceremony_id, cmd.public_key,
                                  cmd.holder, cmd.replaces,
                                  tuple(sorted(state.shares_submitted))),)


def _submit_share(state: OpeningState, cmd: SubmitShare) -> tuple[Event, ...]:
    reason = can_submit_share(state, cmd.official)
    backup = state.settings.backup
    if reason is None and (state.ceremony is None
                           or state.ceremony.ceremony_id != cmd.ceremony_id):
        reason = "ceremony_restarted"  # sealed to a ceremony that is no longer current
    if reason is not None or backup is None:
        return _refuse("submit_share", reason or "no_backup")
    return (ShareSubmitted(state.seq + 1, cmd.official, cmd.now_ms,
                           len(state.shares_submitted) + 1, backup.k, cmd.ceremony_id),)


def _close_ceremony(state: OpeningState, cmd: CloseCeremony) -> tuple[Event, ...]:
    reason: str | None = None
    if state.backup_rebuilt_at_ms is None:
        reason = "backup_not_rebuilt"
    elif state.ceremony is None or state.ceremony.ceremony_id != cmd.ceremony_id:
        reason = "ceremony_changed"
    if reason is not None:
        return _refuse("close_ceremony", reason)
    return (BackupCeremonyClosed(state.seq + 1, cmd.now_ms, cmd.ceremony_id,
                                 tuple(cmd.opened), tuple(cmd.failed)),)


def _backup_rebuild(state: OpeningState, cmd: RecordBackupRebuild) -> tuple[Event, ...]:
    reason = _backup_refusal(state)
    backup = state.settings.backup
    if reason is None and backup is not None:
        if state.backup_rebuilt_at_ms is not None:
            reason = "already_rebuilt"
        elif len(state.shares_submitted) < backup.k:
            reason = "not_enough_shares"
    if reason is not None:
        return _refuse("rebuild_backup", reason)
    officials = tuple(sorted(state.shares_submitted))
    if cmd.ok:
        return (BackupRebuilt(state.seq + 1, cmd.now_ms, officials),)
    return (BackupRebuildFailed(state.seq + 1, cmd.now_ms, cmd.reason or "bad_share",
                                officials),)


def _backup_opening(state: OpeningState, cmd: RecordBackupOpening) -> tuple[Event, ...]:
    reason = _backup_refusal(state)
    bid = state.bids.get(cmd.supplier_id)
    if reason is None:
        if state.backup_rebuilt_at_ms is None:
            reason = "backup_not_rebuilt"
        elif bid is None or cmd.supplier_id not in state.bidders:
            reason = "not_a_bidder"
        else:
            reason = can_open_with_backup(state, cmd.supplier_id)
    if reason is not None:
        return _refuse("backup_open", reason)
    return (BidDecrypted(state.seq + 1, cmd.supplier_id, cmd.now_ms, dict(cmd.form),
                         dict(cmd.signer), by_backup=True),)


def can_open_with_backup(state: OpeningState, supplier_id: str) -> str | None:
    """Why the backup key may not open this supplier's bid, or None. Only a bid in force at the
    deadline that the agency ruled a platform fault (撤回, 电子招标投标办法 31) is remedied:
    never one revoked for the bidder's own fault (撤销), one its supplier withdrew or replaced
    before the deadline (not a bid at the deadline), or one already opened."""
    bid = state.bids.get(supplier_id)
    if bid is None or supplier_id not in state.bidders:
        return "not_a_bidder"
    if bid.status is not BidStatus.WITHDRAWN or bid.reason != "withdrawn_platform_fault":
        return "not_withdrawn_for_fault"
    return None


def backup_openable(state: OpeningState) -> tuple[str, ...]:
    """The bids the rebuilt backup key opens, in upload order (see ``can_open_with_backup``)."""
    return tuple(s for s in state.bidders if can_open_with_backup(state, s) is None)


def _reveal(state: OpeningState, cmd: Reveal) -> tuple[Event, ...]:
    reason: str | None = None
    if not state.closed:
        reason = "decryption_not_open"
    elif state.failed:
        reason = "opening_failed"
    elif state.revealed:
        reason = "already_revealed"
    elif state.window_ended_at_ms is None and any(
        state.bids[s].status is BidStatus.SEALED for s in state.bidders
    ):
        # 电子招标投标办法 30: 解密全部完成后 (or the window has ended).
        reason = "decryption_in_progress"
    if reason is not None:
        return _refuse("reveal", reason)
    record = opening_record(state)
    return (RecordRevealed(state.seq + 1, cmd.now_ms, cmd.by, record,
                           cmd.now_ms + state.settings.objection_window_ms),)


def _raise(state: OpeningState, cmd: RaiseObjection) -> tuple[Event, ...]:
    reason: str | None = None
    if not state.closed or cmd.supplier_id not in state.bidders:
        reason = "not_a_bidder"
    elif not state.revealed:
        reason = "not_revealed"
    elif state.confirmed_at_ms is not None:
        reason = "already_confirmed"
    elif state.objection_ends_ms is not None and cmd.now_ms >= state.objection_ends_ms:
        reason = "objection_window_closed"
    elif not valid_text(cmd.text):
        reason = "text_required"
    if reason is not None:
        return _refuse("raise_objection", reason)
    return (ObjectionRaised(state.seq + 1, len(state.objections) + 1, cmd.supplier_id,
                            cmd.text, cmd.now_ms),)


def _answer(state: OpeningState, cmd: AnswerObjection) -> tuple[Event, ...]:
    reason: str | None = None
    found = [o for o in state.objections if o.objection_id == cmd.objection_id]
    if not found:
        reason = "unknown_objection"
    elif found[0].answer is not None:
        reason = "already_answered"
    elif state.confirmed_at_ms is not None:
        reason = "already_confirmed"
    elif not valid_text(cmd.text):
        reason = "text_required"
    if reason is not None:
        return _refuse("answer_objection", reason)
    return (ObjectionAnswered(state.seq + 1, cmd.objection_id, cmd.text, cmd.by, cmd.now_ms),)


def _confirm(state: OpeningState, cmd: Confirm) -> tuple[Event, ...]:
    reason: str | None = None
    ends = state.objection_ends_ms
    if not state.revealed or ends is None:
        reason = "not_revealed"
    elif state.confirmed_at_ms is not None:
        reason = "already_confirmed"
    elif any(o.answer is None for o in state.objections):
        reason = "objections_unanswered"
    elif cmd.now_ms < ends:
        # Confirming early would cut short the bidders' right to object on the spot (O87 42).
        reason = "objection_window_open"
    if reason is not None:
        return _refuse("confirm", reason)
    # O87 42 deems absent bidders to accept; a bidder kept out by a platform fault (the
    # agency's ruling on its bid) was not absent.
    not_signed_in = [s for s in state.bidders if s not in state.signed_in]
    fault = tuple(s for s in not_signed_in if state.bids[s].fault_reason is not None)
    absent = tuple(s for s in not_signed_in if s not in fault)
    return (RecordConfirmed(state.seq + 1, cmd.now_ms, cmd.by, absent, fault),)


# ---------------------------------------------------------------------------------------------
# Folding events into the state


def _with_bid(state: OpeningState, supplier_id: str, **changes: Any) -> dict[str, BidEntry]:
    bids = dict(state.bids)
    bids[supplier_id] = replace(bids[supplier_id], **changes)
    return bids


def evolve(state: OpeningState, event: Event) -> OpeningState:
    """Apply one event that happened. Refusals change nothing."""
    if isinstance(event, CommandRefused | OpeningCreated):
        return state
    seq = event.seq
    if isinstance(event, BidSubmitted | BidReplaced):
        bids = dict(state.bids)
        bids[event.supplier_id] = BidEntry(event.supplier_id, event.sha256, event.size,
                                           event.at_ms, upload_seq=event.seq)
        return replace(state, seq=seq, bids=bids)
    if isinstance(event, BidWithdrawn):
        bids = dict(state.bids)
        bids.pop(event.supplier_id, None)
        return replace(state, seq=seq, bids=bids)
    if isinstance(event, BidderInvited):
        return replace(state, seq=seq, invited=state.invited | {event.supplier_id})
    if isinstance(event, SignedIn):
        return replace(state, seq=seq, signed_in=state.signed_in | {event.supplier_id})
    if isinstance(event, BidsClosed):
        return replace(state, seq=seq, closed_at_ms=event.at_ms, bidders=event.bidders)
    if isinstance(event, OpeningFailed):
        return replace(state, seq=seq, failed=True, failure_reason=event.reason)
    if isinstance(event, BidDecrypted):
        bids = _with_bid(state, event.supplier_id, status=BidStatus.DECRYPTED,
                         decrypted_at_ms=event.at_ms, form=event.form, signer=event.signer,
                         by_backup=event.by_backup, reason=None, bond=Bond.ORDINARY)
        return replace(state, seq=seq, bids=bids)
    if isinstance(event, DecryptionFailed):
        bids = _with_bid(state, event.supplier_id, attempts=event.attempts,
                         last_failure=event.reason)
        return replace(state, seq=seq, bids=bids)
    if isinstance(event, PlatformFaultMarked):
        bids = _with_bid(state, event.supplier_id, status=BidStatus.WITHDRAWN,
                         reason="withdrawn_platform_fault", bond=Bond(event.bond),
                         fault_reason=event.reason, fault_by=event.by,
                         fault_at_ms=event.at_ms)
        return replace(state, seq=seq, bids=bids)
    if isinstance(event, DecryptionWindowEnded):
        return replace(state, seq=seq, window_ended_at_ms=event.at_ms)
    if isinstance(event, BidRevoked):
        bids = _with_bid(state, event.supplier_id, status=BidStatus.REVOKED,
                         reason=event.reason, bond=Bond(event.bond))
        return replace(state, seq=seq, bids=bids)
    if isinstance(event, BackupCeremonyStarted):
        restarted = event.replaces is not None
        return replace(
            state, seq=seq, shares_submitted=frozenset(), backup_rebuilt_at_ms=None,
            ceremony=Ceremony(event.ceremony_id, event.public_key, event.holder, event.at_ms),
            ceremony_restarts=state.ceremony_restarts + (1 if restarted else 0),
            resubmit=state.resubmit | frozenset(event.discarded))
    if isinstance(event, ShareSubmitted):
        return replace(state, seq=seq,
                       shares_submitted=state.shares_submitted | {event.official},
                       resubmit=state.resubmit - {event.official})
    if isinstance(event, BackupRebuilt):
        return replace(state, seq=seq, backup_rebuilt_at_ms=event.at_ms, resubmit=frozenset())
    if isinstance(event, BackupRebuildFailed):
        # The shares are discarded with the ceremony: a new one starts with the next share.
        return replace(state, seq=seq, shares_submitted=frozenset(), ceremony=None)
    if isinstance(event, BackupCeremonyClosed):
        return replace(state, seq=seq, ceremony=None, backup_closed_at_ms=event.at_ms)
    if isinstance(event, RecordRevealed):
        return replace(state, seq=seq, revealed_at_ms=event.at_ms, record=event.record)
    if isinstance(event, ObjectionRaised):
        objection = Objection(event.objection_id, event.supplier_id, event.text, event.at_ms)
        return replace(state, seq=seq, objections=(*state.objections, objection))
    if isinstance(event, ObjectionAnswered):
        objections = tuple(
            replace(o, answer=event.text, answered_by=event.by, answered_at_ms=event.at_ms)
            if o.objection_id == event.objection_id else o
            for o in state.objections
        )
        return replace(state, seq=seq, objections=objections)
    if isinstance(event, RecordConfirmed):
        return replace(state, seq=seq, confirmed_at_ms=event.at_ms)
    return replace(state, seq=seq)  # Noted


# ---------------------------------------------------------------------------------------------
# The record (唱标)


def opening_record(state: OpeningState) -> dict[str, Any]:
    """The opening record as read out at 唱标: every decrypted bid (upload order) with its
    opening form, and every bid not opened with why (撤销 / 撤回); each with what becomes of
    its bid bond (``bond``, a ``Bond``) and the agency's platform-fault ruling if there was one
    (``ruling``: its stated reason, who, when). Names are added at the edge."""
    opened: list[dict[str, Any]] = []
    not_opened: list[dict[str, Any]] = []
    for supplier_id in state.bidders:
        bid = state.bids[supplier_id]
        if bid.status is BidStatus.DECRYPTED:
            opened.append({
                "order": len(opened) + 1,
                "supplier_id": supplier_id,
                "sha256": bid.sha256,
                "size": bid.size,
                "uploaded_at_ms": bid.uploaded_at_ms,
                "decrypted_at_ms": bid.decrypted_at_ms,
                "by_backup": bid.by_backup,
                "signer": dict(bid.signer or {}),
                "form": dict(bid.form or {}),
                "bond": _bond_value(bid),
                "ruling": bid.ruling,
            })
        else:
            not_opened.append({
                "supplier_id": supplier_id,
                "sha256": bid.sha256,
                "status": bid.status.value,
                "status_zh": BID_STATUS_ZH[bid.status],
                "reason": bid.reason,
                "attempts": bid.attempts,
                "last_failure": bid.last_failure,
                "bond": _bond_value(bid),
                "ruling": bid.ruling,
            })
    return {
        "opening_id": state.settings.opening_id,
        "deadline_ms": state.settings.deadline_ms,
        "bids_at_deadline": len(state.bidders),
        "opened": opened,
        "not_opened": not_opened,
    }


def _bond_value(bid: BidEntry) -> str | None:
    bond = bid.bond if bid.bond is not None else bond_of(bid.status)
    return None if bond is None else bond.value


# ---------------------------------------------------------------------------------------------
# Events as plain dicts (the opening log stores them as JSON)

_EVENT_TYPES: Final[dict[str, type[Any]]] = {
    "created": OpeningCreated,
    "bid_submitted": BidSubmitted,
    "bid_replaced": BidReplaced,
    "bid_withdrawn": BidWithdrawn,
    "bidder_invited": BidderInvited,
    "signed_in": SignedIn,
    "bids_closed": BidsClosed,
    "opening_failed": OpeningFailed,
    "bid_decrypted": BidDecrypted,
    "decryption_failed": DecryptionFailed,
    "platform_fault": PlatformFaultMarked,
    "window_ended": DecryptionWindowEnded,
    "bid_revoked": BidRevoked,
    "backup_ceremony_started": BackupCeremonyStarted,
    "share_submitted": ShareSubmitted,
    "backup_rebuilt": BackupRebuilt,
    "backup_rebuild_failed": BackupRebuildFailed,
    "backup_ceremony_closed": BackupCeremonyClosed,
    "record_revealed": RecordRevealed,
    "objection_raised": ObjectionRaised,
    "objection_answered": ObjectionAnswered,
    "record_confirmed": RecordConfirmed,
    "noted": Noted,
}
_KIND_OF: Final[dict[type[Any], str]] = {cls: kind for kind, cls in _EVENT_TYPES.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def event_to_dict(event: Event) -> dict[str, Any]:
    """``{"kind": …, fields…}`` of an event that happened (JSON-serialisable)."""
    if isinstance(event, CommandRefused):
        raise ValueError("a refusal is not an event of the log")
    out: dict[str, Any] = {"kind": _KIND_OF[type(event)]}
    for f in dataclasses.fields(event):
        out[f.name] = _plain(getattr(event, f.name))
    return out


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """The event of ``event_to_dict`` (lists become tuples where the event has tuples)."""
    kind = data.get("kind")
    cls = _EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if isinstance(f.type, str) and f.type.startswith("tuple") and isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    event: Event = cls(**values)
    return event
