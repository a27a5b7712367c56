"""Plans on real SQL (market.plans.service with market.projects.service): a budget project's
plans stay within it, a project draws on its plan in the same transaction (or nothing is
written), publishing a planned lot needs the intention 30 days before, and the splitting
report reads the lots drawn on the plans with their current method."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import pytest
from sqlalchemy import func, select

from bidroom.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from market.calendar import BEIJING, CalendarService, CalendarStore
from market.catalog import Catalog, shipped_catalog_text
from market.plans.service import PlanService
from market.projects.rules import CloseBidding, Method, Publish, Retender
from market.projects.service import LotDraft, ProjectService
from market.projects.store import ProjectRow
from market.registry import OrgKind, Principal, Role

pytestmark = pytest.mark.asyncio

YUAN = 100
THRESHOLD = 4_000_000 * YUAN
PURCHASER = Principal("u-p", "采购员", "org-p", "天河某中学", OrgKind.PURCHASER,
                      frozenset({Role.PURCHASER}), "440106")
OTHER = Principal("u-x", "别人", "org-x", "另一单位", OrgKind.PURCHASER,
                  frozenset({Role.PURCHASER}), "440106")
GZ_SUPERVISOR = Principal("u-s", "监管", "org-s", "广州市财政局", OrgKind.SUPERVISOR,
                          frozenset({Role.SUPERVISOR}), "440100")
SZ_SUPERVISOR = Principal("u-z", "监管", "org-z", "深圳市财政局", OrgKind.SUPERVISOR,
                          frozenset({Role.SUPERVISOR}), "440300")


def at(day: date, hh: int = 9, mm: int = 30) -> int:
    return int(datetime.combine(day, time(hh, mm), tzinfo=BEIJING).timestamp() * 1000)


class _Clock:
    def __init__(self) -> None:
        self.ms = at(date(2026, 9, 1))

    async def __call__(self) -> int:
        return self.ms


async def _world(session_factory: Any) -> tuple[PlanService, ProjectService, _Clock]:
    await Catalog(session_factory).import_csv(shipped_catalog_text())
    clock = _Clock()
    calendar = CalendarService(CalendarStore(session_factory))
    return (PlanService(session_factory, calendar, now_ms=clock, threshold_fen=THRESHOLD),
            ProjectService(session_factory, calendar, now_ms=clock), clock)


async def _projects(session_factory: Any) -> int:
    async with session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(ProjectRow)) or 0)


async def test_plans_draws_intentions_and_splitting(session_factory: Any) -> None:
    plans, projects, clock = await _world(session_factory)
    budget = await plans.create_budget_project(
        PURCHASER, code="440106-2026-001", name="2026年教学设备购置", fiscal_year=2026,
        amount_fen=9_000_000 * YUAN)
    assert budget.region_code == "440106"
    computers = await plans.create_plan(PURCHASER, budget.id, name="计算机",
                                        category_code="A020101", amount_fen=6_000_000 * YUAN)
    with pytest.raises(ValidationError) as over:
        await plans.create_plan(PURCHASER, budget.id, name="家具", category_code="A0501",
                                amount_fen=3_000_000 * YUAN + 1)
    assert over.value.code == "plans_exceed_budget"
    assert over.value.details["remaining_fen"] == 3_000_000 * YUAN
    with pytest.raises(NotFoundError) as unknown:
        await plans.create_plan(PURCHASER, budget.id, name="x", category_code="A99",
                                amount_fen=1)
    assert unknown.value.code == "category_not_found"
    with pytest.raises(NotFoundError):  # another unit's budget project is not found
        await plans.create_plan(OTHER, budget.id, name="x", category_code="A0501", amount_fen=1)
    view = await plans.budget_project(PURCHASER, budget.id)
    assert view.budget.planned_fen == 6_000_000 * YUAN and len(view.plans) == 1

    def lot(budget_fen: int, category: str = "A02010105") -> list[LotDraft]:
        return [LotDraft("台式计算机", category, budget_fen, budget_fen)]

    # a draw outside the plan writes no project
    with pytest.raises(ValidationError) as outside:
        await projects.create_project(PURCHASER, title="家具", method=Method.INQUIRY,
                                      region_code="440106", lots=lot(100, "A0501"),
                                      plan_id=computers.id)
    assert outside.value.code == "category_outside_plan"
    with pytest.raises(ValidationError) as exceeded:
        await projects.create_project(PURCHASER, title="太多", method=Method.OPEN_TENDER,
                                      region_code="440106", lots=lot(6_000_000 * YUAN + 1),
                                      plan_id=computers.id)
    assert exceeded.value.code == "plan_exceeded"
    with pytest.raises(NotFoundError) as foreign:
        await projects.create_project(OTHER, title="别人的", method=Method.INQUIRY,
                                      region_code="440106", lots=lot(100), plan_id=computers.id)
    assert foreign.value.code == "plan_not_found"
    assert await _projects(session_factory) == 0

    first, first_lots = await projects.create_project(
        PURCHASER, title="第一批", method=Method.INQUIRY, region_code="440106",
        lots=lot(2_000_000 * YUAN), plan_id=computers.id)
    _, second_lots = await projects.create_project(
        PURCHASER, title="第二批", method=Method.COMPETITIVE_NEGOTIATION, region_code="440106",
        lots=lot(2_000_000 * YUAN, "A02010104"), plan_id=computers.id)
    assert first.plan_id == computers.id
    plan_view = await plans.plan(PURCHASER, computers.id)
    assert plan_view.plan.committed_fen == 4_000_000 * YUAN

    # 4,000,000 yuan of non-open purchases equals the threshold: no flag ("exceeds")
    _, flags = await plans.splitting(GZ_SUPERVISOR, budget.id)
    assert flags == []
    _, third_lots = await projects.create_project(
        PURCHASER, title="第三批", method=Method.INQUIRY, region_code="440106",
        lots=lot(1 * YUAN), plan_id=computers.id)
    _, flags = await plans.splitting(GZ_SUPERVISOR, budget.id)
    assert [(f.category_code, f.total_fen) for f in flags] == [("A020101",
                                                                 4_000_001 * YUAN)]
    assert set(flags[0].purchase_ids) == {first_lots[0].id, second_lots[0].id,
                                          third_lots[0].id}
    with pytest.raises(NotFoundError):  # Shenzhen does not see a Tianhe budget project
        await plans.splitting(SZ_SUPERVISOR, budget.id)

    # publishing a planned lot needs the intention 30 days before (财库〔2020〕10号)
    clock.ms = at(date(2026, 9, 1), 9)
    documents = (at(date(2026, 10, 9), 9), at(date(2026, 10, 16), 9), at(date(2026, 10, 16)))

    def publish(state: Any, now: int) -> Publish:
        return Publish(now, *documents, project_budget_fen=first.budget_fen)

    clock.ms = at(date(2026, 10, 9), 9)
    with pytest.raises(ValidationError) as missing:
        await projects.run(PURCHASER, first_lots[0].id, publish)
    assert missing.value.code == "intention_not_published"
    clock.ms = at(date(2026, 9, 10), 9)
    await plans.publish_intention(PURCHASER, computers.id, name="台式计算机采购",
                                  requirement_summary="台式计算机120台",
                                  budget_fen=2_000_000 * YUAN, expected_month="2026-10")
    clock.ms = at(date(2026, 10, 9), 9)  # 30 days from 10 Sep end Sat 10 Oct (a 调休 workday)
    with pytest.raises(ValidationError) as late:
        await projects.run(PURCHASER, first_lots[0].id, publish)
    assert late.value.code == "intention_too_late"
    assert late.value.details["earliest_day"] == "2026-10-10"
    assert (await projects.lot(first_lots[0].id)).status == "draft"
    clock.ms = at(date(2026, 10, 12), 9)
    documents = (at(date(2026, 10, 12), 9), at(date(2026, 10, 19), 9), at(date(2026, 10, 19)))
    state, _ = await projects.run(PURCHASER, first_lots[0].id, publish)
    assert str(state.status) == "announced"

    # the lot fails and is moved to open tender (O87 43): it no longer counts for splitting
    await projects.run(None, first_lots[0].id,
                       lambda s, now: CloseBidding(at(date(2026, 10, 19)), ("S1",)))
    await projects.run(PURCHASER, first_lots[0].id,
                       lambda s, now: Retender(now, Method.OPEN_TENDER))
    _, flags = await plans.splitting(GZ_SUPERVISOR, budget.id)
    assert flags == []


async def test_a_project_without_a_plan_behaves_as_before(session_factory: Any) -> None:
    _, projects, _ = await _world(session_factory)
    project, lots = await projects.create_project(
        PURCHASER, title="无计划", method=Method.OPEN_TENDER, region_code="440106",
        lots=[LotDraft("台式计算机", "A02010105", 100_000 * YUAN, 100_000 * YUAN)])
    assert project.plan_id is None

    def publish(state: Any, now: int) -> Publish:
        return Publish(now, now, at(date(2026, 9, 30)), at(date(2026, 10, 8)),
                       project.budget_fen)

    state, _ = await projects.run(PURCHASER, lots[0].id, publish)
    assert str(state.status) == "announced"


async def test_a_budget_project_code_is_unique_per_unit_and_year(session_factory: Any) -> None:
    plans, _, _ = await _world(session_factory)
    await plans.create_budget_project(PURCHASER, code="X-1", name="甲", fiscal_year=2026,
                                      amount_fen=100)
    await plans.create_budget_project(PURCHASER, code="X-1", name="甲", fiscal_year=2027,
                                      amount_fen=100)
    await plans.create_budget_project(OTHER, code="X-1", name="乙", fiscal_year=2026,
                                      amount_fen=100)
    with pytest.raises(ConflictError) as taken:
        await plans.create_budget_project(PURCHASER, code="X-1", name="丙", fiscal_year=2026,
                                          amount_fen=100)
    assert taken.value.code == "budget_project_code_taken"
    with pytest.raises(ForbiddenError) as elsewhere:
        await plans.create_budget_project(PURCHASER, code="X-2", name="丁", fiscal_year=2026,
                                          amount_fen=100, region_code="440305")
    assert elsewhere.value.code == "region_out_of_scope"
    mine, total = await plans.list_budget_projects(PURCHASER)
    assert total == 2 and {r.purchaser_org_id for r in mine} == {"org-p"}
    _, seen = await plans.list_budget_projects(GZ_SUPERVISOR, fiscal_year=2026)
    assert seen == 2
    assert (await plans.list_budget_projects(SZ_SUPERVISOR))[1] == 0


async def test_a_plan_total_written_meanwhile_is_not_overwritten(session_factory: Any) -> None:
    """The plan's running total carries a version counter: a writer that read it before
    another project drew on the plan fails instead of overwriting the newer total."""
    from sqlalchemy.orm.exc import StaleDataError

    from market.plans.store import PlanRow

    plans, projects, _ = await _world(session_factory)
    budget = await plans.create_budget_project(PURCHASER, code="V-1", name="甲",
                                               fiscal_year=2026, amount_fen=1000)
    plan = await plans.create_plan(PURCHASER, budget.id, name="计算机", category_code="A020101",
                                   amount_fen=1000)
    async with session_factory() as stale:
        row = await stale.get(PlanRow, plan.id)
        assert row is not None and row.committed_fen == 0
        await projects.create_project(PURCHASER, title="一", method=Method.INQUIRY,
                                      region_code="440106", plan_id=plan.id,
                                      lots=[LotDraft("a", "A02010105", 800, 800)])
        row.committed_fen += 800  # what a concurrent draw that read 0 would write
        with pytest.raises(StaleDataError):
            await stale.commit()
    assert (await plans.plan(PURCHASER, plan.id)).plan.committed_fen == 800
