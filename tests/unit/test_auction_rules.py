"""The pure reverse-auction rules (DOMAIN.md §1): every rule and boundary, no event loop."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bidroom.auction.rules import (
    AuctionClosed,
    AuctionExtended,
    AuctionPaused,
    AuctionResumed,
    AuctionSettings,
    AuctionState,
    BidAccepted,
    BidDuplicated,
    BidRejected,
    Close,
    CommandRefused,
    Event,
    ExtensionTrigger,
    Improvement,
    Invite,
    Pause,
    Phase,
    PlaceBid,
    Resume,
    SignIn,
    StepKind,
    SuppliersInvited,
    compute_result,
    decide,
    evolve,
    max_allowed_price,
    new_state,
    percent_of,
    phase_at,
    rank_of,
    settings_from_dict,
    validate_settings,
)

START = 1_800_000_000_000
END = START + 600_000
SUPPLIERS = frozenset({"s1", "s2", "s3", "s4"})


def settings(**overrides: object) -> AuctionSettings:
    base = AuctionSettings(
        auction_id="auc_1",
        ceiling_fen=1_000_000,
        start_ms=START,
        end_ms=END,
        step_kind=StepKind.AMOUNT,
        step_value=1_000,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def state(**overrides: object) -> AuctionState:
    return new_state(settings(**overrides), SUPPLIERS)


def bid(st: AuctionState, supplier: str, price: int, at: int, bid_id: str | None = None) -> tuple[
    AuctionState, tuple[Event, ...]
]:
    d = decide(st, PlaceBid(supplier, bid_id or f"{supplier}-{price}-{at}", price, at))
    return d.state, d.events


def reason(events: tuple[Event, ...]) -> str:
    (event,) = events
    assert isinstance(event, BidRejected | CommandRefused), event
    return event.reason


# --- settings ---------------------------------------------------------------------------------


def test_default_settings_are_valid() -> None:
    assert validate_settings(settings()) == []


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"end_ms": START}, "end_before_start"),
        ({"end_ms": START - 1}, "end_before_start"),
        ({"step_value": 1_000_000}, "step_too_large"),
        ({"step_value": 0}, "invalid_step"),
        ({"step_kind": StepKind.PERCENT, "step_value": 10_000}, "invalid_step"),
        ({"ceiling_fen": 0}, "invalid_price"),
        ({"budget_fen": 999_999}, "ceiling_above_budget"),
        ({"sniping_window_ms": 60_000, "extension_ms": 0}, "invalid_extension"),
        ({"sniping_window_ms": 700_000, "extension_ms": 1}, "window_too_long"),
        ({"min_valid_bidders": 0}, "invalid_field"),
        ({"max_extensions": -1}, "invalid_field"),
    ],
)
def test_invalid_settings_are_refused_with_a_stable_code(overrides: dict[str, object],
                                                          code: str) -> None:
    problems = validate_settings(settings(**overrides))
    assert code in {p.code for p in problems}


def test_settings_from_a_dict_refuse_floats_unknown_fields_and_missing_ones() -> None:
    data = settings().to_dict()
    data["ceiling_fen"] = 1000.5
    data["colour"] = "red"
    del data["end_ms"]
    parsed, problems = settings_from_dict(data)
    assert parsed is None
    assert {(p.code, p.field) for p in problems} == {
        ("invalid_price", "ceiling_fen"),
        ("unknown_field", "colour"),
        ("missing_field", "end_ms"),
    }


def test_settings_round_trip_through_a_dict() -> None:
    original = settings(step_kind=StepKind.PERCENT, step_value=50, max_extensions=3)
    parsed, problems = settings_from_dict(original.to_dict())
    assert problems == []
    assert parsed == original


def test_percent_step_rounds_up_and_is_exact_at_the_largest_amount() -> None:
    assert percent_of(1_000_000, 50) == 5_000
    assert percent_of(1_001, 50) == 6  # 5.005 rounds up
    assert percent_of(10**13, 9_999) == 10**13 * 9_999 // 10_000
    assert percent_of(10**13 - 1, 1) == -(-(10**13 - 1) // 10_000)


# --- phases -----------------------------------------------------------------------------------


def test_phases_follow_the_clock_with_sign_in_before_the_start() -> None:
    st = state(sign_in_ms=60_000)
    assert phase_at(st, START - 60_001) is Phase.SCHEDULED
    assert phase_at(st, START - 60_000) is Phase.SIGN_IN
    assert phase_at(st, START) is Phase.OPEN
    assert phase_at(st, END - 1) is Phase.OPEN
    assert phase_at(st, END) is Phase.CLOSING


# --- bids -------------------------------------------------------------------------------------


def test_a_first_bid_at_the_ceiling_is_accepted_and_one_fen_above_is_not() -> None:
    st = state()
    _, events = bid(st, "s1", 1_000_001, START)
    assert reason(events) == "above_ceiling"
    assert isinstance(events[0], BidRejected) and events[0].max_allowed_fen == 1_000_000
    st, events = bid(st, "s1", 1_000_000, START)
    assert isinstance(events[0], BidAccepted)
    assert events[0].seq == 1 and events[0].alias == 1


def test_a_bid_exactly_at_the_end_instant_is_rejected_one_ms_earlier_is_accepted() -> None:
    st = state()
    _, events = bid(st, "s1", 900_000, END)
    assert reason(events) == "auction_ended"
    _, events = bid(st, "s1", 900_000, END - 1)
    assert isinstance(events[0], BidAccepted)


def test_a_bid_before_the_start_is_rejected() -> None:
    _, events = bid(state(), "s1", 900_000, START - 1)
    assert reason(events) == "not_started"


def test_an_uninvited_supplier_cannot_bid() -> None:
    _, events = bid(state(), "intruder", 900_000, START)
    assert reason(events) == "not_invited"


def test_invalid_prices_are_rejected() -> None:
    st = state()
    assert reason(bid(st, "s1", 0, START)[1]) == "invalid_price"
    assert reason(bid(st, "s1", -5, START)[1]) == "invalid_price"


def test_own_previous_rule_requires_one_step_below_the_own_last_bid() -> None:
    st, _ = bid(state(), "s1", 900_000, START)
    st, _ = bid(st, "s2", 800_000, START + 1)
    # s1 may bid anything <= 899,000, even above the current lowest
    assert max_allowed_price(st, "s1") == 899_000
    _, events = bid(st, "s1", 899_001, START + 2)
    assert reason(events) == "insufficient_decrement"
    st, events = bid(st, "s1", 899_000, START + 2)
    assert isinstance(events[0], BidAccepted)
    assert rank_of(st, "s1") == 2 and rank_of(st, "s2") == 1


def test_current_lowest_rule_requires_one_step_below_the_lowest() -> None:
    st, _ = bid(state(improvement=Improvement.CURRENT_LOWEST), "s1", 900_000, START)
    assert max_allowed_price(st, "s2") == 899_000
    assert reason(bid(st, "s2", 899_500, START + 1)[1]) == "insufficient_decrement"
    st, events = bid(st, "s2", 899_000, START + 1)
    assert isinstance(events[0], BidAccepted) and events[0].leader == "s2"


def test_percent_step_uses_the_reference_price() -> None:
    st, _ = bid(state(step_kind=StepKind.PERCENT, step_value=100), "s1", 900_000, START)
    assert max_allowed_price(st, "s1") == 891_000  # 1% of 900,000


def test_equal_prices_rank_by_acceptance_order() -> None:
    st, _ = bid(state(), "s1", 900_000, START)
    st, _ = bid(st, "s2", 900_000, START)  # same millisecond: the sequence decides
    assert st.leader == "s1"
    assert rank_of(st, "s1") == 1 and rank_of(st, "s2") == 2


def test_a_duplicate_bid_id_returns_the_original_acceptance_and_changes_nothing() -> None:
    st, _first = bid(state(), "s1", 900_000, START, bid_id="b1")
    again = decide(st, PlaceBid("s1", "b1", 800_000, START + 5))
    assert again.state == st
    assert again.events == (BidDuplicated("s1", "b1", 1, 900_000, START),)
    # the same bid id from another supplier is another bid
    other = decide(st, PlaceBid("s2", "b1", 800_000, START + 5))
    assert isinstance(other.events[0], BidAccepted)


def test_aliases_number_suppliers_by_their_first_bid() -> None:
    st, _ = bid(state(), "s3", 990_000, START)
    st, _ = bid(st, "s1", 980_000, START + 1)
    st, _ = bid(st, "s3", 970_000, START + 2)
    assert st.standings["s3"].alias == 1 and st.standings["s1"].alias == 2


# --- anti-sniping -----------------------------------------------------------------------------


def sniping(**overrides: object) -> AuctionState:
    base: dict[str, object] = {"sniping_window_ms": 60_000, "extension_ms": 120_000}
    base.update(overrides)
    return state(**base)


def test_a_bid_on_the_window_endpoint_extends_the_end() -> None:
    st, events = bid(sniping(), "s1", 900_000, END - 60_000)
    assert isinstance(events[1], AuctionExtended)
    assert events[1] == AuctionExtended(2, END + 120_000, 1, 120_000, END - 60_000)
    assert st.end_ms == END + 120_000 and st.settings.end_ms == END
    assert phase_at(st, END + 1) is Phase.EXTENDED


def test_a_bid_one_ms_before_the_window_does_not_extend() -> None:
    _, events = bid(sniping(), "s1", 900_000, END - 60_001)
    assert len(events) == 1


def test_after_the_extension_cap_no_more_extensions() -> None:
    st = sniping(max_extensions=2)
    at = END - 1
    price = 900_000
    for n in range(3):
        st, events = bid(st, "s1", price, at)
        assert isinstance(events[0], BidAccepted)
        assert (len(events) == 2) == (n < 2)
        price -= 1_000
        at = st.end_ms - 1
    assert st.extensions == 2


def test_the_total_extension_cap_clips_the_last_extension() -> None:
    st, _ = bid(sniping(max_total_extension_ms=150_000), "s1", 900_000, END - 1)
    st, events = bid(st, "s1", 899_000, st.end_ms - 1)
    assert isinstance(events[1], AuctionExtended)
    assert events[1].extended_ms == 150_000
    st, events = bid(st, "s1", 898_000, st.end_ms - 1)
    assert len(events) == 1


def test_the_lead_change_trigger_ignores_bids_that_keep_the_leader() -> None:
    st = sniping(sniping_trigger=ExtensionTrigger.LEAD_CHANGE)
    st, events = bid(st, "s1", 900_000, START)
    st, events = bid(st, "s2", 950_000, END - 10)  # not a lead change
    assert len(events) == 1
    st, events = bid(st, "s1", 890_000, END - 9)  # the leader improves: still not a change
    assert len(events) == 1
    st, events = bid(st, "s2", 880_000, END - 8)  # s2 takes the lead
    assert isinstance(events[1], AuctionExtended)


# --- sign-in, invitations, pause, close ---------------------------------------------------------


def test_with_sign_in_required_a_supplier_must_sign_in_before_bidding() -> None:
    st = state(sign_in_ms=60_000)
    assert reason(bid(st, "s1", 900_000, START)[1]) == "not_signed_in"
    assert reason(decide(st, SignIn("s1", START - 60_001)).events) == "sign_in_not_open"
    st = decide(st, SignIn("s1", START - 60_000)).state
    assert reason(decide(st, SignIn("s1", START)).events) == "already_signed_in"
    _, events = bid(st, "s1", 900_000, START)
    assert isinstance(events[0], BidAccepted)


def test_invitations_can_be_added_until_the_end() -> None:
    st = state()
    d = decide(st, Invite(("s9", "s1"), START))
    assert d.events == (SuppliersInvited(1, ("s9",), START),)
    _, events = bid(d.state, "s9", 900_000, START)
    assert isinstance(events[0], BidAccepted)
    assert reason(decide(st, Invite(("s9",), END)).events) == "auction_ended"


def test_a_pause_freezes_bids_and_resuming_gives_the_time_back() -> None:
    st = state()
    assert reason(decide(st, Pause("power cut", START - 1)).events) == "not_running"
    st = decide(st, Pause("network outage at the agency", START + 100_000)).state
    assert phase_at(st, START + 100_001) is Phase.PAUSED
    assert reason(bid(st, "s1", 900_000, START + 100_001)[1]) == "auction_paused"
    assert reason(decide(st, Close(END + 1)).events) == "auction_paused"
    d = decide(st, Resume(START + 130_000))
    assert d.events == (AuctionResumed(2, START + 130_000, END + 30_000, 30_000),)
    assert d.state.end_ms == END + 30_000
    assert isinstance(decide(st, Pause("x", START + 1)).events[0], CommandRefused)


def test_close_happens_once_and_only_when_due() -> None:
    st, _ = bid(state(min_valid_bidders=1), "s1", 900_000, START)
    assert reason(decide(st, Close(END - 1)).events) == "not_due"
    d = decide(st, Close(END))
    assert d.events == (AuctionClosed(2, END, END, False, 1),)
    assert reason(decide(d.state, Close(END + 5)).events) == "already_closed"
    assert reason(bid(d.state, "s2", 800_000, END + 5)[1]) == "auction_ended"
    assert phase_at(d.state, END + 5) is Phase.CLOSED


def test_a_bid_at_the_end_instant_is_late_whether_the_closer_ran_first_or_not() -> None:
    # The closer closes the room at the end instant, racing a bid sent at that instant: the
    # refusal is the same either way (DOMAIN §1: at or after the end instant, rejected).
    st = decide(state(min_valid_bidders=1, sign_in_ms=60_000), SignIn("s1", START)).state
    st, events = bid(st, "s1", 900_000, START)
    assert isinstance(events[0], BidAccepted)
    closed = decide(st, Close(END)).state
    for room in (st, closed):
        assert reason(bid(room, "s2", 800_000, END)[1]) == "auction_ended"
        assert reason(decide(room, SignIn("s2", END)).events) == "auction_ended"
        assert reason(decide(room, Invite(("s9",), END)).events) == "auction_ended"
    # only the pause, an agency's act on the room itself, tells the two apart
    assert reason(decide(st, Pause("x", END)).events) == "not_running"
    assert reason(decide(closed, Pause("x", END)).events) == "auction_closed"


def test_a_paused_room_past_its_end_refuses_a_bid_as_paused_not_late() -> None:
    st = decide(state(), Pause("power cut", END - 1_000)).state
    assert reason(bid(st, "s1", 900_000, END + 5_000)[1]) == "auction_paused"


def test_fewer_than_three_valid_bidders_fail_the_auction() -> None:
    st, _ = bid(state(), "s1", 900_000, START)
    st, _ = bid(st, "s2", 890_000, START + 1)
    st = decide(st, Close(END)).state
    result = compute_result(st)
    assert result.failed and result.failure_reason == "too_few_bidders"
    assert result.winner_id is None
    assert phase_at(st, END) is Phase.FAILED


def test_the_result_ranks_by_price_then_order_and_computes_savings() -> None:
    st, _ = bid(state(), "s1", 900_000, START)
    st, _ = bid(st, "s2", 850_000, START + 1)
    st, _ = bid(st, "s3", 850_000, START + 2)
    st, _ = bid(st, "s1", 800_000, START + 3)
    st = decide(st, Close(END)).state
    result = compute_result(st)
    assert not result.failed
    assert [r.supplier_id for r in result.ranking] == ["s1", "s2", "s3"]
    assert result.winner_id == "s1" and result.winning_fen == 800_000
    assert result.savings_fen == 200_000 and result.savings_bp == 2_000


def test_evolve_rebuilds_the_same_state_from_the_events() -> None:
    st = sniping()
    replay = st
    commands = [
        PlaceBid("s1", "a", 900_000, START),
        PlaceBid("s2", "b", 899_000, END - 30_000),
        Pause("check", END - 29_000),
        Resume(END - 20_000),
        Invite(("s7",), END - 19_000),
        PlaceBid("s7", "c", 700_000, END - 18_000),
        Close(END + 1_000_000),
    ]
    for command in commands:
        d = decide(st, command)
        st = d.state
        for event in d.events:
            replay = evolve(replay, event)
    assert replay == st
    assert isinstance(decide(st, Close(END)).events[0], CommandRefused)
    assert isinstance(st, AuctionState) and st.closed
    assert isinstance(decide(state(), Pause("ok", START)).events[0], AuctionPaused)
