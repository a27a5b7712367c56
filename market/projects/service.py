"""The project use cases: create a project with its lots, and run each lot through its life
cycle (``market.projects.rules``), one SQL transaction per command. A command the rules refuse
writes nothing and raises the refusal (its code, article and details) as a ``bidroom.errors``
type; an accepted one writes the lot, its announcements and its domain events (the outbox,
``market.events``) in the same transaction.

Events (``kind``, aggregate ``lot:<id>``): ``project.created`` (aggregate ``project:<id>``),
``project.lot_published``, ``project.lot_corrected``, ``project.bidding_closed``,
``project.lot_opened``, ``project.lot_qualified``, ``project.evaluation_started``,
``project.lot_failed``, ``project.lot_terminated``, ``project.lot_retendered``.

Must not import: web.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, exists, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from bidroom.errors import (
    BidroomError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from bidroom.stores.sql import sql_errors
from market.calendar.service import CalendarService
from market.calendar.views import date_view
from market.events.outbox import emit
from market.plans import service as plans
from market.projects.rules import (
    BiddingClosed,
    BidMode,
    Command,
    EvaluationMethod,
    EvaluationStarted,
    Event,
    LotCorrected,
    LotFailed,
    LotOpened,
    LotPublished,
    LotQualified,
    LotRetendered,
    LotState,
    LotStatus,
    LotTerminated,
    Method,
    Publish,
    Refused,
    RegionRules,
    Retender,
    check_lot_terms,
    decide,
)
from market.projects.store import AnnouncementRow, LotRow, ProjectRow, lot_state, store_lot_state
from market.registry import Principal, Role
from market.registry.rules import region_bounds

__all__ = ["LotDraft", "ProjectService", "event_kind"]

_MAX_LOTS: Final = 50
_REGION: Final = re.compile(r"[1-8]\d{5}")
_CATEGORY: Final = re.compile(r"[ABC]\d{0,10}")
_CONFLICTS: Final = frozenset({"wrong_status", "deadline_not_reached", "concurrent_change"})
_MAX_FEN: Final = 10**15  # 10 trillion yuan: larger is a typing error, and JSON-safe


@dataclass(frozen=True, slots=True)
class LotDraft:
    title: str
    category_code: str
    budget_fen: int
    ceiling_fen: int
    bond_fen: int = 0
    bid_mode: BidMode = BidMode.SEALED
    evaluation: EvaluationMethod = EvaluationMethod.COMPREHENSIVE


_KINDS: Final[Mapping[type, str]] = {
    LotPublished: "project.lot_published", LotCorrected: "project.lot_corrected",
    BiddingClosed: "project.bidding_closed", LotOpened: "project.lot_opened",
    LotQualified: "project.lot_qualified", EvaluationStarted: "project.evaluation_started",
    LotFailed: "project.lot_failed", LotTerminated: "project.lot_terminated",
    LotRetendered: "project.lot_retendered",
}


def event_kind(event: Event) -> str:
    return _KINDS[type(event)]


def _payload(event: Event) -> dict[str, Any]:
    match event:
        case LotPublished():
            return {"deadline_ms": event.deadline_ms, "bid_mode": str(event.bid_mode),
                    "dates": [date_view(d) for d in event.dates]}
        case LotCorrected():
            return {"deadline_ms": event.deadline_ms, "deadline_moved": event.deadline_moved,
                    "rule": date_view(event.rule) if event.rule else None}
        case BiddingClosed() | LotOpened():
            return {"bidders": list(event.bidders)}
        case LotQualified():
            return {"qualified": list(event.qualified)}
        case LotFailed():
            return {"reason": event.reason, "article": event.article}
        case LotTerminated():
            return {"reason": event.reason}
        case LotRetendered():
            return {"method": str(event.method), "round": event.round}
    return {}


def _refusal_error(refusal: Refused) -> BidroomError:
    kind = ConflictError if refusal.reason in _CONFLICTS else ValidationError
    return kind(refusal.message, code=refusal.reason, article=refusal.article,
                **dict(refusal.details))


def _text(value: str, field: str, *, required: bool = True, limit: int = 200) -> str:
    text = value.strip()
    if (required and not text) or len(text) > limit:
        raise ValidationError(f"{field}: 1–{limit} 个字符 / 1 to {limit} characters",
                              code="invalid_field", field=field)
    return text


def _fen(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_FEN:
        raise ValidationError(f"{field}: 以分为单位的整数 / a whole number of fen",
                              code="invalid_field", field=field)
    return value


class ProjectService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], calendar: CalendarService, *,
                 now_ms: Callable[[], Awaitable[int]],
                 rules: RegionRules | None = None) -> None:
        self._sessions = sessions
        self.calendar = calendar
        self._now_ms = now_ms
        self.rules = rules if rules is not None else RegionRules()

    # ------------------------------------------------------------------ authorisation

    @staticmethod
    def may_manage(principal: Principal, project: ProjectRow) -> bool:
        """The purchaser's and the agency's staff run a project (admins may too)."""
        if Role.ADMIN in principal.roles:
            return True
        return ((principal.org_id == project.purchaser_org_id and Role.PURCHASER in principal.roles)
                or (project.agency_org_id is not None and principal.org_id == project.agency_org_id
                    and Role.AGENCY in principal.roles))

    @staticmethod
    def may_read(principal: Principal, project: ProjectRow, *, published: bool) -> bool:
        """Region scoping (issue #11): an administrator or supervisor sees the projects of its
        region and below, nothing else (``market.registry.rules.viewer_scope``); anyone else
        sees its own organisation's projects (as purchaser or agency) and every published one
        (a project with an announcement: the portal shows it to the public anyway)."""
        scope = principal.scope
        if scope is not None:
            return scope.sees(project.region_code)
        return (principal.org_id in (project.purchaser_org_id, project.agency_org_id)
                or published)

    @staticmethod
    def _readable(principal: Principal) -> ColumnElement[bool]:
        """``may_read`` as a SQL condition (the region as an index range)."""
        scope = principal.scope
        if scope is not None:
            if scope.platform_wide:
                return ProjectRow.id.is_not(None)
            if scope.region is None:
                return false()
            low, high = region_bounds(scope.region)
            return ProjectRow.region_code.between(low, high)
        return or_(ProjectRow.purchaser_org_id == principal.org_id,
                   ProjectRow.agency_org_id == principal.org_id,
                   exists().where(AnnouncementRow.project_id == ProjectRow.id))

    async def _published(self, session: AsyncSession, project_id: str) -> bool:
        return await session.scalar(select(AnnouncementRow.id).where(
            AnnouncementRow.project_id == project_id).limit(1)) is not None

    # ------------------------------------------------------------------ use cases

    async def create_project(self, principal: Principal, *, title: str, method: Method,
                             region_code: str, lots: Sequence[LotDraft], title_en: str = "",
                             agency_org_id: str | None = None,
                             plan_id: str | None = None) -> tuple[ProjectRow, list[LotRow]]:
        """A project with its lots, in draft. With ``plan_id`` the project draws its budget on
        that plan of the purchaser's (``market.plans.service.draw``): the budget fits in what
        the plan has left and every lot's category is the plan's or below it, in the same
        transaction as the project."""
        if Role.PURCHASER not in principal.roles and Role.AGENCY not in principal.roles:
            raise ForbiddenError("只有采购人或代理机构可以建项目 / only a purchaser or an agency "
                                 "creates a project", code="role_required")
        if not _REGION.fullmatch(region_code):
            raise ValidationError("行政区划代码为6位数字 / a region code is six digits",
                                  code="invalid_region", field="region_code")
        if not 1 <= len(lots) <= _MAX_LOTS:
            raise ValidationError(f"一个项目有 1–{_MAX_LOTS} 个包 / a project has 1 to "
                                  f"{_MAX_LOTS} lots", code="invalid_field", field="lots")
        for i, lot in enumerate(lots):
            if not _CATEGORY.fullmatch(lot.category_code):
                raise ValidationError("品目编码以 A/B/C 开头 / a category code starts with A, B "
                                      "or C", code="invalid_category", field=f"lots[{i}]")
            refusal = check_lot_terms(_fen(lot.budget_fen, "budget_fen"),
                                      _fen(lot.ceiling_fen, "ceiling_fen"),
                                      _fen(lot.bond_fen, "bond_fen"))
            if refusal is not None:
                raise _refusal_error(refusal)
        purchaser = principal.org_id if Role.PURCHASER in principal.roles else None
        if purchaser is None:  # an agency creates it for a purchaser it names later: not here
            raise ForbiddenError("代理机构须由采购人委托建项 / an agency acts on a purchaser's "
                                 "project", code="role_required")
        now = await self._now_ms()
        project = ProjectRow(
            id=f"P{uuid.uuid4().hex[:15]}", title=_text(title, "title"),
            title_en=_text(title_en, "title_en", required=False), method=str(method),
            region_code=region_code, purchaser_org_id=purchaser, agency_org_id=agency_org_id,
            budget_fen=sum(lot.budget_fen for lot in lots), created_by=principal.user_id,
            created_at_ms=now, plan_id=plan_id)
        rows = [LotRow(id=f"{project.id}-{i + 1}", project_id=project.id, number=i + 1,
                       title=_text(lot.title, f"lots[{i}].title"),
                       category_code=lot.category_code, method=str(method),
                       budget_fen=lot.budget_fen, ceiling_fen=lot.ceiling_fen,
                       bond_fen=lot.bond_fen, bid_mode=str(lot.bid_mode),
                       evaluation=str(lot.evaluation), status="draft", bidders=[],
                       qualified=[], rounds=1, ended_reason="")
                for i, lot in enumerate(lots)]
        try:
            await self._write_project(principal, project, rows, plan_id, now)
        except StaleDataError as exc:  # the plan's total changed meanwhile (market.plans)
            raise ConflictError("采购计划刚被他人修改，请重试 / the plan changed meanwhile: try "
                                "again", code="concurrent_change") from exc
        return project, rows

    async def _write_project(self, principal: Principal, project: ProjectRow,
                             rows: list[LotRow], plan_id: str | None, now: int) -> None:
        region_code = project.region_code
        with sql_errors("create a project"):
            async with self._sessions.begin() as session:
                session.add(project)
                await session.flush()
                session.add_all(rows)
                if plan_id is not None:
                    await plans.draw(session, principal, plan_id, project.id, project.budget_fen,
                                     [plans.DrawnLot(r.id, r.category_code, r.method,
                                                     r.budget_fen) for r in rows])
                emit(session, "project.created", f"project:{project.id}",
                     {"title": project.title, "method": project.method,
                      "region_code": region_code, "lots": [r.id for r in rows],
                      "budget_fen": project.budget_fen, "plan_id": plan_id}, at_ms=now)

    async def project(self, project_id: str, principal: Principal | None = None) -> tuple[
            ProjectRow, list[LotRow]]:
        """A project and its lots; with ``principal``, only if it may read it (``may_read``),
        else ``project_not_found`` as for a missing one."""
        with sql_errors("read a project"):
            async with self._sessions() as session:
                project = await session.get(ProjectRow, project_id)
                if project is None or (principal is not None and not self.may_read(
                        principal, project, published=await self._published(session,
                                                                             project_id))):
                    raise NotFoundError("没有这个项目 / no such project", code="project_not_found")
                lots = (await session.scalars(select(LotRow).where(
                    LotRow.project_id == project_id).order_by(LotRow.number))).all()
        return project, list(lots)

    async def list_projects(self, *, region_prefix: str = "", limit: int = 100,
                            offset: int = 0, principal: Principal | None = None) -> tuple[
                                list[ProjectRow], int]:
        """Projects by region prefix, newest first; with ``principal`` only those it may read."""
        with sql_errors("list projects"):
            async with self._sessions() as session:
                where = ProjectRow.region_code.startswith(region_prefix)
                if principal is not None:
                    where = where & self._readable(principal)
                total = await session.scalar(select(func.count()).select_from(ProjectRow)
                                             .where(where))
                rows = (await session.scalars(select(ProjectRow).where(where)
                                              .order_by(ProjectRow.created_at_ms.desc())
                                              .limit(limit).offset(offset))).all()
        return list(rows), int(total or 0)

    async def lot(self, lot_id: str, principal: Principal | None = None) -> LotRow:
        """A lot; with ``principal``, only if it may read the lot's project, else
        ``lot_not_found``."""
        with sql_errors("read a lot"):
            async with self._sessions() as session:
                row = await session.get(LotRow, lot_id)
                if row is not None and principal is not None:
                    project = await session.get(ProjectRow, row.project_id)
                    if project is None or not self.may_read(
                            principal, project,
                            published=await self._published(session, project.id)):
                        row = None
        if row is None:
            raise NotFoundError("没有这个包 / no such lot", code="lot_not_found")
        return row

    async def project_budget(self, lot_id: str) -> int:
        """The whole project's budget (GPL 27's threshold is the project's, not a lot's)."""
        lot = await self.lot(lot_id)
        project, _ = await self.project(lot.project_id)
        return project.budget_fen

    async def announcements(self, project_id: str) -> list[AnnouncementRow]:
        with sql_errors("read announcements"):
            async with self._sessions() as session:
                return list((await session.scalars(
                    select(AnnouncementRow).where(AnnouncementRow.project_id == project_id)
                    .order_by(AnnouncementRow.id))).all())

    async def run(self, principal: Principal | None, lot_id: str,
                  build: Callable[[LotState, int], Command]) -> tuple[LotState, list[Event]]:
        """Decide one command on a lot (``principal`` None: the platform itself, e.g. a
        consumer of the opening's events) and write its effects in one transaction."""
        calendar = await self.calendar.data()
        try:
            with sql_errors("change a lot"):
                async with self._sessions.begin() as session:
                    lot = await session.get(LotRow, lot_id)
                    if lot is None:
                        raise NotFoundError("没有这个包 / no such lot", code="lot_not_found")
                    project = await session.get(ProjectRow, lot.project_id)
                    assert project is not None
                    if principal is not None and not self.may_manage(principal, project):
                        raise ForbiddenError("不是本项目的采购人或代理机构 / not this project's "
                                             "purchaser or agency", code="not_your_project")
                    now = await self._now_ms()
                    state = lot_state(lot)
                    command = build(state, now)
                    new, events = decide(state, command, calendar=calendar, rules=self.rules)
                    refusal = next((e for e in events if isinstance(e, Refused)), None)
                    if refusal is not None:
                        raise _refusal_error(refusal)
                    if project.plan_id is not None:
                        await self._keep_plan(session, calendar, project.plan_id, lot.id,
                                              command, new)
                    store_lot_state(lot, new)
                    for event in events:
                        emit(session, event_kind(event), f"lot:{lot.id}",
                             {"project_id": project.id, **_payload(event)}, at_ms=now)
                        self._announce(session, project, lot, event, now)
        except StaleDataError as exc:
            raise ConflictError("此包刚被他人修改，请重试 / the lot changed meanwhile: try "
                                "again", code="concurrent_change") from exc
        return new, list(events)

    @staticmethod
    async def _keep_plan(session: AsyncSession, calendar: Any, plan_id: str, lot_id: str,
                         command: Command, new: LotState) -> None:
        """A planned project's lot: publishing it starts the purchase, which needs the plan's
        intention 30 days before (财库〔2020〕10号); its method, approval and end are what
        splitting reads (Reg 28)."""
        approved: bool | None = None
        if isinstance(command, Publish):
            refusal = await plans.check_publication(session, calendar, plan_id, command.at_ms)
            if refusal is not None:
                raise plans.refusal_error(refusal)
            approved = bool(command.approval.strip())
        elif isinstance(command, Retender):
            approved = False  # a new method needs its approval again at publication (GPL 27)
        await plans.record_lot(session, lot_id, method=str(new.method), approved=approved,
                               terminated=new.status is LotStatus.TERMINATED)

    @staticmethod
    def _announce(session: AsyncSession, project: ProjectRow, lot: LotRow, event: Event,
                  now: int) -> None:
        """The announcements the law requires for an event (GPL 11; O87 16, 27, 69)."""
        match event:
            case LotPublished():
                kind, body = "procurement", f"{project.title} {lot.title}：采购公告"
                dates = [date_view(d) for d in event.dates]
            case LotCorrected():
                kind, body = "correction", f"{project.title} {lot.title}：更正公告"
                dates = [date_view(event.rule)] if event.rule else []
            case LotFailed():
                kind, body = "failure", f"{project.title} {lot.title}：废标公告（{event.article}）"
                dates = []
            case LotTerminated():
                kind, body = "termination", f"{project.title} {lot.title}：终止公告 {event.reason}"
                dates = []
            case _:
                return
        session.add(AnnouncementRow(
            project_id=project.id, lot_id=lot.id, kind=kind, title=f"{project.title} {lot.title}",
            body=body, region_code=project.region_code, method=lot.method,
            category_code=lot.category_code, dates=dates, published_at_ms=now,
            reference=project.id.upper()))
