"""The pure opening session (DOMAIN.md §2, O87 34/39/41/42, 电子招标投标办法 27–31): every rule
and boundary, no event loop."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest

from bidroom.opening.session import (
    AnswerObjection,
    BackupCeremonyStarted,
    BackupPolicy,
    BackupRebuildFailed,
    BackupRebuilt,
    BidDecrypted,
    BidderInvited,
    BidReplaced,
    BidRevoked,
    BidsClosed,
    BidStatus,
    BidSubmitted,
    BidWithdrawn,
    CloseCeremony,
    CommandRefused,
    Confirm,
    Decision,
    DecryptionFailed,
    DecryptionWindowEnded,
    Event,
    Invite,
    MarkPlatformFault,
    Note,
    Noted,
    ObjectionAnswered,
    ObjectionRaised,
    OpeningFailed,
    OpeningSettings,
    OpeningState,
    Phase,
    PlatformFaultMarked,
    RaiseObjection,
    RecordBackupOpening,
    RecordBackupRebuild,
    RecordConfirmed,
    RecordDecryption,
    RecordRevealed,
    ReplaceBid,
    Reveal,
    ShareSubmitted,
    SignedIn,
    SignIn,
    StartCeremony,
    SubmitBid,
    SubmitShare,
    Tick,
    WithdrawBid,
    backup_openable,
    can_decrypt,
    can_open_with_backup,
    created,
    decide,
    event_from_dict,
    event_to_dict,
    next_due,
    phase_at,
    replay,
    settings_from_dict,
    validate_settings,
)

MIN = 60_000
DEADLINE = 1_900_000_000_000
WINDOW_END = DEADLINE + 30 * MIN
SIGN_IN = DEADLINE - 30 * MIN
SUPPLIERS = ("s1", "s2", "s3", "s4", "s5")
FORM = {"total_price_fen": 12_345_600, "delivery_days": 30, "warranty_months": 24, "items": []}
SIGNER = {"org_id": "s1", "name": "供应商1", "serial": "1f"}


def digest(n: int) -> str:
    return f"{n:064x}"


def opening(**overrides: object) -> OpeningState:
    settings = replace(OpeningSettings(opening_id="opn_1", deadline_ms=DEADLINE),
                       **overrides)  # type: ignore[arg-type]
    assert validate_settings(settings) == []
    return replay([created(settings, SUPPLIERS, DEADLINE - DAY)])


DAY = 24 * 60 * MIN


def run(state: OpeningState, *commands: object) -> tuple[OpeningState, list[object]]:
    events: list[object] = []
    for command in commands:
        decision = decide(state, command)  # type: ignore[arg-type]
        state = decision.state
        events.extend(decision.events)
    return state, events


def refused(decision: Decision) -> str | None:
    return None if decision.refusal is None else decision.refusal.reason


def with_bids(n: int = 5, **overrides: object) -> OpeningState:
    state = opening(**overrides)
    for i, supplier in enumerate(SUPPLIERS[:n]):
        state = decide(state, SubmitBid(supplier, digest(i + 1), 1000, DEADLINE - DAY + i)).state
    return state


def opened(n: int = 5, signed: tuple[str, ...] = SUPPLIERS, **overrides: object) -> OpeningState:
    """Bids in, deadline passed, the given bidders signed in."""
    state = with_bids(n, **overrides)
    state = decide(state, Tick(DEADLINE)).state
    for supplier in signed[:n]:
        state = decide(state, SignIn(supplier, DEADLINE + 1)).state
    return state


def decrypted(state: OpeningState, *suppliers: str, at: int = DEADLINE + MIN) -> OpeningState:
    for supplier in suppliers:
        decision = decide(state, RecordDecryption(supplier, True, at,
                                                  form={**FORM, "who": supplier},
                                                  signer={**SIGNER, "org_id": supplier}))
        assert refused(decision) is None, decision
        state = decision.state
    return state


# ---------------------------------------------------------------------------- settings


def test_settings_default_to_a_30_minute_window_and_three_bids() -> None:
    s = OpeningSettings(opening_id="opn_1", deadline_ms=DEADLINE)

    assert s.decryption_window_ms == 30 * MIN
    assert s.min_bids == 3
    assert s.window_ends_ms == WINDOW_END


def test_settings_round_trip_through_a_dict_with_a_backup_policy() -> None:
    s = OpeningSettings(opening_id="opn_1", deadline_ms=DEADLINE,
                        backup=BackupPolicy(2, ("usr_a", "usr_b", "usr_c")))

    again, problems = settings_from_dict(s.to_dict())

    assert problems == []
    assert again == s


def test_every_settings_problem_is_reported_at_once() -> None:
    settings, problems = settings_from_dict({
        "opening_id": "opn_1", "deadline_ms": 1.5, "min_bids": "3", "colour": "red",
        "backup": {"k": 1, "officials": ["a"]},
    })

    assert settings is None
    assert {(p.code, p.field) for p in problems} >= {
        ("invalid_field", "deadline_ms"), ("invalid_field", "min_bids"),
        ("unknown_field", "colour")}


def test_a_backup_key_needs_at_least_two_of_two_distinct_officials() -> None:
    def codes(k: int, officials: tuple[str, ...]) -> set[str]:
        s = OpeningSettings(opening_id="o", deadline_ms=DEADLINE, backup=BackupPolicy(k, officials))
        return {p.code for p in validate_settings(s)}

    assert codes(1, ("a", "b", "c")) == {"threshold_too_low"}  # one person could rebuild it
    assert codes(0, ("a", "b", "c")) == {"threshold_too_low"}
    assert codes(2, ("a",)) == {"invalid_backup"}
    assert codes(3, ("a", "b")) == {"invalid_backup"}
    assert codes(2, ("a", "a", "b")) == {"duplicate_official"}
    assert codes(2, ("a", "b", "c")) == set()


def test_a_decryption_window_shorter_than_a_minute_is_refused() -> None:
    s = OpeningSettings(opening_id="o", deadline_ms=DEADLINE, decryption_window_ms=59_999)

    assert [p.field for p in validate_settings(s)] == ["decryption_window_ms"]


# ---------------------------------------------------------------------------- bidding (O87 34)


def test_an_upload_completed_one_millisecond_before_the_deadline_is_accepted() -> None:
    decision = decide(opening(), SubmitBid("s1", digest(1), 500, DEADLINE - 1))

    assert decision.events == (BidSubmitted(2, "s1", digest(1), 500, DEADLINE - 1),)
    assert decision.state.bids["s1"].status is BidStatus.SEALED


def test_an_upload_completed_at_the_deadline_instant_is_refused() -> None:
    decision = decide(opening(), SubmitBid("s1", digest(1), 500, DEADLINE))

    assert refused(decision) == "deadline_passed"
    assert "s1" not in decision.state.bids


def test_an_upload_one_millisecond_after_the_deadline_is_refused() -> None:
    assert refused(decide(opening(), SubmitBid("s1", digest(1), 500, DEADLINE + 1))) == (
        "deadline_passed")


def test_only_invited_suppliers_may_bid() -> None:
    assert refused(decide(opening(), SubmitBid("x9", digest(1), 1, DEADLINE - 5))) == (
        "not_invited")


def test_a_supplier_invited_before_the_deadline_may_bid_and_is_in_the_replayed_log() -> None:
    state, events = run(opening(), Invite("x9", "platform", DEADLINE - 1),
                        SubmitBid("x9", digest(9), 1000, DEADLINE - 1))
    assert isinstance(events[0], BidderInvited) and events[0].supplier_id == "x9"
    assert isinstance(events[1], BidSubmitted)
    assert "x9" in state.invited
    log = [created(opening().settings, SUPPLIERS, DEADLINE - DAY),
           *(event_from_dict(event_to_dict(e)) for e in events)]  # type: ignore[arg-type]
    assert replay(log) == state


def test_inviting_at_the_deadline_or_twice_is_refused() -> None:
    assert refused(decide(opening(), Invite("x9", "platform", DEADLINE))) == "deadline_passed"
    assert refused(decide(decide(opening(), Tick(DEADLINE)).state,
                          Invite("x9", "platform", DEADLINE - 1))) == "deadline_passed"
    assert refused(decide(opening(), Invite("s1", "platform", DEADLINE - 1))) == (
        "already_invited")


def test_a_bid_may_be_replaced_and_withdrawn_until_the_deadline() -> None:
    state, events = run(
        opening(),
        SubmitBid("s1", digest(1), 10, DEADLINE - 100),
        ReplaceBid("s1", digest(2), 20, DEADLINE - 50),
        WithdrawBid("s1", DEADLINE - 1),
    )

    assert events == [
        BidSubmitted(2, "s1", digest(1), 10, DEADLINE - 100),
        BidReplaced(3, "s1", digest(2), 20, digest(1), DEADLINE - 50),
        BidWithdrawn(4, "s1", digest(2), DEADLINE - 1),
    ]
    assert state.bids == {}


def test_replacing_or_withdrawing_at_the_deadline_is_refused() -> None:
    state = decide(opening(), SubmitBid("s1", digest(1), 10, DEADLINE - 100)).state

    assert refused(decide(state, ReplaceBid("s1", digest(2), 10, DEADLINE))) == (
        "deadline_passed")
    assert refused(decide(state, WithdrawBid("s1", DEADLINE))) == "deadline_passed"


def test_submitting_twice_replacing_nothing_and_replacing_with_the_same_file_are_refused() -> None:
    state = decide(opening(), SubmitBid("s1", digest(1), 10, DEADLINE - 100)).state

    assert refused(decide(state, SubmitBid("s1", digest(2), 10, DEADLINE - 9))) == (
        "already_submitted")
    assert refused(decide(state, ReplaceBid("s2", digest(2), 10, DEADLINE - 9))) == "no_bid"
    assert refused(decide(state, ReplaceBid("s1", digest(1), 10, DEADLINE - 9))) == "same_bid"
    assert refused(decide(state, WithdrawBid("s2", DEADLINE - 9))) == "no_bid"


def test_a_bid_larger_than_the_setting_or_with_a_bad_digest_is_refused() -> None:
    state = opening(max_bid_bytes=2048)

    assert refused(decide(state, SubmitBid("s1", digest(1), 2049, DEADLINE - 9))) == (
        "bid_too_large")
    assert refused(decide(state, SubmitBid("s1", "XYZ", 10, DEADLINE - 9))) == "invalid_digest"


# ---------------------------------------------------------------------------- the deadline


def test_the_deadline_closes_the_bids_in_upload_order_and_opens_the_window() -> None:
    state = with_bids(3)

    decision = decide(state, Tick(DEADLINE))

    assert decision.events == (BidsClosed(5, DEADLINE, DEADLINE, ("s1", "s2", "s3"),
                                          WINDOW_END),)
    assert phase_at(decision.state, DEADLINE) is Phase.DECRYPTION
    assert next_due(decision.state) == WINDOW_END


def test_a_tick_before_the_deadline_changes_nothing() -> None:
    state = with_bids(3)

    assert decide(state, Tick(DEADLINE - 1)).events == ()
    assert next_due(state) == DEADLINE


def test_fewer_than_three_bids_at_the_deadline_means_no_opening() -> None:
    state = with_bids(2)

    decision = decide(state, Tick(DEADLINE + 5))

    assert [type(e) for e in decision.events] == [BidsClosed, OpeningFailed]
    assert decision.events[1] == OpeningFailed(5, DEADLINE + 5, "too_few_bids", 2)
    assert phase_at(decision.state, DEADLINE + 5) is Phase.FAILED
    assert next_due(decision.state) is None
    assert refused(decide(decision.state, SignIn("s1", DEADLINE + 6))) == "opening_failed"
    assert refused(decide(decision.state, Reveal("usr_a", DEADLINE + 6))) == "opening_failed"


def test_the_minimum_number_of_bids_is_a_setting() -> None:
    state = with_bids(2, min_bids=2)

    assert not decide(state, Tick(DEADLINE)).state.failed


def test_a_withdrawn_bid_does_not_count_at_the_deadline() -> None:
    state, _ = run(with_bids(3), WithdrawBid("s3", DEADLINE - 1), Tick(DEADLINE))

    assert state.failed and state.bidders == ("s1", "s2")


def test_any_command_after_the_deadline_applies_the_deadline_first() -> None:
    decision = decide(with_bids(3), SignIn("s1", DEADLINE + 3))

    assert [type(e) for e in decision.events] == [BidsClosed, SignedIn]


def test_the_phases_follow_the_clock() -> None:
    state = with_bids(3)

    assert phase_at(state, SIGN_IN - 1) is Phase.SCHEDULED
    assert phase_at(state, SIGN_IN) is Phase.SIGN_IN
    assert phase_at(state, DEADLINE - 1) is Phase.SIGN_IN
    assert phase_at(state, DEADLINE) is Phase.DECRYPTION
    assert phase_at(state, WINDOW_END) is Phase.WINDOW_CLOSED


# ---------------------------------------------------------------------------- sign-in


def test_sign_in_opens_the_set_time_before_the_deadline_for_bidders_only() -> None:
    state = with_bids(3)

    assert refused(decide(state, SignIn("s1", SIGN_IN - 1))) == "sign_in_not_open"
    assert decide(state, SignIn("s1", SIGN_IN)).events == (SignedIn(5, "s1", SIGN_IN),)
    assert refused(decide(state, SignIn("s5", SIGN_IN))) == "not_a_bidder"
    signed = decide(state, SignIn("s1", SIGN_IN)).state
    assert refused(decide(signed, SignIn("s1", SIGN_IN + 1))) == "already_signed_in"


def test_sign_in_closes_with_the_decryption_window() -> None:
    state = decide(with_bids(3), Tick(DEADLINE)).state

    assert refused(decide(state, SignIn("s1", WINDOW_END))) == "sign_in_closed"


# ---------------------------------------------------------------------------- decryption


def test_nobody_can_decrypt_before_the_deadline() -> None:
    state = decide(with_bids(3), SignIn("s1", SIGN_IN)).state

    assert can_decrypt(state, "s1", DEADLINE - 1) == "decryption_not_open"
    assert refused(decide(state, RecordDecryption("s1", True, DEADLINE - 1, form=FORM,
                                                  signer=SIGNER))) == "decryption_not_open"


def test_a_bidder_must_sign_in_before_decrypting() -> None:
    state = decide(with_bids(3), Tick(DEADLINE)).state

    assert can_decrypt(state, "s1", DEADLINE + 1) == "not_signed_in"


def test_a_decrypted_bid_keeps_its_form_hidden_in_the_state_until_the_reveal() -> None:
    state = decrypted(opened(3), "s1")

    bid = state.bids["s1"]
    assert bid.status is BidStatus.DECRYPTED
    assert bid.form is not None and bid.form["total_price_fen"] == 12_345_600
    assert state.record is None
    assert can_decrypt(state, "s1", DEADLINE + 2 * MIN) == "already_decrypted"


def test_a_failed_decryption_is_recorded_and_may_be_retried_within_the_window() -> None:
    state = opened(3)

    state, events = run(
        state,
        RecordDecryption("s1", False, DEADLINE + MIN, reason="bad_key_or_tampered"),
        RecordDecryption("s1", False, DEADLINE + 2 * MIN, reason="bad_signature"),
    )

    assert events == [
        DecryptionFailed(9, "s1", DEADLINE + MIN, "bad_key_or_tampered", 1),
        DecryptionFailed(10, "s1", DEADLINE + 2 * MIN, "bad_signature", 2),
    ]
    state = decrypted(state, "s1", at=WINDOW_END - 1)
    assert state.bids["s1"].status is BidStatus.DECRYPTED
    assert state.bids["s1"].attempts == 2


def test_decrypting_at_the_end_of_the_window_is_too_late_and_the_bid_is_revoked() -> None:
    state = opened(3)

    decision = decide(state, RecordDecryption("s1", True, WINDOW_END, form=FORM, signer=SIGNER))

    assert [type(e) for e in decision.events] == [
        DecryptionWindowEnded, BidRevoked, BidRevoked, BidRevoked, CommandRefused]
    assert refused(decision) == "window_closed"
    assert decision.state.bids["s1"].status is BidStatus.REVOKED
    assert decision.state.bids["s1"].reason == "revoked_by_bidder"


def test_the_window_end_revokes_only_the_bids_still_sealed() -> None:
    state = decrypted(opened(5), "s1", "s2", "s3")
    state = decide(state, MarkPlatformFault("s5", "CA 服务中断", "usr_agency",
                                            DEADLINE + 5 * MIN)).state

    decision = decide(state, Tick(WINDOW_END))

    assert [e for e in decision.events if isinstance(e, BidRevoked)] == [
        BidRevoked(decision.state.seq, "s4", WINDOW_END, "revoked_by_bidder")]
    statuses = {s: b.status for s, b in decision.state.bids.items()}
    assert statuses == {"s1": BidStatus.DECRYPTED, "s2": BidStatus.DECRYPTED,
                        "s3": BidStatus.DECRYPTED, "s4": BidStatus.REVOKED,
                        "s5": BidStatus.WITHDRAWN}
    assert next_due(decision.state) is None


# ---------------------------------------------------------------------------- platform fault


def test_the_agency_may_mark_a_platform_fault_which_withdraws_the_bid() -> None:
    state = opened(3)

    decision = decide(state, MarkPlatformFault("s2", "平台故障", "usr_agency", DEADLINE + MIN))

    assert decision.events == (PlatformFaultMarked(9, "s2", DEADLINE + MIN, "平台故障",
                                                   "usr_agency"),)
    bid = decision.state.bids["s2"]
    assert (bid.status, bid.reason) == (BidStatus.WITHDRAWN, "withdrawn_platform_fault")
    assert can_decrypt(decision.state, "s2", DEADLINE + 2 * MIN) == "bid_withdrawn"


def test_a_platform_fault_may_still_be_found_after_the_window_but_not_after_the_reveal() -> None:
    state = decide(decrypted(opened(3), "s1", "s2"), Tick(WINDOW_END)).state
    assert state.bids["s3"].status is BidStatus.REVOKED

    after = decide(state, MarkPlatformFault("s3", "断网", "usr_agency", WINDOW_END + 1)).state
    assert after.bids["s3"].status is BidStatus.WITHDRAWN

    revealed = decide(after, Reveal("usr_agency", WINDOW_END + 2)).state
    assert refused(decide(revealed, MarkPlatformFault("s1", "x", "u", WINDOW_END + 3))) == (
        "record_revealed")


def test_a_platform_fault_needs_a_reason_and_an_undecrypted_bid() -> None:
    state = decrypted(opened(3), "s1")

    assert refused(decide(state, MarkPlatformFault("s2", "  ", "u", DEADLINE + 2 * MIN))) == (
        "reason_required")
    assert refused(decide(state, MarkPlatformFault("s1", "x", "u", DEADLINE + 2 * MIN))) == (
        "already_decrypted")
    assert refused(decide(with_bids(3), MarkPlatformFault("s1", "x", "u", DEADLINE - 1))) == (
        "decryption_not_open")


# ---------------------------------------------------------------------------- 唱标


def test_the_record_cannot_be_revealed_while_bids_are_still_sealed_in_the_window() -> None:
    state = decrypted(opened(3), "s1", "s2")

    assert refused(decide(state, Reveal("usr_agency", DEADLINE + 10 * MIN))) == (
        "decryption_in_progress")


def test_the_record_is_revealed_once_every_bid_is_decrypted_or_withdrawn() -> None:
    state = decrypted(opened(3), "s1", "s2")
    state = decide(state, MarkPlatformFault("s3", "平台故障", "usr_agency",
                                            DEADLINE + 3 * MIN)).state

    decision = decide(state, Reveal("usr_agency", DEADLINE + 4 * MIN))

    assert refused(decision) is None
    revealed = decision.events[0]
    assert isinstance(revealed, RecordRevealed)
    record = revealed.record
    assert [e["supplier_id"] for e in record["opened"]] == ["s1", "s2"]
    assert record["opened"][0]["form"]["total_price_fen"] == 12_345_600
    assert [(e["supplier_id"], e["status"], e["status_zh"]) for e in record["not_opened"]] == [
        ("s3", "withdrawn", "撤回")]
    assert revealed.objection_ends_ms == DEADLINE + 4 * MIN + 15 * MIN
    assert phase_at(decision.state, DEADLINE + 4 * MIN) is Phase.OBJECTIONS


def test_after_the_window_the_record_shows_exactly_the_decrypted_bids() -> None:
    state = decrypted(opened(5), "s1", "s2", "s3")
    state = decide(state, MarkPlatformFault("s5", "CA 故障", "usr_agency",
                                            DEADLINE + 5 * MIN)).state

    state, _ = run(state, Tick(WINDOW_END), Reveal("usr_agency", WINDOW_END + 1))

    record = state.record
    assert record is not None
    assert [e["supplier_id"] for e in record["opened"]] == ["s1", "s2", "s3"]
    assert {e["supplier_id"]: e["status_zh"] for e in record["not_opened"]} == {
        "s4": "撤销", "s5": "撤回"}


def test_the_record_is_revealed_once() -> None:
    state = decide(decrypted(opened(3), "s1", "s2", "s3"), Reveal("a", DEADLINE + 5 * MIN)).state

    assert refused(decide(state, Reveal("a", DEADLINE + 6 * MIN))) == "already_revealed"
    assert refused(decide(with_bids(3), Reveal("a", DEADLINE - 1))) == "decryption_not_open"


# ---------------------------------------------------------------------------- objections (O87 42)


def _all_decrypted() -> OpeningState:
    return decrypted(opened(3), "s1", "s2", "s3")


def revealed_at(at: int = DEADLINE + 5 * MIN) -> OpeningState:
    return decide(_all_decrypted(), Reveal("usr_agency", at)).state


def test_bidders_raise_objections_within_the_window_and_the_agency_answers() -> None:
    state = revealed_at()
    ends = state.objection_ends_ms
    assert ends is not None

    state, events = run(
        state,
        RaiseObjection("s2", "供应商1的报价单位有误", ends - 1),
        AnswerObjection(1, "经核对，报价单位为元，无误", "usr_agency", ends + 10),
    )

    assert [type(e) for e in events] == [ObjectionRaised, ObjectionAnswered]
    assert state.objections[0].answer == "经核对，报价单位为元，无误"
    assert refused(decide(state, RaiseObjection("s3", "迟到的异议", ends))) == (
        "objection_window_closed")


def test_objections_are_for_bidders_after_the_reveal() -> None:
    assert refused(decide(_all_decrypted(), RaiseObjection("s1", "x", DEADLINE + 9 * MIN))) == (
        "not_revealed")
    assert refused(decide(revealed_at(), RaiseObjection("s5", "x", DEADLINE + 6 * MIN))) == (
        "not_a_bidder")
    assert refused(decide(revealed_at(), RaiseObjection("s1", " ", DEADLINE + 6 * MIN))) == (
        "text_required")


def test_an_objection_is_answered_once_and_an_unknown_one_is_refused() -> None:
    state = decide(revealed_at(), RaiseObjection("s1", "异议", DEADLINE + 6 * MIN)).state
    state = decide(state, AnswerObjection(1, "答复", "a", DEADLINE + 7 * MIN)).state

    assert refused(decide(state, AnswerObjection(1, "again", "a", DEADLINE + 8 * MIN))) == (
        "already_answered")
    assert refused(decide(state, AnswerObjection(7, "?", "a", DEADLINE + 8 * MIN))) == (
        "unknown_objection")


# ---------------------------------------------------------------------------- confirmation


def test_the_record_is_confirmed_after_the_objection_window_with_every_objection_answered() -> None:
    state = decide(revealed_at(), RaiseObjection("s1", "异议", DEADLINE + 6 * MIN)).state
    ends = state.objection_ends_ms
    assert ends is not None

    assert refused(decide(state, Confirm("a", ends - 1))) == "objections_unanswered"
    state = decide(state, AnswerObjection(1, "答复", "a", ends - 1)).state
    assert refused(decide(state, Confirm("a", ends - 1))) == "objection_window_open"

    decision = decide(state, Confirm("a", ends))
    assert [type(e) for e in decision.events] == [RecordConfirmed]
    assert phase_at(decision.state, ends) is Phase.CONCLUDED
    assert refused(decide(decision.state, Confirm("a", ends + 1))) == "already_confirmed"
    assert refused(decide(decision.state, RaiseObjection("s1", "x", ends + 1))) == (
        "already_confirmed")


def test_absent_bidders_are_deemed_to_accept_the_record() -> None:
    state = with_bids(3)
    state = decide(state, Tick(DEADLINE)).state
    state = decide(state, SignIn("s1", DEADLINE + 1)).state
    state = decrypted(state, "s1")
    state = decide(state, Tick(WINDOW_END)).state
    state = decide(state, Reveal("a", WINDOW_END)).state

    decision = decide(state, Confirm("a", WINDOW_END + 15 * MIN))

    assert decision.events == (RecordConfirmed(decision.state.seq, WINDOW_END + 15 * MIN, "a",
                                               ("s2", "s3")),)


def test_confirming_before_the_reveal_is_refused() -> None:
    assert refused(decide(_all_decrypted(), Confirm("a", DEADLINE + 9 * MIN))) == "not_revealed"


# ---------------------------------------------------------------------------- the backup key


def backup_opening() -> OpeningState:
    state = opened(3, backup=BackupPolicy(2, ("o1", "o2", "o3")))
    state = decrypted(state, "s1", "s2")
    return decide(state, MarkPlatformFault("s3", "CA 中断", "a", DEADLINE + 2 * MIN)).state


def in_ceremony(state: OpeningState, ceremony_id: str = "c1",
                replaces: str | None = None) -> OpeningState:
    """After the window, a ceremony started by process "p1"."""
    state = decide(state, Tick(WINDOW_END)).state
    decision = decide(state, StartCeremony(ceremony_id, "cHVibGlj", "p1", replaces,
                                           WINDOW_END))
    assert decision.refusal is None, decision.refusal
    return decision.state


def test_shares_are_refused_before_the_decryption_window_ends() -> None:
    state = backup_opening()

    assert refused(decide(state, SubmitShare("o1", WINDOW_END - 1))) == "window_open"


def test_k_minus_one_shares_do_not_rebuild_and_k_shares_do() -> None:
    state = in_ceremony(backup_opening())

    state, events = run(state, SubmitShare("o1", WINDOW_END + 1, "c1"))
    assert events == [ShareSubmitted(state.seq, "o1", WINDOW_END + 1, 1, 2, "c1")]
    assert refused(decide(state, RecordBackupRebuild(True, WINDOW_END + 2))) == (
        "not_enough_shares")

    state = decide(state, SubmitShare("o3", WINDOW_END + 3, "c1")).state
    decision = decide(state, RecordBackupRebuild(True, WINDOW_END + 4))
    assert decision.events == (BackupRebuilt(decision.state.seq, WINDOW_END + 4, ("o1", "o3")),)
    assert refused(decide(decision.state, SubmitShare("o2", WINDOW_END + 5, "c1"))) == (
        "rebuild_in_progress")
    closed = decide(decision.state, CloseCeremony("c1", ("s3",), (), WINDOW_END + 6))
    assert closed.state.ceremony is None and closed.state.backup_closed_at_ms == WINDOW_END + 6
    assert refused(decide(closed.state, SubmitShare("o2", WINDOW_END + 7, "c1"))) == (
        "already_rebuilt")


def test_only_named_officials_submit_shares_once_each() -> None:
    state = in_ceremony(backup_opening())
    state = decide(state, SubmitShare("o1", WINDOW_END + 1, "c1")).state

    assert refused(decide(state, SubmitShare("o1", WINDOW_END + 2, "c1"))) == (
        "share_already_submitted")
    assert refused(decide(state, SubmitShare("eve", WINDOW_END + 2, "c1"))) == "not_an_official"
    assert refused(decide(opened(3), SubmitShare("o1", WINDOW_END + 2, "c1"))) == "no_backup"


def test_a_failed_rebuild_discards_the_shares() -> None:
    state = in_ceremony(backup_opening())
    state, _ = run(state, SubmitShare("o1", WINDOW_END + 1, "c1"),
                   SubmitShare("o2", WINDOW_END + 2, "c1"))

    decision = decide(state, RecordBackupRebuild(False, WINDOW_END + 3, "bad_share"))

    assert isinstance(decision.events[0], BackupRebuildFailed)
    assert decision.state.shares_submitted == frozenset()
    assert decision.state.ceremony is None  # the ceremony ends with its submissions
    assert refused(decide(decision.state, SubmitShare("o1", WINDOW_END + 4, "c1"))) == (
        "ceremony_restarted")
    again = decide(decision.state, StartCeremony("c2", "cHVi", "p1", None, WINDOW_END + 4))
    assert refused(decide(again.state, SubmitShare("o1", WINDOW_END + 4, "c2"))) is None


def test_the_backup_key_opens_only_bids_withdrawn_for_a_platform_fault() -> None:
    state = in_ceremony(backup_opening())
    state, _ = run(state, SubmitShare("o1", WINDOW_END + 1, "c1"),
                   SubmitShare("o2", WINDOW_END + 2, "c1"),
                   RecordBackupRebuild(True, WINDOW_END + 3))

    assert refused(decide(state, RecordBackupOpening("s1", FORM, SIGNER, WINDOW_END + 4))) == (
        "not_withdrawn_for_fault")
    decision = decide(state, RecordBackupOpening("s3", FORM, SIGNER, WINDOW_END + 4))
    event = decision.events[0]
    assert isinstance(event, BidDecrypted) and event.by_backup
    state = decide(decision.state, Reveal("a", WINDOW_END + 5)).state
    assert state.record is not None
    assert [(e["supplier_id"], e["by_backup"]) for e in state.record["opened"]] == [
        ("s1", False), ("s2", False), ("s3", True)]


def test_a_bidders_own_fault_stays_revoked_even_with_the_backup_key() -> None:
    state = opened(3, backup=BackupPolicy(2, ("o1", "o2")))
    state = in_ceremony(decrypted(state, "s1", "s2"))
    state, _ = run(state, SubmitShare("o1", WINDOW_END + 1, "c1"),
                   SubmitShare("o2", WINDOW_END + 2, "c1"),
                   RecordBackupRebuild(True, WINDOW_END + 3))

    assert refused(decide(state, RecordBackupOpening("s3", FORM, SIGNER, WINDOW_END + 4))) == (
        "not_withdrawn_for_fault")


def test_the_backup_key_cannot_be_used_before_it_is_rebuilt() -> None:
    state = in_ceremony(backup_opening())

    assert refused(decide(state, RecordBackupOpening("s3", FORM, SIGNER, WINDOW_END + 4))) == (
        "backup_not_rebuilt")


def test_a_share_counts_only_for_the_ceremony_it_was_sealed_to() -> None:
    state = in_ceremony(backup_opening())
    state = decide(state, SubmitShare("o1", WINDOW_END + 1, "c1")).state

    assert refused(decide(state, SubmitShare("o2", WINDOW_END + 2, "c0"))) == (
        "ceremony_restarted")
    no_ceremony = decide(backup_opening(), Tick(WINDOW_END)).state
    assert refused(decide(no_ceremony, SubmitShare("o1", WINDOW_END + 1, ""))) == (
        "ceremony_restarted")


def test_a_restart_voids_the_lost_ceremonys_submissions_and_says_whose() -> None:
    state = in_ceremony(backup_opening())
    state = decide(state, SubmitShare("o1", WINDOW_END + 1, "c1")).state

    # Only a restart of the current ceremony is taken (two processes racing: one wins).
    assert refused(decide(state, StartCeremony("c2", "cHVi", "p2", None, WINDOW_END + 2))) == (
        "ceremony_changed")
    assert refused(decide(state, StartCeremony("c2", "cHVi", "p2", "c0", WINDOW_END + 2))) == (
        "ceremony_changed")
    decision = decide(state, StartCeremony("c2", "cHVi", "p2", "c1", WINDOW_END + 2))
    event = decision.events[0]
    assert isinstance(event, BackupCeremonyStarted) and event.discarded == ("o1",)
    state = decision.state
    assert state.shares_submitted == frozenset() and state.resubmit == {"o1"}
    assert state.ceremony is not None and state.ceremony.holder == "p2"
    assert state.ceremony_restarts == 1
    state = decide(state, SubmitShare("o1", WINDOW_END + 3, "c2")).state
    assert state.resubmit == frozenset() and state.shares_submitted == {"o1"}


def test_a_rebuild_whose_holder_was_lost_before_closing_can_be_restarted() -> None:
    state = in_ceremony(backup_opening())
    state, _ = run(state, SubmitShare("o1", WINDOW_END + 1, "c1"),
                   SubmitShare("o2", WINDOW_END + 2, "c1"),
                   RecordBackupRebuild(True, WINDOW_END + 3))

    state = decide(state, StartCeremony("c2", "cHVi", "p2", "c1", WINDOW_END + 4)).state

    assert state.backup_rebuilt_at_ms is None and state.resubmit == {"o1", "o2"}
    state, _ = run(state, SubmitShare("o2", WINDOW_END + 5, "c2"),
                   SubmitShare("o3", WINDOW_END + 5, "c2"),
                   RecordBackupRebuild(True, WINDOW_END + 6),
                   RecordBackupOpening("s3", FORM, SIGNER, WINDOW_END + 7),
                   CloseCeremony("c2", ("s3",), (), WINDOW_END + 7))
    assert state.bids["s3"].by_backup and state.backup_closed_at_ms == WINDOW_END + 7
    assert refused(decide(state, StartCeremony("c3", "cHVi", "p3", None, WINDOW_END + 8))) == (
        "already_rebuilt")


def test_the_backup_path_never_opens_a_revoked_or_a_supplier_withdrawn_bid() -> None:
    state = with_bids(4, backup=BackupPolicy(2, ("o1", "o2")))
    state = decide(state, WithdrawBid("s4", DEADLINE - 1)).state  # 撤回 by its supplier
    state = decide(state, Tick(DEADLINE)).state
    state = decide(state, SignIn("s1", DEADLINE + 1)).state
    state = decrypted(state, "s1")
    state = decide(state, MarkPlatformFault("s3", "CA 中断", "a", DEADLINE + 2 * MIN)).state
    state = in_ceremony(state)  # s2 is revoked (撤销) at the window's end
    assert state.bids["s2"].status is BidStatus.REVOKED

    assert backup_openable(state) == ("s3",)
    assert can_open_with_backup(state, "s2") == "not_withdrawn_for_fault"
    assert can_open_with_backup(state, "s4") == "not_a_bidder"
    assert can_open_with_backup(state, "s1") == "not_withdrawn_for_fault"
    state, _ = run(state, SubmitShare("o1", WINDOW_END + 1, "c1"),
                   SubmitShare("o2", WINDOW_END + 2, "c1"),
                   RecordBackupRebuild(True, WINDOW_END + 3))
    for supplier in ("s2", "s4"):
        assert refused(decide(state, RecordBackupOpening(supplier, FORM, SIGNER,
                                                         WINDOW_END + 4))) in (
            "not_withdrawn_for_fault", "not_a_bidder")


# ---------------------------------------------------------------------------- the log


def test_notes_keep_a_step_in_the_log_and_change_nothing_else() -> None:
    state = with_bids(3)

    decision = decide(state, Note("key_issued", {"supplier_id": "s1"}, DEADLINE - 2))

    assert decision.events == (Noted(state.seq + 1, DEADLINE - 2, "key_issued",
                                     {"supplier_id": "s1"}),)
    assert replace(decision.state, seq=state.seq) == state


def test_every_event_round_trips_through_its_dict_and_replaying_gives_the_same_state() -> None:
    state = with_bids(5, backup=BackupPolicy(2, ("o1", "o2", "o3")))
    log: list[Event] = [created(state.settings, SUPPLIERS, DEADLINE - DAY)]
    commands = [
        SubmitBid("s2", digest(2), 10, DEADLINE - 20),
        SubmitBid("s3", digest(3), 10, DEADLINE - 20),
        SubmitBid("s1", digest(1), 10, DEADLINE - 10), WithdrawBid("s1", DEADLINE - 9),
        SubmitBid("s1", digest(9), 10, DEADLINE - 8), ReplaceBid("s1", digest(8), 11, DEADLINE - 7),
        SignIn("s2", SIGN_IN + 1), Tick(DEADLINE), SignIn("s1", DEADLINE + 1),
        SignIn("s3", DEADLINE + 1), RecordDecryption("s1", False, DEADLINE + 2, reason="bad_sig"),
        RecordDecryption("s1", True, DEADLINE + 3, form=FORM, signer=SIGNER),
        RecordDecryption("s2", True, DEADLINE + 3, form=FORM, signer=SIGNER),
        MarkPlatformFault("s3", "断网", "a", DEADLINE + 4), Tick(WINDOW_END),
        StartCeremony("c0", "cHVi", "p0", None, WINDOW_END),
        SubmitShare("o1", WINDOW_END + 1, "c0"),
        StartCeremony("c1", "cHVi", "p1", "c0", WINDOW_END + 1),
        SubmitShare("o1", WINDOW_END + 1, "c1"), SubmitShare("o2", WINDOW_END + 1, "c1"),
        RecordBackupRebuild(True, WINDOW_END + 2),
        RecordBackupOpening("s3", FORM, SIGNER, WINDOW_END + 3),
        CloseCeremony("c1", ("s3",), (), WINDOW_END + 3),
        Reveal("a", WINDOW_END + 4), RaiseObjection("s1", "异议", WINDOW_END + 5),
        AnswerObjection(1, "答复", "a", WINDOW_END + 6),
        Note("record_exported", {"format": "json"}, WINDOW_END + 7),
        Confirm("a", WINDOW_END + 4 + 15 * MIN),
    ]
    current = replay(log)
    for command in commands:
        decision = decide(current, command)  # type: ignore[arg-type]
        assert decision.refusal is None, (command, decision.refusal)
        log.extend(decision.events)
        current = decision.state

    stored = [event_from_dict(event_to_dict(e)) for e in log]

    assert stored == log
    assert replay(stored) == current
    assert [getattr(e, "seq", None) for e in stored] == list(range(1, len(stored) + 1))
    assert current.confirmed_at_ms is not None


def test_a_refusal_is_not_an_event_of_the_log() -> None:
    with pytest.raises(ValueError):
        event_to_dict(CommandRefused("x", "y"))
    with pytest.raises(ValueError):
        event_from_dict({"kind": "nonsense"})


def test_the_session_does_no_io_and_reads_no_clock() -> None:
    path = Path(__file__).resolve().parents[2] / "bidroom" / "opening" / "session.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])

    assert roots & {"asyncio", "redis", "sqlalchemy", "time", "datetime", "random", "os",
                    "secrets", "market", "web"} == set()


# ---------------------------------------------------------------------------- what the record says


def test_uploads_in_the_same_millisecond_keep_their_upload_order_not_the_supplier_ids() -> None:
    state = opening()
    # s3 completes first, s1 second, both in the same millisecond; then s2 replaces nothing.
    state, _ = run(state, SubmitBid("s3", digest(3), 10, DEADLINE - 5),
                   SubmitBid("s1", digest(1), 10, DEADLINE - 5),
                   SubmitBid("s2", digest(2), 10, DEADLINE - 5))

    decision = decide(state, Tick(DEADLINE))

    assert decision.state.bidders == ("s3", "s1", "s2")
    assert [decision.state.bids[s].upload_seq for s in ("s3", "s1", "s2")] == [2, 3, 4]


def test_a_replacement_in_the_same_millisecond_takes_its_own_place_in_the_order() -> None:
    state = opening()
    state, _ = run(state, SubmitBid("s1", digest(1), 10, DEADLINE - 9),
                   SubmitBid("s2", digest(2), 10, DEADLINE - 5),
                   ReplaceBid("s1", digest(7), 10, DEADLINE - 5),
                   SubmitBid("s3", digest(3), 10, DEADLINE - 5), Tick(DEADLINE))

    assert state.bidders == ("s2", "s1", "s3")


def test_the_bond_is_kept_for_a_revoked_bid_and_returned_for_a_withdrawn_one() -> None:
    state = decrypted(opened(4), "s1", "s2")
    state = decide(state, MarkPlatformFault("s4", "CA 服务中断", "usr_agency",
                                            DEADLINE + 5 * MIN)).state

    state, events = run(state, Tick(WINDOW_END), Reveal("usr_agency", WINDOW_END + 1))

    assert [e for e in events if isinstance(e, BidRevoked)] == [
        BidRevoked(state.seq - 1, "s3", WINDOW_END, "revoked_by_bidder", "may_be_kept")]
    assert {s: state.bids[s].bond for s in ("s1", "s2", "s3", "s4")} == {
        "s1": "ordinary", "s2": "ordinary", "s3": "may_be_kept", "s4": "returned"}
    record = state.record
    assert record is not None
    assert [(e["supplier_id"], e["bond"]) for e in record["opened"]] == [
        ("s1", "ordinary"), ("s2", "ordinary")]
    assert [(e["supplier_id"], e["status"], e["bond"]) for e in record["not_opened"]] == [
        ("s3", "revoked", "may_be_kept"), ("s4", "withdrawn", "returned")]


def test_a_revoked_bid_ruled_a_platform_fault_gets_its_bond_back() -> None:
    state = decide(decrypted(opened(3), "s1", "s2"), Tick(WINDOW_END)).state
    assert state.bids["s3"].bond == "may_be_kept"

    state = decide(state, MarkPlatformFault("s3", "断网", "usr_agency", WINDOW_END + 1)).state

    assert (state.bids["s3"].status, state.bids["s3"].bond) == (BidStatus.WITHDRAWN, "returned")


def test_the_agencys_stated_reason_for_a_fault_ruling_is_kept_on_the_bid_and_in_the_record(
) -> None:
    state = decrypted(opened(3, backup=BackupPolicy(2, ("o1", "o2"))), "s1")
    state, _ = run(state,
                   MarkPlatformFault("s2", "CA 服务中断 / CA down", "usr_agency", DEADLINE + MIN),
                   MarkPlatformFault("s3", "平台存储故障", "usr_agency", DEADLINE + 2 * MIN),
                   Tick(WINDOW_END),
                   StartCeremony("c1", "cHVibGlj", "p1", None, WINDOW_END),
                   SubmitShare("o1", WINDOW_END + 1, "c1"),
                   SubmitShare("o2", WINDOW_END + 2, "c1"),
                   RecordBackupRebuild(True, WINDOW_END + 3),
                   RecordBackupOpening("s3", FORM, SIGNER, WINDOW_END + 4),
                   Reveal("usr_agency", WINDOW_END + 5))

    assert state.bids["s2"].ruling == {"kind": "platform_fault",
                                       "reason": "CA 服务中断 / CA down", "by": "usr_agency",
                                       "at_ms": DEADLINE + MIN}
    record = state.record
    assert record is not None
    assert record["not_opened"][0]["ruling"]["reason"] == "CA 服务中断 / CA down"
    # opened by the backup key afterwards: the ruling stays, the bond follows the bid.
    s3 = next(e for e in record["opened"] if e["supplier_id"] == "s3")
    assert (s3["by_backup"], s3["bond"], s3["ruling"]["reason"]) == (True, "ordinary",
                                                                       "平台存储故障")
    s1 = next(e for e in record["opened"] if e["supplier_id"] == "s1")
    assert s1["ruling"] is None


def test_a_bidder_kept_out_by_a_platform_fault_is_not_deemed_to_accept() -> None:
    state = with_bids(3)
    state, _ = run(state, Tick(DEADLINE), SignIn("s1", DEADLINE + 1))
    state = decrypted(state, "s1")
    state, _ = run(state, MarkPlatformFault("s2", "签到服务中断", "usr_agency", DEADLINE + 2),
                   Tick(WINDOW_END), Reveal("a", WINDOW_END))

    decision = decide(state, Confirm("a", WINDOW_END + 15 * MIN))

    confirmed = decision.events[-1]
    assert isinstance(confirmed, RecordConfirmed)
    assert confirmed.deemed_accepted == ("s3",)
    assert confirmed.platform_fault == ("s2",)
    assert event_from_dict(event_to_dict(confirmed)) == confirmed


def test_an_old_log_without_the_new_fields_still_replays() -> None:
    state = with_bids(3)
    state, events = run(state, Tick(DEADLINE),
                        MarkPlatformFault("s2", "断网", "a", DEADLINE + 1), Tick(WINDOW_END))
    old = []
    for event in events:
        data = event_to_dict(event)  # type: ignore[arg-type]
        data.pop("bond", None)
        old.append(event_from_dict(data))

    assert [getattr(e, "bond", None) for e in old if isinstance(e, BidRevoked
                                                                | PlatformFaultMarked)] == [
        "returned", "may_be_kept", "may_be_kept"]
