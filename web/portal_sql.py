"""``bidroom db portal-sql``: the SQL statements the portal's search runs for given queries, as
the server builds them (``market.portal``: the lookup of identifier terms in the
announcements' ``reference`` column, the capped count of keyword matches on SQLite when no
reference was found, then the page's SELECT with the plan they imply), compiled with their
parameters for the database's own driver. Benchmark row B7's reference
(``loadtest/refs/portal_direct.py``) runs them on a bare connection, so the load tests need
not import the server's code.

Output: ``{label: {"references": [sql, params] | null, "count": [sql, params] | null,
"page": [sql, params]}}``; params are a
mapping for SQLite (``:name``), a list for PostgreSQL (``$1``…).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import ClauseElement

from bidroom.stores.sql import make_engine
from market.portal import PortalService
from market.portal.rules import plan_search
from market.portal.store import count_statement, references_statement, search_statement

__all__ = ["portal_statements"]


def _compiled(stmt: ClauseElement | None, dialect: str) -> list[Any] | None:
    if stmt is None:
        return None
    if dialect == "sqlite":
        c = stmt.compile(dialect=sqlite.dialect(paramstyle="named"))
        return [str(c), dict(c.params)]
    c = stmt.compile(dialect=postgresql.dialect(paramstyle="numeric_dollar"))
    return [str(c), [c.params[name] for name in c.positiontup or ()]]


async def _statements(database_url: str,
                      queries: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    engine = make_engine(database_url)
    out: dict[str, Any] = {}
    try:
        dialect = engine.dialect.name
        async with engine.connect() as conn:
            for label, params in queries.items():
                query = PortalService.parse(params)
                finding = references_statement(query)
                known = frozenset() if finding is None else frozenset(
                    (await conn.scalars(finding)).all())
                counting = None if known else count_statement(query, dialect)
                matches = None if counting is None else int(
                    (await conn.execute(counting)).scalar_one())
                page = search_statement(query, dialect, plan_search(query, matches, known))
                out[label] = {"references": _compiled(finding, dialect),
                              "count": _compiled(counting, dialect),
                              "page": _compiled(page, dialect)}
    finally:
        await engine.dispose()
    return out


def portal_statements(database_url: str,
                      queries: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    return asyncio.run(_statements(database_url, queries))
