"""Bid evaluation (评标) as pure rules: the scheme's checks, the price correction, the
evaluated price with the SME deduction, the price score, the experts' aggregated scores with
their review flags, the same-brand rule and the ranking, each citing the article it implements
(DOMAIN.md §3).

Money is integer fen; evaluated prices are exact ``Decimal`` fen (a 12.5 % deduction may leave a
fraction of a fen: it is not rounded, it is only compared and divided); scores are ``Decimal``
rounded half-up to 2 places where they are shown (each criterion's aggregated score, the price
score; the total is the sum of the shown parts). A tie the rules leave is broken by an injected
``tie_breaker`` (the auditable draw lives elsewhere, O87 68); every draw is returned.

Must not import: web; no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Final

from market.projects.rules import EvaluationMethod, Refused

__all__ = [
    "DEFAULT_SME_RANGES",
    "MIN_PRICE_WEIGHT",
    "Bid",
    "Candidate",
    "CorrectionRule",
    "Criterion",
    "CriterionKind",
    "Draw",
    "Evaluation",
    "EvaluationMethod",
    "ExpertScore",
    "Invalid",
    "LowBidReview",
    "PriceCorrection",
    "PurchaseKind",
    "QuoteReading",
    "ReviewFlag",
    "Scheme",
    "TieBreaker",
    "aggregate",
    "check_scheme",
    "correct_price",
    "evaluate",
    "evaluated_price",
    "price_score",
    "rank",
]

HUNDRED: Final = Decimal(100)
CENT: Final = Decimal("0.01")

#: A tie the rules leave: given the tied supplier ids (sorted), return them in the drawn order
#: (the tender document's rule, else an auditable random draw: O87 68, O87 31).
TieBreaker = Callable[[Sequence[str]], Sequence[str]]


def _shown(value: Decimal) -> Decimal:
    """Half-up to 2 places: the scores the report shows."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


class PurchaseKind(StrEnum):
    GOODS = "goods"  # 货物
    SERVICES = "services"  # 服务
    WORKS = "works"  # 工程


class CriterionKind(StrEnum):
    PRICE = "price"  # 价格分: computed, never scored by the experts (O87 55)
    TECHNICAL = "technical"  # 技术分
    COMMERCIAL = "commercial"  # 商务分


#: O87 55: the price weight is at least 30 % of the total for goods, 10 % for services (works
#: are outside O87: no minimum here).
MIN_PRICE_WEIGHT: Final[Mapping[PurchaseKind, Decimal]] = {
    PurchaseKind.GOODS: Decimal(30),
    PurchaseKind.SERVICES: Decimal(10),
}

#: SME 9, as raised by 财库〔2022〕19号 [M]: the deduction for small and micro firms is 10–20 % for
#: goods and services, 3–5 % for works (a setting: SME 9's original 6–10 % is one argument away).
DEFAULT_SME_RANGES: Final[Mapping[PurchaseKind, tuple[Decimal, Decimal]]] = {
    PurchaseKind.GOODS: (Decimal(10), Decimal(20)),
    PurchaseKind.SERVICES: (Decimal(10), Decimal(20)),
    PurchaseKind.WORKS: (Decimal(3), Decimal(5)),
}


@dataclass(frozen=True, slots=True)
class Criterion:
    """One scoring factor (评审因素) with its maximum points; scores run from 0 to the maximum."""

    id: str
    name: str
    kind: CriterionKind
    max_points: Decimal


@dataclass(frozen=True, slots=True)
class Scheme:
    """How a lot is evaluated, fixed in the tender documents.

    ``sme_deduction_percent``: the price deduction for small and micro firms (SME 9), a setting per
    project; 0 when the lot is reserved for SMEs (SME 9 applies to lots not reserved).
    ``extreme_share``: a score deviating from the other experts' mean on the same criterion by more
    than this share of the criterion's maximum is flagged for the panel's review (O87 64) [P].
    """

    method: EvaluationMethod
    purchase: PurchaseKind
    criteria: tuple[Criterion, ...] = ()
    sme_deduction_percent: Decimal = Decimal(0)
    reserved_for_sme: bool = False
    extreme_share: Decimal = Decimal("0.5")

    @property
    def price_weight(self) -> Decimal:
        """The price criterion's points; 100 under 最低评标价法 without one (price is all)."""
        points = [c.max_points for c in self.criteria if c.kind is CriterionKind.PRICE]
        return points[0] if points else HUNDRED

    @property
    def price_criterion(self) -> Criterion | None:
        return next((c for c in self.criteria if c.kind is CriterionKind.PRICE), None)


def check_scheme(scheme: Scheme,
                 sme_ranges: Mapping[PurchaseKind, tuple[Decimal, Decimal]] = DEFAULT_SME_RANGES,
                 ) -> Refused | None:
    """The scheme's checks before it is published; None when it may be used."""
    ids = [c.id for c in scheme.criteria]
    if len(set(ids)) != len(ids):
        return Refused("duplicate_criterion", "O87 55",
                       "评审因素不得重复 / a criterion appears twice", {"criteria": ids})
    bad = [c.id for c in scheme.criteria if not c.max_points > 0]
    if bad:
        return Refused("criterion_points_invalid", "O87 55",
                       "评审因素的分值须为正数 / a criterion's maximum points must be positive",
                       {"criteria": bad})
    prices = [c for c in scheme.criteria if c.kind is CriterionKind.PRICE]
    if len(prices) > 1:
        return Refused("several_price_criteria", "O87 55",
                       "价格分只能设一项 / only one price criterion", {"criteria": ids})
    if scheme.method is EvaluationMethod.LOWEST_PRICE:
        scored = [c.id for c in scheme.criteria if c.kind is not CriterionKind.PRICE]
        if scored:
            return Refused("lowest_price_scores_nothing", "O87 54",
                           "最低评标价法不对技术、商务因素打分 / the lowest evaluated price method "
                           "scores no technical or commercial factor", {"criteria": scored})
    else:
        if not prices:
            return Refused("no_price_criterion", "O87 55",
                           "综合评分法须设价格分 / the comprehensive method needs a price "
                           "criterion")
        total = sum((c.max_points for c in scheme.criteria), Decimal(0))
        if total != HUNDRED:
            return Refused("points_not_100", "O87 55",
                           "各评审因素分值之和须为100分 / the criteria's points must sum to 100",
                           {"total": str(total)})
        minimum = MIN_PRICE_WEIGHT.get(scheme.purchase)
        if minimum is not None and prices[0].max_points < minimum:
            return Refused("price_weight_too_low", "O87 55",
                           "价格分值比重过低（货物不低于30%，服务不低于10%） / the price weight is "
                           "too low (goods >= 30 %, services >= 10 %)",
                           {"minimum": str(minimum), "purchase": scheme.purchase.value})
    percent = scheme.sme_deduction_percent
    if scheme.reserved_for_sme:
        if percent != 0:
            return Refused("sme_deduction_on_reserved_lot", "SME 9",
                           "专门面向中小企业的项目不再扣除价格 / a lot reserved for SMEs takes "
                           "no price deduction")
    else:
        low, high = sme_ranges[scheme.purchase]
        if not low <= percent <= high:
            return Refused("sme_deduction_out_of_range", "SME 9",
                           f"小微企业价格扣除比例须在{low}%–{high}%之间 / the small and micro "
                           f"firm deduction must be {low}–{high} %",
                           {"low": str(low), "high": str(high)})
    if not 0 < scheme.extreme_share <= 1:
        return Refused("extreme_share_invalid", "O87 64",
                       "畸高畸低评分的判定比例须在0到1之间 / the extreme score share must be in "
                       "(0, 1]")
    return None


# ------------------------------------------------------------------------------ price correction


class CorrectionRule(StrEnum):
    """O87 59's four rules, applied in this order when several inconsistencies meet."""

    SUMMARY_OVER_DETAILS = "summary_over_details"  # 开标一览表 beats the rest of the bid
    WORDS_OVER_FIGURES = "words_over_figures"  # 大写 beats 小写
    MISPLACED_DECIMAL_TOTAL_WINS = "misplaced_decimal_total_wins"  # 单价小数点错位: 总价为准
    UNIT_PRICES_OVER_TOTAL = "unit_prices_over_total"  # 按单价汇总 beats the stated total


@dataclass(frozen=True, slots=True)
class QuoteReading:
    """What the panel reads in one bid's price: the 开标一览表 (报价表) total in figures (小写) and
    in words (大写, as parsed), its lines (unit price fen, quantity), the total stated elsewhere
    in the bid (明细), and whether a unit price's decimal point (or a percentage) is obviously
    misplaced (the panel's finding)."""

    figures_fen: int
    words_fen: int | None = None
    lines: tuple[tuple[int, int], ...] = ()
    details_total_fen: int | None = None
    decimal_misplaced: bool = False


@dataclass(frozen=True, slots=True)
class PriceCorrection:
    """The corrected price and the rules that made it; ``needs_confirmation``: the bidder must
    confirm it in writing, else its bid is invalid (O87 59)."""

    corrected_fen: int
    rules: tuple[CorrectionRule, ...]
    needs_confirmation: bool


def correct_price(reading: QuoteReading) -> PriceCorrection:
    """O87 59: (1) the 开标一览表 beats the other parts of the bid; (2) words beat figures; (3) a
    misplaced decimal point in a unit price: the 一览表 total wins (the unit price is corrected);
    (4) otherwise the summed unit prices beat the total; in this order."""
    rules: list[CorrectionRule] = []
    total = reading.figures_fen
    if reading.details_total_fen is not None and reading.details_total_fen != total:
        rules.append(CorrectionRule.SUMMARY_OVER_DETAILS)
    if reading.words_fen is not None and reading.words_fen != total:
        rules.append(CorrectionRule.WORDS_OVER_FIGURES)
        total = reading.words_fen
    if reading.lines:
        summed = sum(unit * quantity for unit, quantity in reading.lines)
        if summed != total:
            if reading.decimal_misplaced:
                rules.append(CorrectionRule.MISPLACED_DECIMAL_TOTAL_WINS)
            else:
                rules.append(CorrectionRule.UNIT_PRICES_OVER_TOTAL)
                total = summed
    return PriceCorrection(total, tuple(rules), needs_confirmation=bool(rules))


# ------------------------------------------------------------------------------ bids and prices


class LowBidReview(StrEnum):
    """O87 60: a bid the panel finds abnormally low must be justified in writing (no numeric
    threshold); unjustified or rejected: invalid."""

    NOT_FLAGGED = "not_flagged"
    FLAGGED = "flagged"  # asked, no written justification (yet): invalid if evaluated so
    ACCEPTED = "accepted"  # justified in writing, accepted by the panel
    REJECTED = "rejected"  # justified, but the panel rejects it


@dataclass(frozen=True, slots=True)
class Bid:
    """One bid as it enters evaluation. ``quoted_fen`` is the price after any O87 59 correction
    (``corrected``: one was made, and ``correction_confirmed``: the bidder confirmed it).
    Qualification (资格审查, Reg 34; O87 44) and compliance (符合性审查, O87 63) are pass/fail."""

    supplier_id: str
    quoted_fen: int
    small_or_micro: bool = False
    qualified: bool = True
    compliant: bool = True
    failure_reason: str = ""
    corrected: bool = False
    correction_confirmed: bool = False
    low_bid: LowBidReview = LowBidReview.NOT_FLAGGED
    core_brand: str = ""  # the brand of the core product (O87 31); "" when none is named


def evaluated_price(scheme: Scheme, bid: Bid) -> Decimal:
    """SME 9: a small or micro firm's price is reduced by the scheme's percentage for the
    evaluation only (the contract keeps the quoted price); other firms' price is as quoted."""
    quoted = Decimal(bid.quoted_fen)
    if bid.small_or_micro and not scheme.reserved_for_sme:
        return quoted * (HUNDRED - scheme.sme_deduction_percent) / HUNDRED
    return quoted


def price_score(base: Decimal, evaluated: Decimal, weight: Decimal) -> Decimal:
    """O87 55: base (the lowest compliant evaluated price) / evaluated price × the price
    weight, half-up to 2 places."""
    return _shown(base / evaluated * weight)


@dataclass(frozen=True, slots=True)
class Invalid:
    supplier_id: str
    reason: str
    article: str
    message: str


def _invalidity(bid: Bid) -> Invalid | None:
    """Why a bid cannot be evaluated, or None (in the order the panel checks them)."""
    sid = bid.supplier_id
    if not bid.qualified:
        return Invalid(sid, "not_qualified", "Reg 34; O87 44",
                       bid.failure_reason or "资格审查未通过 / failed the qualification review")
    if not bid.compliant:
        return Invalid(sid, "not_compliant", "O87 63",
                       bid.failure_reason or "符合性审查未通过 / failed the compliance review")
    if bid.quoted_fen <= 0:
        return Invalid(sid, "invalid_price", "O87 63", "报价须为正数 / the price must be positive")
    if bid.corrected and not bid.correction_confirmed:
        return Invalid(sid, "correction_not_confirmed", "O87 59",
                       "投标人不确认修正后的报价，其投标无效 / the bidder did not confirm the "
                       "corrected price")
    if bid.low_bid in (LowBidReview.FLAGGED, LowBidReview.REJECTED):
        return Invalid(sid, "abnormally_low", "O87 60",
                       "报价明显低于其他报价且未能书面证明其合理性 / an abnormally low price not "
                       "justified in writing")
    return None


# ------------------------------------------------------------------------------ experts' scores


@dataclass(frozen=True, slots=True)
class ExpertScore:
    expert_id: str
    supplier_id: str
    criterion_id: str
    points: Decimal


@dataclass(frozen=True, slots=True)
class ReviewFlag:
    """A score the panel must look at again (O87 64); returned, never raised.
    ``kind``: out_of_range | extreme | missing | unknown_criterion."""

    kind: str
    supplier_id: str
    criterion_id: str
    expert_id: str = ""
    points: Decimal | None = None
    others_mean: Decimal | None = None


def aggregate(scheme: Scheme, suppliers: Sequence[str], scores: Sequence[ExpertScore],
              ) -> tuple[dict[tuple[str, str], Decimal], tuple[ReviewFlag, ...]]:
    """Each scored (non-price) criterion's score for each supplier is the mean of the experts'
    scores, half-up to 2 places (O87 55: the highest and lowest are never dropped). A score
    outside 0..max is left out of the mean and flagged; a score deviating from the other experts'
    mean by more than ``extreme_share`` of the maximum is flagged but counted (O87 64); a missing
    score is flagged. Scores for suppliers not listed are ignored."""
    scored = {c.id: c for c in scheme.criteria if c.kind is not CriterionKind.PRICE}
    wanted = set(suppliers)
    experts = sorted({s.expert_id for s in scores})
    flags: list[ReviewFlag] = []
    cells: dict[tuple[str, str], list[ExpertScore]] = {}
    given: set[tuple[str, str, str]] = set()  # (supplier, criterion, expert) with any score
    for s in scores:
        if s.supplier_id not in wanted:
            continue
        criterion = scored.get(s.criterion_id)
        if criterion is None:
            flags.append(ReviewFlag("unknown_criterion", s.supplier_id, s.criterion_id,
                                    s.expert_id, s.points))
            continue
        given.add((s.supplier_id, s.criterion_id, s.expert_id))
        if not 0 <= s.points <= criterion.max_points:
            flags.append(ReviewFlag("out_of_range", s.supplier_id, s.criterion_id, s.expert_id,
                                    s.points))
            continue
        cells.setdefault((s.supplier_id, s.criterion_id), []).append(s)
    result: dict[tuple[str, str], Decimal] = {}
    for supplier in sorted(wanted):
        for cid, criterion in scored.items():
            cell = cells.get((supplier, cid), [])
            flags.extend(ReviewFlag("missing", supplier, cid, e) for e in experts
                         if (supplier, cid, e) not in given)
            if not cell:
                result[(supplier, cid)] = Decimal(0)
                continue
            total = sum((s.points for s in cell), Decimal(0))
            result[(supplier, cid)] = _shown(total / len(cell))
            if len(cell) < 3:
                continue  # "the others" of one expert is a single score: no extreme test
            limit = scheme.extreme_share * criterion.max_points
            for s in cell:
                others = (total - s.points) / (len(cell) - 1)
                if abs(s.points - others) > limit:
                    flags.append(ReviewFlag("extreme", supplier, cid, s.expert_id, s.points,
                                            _shown(others)))
    return result, tuple(flags)


# ------------------------------------------------------------------------------ ranking


@dataclass(frozen=True, slots=True)
class Candidate:
    supplier_id: str
    rank: int
    quoted_fen: int  # the contract price (SME 9: the deduction is for evaluation only)
    evaluated_fen: Decimal
    price_score: Decimal
    total: Decimal
    scores: Mapping[str, Decimal] = field(default_factory=dict)  # criterion id → shown score


@dataclass(frozen=True, slots=True)
class Draw:
    """A tie the rules left, broken by the tie breaker: ``purpose`` ranking | same_brand."""

    purpose: str
    tied: tuple[str, ...]
    order: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Evaluation:
    candidates: tuple[Candidate, ...]
    invalid: tuple[Invalid, ...]
    set_aside: tuple[Invalid, ...]  # same brand under 综合评分法: scored, not candidates (O87 31)
    flags: tuple[ReviewFlag, ...]
    draws: tuple[Draw, ...]
    base_fen: Decimal | None  # the lowest compliant evaluated price
    effective_bidders: int  # same-brand bidders counted once (O87 31)

    @property
    def tie_drawn(self) -> bool:
        return bool(self.draws)


def _draw(tie_breaker: TieBreaker, purpose: str, tied: Sequence[str],
          draws: list[Draw]) -> list[str]:
    key = tuple(sorted(tied))
    if len(key) < 2:
        return list(key)
    order = tuple(tie_breaker(key))
    if sorted(order) != list(key):
        raise ValueError(f"the tie breaker must return a permutation of {key}, got {order}")
    draws.append(Draw(purpose, key, order))
    return list(order)


def rank(method: EvaluationMethod, rows: Sequence[tuple[str, Decimal, Decimal]],
         tie_breaker: TieBreaker, draws: list[Draw], purpose: str = "ranking") -> list[str]:
    """Order (supplier, total, evaluated price) rows: 综合评分法 total desc, then evaluated price
    asc (O87 57); 最低评标价法 evaluated price asc (O87 56); what is still tied goes to the tie
    breaker (O87 68), each group on its own."""
    def key(row: tuple[str, Decimal, Decimal]) -> tuple[Decimal, ...]:
        _, total, price = row
        return (price,) if method is EvaluationMethod.LOWEST_PRICE else (-total, price)

    groups: dict[tuple[Decimal, ...], list[str]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row[0])
    ordered: list[str] = []
    for k in sorted(groups):
        ordered.extend(_draw(tie_breaker, purpose, groups[k], draws))
    return ordered


def evaluate(scheme: Scheme, bids: Sequence[Bid], scores: Sequence[ExpertScore],
             tie_breaker: TieBreaker) -> Evaluation | Refused:
    """The whole evaluation of one lot: validity (pass/fail), the same-brand rule (O87 31),
    evaluated prices (SME 9), the base and price scores (O87 55), the experts' mean scores,
    totals, and the ranking (O87 56/57, ties O87 68)."""
    refused = check_scheme(scheme)
    if refused is not None:
        return refused
    ids = [b.supplier_id for b in bids]
    if len(set(ids)) != len(ids):
        return Refused("duplicate_bidder", "O87 31", "同一投标人只能有一份投标 / one bid per "
                       "bidder", {"suppliers": sorted(ids)})
    draws: list[Draw] = []
    invalid: list[Invalid] = []
    valid: list[Bid] = []
    for bid in sorted(bids, key=lambda b: b.supplier_id):
        why = _invalidity(bid)
        if why is None:
            valid.append(bid)
        else:
            invalid.append(why)
    prices = {b.supplier_id: evaluated_price(scheme, b) for b in valid}
    brands: dict[str, list[Bid]] = {}
    for b in valid:
        if b.core_brand:
            brands.setdefault(b.core_brand, []).append(b)
    lowest = scheme.method is EvaluationMethod.LOWEST_PRICE
    if lowest:
        # O87 31: only the lowest-priced (报价最低) same-brand bid is evaluated; a tie is drawn;
        # the other bids are invalid.
        for brand in sorted(brands):
            group = brands[brand]
            if len(group) < 2:
                continue
            least = min(b.quoted_fen for b in group)
            tied = [b.supplier_id for b in group if b.quoted_fen == least]
            keep = _draw(tie_breaker, "same_brand", tied, draws)[0]
            for b in group:
                if b.supplier_id != keep:
                    invalid.append(Invalid(b.supplier_id, "same_brand", "O87 31",
                                           f"与{keep}提供相同品牌核心产品且报价非最低 / same core "
                                           f"brand as {keep}, not the lowest price"))
            dropped = {b.supplier_id for b in group} - {keep}
            valid = [b for b in valid if b.supplier_id not in dropped]
    base = min(prices[b.supplier_id] for b in valid) if valid else None
    weight = scheme.price_weight
    means, flags = aggregate(scheme, [b.supplier_id for b in valid], scores)
    price_cid = scheme.price_criterion.id if scheme.price_criterion else None
    rows: dict[str, Candidate] = {}
    for b in valid:
        assert base is not None
        p_score = price_score(base, prices[b.supplier_id], weight)
        parts: dict[str, Decimal] = {}
        for c in scheme.criteria:
            parts[c.id] = p_score if c.id == price_cid else means[(b.supplier_id, c.id)]
        total = sum(parts.values(), Decimal(0)) if parts else p_score
        rows[b.supplier_id] = Candidate(b.supplier_id, 0, b.quoted_fen, prices[b.supplier_id],
                                        p_score, total, parts)
    set_aside: list[Invalid] = []
    effective = len(valid)
    if not lowest:
        # O87 31: same-brand bidders count as one; the highest score keeps the candidacy (an
        # equal highest score: the tender document's rule, else a draw: the tie breaker).
        for brand in sorted(brands):
            members = [b.supplier_id for b in brands[brand]]
            if len(members) < 2:
                continue
            effective -= len(members) - 1
            best = max(rows[s].total for s in members)
            keep = _draw(tie_breaker, "same_brand",
                         [s for s in members if rows[s].total == best], draws)[0]
            order = [keep, *sorted(s for s in members if s != keep)]
            for s in order[1:]:
                set_aside.append(Invalid(s, "same_brand", "O87 31",
                                         f"与{order[0]}提供相同品牌核心产品，得分较低 / same "
                                         f"core brand as {order[0]}, lower score"))
                del rows[s]
    order = rank(scheme.method, [(s, c.total, c.evaluated_fen) for s, c in rows.items()],
                 tie_breaker, draws)
    candidates = tuple(
        Candidate(s, i, rows[s].quoted_fen, rows[s].evaluated_fen, rows[s].price_score,
                  rows[s].total, rows[s].scores)
        for i, s in enumerate(order, start=1))
    return Evaluation(candidates, tuple(sorted(invalid, key=lambda x: x.supplier_id)),
                      tuple(set_aside), flags, tuple(draws), base, effective)
