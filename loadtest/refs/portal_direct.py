"""B7's reference: the portal's search statements run directly on the database, on a bare
driver connection (``sqlite3``; ``asyncpg``): no HTTP, no JSON, no SQLAlchemy, no pool.

    python -m loadtest.refs.portal_direct URL STATEMENTS_JSON_FILE REPEAT

The statements are the server's own, printed by ``bidroom db portal-sql`` (web/portal_sql.py:
the lookup of identifier terms in ``announcements.reference``, the capped count of keyword
matches on SQLite, then the page with the plan they imply; each run when the server runs it),
so this module imports none of the server's code. On PostgreSQL the session sets
``max_parallel_workers_per_gather = 0`` and ``plan_cache_mode = force_custom_plan``, as each
search's transaction on the server does.
Prints ``{"latencies_ms": {label: [ms, …]}, "rows": {label: count}}``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any


def _sqlite(path: str, statements: dict[str, Any], repeat: int) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    out: dict[str, list[float]] = {label: [] for label in statements}
    found: dict[str, int] = {}
    try:
        for _ in range(repeat):
            for label, s in statements.items():
                t0 = time.perf_counter()
                if s.get("references") is not None:
                    conn.execute(*s["references"]).fetchall()
                if s["count"] is not None:
                    conn.execute(*s["count"]).fetchone()
                rows = conn.execute(*s["page"]).fetchall()
                out[label].append((time.perf_counter() - t0) * 1000)
                found[label] = len(rows)
    finally:
        conn.close()
    return {"latencies_ms": out, "rows": found}


async def _postgres(dsn: str, statements: dict[str, Any], repeat: int) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    out: dict[str, list[float]] = {label: [] for label in statements}
    found: dict[str, int] = {}
    try:
        await conn.execute("SET max_parallel_workers_per_gather = 0; "
                           "SET plan_cache_mode = force_custom_plan")
        for _ in range(repeat):
            for label, s in statements.items():
                t0 = time.perf_counter()
                if s.get("references") is not None:
                    await conn.fetch(s["references"][0], *s["references"][1])
                if s["count"] is not None:
                    await conn.fetchval(s["count"][0], *s["count"][1])
                rows = await conn.fetch(s["page"][0], *s["page"][1])
                out[label].append((time.perf_counter() - t0) * 1000)
                found[label] = len(rows)
    finally:
        await conn.close()
    return {"latencies_ms": out, "rows": found}


def main() -> None:
    url, statements_file, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
    statements = json.loads(Path(statements_file).read_text(encoding="utf-8"))
    if url.startswith("sqlite"):
        result = _sqlite(url.split(":///", 1)[1], statements, repeat)
    else:
        dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        result = asyncio.run(_postgres(dsn, statements, repeat))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
