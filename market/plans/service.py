"""The plans' use cases: budget projects, plans against them, procurement intentions, and the
splitting report supervisors read; plus the ledger functions ``market.projects`` calls inside
its own transactions (``draw``, ``check_publication``, ``record_lot``), so a project that
draws on a plan is written with its draw, or neither is.

Who sees what (``PlanService.visible``): the purchasing unit's purchasers see its own budget
projects and plans; an administrator or supervisor of a region sees those of its region and
below (``market.registry.rules.viewer_scope``); nobody else. A record out of sight answers
exactly as a missing one (``budget_project_not_found``, ``plan_not_found``).

Events (the outbox, aggregate ``budget:<id>`` / ``plan:<id>``): ``plan.budget_project_created``,
``plan.created``, ``plan.intention_published``.

Must not import: web.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from bidroom.errors import (
    BidroomError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from bidroom.money import MAX_FEN
from bidroom.stores.sql import sql_errors
from market.calendar.rules import CalendarData, beijing_day
from market.calendar.service import CalendarService
from market.catalog.models import CategoryRow
from market.catalog.rules import valid_category_code
from market.events.outbox import emit
from market.plans.rules import (
    PlanRefusal,
    Purchase,
    SplittingFlag,
    check_draw,
    check_intention,
    check_intention_month,
    check_plan,
    splitting_flags,
)
from market.plans.store import BudgetProjectRow, IntentionRow, PlanPurchaseRow, PlanRow
from market.registry import Principal, Role
from market.registry.rules import region_bounds, region_level

__all__ = ["BudgetProjectView", "DrawnLot", "PlanService", "PlanView", "check_publication",
           "draw", "record_lot", "refusal_error", "visible"]

_MAX_FEN: Final = MAX_FEN  # the API's bound on money (10^11 yuan)
_CODE: Final = re.compile(r"[0-9A-Za-z\-]{1,40}")
_MONTH: Final = re.compile(r"(20[0-9]{2})-(0[1-9]|1[0-2])")


def refusal_error(refusal: PlanRefusal) -> ValidationError:
    return ValidationError(refusal.message, code=refusal.reason, article=refusal.article,
                           **dict(refusal.details))


def _fen(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_FEN:
        raise ValidationError(f"{field}: 以分为单位的正整数 / a positive whole number of fen",
                              code="invalid_field", field=field)
    return value


def _text(value: str, field: str, limit: int = 200) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > limit:
        raise ValidationError(f"{field}: 1–{limit} 个字符 / 1 to {limit} characters",
                              code="invalid_field", field=field)
    return text


def _budget_not_found() -> NotFoundError:
    return NotFoundError("没有这个预算项目 / no such budget project",
                         code="budget_project_not_found")


def _plan_not_found() -> NotFoundError:
    return NotFoundError("没有这个采购计划 / no such procurement plan", code="plan_not_found")


def visible(principal: Principal, budget: BudgetProjectRow) -> bool:
    """The purchasing unit's purchasers, and admins and supervisors whose region holds it."""
    if principal.org_id == budget.purchaser_org_id and Role.PURCHASER in principal.roles:
        return True
    scope = principal.scope
    return scope is not None and scope.sees(budget.region_code)


@dataclass(frozen=True, slots=True)
class BudgetProjectView:
    budget: BudgetProjectRow
    plans: list[PlanRow]


@dataclass(frozen=True, slots=True)
class PlanView:
    plan: PlanRow
    budget: BudgetProjectRow
    intentions: list[IntentionRow]
    purchases: list[PlanPurchaseRow]


@dataclass(frozen=True, slots=True)
class DrawnLot:
    """A lot of a project that draws on a plan."""

    lot_id: str
    category_code: str
    method: str
    budget_fen: int


# ------------------------------------------------------------------ the ledger (in a caller's
# transaction: market.projects calls these with its own session)


async def draw(session: AsyncSession, principal: Principal, plan_id: str, project_id: str,
               budget_fen: int, lots: Sequence[DrawnLot]) -> PlanRow:
    """Draw a project's budget on a plan of the caller's purchasing unit: refused with
    ``plan_not_found`` (not the caller's), ``category_outside_plan`` or ``plan_exceeded``."""
    plan = await session.get(PlanRow, plan_id)
    budget = await session.get(BudgetProjectRow, plan.budget_project_id) if plan else None
    if plan is None or budget is None or budget.purchaser_org_id != principal.org_id:
        raise _plan_not_found()
    refusal = check_draw(plan.category_code, plan.amount_fen - plan.committed_fen, budget_fen,
                         [lot.category_code for lot in lots])
    if refusal is not None:
        raise refusal_error(refusal)
    plan.committed_fen += budget_fen
    session.add_all(PlanPurchaseRow(lot_id=lot.lot_id, plan_id=plan.id, project_id=project_id,
                                    category_code=lot.category_code, method=lot.method,
                                    amount_fen=lot.budget_fen, approved=False, terminated=False)
                    for lot in lots)
    return plan


async def check_publication(session: AsyncSession, calendar: CalendarData, plan_id: str,
                            at_ms: int) -> PlanRefusal | None:
    """财库〔2020〕10号: publishing a lot of a planned project at ``at_ms`` starts the purchase;
    the plan's intention must have been published at least 30 days before."""
    published = (await session.scalars(select(IntentionRow.published_at_ms).where(
        IntentionRow.plan_id == plan_id))).all()
    return check_intention(calendar, [beijing_day(ms) for ms in published], beijing_day(at_ms))


async def record_lot(session: AsyncSession, lot_id: str, *, method: str,
                     approved: bool | None = None, terminated: bool = False) -> None:
    """Keep a drawn lot's purchase as splitting reads it: its current method (a re-tender may
    change it, O87 43), whether the other method was approved (GPL 27), whether it ended
    without a purchase. A lot that draws on no plan: nothing to do."""
    row = await session.get(PlanPurchaseRow, lot_id)
    if row is None:
        return
    row.method = method
    if approved is not None:
        row.approved = approved
    row.terminated = terminated


# ------------------------------------------------------------------ the use cases


class PlanService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], calendar: CalendarService, *,
                 now_ms: Callable[[], Awaitable[int]], threshold_fen: int) -> None:
        self._sessions = sessions
        self.calendar = calendar
        self._now_ms = now_ms
        #: 公开招标数额标准 (GPL 27; the region's setting, the projects' RegionRules).
        self.threshold_fen = threshold_fen

    async def create_budget_project(self, principal: Principal, *, code: str, name: str,
                                    fiscal_year: int, amount_fen: int,
                                    region_code: str | None = None) -> BudgetProjectRow:
        """A budget line of the caller's purchasing unit. Its region is the unit's (or, for a
        unit registered without one, ``region_code``)."""
        if Role.PURCHASER not in principal.roles:
            raise ForbiddenError("只有采购人登记预算项目 / only a purchaser registers its budget "
                                 "projects", code="role_required")
        region = region_code or principal.region_code
        if region is None or region_level(region) is None:
            raise ValidationError("行政区划代码为6位数字 / a region code is six digits",
                                  code="invalid_region", field="region_code")
        if principal.region_code is not None and region != principal.region_code:
            raise ForbiddenError("预算项目属于本单位所在区划 / a budget project belongs to the "
                                 "unit's own region", code="region_out_of_scope",
                                 region_code=region)
        if not _CODE.fullmatch(code if isinstance(code, str) else ""):
            raise ValidationError("预算项目编码：1–40 位数字、字母或 - / a budget project code is "
                                  "1 to 40 digits, letters or -", code="invalid_field",
                                  field="code")
        if isinstance(fiscal_year, bool) or not isinstance(fiscal_year, int) or not (
                2000 <= fiscal_year <= 2100):
            raise ValidationError("fiscal_year: 2000–2100", code="invalid_field",
                                  field="fiscal_year")
        now = await self._now_ms()
        row = BudgetProjectRow(
            id=f"B{uuid.uuid4().hex[:15]}", purchaser_org_id=principal.org_id,
            region_code=region, code=code, name=_text(name, "name"), fiscal_year=fiscal_year,
            amount_fen=_fen(amount_fen, "amount_fen"), planned_fen=0,
            created_by=principal.user_id, created_at_ms=now)
        with sql_errors("create a budget project"):
            async with self._sessions.begin() as session:
                taken = await session.scalar(select(BudgetProjectRow.id).where(
                    BudgetProjectRow.purchaser_org_id == principal.org_id,
                    BudgetProjectRow.fiscal_year == fiscal_year, BudgetProjectRow.code == code))
                if taken is not None:
                    raise ConflictError("本单位该年度已有此预算项目编码 / the unit already "
                                        "has this budget project code for the year",
                                        code="budget_project_code_taken", budget_project_id=taken)
                session.add(row)
                emit(session, "plan.budget_project_created", f"budget:{row.id}",
                     {"code": code, "fiscal_year": fiscal_year, "amount_fen": row.amount_fen,
                      "purchaser_org_id": principal.org_id, "region_code": region}, at_ms=now)
        return row

    async def _budget(self, session: AsyncSession, principal: Principal,
                      budget_project_id: str) -> BudgetProjectRow:
        row = await session.get(BudgetProjectRow, budget_project_id)
        if row is None or not visible(principal, row):
            raise _budget_not_found()
        return row

    async def budget_project(self, principal: Principal,
                             budget_project_id: str) -> BudgetProjectView:
        with sql_errors("read a budget project"):
            async with self._sessions() as session:
                row = await self._budget(session, principal, budget_project_id)
                plans = (await session.scalars(select(PlanRow).where(
                    PlanRow.budget_project_id == row.id).order_by(PlanRow.created_at_ms,
                                                                  PlanRow.id))).all()
        return BudgetProjectView(row, list(plans))

    async def list_budget_projects(self, principal: Principal, *,
                                   fiscal_year: int | None = None, limit: int = 100,
                                   offset: int = 0) -> tuple[list[BudgetProjectRow], int]:
        """The budget projects the caller sees (its unit's; its region's and below)."""
        scope = principal.scope
        where: list[ColumnElement[bool]]
        if scope is not None and scope.platform_wide:
            where = [BudgetProjectRow.id.is_not(None)]
        elif scope is not None:
            if scope.region is None:
                return [], 0
            low, high = region_bounds(scope.region)
            where = [BudgetProjectRow.region_code.between(low, high)]
        elif Role.PURCHASER in principal.roles:
            where = [BudgetProjectRow.purchaser_org_id == principal.org_id]
        else:
            return [], 0
        if fiscal_year is not None:
            where.append(BudgetProjectRow.fiscal_year == fiscal_year)
        with sql_errors("list budget projects"):
            async with self._sessions() as session:
                total = await session.scalar(select(func.count()).select_from(BudgetProjectRow)
                                             .where(*where))
                rows = (await session.scalars(
                    select(BudgetProjectRow).where(*where)
                    .order_by(BudgetProjectRow.created_at_ms.desc(), BudgetProjectRow.id)
                    .limit(limit).offset(offset))).all()
        return list(rows), int(total or 0)

    async def create_plan(self, principal: Principal, budget_project_id: str, *, name: str,
                          category_code: str, amount_fen: int) -> PlanRow:
        """A plan for one category of the catalogue; the budget project's plans together
        stay within its amount (``plans_exceed_budget``, GPL 6)."""
        if Role.PURCHASER not in principal.roles:
            raise ForbiddenError("只有采购人编制采购计划 / only a purchaser plans its purchases",
                                 code="role_required")
        code = category_code.strip().upper() if isinstance(category_code, str) else ""
        amount = _fen(amount_fen, "amount_fen")
        title = _text(name, "name")
        now = await self._now_ms()
        try:
            with sql_errors("create a plan"):
                async with self._sessions.begin() as session:
                    budget = await self._budget(session, principal, budget_project_id)
                    if budget.purchaser_org_id != principal.org_id:
                        raise _budget_not_found()
                    if not valid_category_code(code) or await session.get(CategoryRow,
                                                                          code) is None:
                        raise NotFoundError(f"category {code} not found",
                                            code="category_not_found", category=code)
                    refusal = check_plan(budget.amount_fen, budget.planned_fen, amount)
                    if refusal is not None:
                        raise refusal_error(refusal)
                    budget.planned_fen += amount
                    plan = PlanRow(id=f"L{uuid.uuid4().hex[:15]}", budget_project_id=budget.id,
                                   name=title, category_code=code, amount_fen=amount,
                                   committed_fen=0, created_at_ms=now)
                    session.add(plan)
                    emit(session, "plan.created", f"plan:{plan.id}",
                         {"budget_project_id": budget.id, "category_code": code,
                          "amount_fen": amount}, at_ms=now)
        except StaleDataError as exc:
            raise _concurrent() from exc
        return plan

    async def plan(self, principal: Principal, plan_id: str) -> PlanView:
        with sql_errors("read a plan"):
            async with self._sessions() as session:
                plan = await session.get(PlanRow, plan_id)
                if plan is None:
                    raise _plan_not_found()
                budget = await session.get(BudgetProjectRow, plan.budget_project_id)
                if budget is None or not visible(principal, budget):
                    raise _plan_not_found()
                intentions = (await session.scalars(select(IntentionRow).where(
                    IntentionRow.plan_id == plan_id).order_by(IntentionRow.published_at_ms,
                                                              IntentionRow.id))).all()
                purchases = (await session.scalars(select(PlanPurchaseRow).where(
                    PlanPurchaseRow.plan_id == plan_id).order_by(PlanPurchaseRow.lot_id))).all()
        return PlanView(plan, budget, list(intentions), list(purchases))

    async def publish_intention(self, principal: Principal, plan_id: str, *, name: str,
                                requirement_summary: str, budget_fen: int,
                                expected_month: str) -> IntentionRow:
        """Publish a procurement intention now (财库〔2020〕10号: name, requirement summary,
        budget, expected time); the expected month must leave the 30 days."""
        if Role.PURCHASER not in principal.roles:
            raise ForbiddenError("采购意向由预算单位公开 / the budget unit publishes its "
                                 "intentions", code="role_required")
        month = _MONTH.fullmatch(expected_month if isinstance(expected_month, str) else "")
        if month is None:
            raise ValidationError("expected_month: YYYY-MM", code="invalid_field",
                                  field="expected_month")
        title = _text(name, "name")
        summary = _text(requirement_summary, "requirement_summary", 4000)
        budget_fen = _fen(budget_fen, "budget_fen")
        calendar = await self.calendar.data()
        now = await self._now_ms()
        with sql_errors("publish an intention"):
            async with self._sessions.begin() as session:
                plan = await session.get(PlanRow, plan_id)
                budget = (await session.get(BudgetProjectRow, plan.budget_project_id)
                          if plan is not None else None)
                if plan is None or budget is None or budget.purchaser_org_id != principal.org_id:
                    raise _plan_not_found()
                if budget_fen > plan.amount_fen:
                    raise ValidationError(
                        "意向预算不得超过采购计划金额 / the intention's budget is above the plan's "
                        "amount", code="plan_exceeded", article="GPL 6",
                        remaining_fen=plan.amount_fen, budget_fen=budget_fen)
                refusal = check_intention_month(calendar, beijing_day(now),
                                                int(month.group(1)), int(month.group(2)))
                if refusal is not None:
                    raise refusal_error(refusal)
                row = IntentionRow(id=f"I{uuid.uuid4().hex[:15]}", plan_id=plan.id, name=title,
                                   requirement_summary=summary, budget_fen=budget_fen,
                                   expected_month=expected_month, published_at_ms=now,
                                   published_by=principal.user_id)
                session.add(row)
                emit(session, "plan.intention_published", f"plan:{plan.id}",
                     {"intention_id": row.id, "name": title, "budget_fen": budget_fen,
                      "expected_month": expected_month, "region_code": budget.region_code},
                     at_ms=now)
        return row

    async def splitting(self, principal: Principal,
                        budget_project_id: str) -> tuple[BudgetProjectRow, list[SplittingFlag]]:
        """Reg 28 red flags of one budget project, for an administrator or supervisor whose
        region holds it. A purchase is a lot drawn on one of its plans, under the plan's
        category; terminated lots made no purchase."""
        if principal.scope is None:
            raise ForbiddenError("监督部门或管理员查看 / for supervisors and administrators",
                                 code="role_required")
        with sql_errors("read splitting flags"):
            async with self._sessions() as session:
                budget = await session.get(BudgetProjectRow, budget_project_id)
                if budget is None or not principal.scope.sees(budget.region_code):
                    raise _budget_not_found()
                rows = (await session.execute(
                    select(PlanPurchaseRow, PlanRow.category_code)
                    .join(PlanRow, PlanRow.id == PlanPurchaseRow.plan_id)
                    .where(PlanRow.budget_project_id == budget.id,
                           PlanPurchaseRow.terminated.is_(False)))).all()
        purchases = [Purchase(row.lot_id, budget.id, budget.fiscal_year, category, row.method,
                              row.amount_fen, row.approved) for row, category in rows]
        return budget, splitting_flags(purchases, self.threshold_fen)


def _concurrent() -> BidroomError:
    return ConflictError("预算项目刚被他人修改，请重试 / the budget project changed meanwhile: "
                         "try again", code="concurrent_change")
