"""The public portal's use cases: search the published announcements, read one.

Public: no principal, nothing but what an announcement publishes (the portal is the 政府采购网
of the platform). ``market.projects`` writes the announcements (``AnnouncementRow``) with
their statutory dates; this module only reads them, through the search of
``market.portal.store``.

Must not import: web.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidroom.errors import NotFoundError, ValidationError
from bidroom.stores.sql import sql_errors
from market.portal.rules import (
    Cursor,
    PortalQuery,
    QueryProblem,
    Term,
    encode_cursor,
    excerpt,
    parse_query,
    plan_search,
)
from market.portal.store import count_statement, references_statement, search_statement
from market.projects.store import AnnouncementRow

__all__ = ["PortalService", "announcement_view", "result_view"]


def result_view(row: AnnouncementRow, terms: tuple[Term, ...]) -> dict[str, Any]:
    """One result line: what the list shows, and the body's excerpt around the keyword."""
    return {"id": row.id, "kind": row.kind, "title": row.title, "region_code": row.region_code,
            "method": row.method, "category_code": row.category_code,
            "published_at_ms": row.published_at_ms, "excerpt": excerpt(row.body, terms)}


def announcement_view(row: AnnouncementRow) -> dict[str, Any]:
    """The whole announcement with its statutory dates, each with its period, article and rule
    (zh, en) as computed at publication (``market.calendar.views.date_view``)."""
    return {"id": row.id, "project_id": row.project_id, "lot_id": row.lot_id,
            "kind": row.kind, "title": row.title, "body": row.body,
            "region_code": row.region_code, "method": row.method,
            "category_code": row.category_code, "published_at_ms": row.published_at_ms,
            "dates": list(row.dates)}


class PortalService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @staticmethod
    def parse(params: Mapping[str, str]) -> PortalQuery:
        """The query, or the rules' refusal as a 422 with its code and field."""
        query = parse_query(params)
        if isinstance(query, QueryProblem):
            raise ValidationError(query.message, code=query.code, field=query.field)
        return query

    async def search(self, query: PortalQuery) -> dict[str, Any]:
        """A page of results, newest first, and ``next_cursor`` (None on the last page)."""
        with sql_errors("search announcements"):
            async with self._sessions() as session:
                dialect = session.get_bind().dialect.name
                if dialect == "postgresql":
                    # a page of 21 rows: parallel workers cost more than they save; and a plan
                    # made for the keyword itself, never a generic one for any keyword (a
                    # prepared statement's generic plan cannot tell 医疗设备 from a rare word)
                    await session.execute(text(  # SET LOCAL of both, in one round trip
                        "SELECT set_config('max_parallel_workers_per_gather', '0', true), "
                        "set_config('plan_cache_mode', 'force_custom_plan', true)"))
                finding = references_statement(query)
                known = frozenset() if finding is None else frozenset(
                    (await session.scalars(finding)).all())
                counting = None if known else count_statement(query, dialect)
                matches = None if counting is None else int(
                    (await session.execute(counting)).scalar_one())
                plan = plan_search(query, matches, known)
                stmt = search_statement(query, dialect, plan)
                rows = list((await session.scalars(stmt)).all())
        more = len(rows) > query.limit
        rows = rows[:query.limit]
        last = rows[-1] if rows else None
        return {"items": [result_view(r, query.terms) for r in rows],
                "next_cursor": encode_cursor(Cursor(last.published_at_ms, last.id))
                if more and last is not None else None}

    async def announcement(self, announcement_id: int) -> dict[str, Any]:
        with sql_errors("read an announcement"):
            async with self._sessions() as session:
                row = await session.get(AnnouncementRow, announcement_id)
        if row is None:
            raise NotFoundError("没有这个公告 / no such announcement",
                                code="announcement_not_found")
        return announcement_view(row)
