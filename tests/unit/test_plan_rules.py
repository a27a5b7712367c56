"""Plans and intentions as pure rules (market.plans.rules): the budget's limit on plans (GPL 6),
a project's draw on a plan, the intention's 30 days (财库〔2020〕10号) on the real 2026 calendar,
and the splitting red flag (Reg 28) with hypothesis properties."""

from __future__ import annotations

from datetime import date
from random import Random

from hypothesis import given
from hypothesis import strategies as st

from market.calendar.source import official_data
from market.plans.rules import (
    Purchase,
    category_within,
    check_draw,
    check_intention,
    check_intention_month,
    check_plan,
    splitting_flags,
)

YUAN = 100
THRESHOLD = 4_000_000 * YUAN
CALENDAR = official_data()


def test_plans_stay_within_the_budget_project() -> None:
    assert check_plan(300, 200, 100) is None  # exactly the amount: allowed
    refused = check_plan(300, 200, 101)
    assert refused is not None and refused.reason == "plans_exceed_budget"
    assert refused.article == "GPL 6" and refused.details["remaining_fen"] == 100


def test_a_draw_fits_the_plan_and_its_category() -> None:
    assert check_draw("A020101", 1000, 1000, ["A020101", "A02010105"]) is None
    over = check_draw("A020101", 999, 1000, ["A02010105"])
    assert over is not None and over.reason == "plan_exceeded"
    assert over.details["remaining_fen"] == 999
    outside = check_draw("A020101", 1000, 10, ["A020102"])
    assert outside is not None and outside.reason == "category_outside_plan"
    # a prefix that is not an ancestor in the tree: A0201 is not under A02010
    assert not category_within("A02010", "A0201")
    assert category_within("A", "A0501") and not category_within("A0501", "A05")


def test_an_intention_is_published_30_days_before_the_purchase() -> None:
    # published Tue 1 Sep 2026: 30 days end Thu 1 Oct, National Day, so Thu 8 Oct
    published = [date(2026, 9, 1)]
    early = check_intention(CALENDAR, published, date(2026, 10, 7))
    assert early is not None and early.reason == "intention_too_late"
    assert early.article == "财库〔2020〕10号" and early.details["earliest_day"] == "2026-10-08"
    assert check_intention(CALENDAR, published, date(2026, 10, 8)) is None
    # an ordinary month: published Mon 2 Mar, 30 days end Wed 1 Apr, the purchase may start then
    assert check_intention(CALENDAR, [date(2026, 3, 2)], date(2026, 4, 1)) is None
    late = check_intention(CALENDAR, [date(2026, 3, 2)], date(2026, 3, 31))
    assert late is not None and late.details["earliest_day"] == "2026-04-01"
    # the earliest of several intentions counts
    assert check_intention(CALENDAR, [date(2026, 3, 20), date(2026, 3, 2)],
                           date(2026, 4, 1)) is None
    missing = check_intention(CALENDAR, [], date(2026, 4, 1))
    assert missing is not None and missing.reason == "intention_not_published"


def test_the_expected_month_leaves_the_30_days() -> None:
    assert check_intention_month(CALENDAR, date(2026, 9, 1), 2026, 10) is None
    refused = check_intention_month(CALENDAR, date(2026, 9, 1), 2026, 9)
    assert refused is not None and refused.details["earliest_day"] == "2026-10-08"
    assert check_intention_month(CALENDAR, date(2026, 12, 15), 2026, 12) is not None
    assert check_intention_month(CALENDAR, date(2026, 12, 15), 2027, 1) is None


def _buy(pid: str, amount: int, *, method: str = "inquiry", category: str = "A020101",
         approved: bool = False, budget: str = "B1", year: int = 2026) -> Purchase:
    return Purchase(pid, budget, year, category, method, amount, approved)


def test_splitting_is_strictly_greater_than_the_threshold() -> None:
    at = [_buy("p1", 2_000_000 * YUAN), _buy("p2", 2_000_000 * YUAN)]
    assert splitting_flags(at, THRESHOLD) == []  # equal to the threshold: not "exceeds"
    over = [*at, _buy("p3", 1)]
    [flag] = splitting_flags(over, THRESHOLD)
    assert flag.total_fen == THRESHOLD + 1 and flag.purchase_ids == ("p1", "p2", "p3")
    assert flag.article == "Reg 28" and flag.category_code == "A020101"


def test_open_tender_approved_other_years_and_other_lines_do_not_count() -> None:
    big = 3_000_000 * YUAN
    assert splitting_flags([_buy("a", big), _buy("b", big, method="open_tender")],
                           THRESHOLD) == []
    assert splitting_flags([_buy("a", big), _buy("b", big, approved=True)], THRESHOLD) == []
    assert splitting_flags([_buy("a", big), _buy("b", big, year=2027)], THRESHOLD) == []
    assert splitting_flags([_buy("a", big), _buy("b", big, budget="B2")], THRESHOLD) == []
    assert splitting_flags([_buy("a", big), _buy("b", big, category="A0501")], THRESHOLD) == []
    # a category and one below it are the same 品目
    [flag] = splitting_flags([_buy("a", big), _buy("b", big, category="A02010105")], THRESHOLD)
    assert flag.category_code == "A020101"


_CATEGORIES = st.sampled_from(["A020101", "A02010105", "A02010104", "A0501", "C01"])
_METHODS = st.sampled_from(["open_tender", "inquiry", "competitive_negotiation",
                            "single_source"])
_PURCHASES = st.lists(st.builds(
    Purchase, purchase_id=st.uuids().map(str), budget_project_id=st.sampled_from(["B1", "B2"]),
    fiscal_year=st.sampled_from([2026, 2027]), category_code=_CATEGORIES, method=_METHODS,
    amount_fen=st.integers(1, 3 * THRESHOLD), approved=st.booleans()), max_size=12)


def _groups(purchases: list[Purchase]) -> dict[tuple[str, int, str], int]:
    """The reference: totals by line, year and group, written independently of the rule."""
    counted = [p for p in purchases if p.method != "open_tender" and not p.approved]
    totals: dict[tuple[str, int, str], int] = {}
    for p in counted:
        line = [q for q in counted if (q.budget_project_id, q.fiscal_year)
                == (p.budget_project_id, p.fiscal_year)]
        # the shortest category present on the line that is this one or above it
        group = min((q.category_code for q in line
                     if p.category_code.startswith(q.category_code)
                     and (len(q.category_code) - len(p.category_code)) % 2 == 0), key=len)
        key = (p.budget_project_id, p.fiscal_year, group)
        totals[key] = totals.get(key, 0) + p.amount_fen
    return totals


@given(_PURCHASES, st.integers(1, 3 * THRESHOLD))
def test_a_flag_is_exactly_a_group_over_the_threshold(purchases: list[Purchase],
                                                      threshold: int) -> None:
    flags = splitting_flags(purchases, threshold)
    expected = {k: v for k, v in _groups(purchases).items() if v > threshold}
    assert {(f.budget_project_id, f.fiscal_year, f.category_code): f.total_fen
            for f in flags} == expected


@given(_PURCHASES, _PURCHASES)
def test_more_purchases_never_remove_a_flag(first: list[Purchase],
                                            more: list[Purchase]) -> None:
    before = {(f.budget_project_id, f.fiscal_year) for f in splitting_flags(first, THRESHOLD)}
    after = {(f.budget_project_id, f.fiscal_year)
             for f in splitting_flags(first + more, THRESHOLD)}
    assert before <= after


@given(_PURCHASES, st.randoms())
def test_the_order_of_purchases_does_not_matter(purchases: list[Purchase], rnd: Random) -> None:
    shuffled = list(purchases)
    rnd.shuffle(shuffled)
    assert splitting_flags(shuffled, THRESHOLD) == splitting_flags(purchases, THRESHOLD)


@given(st.integers(1, THRESHOLD), st.integers(1, 6))
def test_splitting_one_purchase_into_parts_keeps_the_flag(amount: int, parts: int) -> None:
    total = THRESHOLD + amount
    pieces = [total // parts] * (parts - 1)
    pieces.append(total - sum(pieces))
    split = [_buy(f"p{i}", piece) for i, piece in enumerate(pieces) if piece > 0]
    [flag] = splitting_flags(split, THRESHOLD)
    assert flag.total_fen == total
