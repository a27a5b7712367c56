"""Plans and intentions as pure rules: budget projects (预算项目), procurement plans against
them, the procurement intention's notice period, what a project may draw on a plan, and the
splitting red flag (化整为零) supervisors read.

- A **budget project** is a purchasing unit's budget line for one fiscal year: a code, a
  name and an amount in fen. **Plans** divide it by category (政府采购品目分类目录): the sum of
  a budget project's plans is never above its amount (``check_plan``: ``plans_exceed_budget``).
- A **project** may draw on one plan: its budget fits in what the plan has left and every
  lot's category is the plan's category or below it (``check_draw``: ``plan_exceeded``,
  ``category_outside_plan``).
- A **procurement intention** (采购意向, 财库〔2020〕10号, "采购意向公开的依据和时间"): 采购意向公开
  时间应当尽量提前，原则上不得晚于采购活动开始前30日公开采购意向 — the purchase (the first
  procurement announcement of a project that draws on the plan) starts no earlier than 30 days
  after the intention's publication (the calendar's period ``intention_notice``; the start day
  not counted, a last day off work rolls, O87 85–86). Its content: the project's name, the
  requirement summary (采购需求概况), the budget and the expected time (预计采购时间, a month).
  ``check_intention`` decides it.
- **Splitting** (政府采购法实施条例 第二十八条): within one fiscal year, purchases of one budget
  project in the same category made by a method other than open tender whose total exceeds
  the open-tender threshold (strictly greater, DOMAIN.md §4) are 化整为零; purchases the
  supervising department approved for another method are the article's exception and do not
  count. ``splitting_flags`` reports every such group.

Must not import: web; no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Final

from market.calendar.rules import CalendarData, StatutoryDate, compute
from market.catalog.rules import category_ancestors

__all__ = [
    "OPEN_TENDER",
    "PlanRefusal",
    "Purchase",
    "SplittingFlag",
    "category_within",
    "check_draw",
    "check_intention",
    "check_intention_month",
    "check_plan",
    "splitting_flags",
]

#: The method that never counts towards splitting (GPL 26's 公开招标).
OPEN_TENDER: Final = "open_tender"
INTENTION_ARTICLE: Final = "财库〔2020〕10号"


@dataclass(frozen=True, slots=True)
class PlanRefusal:
    """Why a plan, a draw or a publication is refused: a stable code, the rule, a bilingual
    message and the numbers that explain it."""

    reason: str
    article: str
    message: str
    details: Mapping[str, object] = field(default_factory=dict)


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def check_plan(budget_amount_fen: int, planned_fen: int, amount_fen: int) -> PlanRefusal | None:
    """A new plan of ``amount_fen`` on a budget project of ``budget_amount_fen`` whose plans
    already hold ``planned_fen``: refused when the plans would exceed the budget."""
    left = budget_amount_fen - planned_fen
    if amount_fen > left:
        return PlanRefusal(
            "plans_exceed_budget", "GPL 6",
            f"采购计划合计不得超过预算项目金额，尚余 {_yuan(max(left, 0))} 元 / the plans of a "
            f"budget project may not exceed its amount: {_yuan(max(left, 0))} yuan left",
            {"remaining_fen": max(left, 0), "amount_fen": amount_fen})
    return None


def category_within(plan_category: str, category: str) -> bool:
    """Whether ``category`` is ``plan_category`` or below it in the catalogue's tree."""
    return category == plan_category or plan_category in category_ancestors(category)


def check_draw(plan_category: str, remaining_fen: int, budget_fen: int,
               lot_categories: Iterable[str]) -> PlanRefusal | None:
    """A project of ``budget_fen`` whose lots have ``lot_categories`` drawing on a plan of
    ``plan_category`` with ``remaining_fen`` left."""
    for category in lot_categories:
        if not category_within(plan_category, category):
            return PlanRefusal(
                "category_outside_plan", "GPL 6",
                f"包的品目 {category} 不在采购计划的品目 {plan_category} 之内 / the lot's "
                f"category {category} is not the plan's category {plan_category} or below it",
                {"category_code": category, "plan_category_code": plan_category})
    if budget_fen > remaining_fen:
        return PlanRefusal(
            "plan_exceeded", "GPL 6",
            f"项目预算超过采购计划余额 {_yuan(max(remaining_fen, 0))} 元 / the project's budget "
            f"is above what the plan has left ({_yuan(max(remaining_fen, 0))} yuan)",
            {"remaining_fen": max(remaining_fen, 0), "budget_fen": budget_fen})
    return None


def intention_earliest_start(calendar: CalendarData, published: date) -> StatutoryDate:
    """The first day a purchase may start after an intention published on ``published``."""
    return compute(calendar, "intention_notice", published)


def check_intention(calendar: CalendarData, published: Iterable[date],
                    start: date) -> PlanRefusal | None:
    """财库〔2020〕10号: a purchase starting on ``start`` needs an intention published at least
    30 days before (``published``: the days the plan's intentions were published)."""
    days = sorted(published)
    if not days:
        return PlanRefusal(
            "intention_not_published", INTENTION_ARTICLE,
            "采购活动开始前须公开采购意向 / a procurement intention must be published before the "
            "purchase starts", {})
    earliest = intention_earliest_start(calendar, days[0])
    if start < earliest.day:
        return PlanRefusal(
            "intention_too_late", INTENTION_ARTICLE,
            f"采购意向应不晚于采购活动开始前30日公开，最早 {earliest.day.isoformat()} 开始 / the "
            f"intention must be published at least 30 days before the purchase starts: "
            f"{earliest.day.isoformat()} at the earliest",
            {"earliest_day": earliest.day.isoformat(), "published_day": days[0].isoformat(),
             "provisional": earliest.provisional})
    return None


def check_intention_month(calendar: CalendarData, published: date, year: int,
                          month: int) -> PlanRefusal | None:
    """An intention published on ``published`` whose expected time (预计采购时间) is the month
    ``year-month``: refused when the whole month is before the earliest legal start."""
    earliest = intention_earliest_start(calendar, published).day
    if (year, month) < (earliest.year, earliest.month):
        return PlanRefusal(
            "intention_too_late", INTENTION_ARTICLE,
            f"预计采购时间应不早于 {earliest.isoformat()}（意向公开后30日）/ the expected time "
            f"must allow 30 days after the intention: {earliest.isoformat()} at the earliest",
            {"earliest_day": earliest.isoformat(), "published_day": published.isoformat()})
    return None


# ------------------------------------------------------------------------------ splitting


@dataclass(frozen=True, slots=True)
class Purchase:
    """One purchase (a lot) read for splitting: its budget project and fiscal year, the
    category it was planned under, its method, its amount and whether the supervising
    department approved a method other than open tender for it (GPL 27)."""

    purchase_id: str
    budget_project_id: str
    fiscal_year: int
    category_code: str
    method: str
    amount_fen: int
    approved: bool = False


@dataclass(frozen=True, slots=True)
class SplittingFlag:
    """A red flag: the non-open purchases of one budget project, fiscal year and category
    group whose total exceeds the threshold."""

    budget_project_id: str
    fiscal_year: int
    category_code: str
    total_fen: int
    threshold_fen: int
    purchase_ids: tuple[str, ...]
    article: str = "Reg 28"


def _group_of(category: str, categories: set[str]) -> str:
    """The topmost of ``categories`` that holds ``category`` (itself when none does): the
    same 品目 whether a purchase was planned under A020101 or its child A02010105."""
    for ancestor in category_ancestors(category):
        if ancestor in categories:
            return ancestor
    return category


def splitting_flags(purchases: Iterable[Purchase], threshold_fen: int) -> list[SplittingFlag]:
    """政府采购法实施条例 第二十八条 (化整为零): group the purchases by budget project, fiscal year
    and category (a category and the categories below it are one group), keep those made by a
    method other than open tender and not approved for it, and flag each group whose total is
    strictly greater than ``threshold_fen`` (DOMAIN.md §4: "exceeds"). Sorted by budget project,
    year and category."""
    counted = [p for p in purchases if p.method != OPEN_TENDER and not p.approved]
    by_line: dict[tuple[str, int], list[Purchase]] = {}
    for purchase in counted:
        by_line.setdefault((purchase.budget_project_id, purchase.fiscal_year), []).append(purchase)
    flags: list[SplittingFlag] = []
    for (budget_project, year), items in sorted(by_line.items()):
        categories = {p.category_code for p in items}
        groups: dict[str, list[Purchase]] = {}
        for purchase in items:
            groups.setdefault(_group_of(purchase.category_code, categories), []).append(purchase)
        for category, members in sorted(groups.items()):
            total = sum(p.amount_fen for p in members)
            if total > threshold_fen:
                flags.append(SplittingFlag(budget_project, year, category, total, threshold_fen,
                                           tuple(sorted(p.purchase_id for p in members))))
    return flags
