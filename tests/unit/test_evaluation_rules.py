"""The evaluation methods (market.evaluation.rules): worked examples computed by hand from the
articles (DOMAIN.md §3; docs/evaluation.md, "Methods"), and properties over random lots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.evaluation.rules import (
    Bid,
    CorrectionRule,
    Criterion,
    CriterionKind,
    Evaluation,
    EvaluationMethod,
    ExpertScore,
    LowBidReview,
    PurchaseKind,
    QuoteReading,
    Scheme,
    TieBreaker,
    aggregate,
    check_scheme,
    correct_price,
    evaluate,
    evaluated_price,
    price_score,
)
from market.projects.rules import Refused

YUAN = 100
PRICE = Criterion("price", "价格", CriterionKind.PRICE, D(30))
TECH = Criterion("tech", "技术", CriterionKind.TECHNICAL, D(50))
COMM = Criterion("comm", "商务", CriterionKind.COMMERCIAL, D(20))
GOODS = Scheme(EvaluationMethod.COMPREHENSIVE, PurchaseKind.GOODS, (PRICE, TECH, COMM),
               sme_deduction_percent=D(10))
LOWEST = Scheme(EvaluationMethod.LOWEST_PRICE, PurchaseKind.GOODS, (),
                sme_deduction_percent=D(10))


def first(ids: Sequence[str]) -> Sequence[str]:
    return list(ids)


def reverse(ids: Sequence[str]) -> Sequence[str]:
    return list(reversed(ids))


def scores(table: Mapping[tuple[str, str], Sequence[int]]) -> list[ExpertScore]:
    """{(supplier, criterion): [points of e1, e2, ...]} as expert scores."""
    return [ExpertScore(f"e{i}", s, c, D(p)) for (s, c), ps in table.items()
            for i, p in enumerate(ps, start=1)]


def ok(result: Evaluation | Refused) -> Evaluation:
    assert isinstance(result, Evaluation), result
    return result


# ------------------------------------------------------------------------------ the scheme


@pytest.mark.parametrize(("scheme", "reason"), [
    (replace(GOODS, criteria=(PRICE, TECH)), "points_not_100"),
    (replace(GOODS, criteria=(TECH, replace(COMM, max_points=D(50)))), "no_price_criterion"),
    (replace(GOODS, criteria=(replace(PRICE, max_points=D(29)), replace(TECH, max_points=D(51)),
                              COMM)), "price_weight_too_low"),
    (replace(GOODS, purchase=PurchaseKind.SERVICES,
             criteria=(replace(PRICE, max_points=D("9.5")), replace(TECH, max_points=D("70.5")),
                       COMM)), "price_weight_too_low"),
    (replace(GOODS, criteria=(PRICE, TECH, replace(COMM, id="tech"))), "duplicate_criterion"),
    (replace(GOODS, criteria=(PRICE, replace(TECH, max_points=D(70)),
                              replace(COMM, max_points=D(0)))), "criterion_points_invalid"),
    (replace(GOODS, criteria=(PRICE, replace(PRICE, id="p2"), replace(TECH, max_points=D(40)))),
     "several_price_criteria"),
    (replace(LOWEST, criteria=(TECH,)), "lowest_price_scores_nothing"),
    (replace(GOODS, sme_deduction_percent=D(6)), "sme_deduction_out_of_range"),
    (replace(GOODS, sme_deduction_percent=D(21)), "sme_deduction_out_of_range"),
    (replace(GOODS, purchase=PurchaseKind.WORKS, sme_deduction_percent=D(10)),
     "sme_deduction_out_of_range"),
    (replace(GOODS, reserved_for_sme=True), "sme_deduction_on_reserved_lot"),
    (replace(GOODS, extreme_share=D(0)), "extreme_share_invalid"),
])
def test_the_scheme_is_refused(scheme: Scheme, reason: str) -> None:
    refused = check_scheme(scheme)
    assert isinstance(refused, Refused) and refused.reason == reason
    assert refused.article and " / " in refused.message
    assert isinstance(evaluate(scheme, [], [], first), Refused)


def test_good_schemes_pass() -> None:
    services = replace(GOODS, purchase=PurchaseKind.SERVICES,
                       criteria=(replace(PRICE, max_points=D(10)), replace(TECH, max_points=D(70)),
                                 COMM))
    assert check_scheme(GOODS) is None
    assert check_scheme(services) is None
    assert check_scheme(LOWEST) is None
    assert check_scheme(replace(LOWEST, criteria=(replace(PRICE, max_points=D(100)),))) is None
    assert check_scheme(replace(GOODS, purchase=PurchaseKind.WORKS,
                                sme_deduction_percent=D(3))) is None
    assert check_scheme(replace(GOODS, reserved_for_sme=True, sme_deduction_percent=D(0))) is None
    # the range is a setting: SME 9's original 6–10 %
    old = {k: (D(6), D(10)) if k is not PurchaseKind.WORKS else (D(3), D(5))
           for k in PurchaseKind}
    assert check_scheme(replace(GOODS, sme_deduction_percent=D(6)), old) is None


# ------------------------------------------------------------------------------ worked examples


def test_sme_deduction_under_the_comprehensive_method() -> None:
    """Goods, price 30 / technical 50 / commercial 20, a 10 % deduction (SME 9).
    B is small: 1,050,000 × 0.9 = 945,000 is the base; A 945/1000 × 30 = 28.35;
    C 945/980 × 30 = 28.928… → 28.93. Totals A 28.35 + 45 + 17.67 = 91.02, C 90.93, B 87.00."""
    bids = [Bid("A", 1_000_000 * YUAN), Bid("B", 1_050_000 * YUAN, small_or_micro=True),
            Bid("C", 980_000 * YUAN)]
    table = {("A", "tech"): [45, 44, 46], ("A", "comm"): [18, 18, 17],
             ("B", "tech"): [40, 41, 42], ("B", "comm"): [15, 16, 17],
             ("C", "tech"): [42, 43, 44], ("C", "comm"): [19, 19, 19]}
    result = ok(evaluate(GOODS, bids, scores(table), first))
    assert result.base_fen == 945_000 * YUAN
    assert [(c.supplier_id, c.rank, c.total) for c in result.candidates] == [
        ("A", 1, D("91.02")), ("C", 2, D("90.93")), ("B", 3, D("87.00"))]
    a, c, b = result.candidates
    assert (a.price_score, b.price_score, c.price_score) == (D("28.35"), D("30.00"), D("28.93"))
    assert a.scores == {"price": D("28.35"), "tech": D("45.00"), "comm": D("17.67")}
    assert b.quoted_fen == 1_050_000 * YUAN  # the contract keeps the quoted price
    assert b.evaluated_fen == 945_000 * YUAN
    assert not result.invalid and not result.flags and not result.tie_drawn


def test_the_deduction_is_for_small_and_micro_firms_and_not_on_reserved_lots() -> None:
    small = Bid("S", 1_000_001, small_or_micro=True)
    assert evaluated_price(replace(GOODS, sme_deduction_percent=D("12.5")), small) == \
        D("875000.875")  # exact fen, not rounded
    assert evaluated_price(GOODS, Bid("M", 1_000_001)) == 1_000_001
    reserved = replace(GOODS, reserved_for_sme=True, sme_deduction_percent=D(0))
    assert evaluated_price(reserved, small) == 1_000_001


def test_price_score_rounds_half_up() -> None:
    assert price_score(D(1), D(8), D(10)) == D("1.25")
    assert price_score(D(1), D(16), D(10)) == D("0.63")  # 0.625 → 0.63
    assert price_score(D(7), D(7), D(30)) == D("30.00")


def test_same_brand_under_the_lowest_price_method() -> None:
    """O87 31: A, B, C offer brand X; B and C quote the lowest (480,000): a draw keeps one (the
    tie breaker returns C first), A and B are invalid. C 100, D 480/490 × 100 = 97.959 → 97.96."""
    bids = [Bid("A", 500_000 * YUAN, core_brand="X"), Bid("B", 480_000 * YUAN, core_brand="X"),
            Bid("C", 480_000 * YUAN, core_brand="X"), Bid("D", 490_000 * YUAN, core_brand="Y")]
    result = ok(evaluate(LOWEST, bids, [], reverse))
    assert [(c.supplier_id, c.rank, c.price_score) for c in result.candidates] == [
        ("C", 1, D("100.00")), ("D", 2, D("97.96"))]
    assert [(i.supplier_id, i.reason, i.article) for i in result.invalid] == [
        ("A", "same_brand", "O87 31"), ("B", "same_brand", "O87 31")]
    assert [(d.purpose, d.tied, d.order) for d in result.draws] == [
        ("same_brand", ("B", "C"), ("C", "B"))]
    assert result.effective_bidders == 2 and result.tie_drawn


def test_same_brand_under_the_comprehensive_method() -> None:
    """O87 31: A and B offer brand X and count as one bidder; A scores higher and stays, B is
    set aside but its price is still the base (90,000): A 90/100 × 40 = 36 + 55 = 91.00,
    C 90/95 × 40 = 37.89 + 52 = 89.89, B 40 + 50 = 90.00 (set aside)."""
    scheme = replace(GOODS, criteria=(replace(PRICE, max_points=D(40)),
                                      replace(TECH, max_points=D(60))))
    bids = [Bid("A", 100_000 * YUAN, core_brand="X"), Bid("B", 90_000 * YUAN, core_brand="X"),
            Bid("C", 95_000 * YUAN, core_brand="Y")]
    table = {("A", "tech"): [55], ("B", "tech"): [50], ("C", "tech"): [52]}
    result = ok(evaluate(scheme, bids, scores(table), first))
    assert [(c.supplier_id, c.rank, c.total) for c in result.candidates] == [
        ("A", 1, D("91.00")), ("C", 2, D("89.89"))]
    assert [(s.supplier_id, s.reason) for s in result.set_aside] == [("B", "same_brand")]
    assert result.base_fen == 90_000 * YUAN and result.effective_bidders == 2
    assert not result.invalid and not result.tie_drawn


def test_same_brand_equal_scores_are_drawn_under_the_comprehensive_method() -> None:
    scheme = replace(GOODS, criteria=(replace(PRICE, max_points=D(40)),
                                      replace(TECH, max_points=D(60))))
    bids = [Bid("A", 100 * YUAN, core_brand="X"), Bid("B", 100 * YUAN, core_brand="X")]
    result = ok(evaluate(scheme, bids, scores({("A", "tech"): [50], ("B", "tech"): [50]}),
                         reverse))
    assert [c.supplier_id for c in result.candidates] == ["B"]
    assert result.draws[0].purpose == "same_brand"


def test_ties_under_the_comprehensive_method() -> None:
    """O87 57: equal totals go to the lower evaluated price; equal both: the tie breaker."""
    scheme = replace(GOODS, criteria=(PRICE, replace(TECH, max_points=D(70))))
    # A 30 + 60 = 90; B 100/120 × 30 = 25 + 65 = 90, dearer: A first without a draw
    result = ok(evaluate(scheme, [Bid("A", 100_000 * YUAN), Bid("B", 120_000 * YUAN)],
                         scores({("A", "tech"): [60], ("B", "tech"): [65]}), reverse))
    assert [(c.supplier_id, c.total) for c in result.candidates] == [("A", D(90)), ("B", D(90))]
    assert not result.tie_drawn
    # same price and score: drawn
    result = ok(evaluate(scheme, [Bid("A", 100_000 * YUAN), Bid("B", 100_000 * YUAN)],
                         scores({("A", "tech"): [60], ("B", "tech"): [60]}), reverse))
    assert [(c.supplier_id, c.rank) for c in result.candidates] == [("B", 1), ("A", 2)]
    assert [(d.purpose, d.tied) for d in result.draws] == [("ranking", ("A", "B"))]


def test_a_tie_under_the_lowest_price_method_after_the_deduction() -> None:
    """O87 56: A quotes 900,000; B (small) 1,000,000 × 0.9 = 900,000: tied, drawn."""
    bids = [Bid("A", 900_000 * YUAN), Bid("B", 1_000_000 * YUAN, small_or_micro=True),
            Bid("C", 950_000 * YUAN)]
    result = ok(evaluate(LOWEST, bids, [], reverse))
    assert [(c.supplier_id, c.rank, c.price_score) for c in result.candidates] == [
        ("B", 1, D(100)), ("A", 2, D(100)), ("C", 3, D("94.74"))]
    assert result.tie_drawn and result.draws[0].tied == ("A", "B")


def test_a_tie_breaker_that_is_no_permutation_is_a_bug() -> None:
    with pytest.raises(ValueError):
        evaluate(LOWEST, [Bid("A", 1), Bid("B", 1)], [], lambda ids: ["A"])


def test_an_abnormally_low_bid_must_be_justified() -> None:
    """O87 60: A (500,000) is flagged: unjustified or rejected it is invalid and the base is
    B's 900,000 (C 900/950 × 100 = 94.74); justified, it stays and is the base."""
    for review in (LowBidReview.FLAGGED, LowBidReview.REJECTED):
        bids = [Bid("A", 500_000 * YUAN, low_bid=review), Bid("B", 900_000 * YUAN),
                Bid("C", 950_000 * YUAN)]
        result = ok(evaluate(LOWEST, bids, [], first))
        assert [(i.supplier_id, i.reason, i.article) for i in result.invalid] == [
            ("A", "abnormally_low", "O87 60")]
        assert [(c.supplier_id, c.price_score) for c in result.candidates] == [
            ("B", D(100)), ("C", D("94.74"))]
    bids = [Bid("A", 500_000 * YUAN, low_bid=LowBidReview.ACCEPTED), Bid("B", 900_000 * YUAN)]
    result = ok(evaluate(LOWEST, bids, [], first))
    assert [(c.supplier_id, c.price_score) for c in result.candidates] == [
        ("A", D(100)), ("B", D("55.56"))]


def test_qualification_compliance_and_an_unconfirmed_correction_invalidate() -> None:
    bids = [Bid("A", 100, qualified=False, failure_reason="无营业执照"),
            Bid("B", 100, compliant=False), Bid("C", 100, corrected=True),
            Bid("D", 100, corrected=True, correction_confirmed=True), Bid("E", 0)]
    result = ok(evaluate(LOWEST, bids, [], first))
    assert [(i.supplier_id, i.reason) for i in result.invalid] == [
        ("A", "not_qualified"), ("B", "not_compliant"), ("C", "correction_not_confirmed"),
        ("E", "invalid_price")]
    assert result.invalid[0].message == "无营业执照"
    assert [c.supplier_id for c in result.candidates] == ["D"]
    assert isinstance(evaluate(LOWEST, [Bid("A", 1), Bid("A", 2)], [], first), Refused)


# ------------------------------------------------------------------------------ price correction


def test_price_correction_follows_o87_59_in_order() -> None:
    # nothing inconsistent: nothing to confirm
    plain = correct_price(QuoteReading(100_000 * YUAN, 100_000 * YUAN,
                                       ((10_000 * YUAN, 10),), 100_000 * YUAN))
    assert plain.corrected_fen == 100_000 * YUAN and not plain.rules
    assert not plain.needs_confirmation
    # (1) the 开标一览表 beats the details
    got = correct_price(QuoteReading(100_000 * YUAN, details_total_fen=98_000 * YUAN))
    assert (got.corrected_fen, got.rules) == (100_000 * YUAN,
                                              (CorrectionRule.SUMMARY_OVER_DETAILS,))
    assert got.needs_confirmation
    # (2) words (壹拾壹万元整) beat figures (100,000)
    got = correct_price(QuoteReading(100_000 * YUAN, words_fen=110_000 * YUAN))
    assert (got.corrected_fen, got.rules) == (110_000 * YUAN,
                                              (CorrectionRule.WORDS_OVER_FIGURES,))
    # (3) unit price 1,000.00 for 10,000.00 (decimal misplaced): the total 100,000 wins
    got = correct_price(QuoteReading(100_000 * YUAN, lines=((1_000 * YUAN, 10),),
                                     decimal_misplaced=True))
    assert (got.corrected_fen, got.rules) == (100_000 * YUAN,
                                              (CorrectionRule.MISPLACED_DECIMAL_TOTAL_WINS,))
    # (4) otherwise the summed unit prices: 9,800 × 10 = 98,000 beats 100,000
    got = correct_price(QuoteReading(100_000 * YUAN, lines=((9_800 * YUAN, 10),)))
    assert (got.corrected_fen, got.rules) == (98_000 * YUAN,
                                              (CorrectionRule.UNIT_PRICES_OVER_TOTAL,))
    # several at once, in the order: words 110,000, then unit prices 3 × 35,000 = 105,000
    got = correct_price(QuoteReading(100_000 * YUAN, 110_000 * YUAN, ((35_000 * YUAN, 3),)))
    assert (got.corrected_fen, got.rules) == (105_000 * YUAN, (
        CorrectionRule.WORDS_OVER_FIGURES, CorrectionRule.UNIT_PRICES_OVER_TOTAL))


# ------------------------------------------------------------------------------ aggregation


def test_means_and_review_flags() -> None:
    """O87 64: 55 > 50 is out of range (left out, flagged); e4's 10 against the others' mean
    (45 + 46 + 44) / 3 = 45 deviates by 35 > 0.5 × 50 = 25: flagged, but counted
    (45 + 46 + 44 + 10) / 4 = 36.25; e3 gave A no commercial score: missing."""
    table = [ExpertScore("e1", "A", "tech", D(45)), ExpertScore("e2", "A", "tech", D(46)),
             ExpertScore("e3", "A", "tech", D(44)), ExpertScore("e4", "A", "tech", D(10)),
             ExpertScore("e5", "A", "tech", D(55)),
             ExpertScore("e1", "A", "comm", D(10)), ExpertScore("e2", "A", "comm", D(11)),
             ExpertScore("e4", "A", "comm", D(12)), ExpertScore("e5", "A", "comm", D(13)),
             ExpertScore("e1", "A", "price", D(30))]
    means, flags = aggregate(GOODS, ["A"], table)
    assert means == {("A", "tech"): D("36.25"), ("A", "comm"): D("11.50")}
    kinds = sorted((f.kind, f.criterion_id, f.expert_id) for f in flags)
    assert kinds == [("extreme", "tech", "e4"), ("missing", "comm", "e3"),
                     ("out_of_range", "tech", "e5"), ("unknown_criterion", "price", "e1")]
    extreme = next(f for f in flags if f.kind == "extreme")
    assert extreme.others_mean == D("45.00")


# ------------------------------------------------------------------------------ properties

PROP = replace(GOODS, criteria=(PRICE, replace(TECH, max_points=D(70))))
bids_strategy = st.lists(
    st.builds(Bid,
              supplier_id=st.sampled_from("ABCDEFGH"),
              quoted_fen=st.integers(1, 2_000_000),
              small_or_micro=st.booleans(),
              qualified=st.booleans() | st.just(True),
              low_bid=st.sampled_from(LowBidReview),
              core_brand=st.sampled_from(["", "", "X", "Y"])),
    max_size=7, unique_by=lambda b: b.supplier_id)
points = st.integers(-5, 75).map(D) | st.decimals(0, 70, places=2)
methods = st.sampled_from([PROP, replace(LOWEST, sme_deduction_percent=D(20))])


@st.composite
def lots(draw: st.DrawFn) -> tuple[Scheme, list[Bid], list[ExpertScore]]:
    scheme = draw(methods)
    bids = draw(bids_strategy)
    table = [ExpertScore(e, b.supplier_id, "tech", draw(points))
             for b in bids for e in ("e1", "e2", "e3")]
    return scheme, bids, table


@settings(max_examples=300, deadline=None)
@given(lots())
def test_invariants(lot: tuple[Scheme, list[Bid], list[ExpertScore]]) -> None:
    scheme, bids, table = lot
    result = ok(evaluate(scheme, bids, table, first))
    weight = scheme.price_weight
    cands = result.candidates
    # ranks are 1..n; invalid and set-aside bidders are never ranked
    assert [c.rank for c in cands] == list(range(1, len(cands) + 1))
    out = {i.supplier_id for i in result.invalid} | {s.supplier_id for s in result.set_aside}
    assert not out & {c.supplier_id for c in cands}
    assert len(out) + len(cands) == len(bids)
    unjustified = {b.supplier_id for b in bids
                   if not b.qualified or b.low_bid in (LowBidReview.FLAGGED,
                                                       LowBidReview.REJECTED)}
    assert unjustified <= {i.supplier_id for i in result.invalid}
    # the base is the lowest compliant evaluated price; it gets the full price weight
    valid = [b for b in bids if b.supplier_id not in unjustified]
    if valid and scheme.method is EvaluationMethod.COMPREHENSIVE:
        assert result.base_fen == min(evaluated_price(scheme, b) for b in valid)
    for c in cands:
        if c.evaluated_fen == result.base_fen:
            assert c.price_score == weight
        # scores never exceed their maximum
        assert 0 <= c.price_score <= weight
        for cr in scheme.criteria:
            assert 0 <= c.scores[cr.id] <= cr.max_points
        assert c.total <= 100
    # a lower evaluated price never lowers the price score
    for x in cands:
        for y in cands:
            if x.evaluated_fen <= y.evaluated_fen:
                assert x.price_score >= y.price_score
    # the order the methods give
    if scheme.method is EvaluationMethod.LOWEST_PRICE:
        assert not cands or cands[0].price_score == weight
        assert [c.evaluated_fen for c in cands] == sorted(c.evaluated_fen for c in cands)
    else:
        keys = [(-c.total, c.evaluated_fen) for c in cands]
        assert keys == sorted(keys)


@settings(max_examples=200, deadline=None)
@given(lots(), st.data(), st.sampled_from([first, reverse]))
def test_permuting_the_bidders_changes_nothing(
        lot: tuple[Scheme, list[Bid], list[ExpertScore]], data: st.DataObject,
        breaker: TieBreaker) -> None:
    scheme, bids, table = lot
    shuffled = data.draw(st.permutations(bids))
    assert evaluate(scheme, shuffled, table, breaker) == evaluate(scheme, bids, table, breaker)
