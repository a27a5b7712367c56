"""Procurement projects and their lots (项目/包) as pure rules: the lot's state machine and the
checks made before publication, each citing the article it implements.

A project is what a purchasing unit buys under one budget; it has one or more lots, each with a
budget, a ceiling price, the evaluation method and whether its bids are sealed (opened at the
deadline, ``bidroom.opening``) or bid live (a reverse auction, ``bidroom.auction``). A lot runs

    draft → announced → bidding → opened → qualified → evaluating → awarded
                 └──────────┴─────────┴──────────┴───────────┴──→ failed / terminated

``decide(state, command)`` returns the new state and the events, or the state unchanged and one
``Refused`` event naming the rule: nothing is half-applied. Time (instants in ms), ids, the
region's thresholds and the calendar come in as inputs; nothing here reads a clock or does I/O.

Must not import: web; no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from typing import Final

from market.calendar.rules import (
    PERIODS,
    CalendarData,
    StatutoryDate,
    add_working_days,
    beijing_day,
    compute,
    day_start_ms,
    earliest_deadline_after_correction,
)

__all__ = [
    "MIN_BIDDERS",
    "BidMode",
    "BiddingClosed",
    "CloseBidding",
    "Command",
    "Correct",
    "EvaluationMethod",
    "EvaluationStarted",
    "Event",
    "LotCorrected",
    "LotFailed",
    "LotOpened",
    "LotPublished",
    "LotQualified",
    "LotRetendered",
    "LotState",
    "LotStatus",
    "LotTerminated",
    "Method",
    "PublicationPlan",
    "Publish",
    "Qualification",
    "RecordOpening",
    "RecordQualification",
    "Refused",
    "RegionRules",
    "Retender",
    "StartEvaluation",
    "Terminate",
    "check_lot_terms",
    "decide",
    "earliest_deadline",
    "plan_publication",
]

#: O87 41 / O87 44 (and their O74 analogues): fewer than 3 bids or 3 qualified bidders stop the
#: lot.
MIN_BIDDERS: Final = 3
#: Reg 33: a bid bond is at most 2 % of the budget.
BOND_RATE_PERMILLE: Final = 20


class Method(StrEnum):
    """Procurement methods (GPL 26). The e-mall's methods come with the mall."""

    OPEN_TENDER = "open_tender"  # 公开招标
    INVITED_TENDER = "invited_tender"  # 邀请招标
    COMPETITIVE_NEGOTIATION = "competitive_negotiation"  # 竞争性谈判
    COMPETITIVE_CONSULTATION = "competitive_consultation"  # 竞争性磋商
    INQUIRY = "inquiry"  # 询价
    SINGLE_SOURCE = "single_source"  # 单一来源


class EvaluationMethod(StrEnum):
    LOWEST_PRICE = "lowest_price"  # 最低评标价法 (O87 54)
    COMPREHENSIVE = "comprehensive"  # 综合评分法 (O87 55)


class BidMode(StrEnum):
    SEALED = "sealed"  # sealed bids opened at the deadline (bidroom.opening)
    AUCTION = "auction"  # a live reverse auction (bidroom.auction)


class LotStatus(StrEnum):
    DRAFT = "draft"
    ANNOUNCED = "announced"
    BIDDING = "bidding"
    OPENED = "opened"
    QUALIFIED = "qualified"
    EVALUATING = "evaluating"
    AWARDED = "awarded"
    FAILED = "failed"
    TERMINATED = "terminated"


_ENDED: Final = frozenset({LotStatus.AWARDED, LotStatus.FAILED, LotStatus.TERMINATED})


@dataclass(frozen=True, slots=True)
class RegionRules:
    """A region's settings (the finance department publishes them per level and year)."""

    #: 公开招标数额标准: a project at or above it is openly tendered unless approved (GPL 27).
    open_tender_threshold_fen: int = 4_000_000_00  # central level, goods and services [M]


# ------------------------------------------------------------------------------ the state


@dataclass(frozen=True, slots=True)
class Qualification:
    """One bidder's qualification review (pass/fail, never scored: Reg 34; O87 44)."""

    supplier_id: str
    passed: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class LotState:
    lot_id: str
    method: Method
    budget_fen: int
    ceiling_fen: int
    bid_mode: BidMode
    evaluation: EvaluationMethod
    status: LotStatus = LotStatus.DRAFT
    bond_fen: int = 0
    documents_from_ms: int | None = None
    documents_until_ms: int | None = None
    deadline_ms: int | None = None
    announced_at_ms: int | None = None
    bidders: tuple[str, ...] = ()  # who bid by the deadline (from the opening or the auction)
    qualified: tuple[Qualification, ...] = ()
    rounds: int = 1  # 1 + the number of re-tenders (O87 43)
    ended_reason: str = ""


# ------------------------------------------------------------------------------ commands


@dataclass(frozen=True, slots=True)
class Publish:
    """Publish the lot's announcement now; documents are issued from ``documents_from_ms``
    until ``documents_until_ms``; bids close at ``deadline_ms`` (the opening's instant)."""

    at_ms: int
    documents_from_ms: int
    documents_until_ms: int
    deadline_ms: int
    project_budget_fen: int
    approval: str = ""  # the supervising department's approval of a non-open method (GPL 27)


@dataclass(frozen=True, slots=True)
class Correct:
    """A correction (更正) published at ``at_ms``; ``affects_bids``: it may change how bids
    are prepared (O87 27). ``deadline_ms`` asks for a new deadline (None: keep it)."""

    at_ms: int
    affects_bids: bool
    deadline_ms: int | None = None


@dataclass(frozen=True, slots=True)
class CloseBidding:
    """The deadline passed; ``bidders`` are the suppliers whose bids stand."""

    at_ms: int
    bidders: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RecordOpening:
    """The opening's record was confirmed (or the auction closed): who is still in."""

    at_ms: int
    bidders: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RecordQualification:
    at_ms: int
    results: tuple[Qualification, ...]


@dataclass(frozen=True, slots=True)
class StartEvaluation:
    at_ms: int


@dataclass(frozen=True, slots=True)
class Terminate:
    """The purchase is cancelled (采购任务取消) with a reason."""

    at_ms: int
    reason: str


@dataclass(frozen=True, slots=True)
class Retender:
    """A failed lot runs again, by the same method or another one (O87 43)."""

    at_ms: int
    method: Method


Command = (Publish | Correct | CloseBidding | RecordOpening | RecordQualification
           | StartEvaluation | Terminate | Retender)


# ------------------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str
    article: str
    message: str
    details: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LotPublished:
    lot_id: str
    at_ms: int
    deadline_ms: int
    bid_mode: BidMode
    dates: tuple[StatutoryDate, ...]


@dataclass(frozen=True, slots=True)
class LotCorrected:
    lot_id: str
    at_ms: int
    deadline_ms: int
    deadline_moved: bool
    rule: StatutoryDate | None


@dataclass(frozen=True, slots=True)
class BiddingClosed:
    lot_id: str
    at_ms: int
    bidders: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LotOpened:
    lot_id: str
    at_ms: int
    bidders: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LotQualified:
    lot_id: str
    at_ms: int
    qualified: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EvaluationStarted:
    lot_id: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class LotFailed:
    lot_id: str
    at_ms: int
    reason: str
    article: str


@dataclass(frozen=True, slots=True)
class LotTerminated:
    lot_id: str
    at_ms: int
    reason: str


@dataclass(frozen=True, slots=True)
class LotRetendered:
    lot_id: str
    at_ms: int
    method: Method
    round: int


Event = (Refused | LotPublished | LotCorrected | BiddingClosed | LotOpened | LotQualified
         | EvaluationStarted | LotFailed | LotTerminated | LotRetendered)


# ------------------------------------------------------------------------------ the checks


def check_lot_terms(budget_fen: int, ceiling_fen: int, bond_fen: int) -> Refused | None:
    """The lot's money before anything else: O87 12 (the ceiling is within the budget, no
    floor price) and Reg 33 (a bid bond is at most 2 % of the budget)."""
    if budget_fen <= 0:
        return Refused("invalid_budget", "GPL 6", "预算须为正数 / the budget must be positive")
    if not 0 < ceiling_fen <= budget_fen:
        return Refused("ceiling_above_budget", "O87 12",
                       "最高限价须在预算额度内 / the ceiling price must be within the budget",
                       {"budget_fen": budget_fen})
    max_bond = budget_fen * BOND_RATE_PERMILLE // 1000
    if not 0 <= bond_fen <= max_bond:
        return Refused("bond_too_high", "Reg 33",
                       "投标保证金不得超过采购项目预算金额的2% / a bid bond is at most 2 % of "
                       "the budget", {"max_bond_fen": max_bond})
    return None


def _method_refusal(method: Method, project_budget_fen: int, rules: RegionRules,
                    approval: str) -> Refused | None:
    # GPL 26-27: at or above the region's open-tender threshold (数额标准, "以上" includes it),
    # another method needs the supervising department's approval before the purchase starts.
    if (method is not Method.OPEN_TENDER and project_budget_fen >= rules.open_tender_threshold_fen
            and not approval.strip()):
        return Refused("method_needs_approval", "GPL 27",
                       "达到公开招标数额标准的项目，采用其他方式须事先经监督管理部门批准 / a "
                       "project at or above the open-tender threshold needs the supervising "
                       "department's approval for another method",
                       {"threshold_fen": rules.open_tender_threshold_fen})
    return None


#: The minimum time from the documents' issue to the deadline, by method.
_RESPONSE_PERIODS: Final[Mapping[Method, str | None]] = {
    Method.OPEN_TENDER: "bid_deadline",  # GPL 35: 20 days
    Method.INVITED_TENDER: "bid_deadline",  # GPL 35 applies to every tender
    Method.COMPETITIVE_NEGOTIATION: "negotiation_response",  # O74 29: 3 working days
    Method.INQUIRY: "inquiry_response",  # O74 45: 3 working days
    Method.COMPETITIVE_CONSULTATION: "consultation_response",  # 财库〔2014〕214号 10: 10 days
    Method.SINGLE_SOURCE: None,  # negotiated with the one supplier
}


def earliest_deadline(calendar: CalendarData, method: Method,
                      documents_from_ms: int) -> StatutoryDate | None:
    """The first Beijing day on which bids may close for ``method`` when the documents are
    first issued at ``documents_from_ms``; None when the method sets no minimum."""
    code = _RESPONSE_PERIODS[method]
    if code is None:
        return None
    return compute(calendar, code, beijing_day(documents_from_ms))


@dataclass(frozen=True, slots=True)
class PublicationPlan:
    """Every statutory date of a publication, each with its rule (for the pages and the API)."""

    announcement_ends: StatutoryDate | None
    documents_until_earliest: StatutoryDate | None
    deadline_earliest: StatutoryDate | None

    @property
    def dates(self) -> tuple[StatutoryDate, ...]:
        return tuple(d for d in (self.announcement_ends, self.documents_until_earliest,
                                 self.deadline_earliest) if d is not None)


def plan_publication(calendar: CalendarData, method: Method, at_ms: int,
                     documents_from_ms: int) -> PublicationPlan:
    tender = method in (Method.OPEN_TENDER, Method.INVITED_TENDER)
    return PublicationPlan(
        # O87 16: an open tender's announcement runs 5 working days
        announcement_ends=(compute(calendar, "announcement_period", beijing_day(at_ms))
                           if method is Method.OPEN_TENDER else None),
        # O87 18: tender documents are available at least 5 working days; the day they are
        # first issued is a day they are available, so it counts (practice: issued Tue 2 Jan,
        # available until Mon 8 Jan)
        documents_until_earliest=(add_working_days(
            calendar, beijing_day(documents_from_ms) - _ONE_DAY,
            PERIODS["documents_available"].days, period=PERIODS["documents_available"])
            if tender else None),
        deadline_earliest=earliest_deadline(calendar, method, documents_from_ms),
    )


def _publish(state: LotState, cmd: Publish, calendar: CalendarData,
             rules: RegionRules) -> tuple[LotState, list[Event]]:
    refusal = (check_lot_terms(state.budget_fen, state.ceiling_fen, state.bond_fen)
               or _method_refusal(state.method, cmd.project_budget_fen, rules, cmd.approval))
    if refusal is not None:
        return state, [refusal]
    if not cmd.at_ms <= cmd.documents_from_ms < cmd.documents_until_ms <= cmd.deadline_ms:
        return state, [Refused("invalid_dates", "O87 16",
                               "须：发布 ≤ 文件发售开始 < 文件发售截止 ≤ 投标截止 / publication ≤ "
                               "documents from < documents until ≤ deadline")]
    plan = plan_publication(calendar, state.method, cmd.at_ms, cmd.documents_from_ms)
    earliest = plan.deadline_earliest
    if earliest is not None and beijing_day(cmd.deadline_ms) < earliest.day:
        return state, [Refused(
            "deadline_too_early", earliest.period.article if earliest.period else "",
            f"投标截止不得早于 {earliest.day.isoformat()}（北京时间）/ the deadline may not be "
            f"before {earliest.day.isoformat()} (Beijing time)",
            {"earliest_day": earliest.day.isoformat(),
             "earliest_ms": day_start_ms(earliest.day),
             "provisional": earliest.provisional})]
    docs = plan.documents_until_earliest
    if docs is not None and beijing_day(cmd.documents_until_ms) < docs.day:
        return state, [Refused(
            "documents_period_too_short", "O87 18",
            f"招标文件提供期限不得少于5个工作日，最早截止于 {docs.day.isoformat()} / the "
            f"documents must be available until {docs.day.isoformat()} at least",
            {"earliest_day": docs.day.isoformat(), "provisional": docs.provisional})]
    new = replace(state, status=LotStatus.ANNOUNCED, announced_at_ms=cmd.at_ms,
                  documents_from_ms=cmd.documents_from_ms,
                  documents_until_ms=cmd.documents_until_ms, deadline_ms=cmd.deadline_ms)
    return new, [LotPublished(state.lot_id, cmd.at_ms, cmd.deadline_ms, state.bid_mode,
                              plan.dates)]


def _correct(state: LotState, cmd: Correct, calendar: CalendarData) -> tuple[LotState,
                                                                              list[Event]]:
    assert state.deadline_ms is not None
    wanted = cmd.deadline_ms if cmd.deadline_ms is not None else state.deadline_ms
    if wanted <= cmd.at_ms:
        return state, [Refused("invalid_dates", "O87 27",
                               "新的截止时间须晚于更正时间 / the new deadline must come after "
                               "the correction")]
    if not cmd.affects_bids:
        return (replace(state, deadline_ms=wanted),
                [LotCorrected(state.lot_id, cmd.at_ms, wanted, False, None)])
    # O87 27: a bid-affecting change needs 15 days before the deadline, else it moves.
    rule = earliest_deadline_after_correction(calendar, beijing_day(wanted),
                                              beijing_day(cmd.at_ms))
    moved = rule.day > beijing_day(wanted)
    deadline = _same_time_on(wanted, rule.day) if moved else wanted
    return (replace(state, deadline_ms=deadline),
            [LotCorrected(state.lot_id, cmd.at_ms, deadline, moved, rule)])


_ONE_DAY: Final = date(2000, 1, 2) - date(2000, 1, 1)


def _same_time_on(ms: int, day: date) -> int:
    """The instant with ``ms``'s Beijing time of day on ``day``."""
    return day_start_ms(day) + (ms - day_start_ms(beijing_day(ms)))


def _fail(state: LotState, at_ms: int, reason: str, article: str) -> tuple[LotState,
                                                                             list[Event]]:
    return (replace(state, status=LotStatus.FAILED, ended_reason=reason),
            [LotFailed(state.lot_id, at_ms, reason, article)])


_ALLOWED: Final[Mapping[type, frozenset[LotStatus]]] = {
    Publish: frozenset({LotStatus.DRAFT}),
    Correct: frozenset({LotStatus.ANNOUNCED, LotStatus.BIDDING}),
    CloseBidding: frozenset({LotStatus.ANNOUNCED, LotStatus.BIDDING}),
    RecordOpening: frozenset({LotStatus.BIDDING}),
    RecordQualification: frozenset({LotStatus.OPENED}),
    StartEvaluation: frozenset({LotStatus.QUALIFIED}),
    Terminate: frozenset(set(LotStatus) - _ENDED),
    Retender: frozenset({LotStatus.FAILED}),
}


def decide(state: LotState, command: Command, *, calendar: CalendarData,
           rules: RegionRules = RegionRules()) -> tuple[LotState, list[Event]]:
    """Apply one command: the new state and its events, or the same state and a refusal."""
    if state.status not in _ALLOWED[type(command)]:
        return state, [Refused("wrong_status", "", f"此包当前状态（{state.status}）不允许该操作 / "
                               f"not allowed while the lot is {state.status}",
                               {"status": str(state.status)})]
    match command:
        case Publish():
            return _publish(state, command, calendar, rules)
        case Correct():
            return _correct(state, command, calendar)
        case CloseBidding(at_ms=at, bidders=bidders):
            assert state.deadline_ms is not None
            if at < state.deadline_ms:
                return state, [Refused("deadline_not_reached", "O87 39",
                                       "投标截止前不得开标 / bids close at the deadline")]
            unique = tuple(dict.fromkeys(bidders))
            closed = replace(state, status=LotStatus.BIDDING, bidders=unique)
            if len(unique) < MIN_BIDDERS and state.method is not Method.SINGLE_SOURCE:
                # O87 41: fewer than 3 bids at the deadline: no opening, the lot fails.
                failed, events = _fail(closed, at, "too_few_bids", "O87 41")
                return failed, [BiddingClosed(state.lot_id, at, unique), *events]
            return closed, [BiddingClosed(state.lot_id, at, unique)]
        case RecordOpening(at_ms=at, bidders=bidders):
            return (replace(state, status=LotStatus.OPENED, bidders=tuple(bidders)),
                    [LotOpened(state.lot_id, at, tuple(bidders))])
        case RecordQualification(at_ms=at, results=results):
            reviewed = {q.supplier_id for q in results}
            if reviewed != set(state.bidders) or len(results) != len(reviewed):
                return state, [Refused("qualification_incomplete", "O87 44",
                                       "须对每一投标人作出资格审查结论 / every bidder needs one "
                                       "pass or fail", {"bidders": list(state.bidders)})]
            if any(not q.passed and not q.reason.strip() for q in results):
                return state, [Refused("reason_required", "O87 44",
                                       "不合格须说明理由 / a fail needs its reason")]
            passed = tuple(q.supplier_id for q in results if q.passed)
            reviewed_state = replace(state, status=LotStatus.QUALIFIED, qualified=tuple(results))
            if len(passed) < MIN_BIDDERS and state.method is not Method.SINGLE_SOURCE:
                # O87 44: fewer than 3 qualified bidders: no evaluation.
                failed, events = _fail(reviewed_state, at, "too_few_qualified", "O87 44")
                return failed, [LotQualified(state.lot_id, at, passed), *events]
            return reviewed_state, [LotQualified(state.lot_id, at, passed)]
        case StartEvaluation(at_ms=at):
            return (replace(state, status=LotStatus.EVALUATING),
                    [EvaluationStarted(state.lot_id, at)])
        case Terminate(at_ms=at, reason=reason):
            if not reason.strip():
                return state, [Refused("reason_required", "GPL 36",
                                       "终止须说明理由 / a termination needs its reason")]
            return (replace(state, status=LotStatus.TERMINATED, ended_reason=reason),
                    [LotTerminated(state.lot_id, at, reason)])
        case Retender(at_ms=at, method=method):
            # O87 43: re-tender, or (with approval, checked at publication) another method.
            again = replace(state, status=LotStatus.DRAFT, method=method, rounds=state.rounds + 1,
                            bidders=(), qualified=(), deadline_ms=None, announced_at_ms=None,
                            documents_from_ms=None, documents_until_ms=None, ended_reason="")
            return again, [LotRetendered(state.lot_id, at, method, again.rounds)]
    raise TypeError(f"not a lot command: {command!r}")  # pragma: no cover

