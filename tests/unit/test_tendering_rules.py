"""The tendering rules without I/O: registration exactly in the open states before the deadline,
the bond's forms (Reg 33), downloads after the documents' issue (O87 18), refund due dates
(Reg 33; O87 38), and whose X-Forwarded-For is believed."""

from __future__ import annotations

from datetime import date, datetime, time

from hypothesis import given
from hypothesis import strategies as st

from market.calendar import BEIJING
from market.calendar.source import official_data
from market.projects.rules import LotStatus
from market.tendering.rules import (
    DOCUMENT_STATUSES,
    REGISTRATION_STATUSES,
    BondMethod,
    BondProvision,
    check_bond,
    check_document_upload,
    check_fingerprint,
    check_registration,
    check_withdrawal,
    may_download,
    refund_due,
)
from web.client_address import client_address

STATUSES = [s.value for s in LotStatus]


def at(day: date, hh: int = 9) -> int:
    return int(datetime.combine(day, time(hh), tzinfo=BEIJING).timestamp() * 1000)


@given(status=st.sampled_from(STATUSES), deadline=st.integers(0, 10**13),
       now=st.integers(0, 10**13), supplier=st.booleans(),
       existing=st.sampled_from([None, "registered", "withdrawn"]))
def test_registration_is_allowed_exactly_when_open_before_the_deadline_once(
        status: str, deadline: int, now: int, supplier: bool, existing: str | None) -> None:
    refusal = check_registration(lot_status=status, deadline_ms=deadline, now_ms=now,
                                 is_supplier=supplier, existing_status=existing)
    allowed = (supplier and status in ("announced", "bidding") and now < deadline
               and existing is None)
    assert (refusal is None) == allowed
    if refusal is not None:  # the first rule broken names the refusal
        expected = ("suppliers_only" if not supplier
                    else "registration_not_open" if status not in REGISTRATION_STATUSES
                    else "deadline_passed" if now >= deadline
                    else "already_registered" if existing == "registered"
                    else "registration_withdrawn")
        assert refusal.code == expected


def test_a_lot_without_a_deadline_takes_no_registration() -> None:
    refusal = check_registration(lot_status="announced", deadline_ms=None, now_ms=0,
                                 is_supplier=True, existing_status=None)
    assert refusal is not None and refusal.code == "deadline_passed"


@given(st.sampled_from(STATUSES))
def test_documents_change_only_until_bids_close(status: str) -> None:
    refusal = check_document_upload(status)
    assert (refusal is None) == (status in {"draft", "announced", "bidding"})
    assert DOCUMENT_STATUSES == {"draft", "announced", "bidding"}
    if refusal is not None:
        assert refusal.code == "documents_closed" and refusal.status == 409


@given(bond=st.integers(1, 10**12), amount=st.integers(0, 10**12))
def test_a_transfer_must_be_exactly_the_bond(bond: int, amount: int) -> None:
    provision = BondProvision(BondMethod.TRANSFER, amount_fen=amount, reference="TX1",
                              payer_account="6222021001123456789")
    refusal = check_bond(bond, provision)
    assert (refusal is None) == (amount == bond)
    if refusal is not None:
        assert refusal.code == "bond_amount_mismatch" and refusal.article == "Reg 33"


def test_the_bonds_forms() -> None:
    guarantee = BondProvision(BondMethod.GUARANTEE, guarantee_number="BH1",
                              guarantee_issuer="中国银行")
    assert check_bond(100, guarantee) is None
    assert check_bond(0, BondProvision(BondMethod.NONE)) is None
    codes = {
        "bond_required": check_bond(100, BondProvision(BondMethod.NONE)),
        "bond_not_required": check_bond(0, guarantee),
        "invalid_bond": check_bond(100, BondProvision(BondMethod.GUARANTEE,
                                                      guarantee_number="BH1")),
    }
    for code, refusal in codes.items():
        assert refusal is not None and refusal.code == code
    no_account = check_bond(100, BondProvision(BondMethod.TRANSFER, amount_fen=100,
                                               reference="TX1", payer_account=""))
    assert no_account is not None and no_account.details == {"field": "payer_account"}
    bad_number = check_bond(100, BondProvision(BondMethod.GUARANTEE, guarantee_number="保函",
                                               guarantee_issuer="中国银行"))
    assert bad_number is not None and bad_number.details == {"field": "guarantee_number"}


@given(status=st.sampled_from(STATUSES), issued=st.one_of(st.none(), st.integers(0, 10**6)),
       now=st.integers(0, 10**6), registered=st.booleans())
def test_a_supplier_downloads_once_registered_and_the_documents_issued(
        status: str, issued: int | None, now: int, registered: bool) -> None:
    refusal = may_download(lot_status=status, documents_from_ms=issued, now_ms=now,
                           registered=registered)
    allowed = registered and status != "draft" and issued is not None and now >= issued
    assert (refusal is None) == allowed
    if refusal is not None:
        assert refusal.code == ("not_registered" if not registered else "documents_not_issued")


def test_withdrawal_only_of_a_standing_registration_before_the_deadline() -> None:
    assert check_withdrawal(status="registered", deadline_ms=10, now_ms=9) is None
    late = check_withdrawal(status="registered", deadline_ms=10, now_ms=10)
    assert late is not None and late.code == "deadline_passed"
    gone = check_withdrawal(status="withdrawn", deadline_ms=10, now_ms=0)
    assert gone is not None and gone.code == "registration_withdrawn"


def test_fingerprints() -> None:
    assert check_fingerprint(None) is None
    assert check_fingerprint("d1b2c3e4f5a6b7c8") is None
    assert check_fingerprint("a" * 128) is None
    for bad in ("a" * 15, "a" * 129, "d1b2c3e4 f5a6b7c8", "设备指纹设备指纹设备指纹设备指纹"):
        refusal = check_fingerprint(bad)
        assert refusal is not None and refusal.code == "invalid_fingerprint"


def test_refunds_are_due_five_working_days_later_on_the_real_calendar() -> None:
    calendar = official_data()
    # Mon 28 Sep 2026: 29, 30 Sep, the National Day week, 8, 9 Oct, then the 调休 Sat 10 Oct
    due = refund_due(calendar, at(date(2026, 9, 28)))
    assert due.day == date(2026, 10, 10) and due.period is not None
    assert due.period.article == "Reg 33" and not due.provisional
    # the Beijing day counts: 23:00 UTC on Mon 19 Oct is Tue 20 Oct in Beijing
    assert refund_due(calendar, at(date(2026, 10, 20), 7)).day == date(2026, 10, 27)
    assert refund_due(calendar, at(date(2026, 12, 30))).provisional  # 2027 is unknown


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    assert client_address("203.0.113.9", "198.51.100.1", ()) == "203.0.113.9"
    assert client_address("203.0.113.9", "198.51.100.1", ("10.0.0.0/8",)) == "203.0.113.9"
    trusted = ("10.0.0.0/8",)
    assert client_address("10.0.0.2", "198.51.100.1", trusted) == "198.51.100.1"
    # the client may write anything on the left: the first untrusted hop from the right wins
    assert client_address("10.0.0.2", "1.2.3.4, 198.51.100.1, 10.0.0.7", trusted) == \
        "198.51.100.1"
    assert client_address("10.0.0.2", "garbage, 10.0.0.7", trusted) == "10.0.0.7"
    assert client_address("10.0.0.2", None, trusted) == "10.0.0.2"
    assert client_address("10.0.0.2", " 2001:db8::1 ", trusted) == "2001:db8::1"
