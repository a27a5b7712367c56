"""The lot's state machine and the checks before publication (market.projects.rules): worked
cases on the 2026 calendar, and properties over random command sequences."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time

from hypothesis import given, settings
from hypothesis import strategies as st

from market.calendar.rules import BEIJING, beijing_day
from market.calendar.source import official_data
from market.projects.rules import (
    BidMode,
    CloseBidding,
    Correct,
    EvaluationMethod,
    LotCorrected,
    LotFailed,
    LotPublished,
    LotState,
    LotStatus,
    Method,
    Publish,
    Qualification,
    RecordOpening,
    RecordQualification,
    Refused,
    RegionRules,
    Retender,
    StartEvaluation,
    Terminate,
    decide,
    earliest_deadline,
)

CAL = official_data()
YUAN = 100


def at(day: date, hh: int = 9, mm: int = 30) -> int:
    return int(datetime.combine(day, time(hh, mm), tzinfo=BEIJING).timestamp() * 1000)


def lot(method: Method = Method.OPEN_TENDER, budget: int = 1_000_000 * YUAN) -> LotState:
    return LotState("L1", method, budget, budget, BidMode.SEALED, EvaluationMethod.COMPREHENSIVE,
                    bond_fen=budget * 2 // 100)


def publish(state: LotState, issued: date, deadline: date, *, budget: int | None = None,
            approval: str = "") -> tuple[LotState, list[object]]:
    cmd = Publish(at(issued, 9, 0), at(issued, 9, 0), at(deadline, 9, 0), at(deadline),
                  budget if budget is not None else state.budget_fen, approval)
    new, events = decide(state, cmd, calendar=CAL)
    return new, list(events)


def test_an_open_tender_deadline_before_the_20_days_is_refused_with_the_earliest_day() -> None:
    # GPL 35: documents issued Fri 11 Sep 2026; 20 days end on 1 Oct (National Day): 8 Oct.
    state, events = publish(lot(), date(2026, 9, 11), date(2026, 10, 7))
    assert state.status is LotStatus.DRAFT
    refusal = events[0]
    assert isinstance(refusal, Refused) and refusal.reason == "deadline_too_early"
    assert refusal.article == "GPL 35" and refusal.details["earliest_day"] == "2026-10-08"
    published, events = publish(lot(), date(2026, 9, 11), date(2026, 10, 8))
    assert published.status is LotStatus.ANNOUNCED
    event = events[0]
    assert isinstance(event, LotPublished)
    assert {d.period.article for d in event.dates if d.period} == {"O87 16", "O87 18", "GPL 35"}


def test_an_inquiry_needs_3_working_days_across_the_holiday() -> None:
    # O74 45: issued Wed 30 Sep: 8, 9, Sat 10 Oct (调休) → the earliest deadline is 10 Oct.
    earliest = earliest_deadline(CAL, Method.INQUIRY, at(date(2026, 9, 30)))
    assert earliest is not None and earliest.day == date(2026, 10, 10)
    assert earliest.period is not None and earliest.period.article == "O74 45"


def test_another_method_at_the_open_tender_threshold_needs_approval() -> None:
    rules = RegionRules(open_tender_threshold_fen=4_000_000 * YUAN)
    state = lot(Method.COMPETITIVE_NEGOTIATION, budget=4_000_000 * YUAN)
    cmd = Publish(at(date(2026, 11, 2)), at(date(2026, 11, 2)), at(date(2026, 11, 4)),
                  at(date(2026, 11, 9)), 4_000_000 * YUAN)
    _, events = decide(state, cmd, calendar=CAL, rules=rules)
    assert isinstance(events[0], Refused) and events[0].reason == "method_needs_approval"
    assert events[0].article == "GPL 27"
    approved, events = decide(state, replace(cmd, approval="某财采〔2026〕12号"), calendar=CAL,
                              rules=rules)
    assert approved.status is LotStatus.ANNOUNCED
    below, _ = decide(state, replace(cmd, project_budget_fen=4_000_000 * YUAN - 1), calendar=CAL,
                      rules=rules)
    assert below.status is LotStatus.ANNOUNCED


def test_the_money_rules_come_first() -> None:
    high = replace(lot(), ceiling_fen=lot().budget_fen + 1)
    _, events = publish(high, date(2026, 9, 1), date(2026, 10, 30))
    assert isinstance(events[0], Refused) and events[0].reason == "ceiling_above_budget"
    assert events[0].article == "O87 12"
    bond = replace(lot(), bond_fen=lot().budget_fen * 2 // 100 + 1)
    _, events = publish(bond, date(2026, 9, 1), date(2026, 10, 30))
    assert isinstance(events[0], Refused) and events[0].reason == "bond_too_high"
    assert events[0].article == "Reg 33"


def test_a_bid_affecting_correction_within_15_days_moves_the_deadline() -> None:
    state, _ = publish(lot(), date(2026, 9, 28), date(2026, 10, 19))
    # O87 27: corrected Fri 9 Oct → 15 days → Sat 24 Oct → Mon 26 Oct, same time of day.
    moved, events = decide(state, Correct(at(date(2026, 10, 9), 15), True), calendar=CAL)
    event = events[0]
    assert isinstance(event, LotCorrected) and event.deadline_moved
    assert moved.deadline_ms == at(date(2026, 10, 26))
    assert event.rule is not None and event.rule.period is not None
    assert event.rule.period.article == "O87 27"
    kept, events = decide(state, Correct(at(date(2026, 10, 9), 15), False), calendar=CAL)
    assert kept.deadline_ms == state.deadline_ms
    early, events = decide(state, Correct(at(date(2026, 9, 30)), True), calendar=CAL)
    assert early.deadline_ms == state.deadline_ms


def _through_deadline(bidders: tuple[str, ...]) -> tuple[LotState, list[object]]:
    state, _ = publish(lot(), date(2026, 9, 28), date(2026, 10, 19))
    assert state.deadline_ms is not None
    new, events = decide(state, CloseBidding(state.deadline_ms, bidders), calendar=CAL)
    return new, list(events)


def test_fewer_than_three_bids_at_the_deadline_fail_the_lot() -> None:
    failed, events = _through_deadline(("S1", "S2", "S2"))
    assert failed.status is LotStatus.FAILED
    assert isinstance(events[-1], LotFailed) and events[-1].article == "O87 41"
    ok, _ = _through_deadline(("S1", "S2", "S3"))
    assert ok.status is LotStatus.BIDDING


def test_fewer_than_three_qualified_fail_the_lot_and_it_can_be_retendered() -> None:
    state, _ = _through_deadline(("S1", "S2", "S3"))
    state, _ = decide(state, RecordOpening(at(date(2026, 10, 19), 11), ("S1", "S2", "S3")),
                      calendar=CAL)
    assert state.status is LotStatus.OPENED
    results = (Qualification("S1", True), Qualification("S2", True),
               Qualification("S3", False, ""))
    same, events = decide(state, RecordQualification(1, results), calendar=CAL)
    assert same is state and isinstance(events[0], Refused)
    assert events[0].reason == "reason_required"
    results = (*results[:2], Qualification("S3", False, "营业执照过期 / licence expired"))
    failed, events = decide(state, RecordQualification(1, results), calendar=CAL)
    assert failed.status is LotStatus.FAILED
    assert isinstance(events[-1], LotFailed) and events[-1].article == "O87 44"
    again, _ = decide(failed, Retender(2, Method.COMPETITIVE_NEGOTIATION), calendar=CAL)
    assert again.status is LotStatus.DRAFT and again.rounds == 2
    assert again.method is Method.COMPETITIVE_NEGOTIATION and again.bidders == ()


# ------------------------------------------------------------------ properties

_ISSUE_DAYS = st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 11, 30))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(Method)), _ISSUE_DAYS, st.integers(0, 40))
def test_a_published_lot_never_closes_before_its_statutory_earliest_day(
        method: Method, issued: date, days: int) -> None:
    deadline = date.fromordinal(issued.toordinal() + days)
    state, events = publish(lot(method), issued, deadline, approval="approved")
    earliest = earliest_deadline(CAL, method, at(issued, 9, 0))
    if state.status is LotStatus.ANNOUNCED:
        assert state.deadline_ms is not None
        assert earliest is None or beijing_day(state.deadline_ms) >= earliest.day
        return
    refusal = events[0]
    assert isinstance(refusal, Refused)
    if days == 0:  # the documents would be issued and withdrawn at the same instant
        assert refusal.reason == "invalid_dates"
    elif refusal.reason == "deadline_too_early":
        assert earliest is not None and deadline < earliest.day
    else:  # O87 18 binds tenders only
        assert refusal.reason == "documents_period_too_short"
        assert method in (Method.OPEN_TENDER, Method.INVITED_TENDER)


_COMMANDS = st.one_of(
    st.builds(Publish, st.just(at(date(2026, 9, 1))), st.just(at(date(2026, 9, 1))),
              st.just(at(date(2026, 9, 10))), st.just(at(date(2026, 10, 9))),
              st.just(1_000_000 * YUAN)),
    st.builds(Correct, st.integers(at(date(2026, 9, 2)), at(date(2026, 10, 8))), st.booleans()),
    st.builds(CloseBidding, st.integers(at(date(2026, 10, 1)), at(date(2026, 12, 1))),
              st.lists(st.sampled_from(["S1", "S2", "S3", "S4"]), max_size=4).map(tuple)),
    st.builds(RecordOpening, st.just(1), st.just(("S1", "S2", "S3", "S4"))),
    st.builds(RecordQualification, st.just(1), st.lists(
        st.builds(Qualification, st.sampled_from(["S1", "S2", "S3", "S4"]), st.booleans(),
                  st.sampled_from(["", "资质不符"])), max_size=4,
        unique_by=lambda q: q.supplier_id).map(tuple)),
    st.builds(StartEvaluation, st.just(1)),
    st.builds(Terminate, st.just(1), st.sampled_from(["", "采购任务取消"])),
    st.builds(Retender, st.just(1), st.sampled_from(list(Method))),
)

_EDGES = {
    (LotStatus.DRAFT, LotStatus.ANNOUNCED), (LotStatus.ANNOUNCED, LotStatus.BIDDING),
    (LotStatus.BIDDING, LotStatus.BIDDING),  # a correction while bids are open
    (LotStatus.ANNOUNCED, LotStatus.ANNOUNCED), (LotStatus.BIDDING, LotStatus.OPENED),
    (LotStatus.OPENED, LotStatus.QUALIFIED), (LotStatus.QUALIFIED, LotStatus.EVALUATING),
    (LotStatus.FAILED, LotStatus.DRAFT), (LotStatus.ANNOUNCED, LotStatus.FAILED),
    (LotStatus.BIDDING, LotStatus.FAILED), (LotStatus.OPENED, LotStatus.FAILED),
}


@settings(max_examples=300, deadline=None)
@given(st.lists(_COMMANDS, max_size=12))
def test_a_lot_moves_only_along_the_lifecycle_and_a_refusal_changes_nothing(
        commands: list[object]) -> None:
    state = lot()
    for command in commands:
        new, events = decide(state, command, calendar=CAL)  # type: ignore[arg-type]
        if any(isinstance(e, Refused) for e in events):
            assert new == state and len(events) == 1
            continue
        edge = (state.status, new.status)
        assert edge in _EDGES or new.status is LotStatus.TERMINATED, edge
        if new.status is LotStatus.TERMINATED:
            assert state.status not in (LotStatus.AWARDED, LotStatus.FAILED,
                                        LotStatus.TERMINATED)
        state = new
