"""The project use cases on real SQL: a refused command writes nothing, an accepted one writes
the lot, its announcement and its domain event in one transaction."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import pytest
from sqlalchemy import select

from bidroom.errors import ConflictError, ForbiddenError, ValidationError
from market.calendar import BEIJING, CalendarService, CalendarStore
from market.events import OutboxRow
from market.projects.rules import CloseBidding, LotStatus, Method, Publish
from market.projects.service import LotDraft, ProjectService
from market.projects.store import AnnouncementRow
from market.registry import OrgKind, Principal, Role

pytestmark = pytest.mark.asyncio

YUAN = 100
PURCHASER = Principal("u-p", "采购员", "org-p", "某市教育局", OrgKind.PURCHASER,
                      frozenset({Role.PURCHASER}))
OTHER = Principal("u-x", "别人", "org-x", "另一单位", OrgKind.PURCHASER,
                  frozenset({Role.PURCHASER}))


def at(day: date, hh: int = 9, mm: int = 30) -> int:
    return int(datetime.combine(day, time(hh, mm), tzinfo=BEIJING).timestamp() * 1000)


class _Clock:
    ms = at(date(2026, 9, 11), 8)

    async def __call__(self) -> int:
        return self.ms


async def _service(session_factory: Any) -> ProjectService:
    return ProjectService(session_factory, CalendarService(CalendarStore(session_factory)),
                          now_ms=_Clock())


async def _kinds(session_factory: Any) -> list[str]:
    async with session_factory() as session:
        return list((await session.scalars(select(OutboxRow.kind).order_by(OutboxRow.id))).all())


async def test_a_refused_publication_writes_nothing_and_names_the_rule(
        session_factory: Any) -> None:
    service = await _service(session_factory)
    project, lots = await service.create_project(
        PURCHASER, title="某市教育局计算机采购", method=Method.OPEN_TENDER, region_code="440100",
        lots=[LotDraft("台式计算机", "A02010104", 1_000_000 * YUAN, 950_000 * YUAN,
                       bond_fen=10_000 * YUAN)])
    assert await _kinds(session_factory) == ["project.created"]

    def early(state: Any, now: int) -> Publish:
        return Publish(now, now, at(date(2026, 9, 30)), at(date(2026, 10, 7)), project.budget_fen)

    with pytest.raises(ValidationError) as refused:
        await service.run(PURCHASER, lots[0].id, early)
    assert refused.value.code == "deadline_too_early"
    assert refused.value.details["article"] == "GPL 35"
    assert refused.value.details["earliest_day"] == "2026-10-08"
    assert await _kinds(session_factory) == ["project.created"]
    assert (await service.project(project.id))[1][0].status == "draft"

    def ok(state: Any, now: int) -> Publish:
        return Publish(now, now, at(date(2026, 9, 30)), at(date(2026, 10, 8)), project.budget_fen)

    with pytest.raises(ForbiddenError):
        await service.run(OTHER, lots[0].id, ok)
    state, _ = await service.run(PURCHASER, lots[0].id, ok)
    assert state.status is LotStatus.ANNOUNCED
    assert await _kinds(session_factory) == ["project.created", "project.lot_published"]
    async with session_factory() as session:
        notice = (await session.scalars(select(AnnouncementRow))).one()
    assert notice.kind == "procurement"
    assert {d["article"] for d in notice.dates} == {"O87 16", "O87 18", "GPL 35"}

    with pytest.raises(ConflictError) as again:
        await service.run(PURCHASER, lots[0].id, ok)
    assert again.value.code == "wrong_status"

    # the deadline passes with two bids: the lot fails (O87 41), announced, one event each
    def close(state: Any, now: int) -> CloseBidding:
        return CloseBidding(at(date(2026, 10, 8)), ("S1", "S2"))

    failed, _ = await service.run(None, lots[0].id, close)
    assert failed.status is LotStatus.FAILED
    assert (await _kinds(session_factory))[-2:] == ["project.bidding_closed",
                                                    "project.lot_failed"]
    kinds = [a.kind for a in await service.announcements(project.id)]
    assert kinds == ["procurement", "failure"]


async def test_bad_lot_terms_are_refused_before_anything_is_stored(session_factory: Any) -> None:
    service = await _service(session_factory)
    with pytest.raises(ValidationError) as ceiling:
        await service.create_project(
            PURCHASER, title="x", method=Method.INQUIRY, region_code="440100",
            lots=[LotDraft("a", "A02", 100, 101)])
    assert ceiling.value.code == "ceiling_above_budget"
    with pytest.raises(ValidationError) as region:
        await service.create_project(
            PURCHASER, title="x", method=Method.INQUIRY, region_code="44010",
            lots=[LotDraft("a", "A02", 100, 100)])
    assert region.value.code == "invalid_region"
    assert await _kinds(session_factory) == []
