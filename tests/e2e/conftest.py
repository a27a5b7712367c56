"""Fixtures of the end-to-end tests: real server processes on real stores.

``server``: one ``bidroom serve`` process for the test (fresh data dir under ``tmp_path``,
``BIDROOM_TEST_CLOCK=1``), healthy when the test starts, stopped afterwards.
``server_factory(**options)``: more servers, or other options (``workers=2``;
``embedded_default=True`` lets ``serve`` start its own embedded Redis in ``DATA_DIR/redis`` as
in production — always, even when the session uses a real Redis; ``share_stores_with=other``
gives a second app process on the same Redis and database (and platform key);
``start=False`` returns it unstarted).

Stores: by default an embedded Redis started here, in ``DATA_DIR/redis`` (so its URL is known
and the test can set the clock), and the server's SQLite file. With ``BIDROOM_TEST_REDIS_URL``
the real Redis is used, on a database number of its own that is flushed for every test (a
Redis Cluster URL is used as given, every master flushed); with
``BIDROOM_TEST_REDIS_CLUSTER=1`` the session's local 3-master Redis Cluster (tests/conftest.py)
is, flushed likewise; with ``BIDROOM_TEST_DATABASE_URL`` the real database, whose public schema
is reset for every test (PostgreSQL).

When a test fails, the tail of every server log is printed with its report.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import os
import shutil
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bidroom.config import Settings
from tests.e2e.server import ServerFactory, ServerProcess
from tests.live import LiveServer, live_server
from web.cli import PLATFORM_KEY_FILE

LIVE_T0 = 1_900_000_000_000  # the in-process server's test clock when a test starts

REAL_REDIS_URL = os.environ.get("BIDROOM_TEST_REDIS_URL", "")
REAL_DATABASE_URL = os.environ.get("BIDROOM_TEST_DATABASE_URL", "")
REDIS_CLUSTER = os.environ.get("BIDROOM_TEST_REDIS_CLUSTER", "") == "1"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(
        getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
        for when in ("setup", "call")
    )


def _run_async(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def e2e_redis_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The real Redis for e2e servers, on a database number no other test session on this
    machine uses at the same time (an flock per number); the session's own local Redis Cluster
    with BIDROOM_TEST_REDIS_CLUSTER=1; None: embedded Redis per test."""
    if REDIS_CLUSTER:
        yield request.getfixturevalue("redis_url")  # started for this session alone
        return
    if not REAL_REDIS_URL:
        yield None
        return
    from bidroom.stores.redis import is_cluster_url

    if is_cluster_url(REAL_REDIS_URL) or REAL_REDIS_URL.startswith("unix:"):
        yield REAL_REDIS_URL
        return
    parts = urllib.parse.urlsplit(REAL_REDIS_URL)
    tag = "".join(c if c.isalnum() else "_" for c in parts.netloc)
    for db in range(15, 0, -1):
        lock_path = Path(tempfile.gettempdir()) / f"bidroom-e2e-redis-{tag}-{db}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield urllib.parse.urlunsplit(parts._replace(path=f"/{db}"))
        finally:
            os.close(fd)
        return
    pytest.fail("no free Redis database number (1..15) for the e2e tests")


def _flush_redis(url: str) -> None:
    import redis

    from bidroom.stores.redis import is_cluster_url
    from tests.cluster import flush_cluster

    if is_cluster_url(url):
        flush_cluster(url)
        return
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


async def _reset_database(url: str) -> None:
    from bidroom.stores.sql import normalize_database_url
    from tests.conftest import _reset_postgres_schema

    if normalize_database_url(url).startswith("postgresql"):
        await _reset_postgres_schema(url)


@pytest.fixture
def server_factory(
    tmp_path: Path, request: pytest.FixtureRequest, e2e_redis_url: str | None
) -> Generator[ServerFactory, None, None]:
    """Start servers for this test; every one is stopped (and its Redis) afterwards."""
    from bidroom.stores.embedded import EmbeddedRedis

    servers: list[ServerProcess] = []
    embedded: list[EmbeddedRedis] = []
    real_stores_reset = False

    def make(
        *,
        workers: int = 1,
        embedded_default: bool = False,
        share_stores_with: ServerProcess | None = None,
        env: dict[str, str] | None = None,
        name: str | None = None,
        start: bool = True,
    ) -> ServerProcess:
        nonlocal real_stores_reset
        data_dir = tmp_path / (name or f"server{len(servers) + 1}")
        redis_url: str | None
        database_url: str | None = None
        if share_stores_with is not None:
            redis_url = share_stores_with.redis_url
            database_url = share_stores_with.database_url
            # one platform, one signing key: every process signs receipts with the same key
            # (docs/operations.md §5), so the second server gets a copy of the first one's
            key = share_stores_with.data_dir / PLATFORM_KEY_FILE
            if key.exists():
                data_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy2(key, data_dir / PLATFORM_KEY_FILE)
        else:
            if e2e_redis_url is not None or REAL_DATABASE_URL:
                if not real_stores_reset:  # once per test: its servers share the real stores
                    if e2e_redis_url is not None:
                        _flush_redis(e2e_redis_url)
                    if REAL_DATABASE_URL:
                        _run_async(_reset_database(REAL_DATABASE_URL))
                    real_stores_reset = True
            database_url = REAL_DATABASE_URL or None
            if embedded_default:
                redis_url = None  # `serve` starts (and on a clean exit stops) its own
            elif e2e_redis_url is not None:
                redis_url = e2e_redis_url
            else:
                store = EmbeddedRedis(data_dir / "redis")
                redis_url = store.start()
                embedded.append(store)
        server = ServerProcess(data_dir, redis_url=redis_url, database_url=database_url,
                               workers=workers, env=env)
        servers.append(server)
        if start:
            server.start()
        return server

    yield make

    if _failed(request):
        for server in servers:
            print(f"\n--- {server!r}: tail of {server.log_path} ---\n{server.log_tail()}")
    errors: list[BaseException] = []
    for server in servers:
        try:
            server.close()
        except Exception as exc:  # keep stopping the others
            errors.append(exc)
    for store in embedded:
        try:
            store.stop()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture
def server(server_factory: ServerFactory) -> ServerProcess:
    """One healthy ``bidroom serve`` process with the test clock on."""
    return server_factory()


@pytest.fixture
async def live(tmp_path: Path, redis_url: str, migrated_database_url: str
               ) -> AsyncIterator[LiveServer]:
    """The app under uvicorn in this process (real sockets), seeded, the test clock at T0."""
    settings = Settings(data_dir=tmp_path, redis_url=redis_url,
                        database_url=migrated_database_url, test_clock=True,
                        ws_flood_limit=20, ws_flood_burst=40)
    async with live_server(settings) as server:
        await server.set_clock(LIVE_T0)
        await server.seed()
        yield server
