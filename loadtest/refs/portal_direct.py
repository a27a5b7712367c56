"""B7's reference: the portal's search queries run directly on the database, in a process of
their own, with the statements the server builds (``market.portal``: the capped count of
keyword matches, then the page's SELECT with the plan it implies), compiled with their
parameters and executed on a bare driver connection (``sqlite3``; ``asyncpg``) — no HTTP, no
JSON, no SQLAlchemy session, no connection pool.

    python -m loadtest.refs.portal_direct URL QUERIES_JSON REPEAT

prints ``{"latencies_ms": {query label: [ms, …]}, "rows": {label: count}}``. Run from the
server's source tree (it imports ``market``); the bench suite itself does not.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from typing import Any

from sqlalchemy.engine.url import make_url

from market.portal.rules import PortalQuery, QueryProblem, parse_query, plan_search
from market.portal.store import count_statement, search_statement


def _query(params: dict[str, str]) -> PortalQuery:
    query = parse_query(params)
    if isinstance(query, QueryProblem):
        raise SystemExit(f"bad query {params}: {query.code}")
    return query


def _sqlite(path: str, queries: dict[str, dict[str, str]], repeat: int) -> dict[str, Any]:
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect(paramstyle="named")
    conn = sqlite3.connect(path)
    out: dict[str, list[float]] = {label: [] for label in queries}
    found: dict[str, int] = {}
    prepared = {}
    for label, params in queries.items():  # compiled once: the timing is the database's
        query = _query(params)
        counting = count_statement(query, "sqlite")
        count_sql = None if counting is None else counting.compile(dialect=dialect)
        matches = None if count_sql is None else conn.execute(
            str(count_sql), count_sql.params).fetchone()[0]
        page = search_statement(query, "sqlite", plan_search(query, matches)).compile(
            dialect=dialect)
        prepared[label] = (count_sql, page)
    for _ in range(repeat):
        for label, (count_sql, page) in prepared.items():
            t0 = time.perf_counter()
            if count_sql is not None:
                conn.execute(str(count_sql), count_sql.params).fetchone()
            rows = conn.execute(str(page), page.params).fetchall()
            out[label].append((time.perf_counter() - t0) * 1000)
            found[label] = len(rows)
    conn.close()
    return {"latencies_ms": out, "rows": found}


async def _postgres(url: str, queries: dict[str, dict[str, str]],
                    repeat: int) -> dict[str, Any]:
    import asyncpg
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect(paramstyle="numeric_dollar")
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    out: dict[str, list[float]] = {label: [] for label in queries}
    found: dict[str, int] = {}

    def compiled(stmt: Any) -> tuple[str, list[Any]]:
        c = stmt.compile(dialect=dialect)
        return str(c), [c.params[name] for name in c.positiontup]

    try:
        # what the server sets in each search's transaction (market.portal.service)
        await conn.execute("SET max_parallel_workers_per_gather = 0")
        prepared = {}
        for label, params in queries.items():  # compiled once: the timing is the database's
            query = _query(params)
            counting = count_statement(query, "postgresql")
            count_sql = None if counting is None else compiled(counting)
            matches = None if count_sql is None else await conn.fetchval(
                count_sql[0], *count_sql[1])
            prepared[label] = (count_sql, compiled(search_statement(
                query, "postgresql", plan_search(query, matches))))
        for _ in range(repeat):
            for label, (count_sql, (sql, args)) in prepared.items():
                t0 = time.perf_counter()
                if count_sql is not None:
                    await conn.fetchval(count_sql[0], *count_sql[1])
                rows = await conn.fetch(sql, *args)
                out[label].append((time.perf_counter() - t0) * 1000)
                found[label] = len(rows)
    finally:
        await conn.close()
    return {"latencies_ms": out, "rows": found}


def main() -> None:
    url, queries_json, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
    queries = json.loads(queries_json)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        result = _sqlite(str(parsed.database), queries, repeat)
    else:
        result = asyncio.run(_postgres(url, queries, repeat))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
