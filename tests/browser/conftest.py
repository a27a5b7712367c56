"""Fixtures of the browser tests: real Chromium (Debian's) driven by Python Playwright against
the app under uvicorn in this process (real sockets, real Redis and SQL, the test clock).

Without a browser — a newcomer's machine — every test here skips with a message saying how to
run them. ``BIDROOM_REQUIRE_BROWSER=1`` (set by ``.ci/run``) turns the skip into a failure.
With a browser but no CJK font (a headless Linux box draws every Chinese character as a box),
every test here FAILS, saying which font to install (Debian ``fonts-noto-cjk``): pages that
only render boxes are not pages that work.

* ``live``: the app on a free port, seeded (purchaser, agency, supervisor, suppliers s1..s4,
  an outsider), its clock at ``LIVE_T0``. With ``BIDROOM_TEST_REDIS_URL`` it uses a database
  number of that Redis that no other test session on the machine holds (an flock per number),
  flushed for the test; with ``BIDROOM_TEST_DATABASE_URL`` the real database (reset).
* ``ui``: a Chromium launched for the test (async Playwright, in the server's event loop) with
  helpers to open pages as the seeded accounts (``tests/browser/support.py``); an uncaught
  JavaScript error in any page fails the test.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bidroom.config import Settings
from tests.live import LiveServer, live_server

LIVE_T0 = 1_900_000_000_000  # the test clock when a test starts (2030-03-17 17:46:40 UTC)

CHROMIUM = os.environ.get("BIDROOM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
REQUIRE_BROWSER = os.environ.get("BIDROOM_REQUIRE_BROWSER", "") == "1"
HOW_TO_RUN = (
    "the browser tests need Chromium, a CJK font and Python Playwright: install Debian's "
    "chromium and fonts-noto-cjk (`sudo apt-get install chromium fonts-noto-cjk`, or set "
    "BIDROOM_CHROMIUM to a Chromium binary) and the dev extras (`.venv/bin/pip install -e "
    "'.[dev]'`; `playwright install` is not needed), then run "
    "`./scripts/test tests/browser`"
)
REAL_REDIS_URL = os.environ.get("BIDROOM_TEST_REDIS_URL", "")


def browser_missing() -> str | None:
    """Why the browser tests cannot run here (None: they can)."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM}"
    return None


CJK_FONT_HINT = (
    "no CJK font: Chromium draws every Chinese character as a box. Install one (Debian/Ubuntu: "
    "`sudo apt-get install fonts-noto-cjk`; `.ci/run` does) and check with `fc-list :lang=zh`"
)


def cjk_font_missing() -> str | None:
    """Why Chinese would render as boxes here (None: a font covers zh). Asks fontconfig,
    which is what Chromium on Linux uses to find fonts."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return "fontconfig's fc-list is not installed, so Chromium has no way to find a CJK font"
    listed = subprocess.run([fc_list, ":lang=zh", "family"], capture_output=True, text=True,
                            timeout=30, check=False)
    return None if listed.stdout.strip() else CJK_FONT_HINT


@pytest.fixture(autouse=True)
def _need_a_browser() -> None:
    """Runs first for every browser test: skip (or, in CI, fail) without a browser; fail,
    never skip, with a browser but no CJK font."""
    missing = browser_missing()
    if missing is None:
        no_font = cjk_font_missing()
        if no_font is not None:
            pytest.fail(no_font, pytrace=False)
        return
    if REQUIRE_BROWSER:
        pytest.fail(f"BIDROOM_REQUIRE_BROWSER=1 but {missing}; {HOW_TO_RUN}")
    pytest.skip(f"{missing}: {HOW_TO_RUN}")


# --------------------------------------------------------------------------- the stores


@pytest.fixture(scope="session")
def browser_redis_url(redis_url: str) -> Iterator[str]:
    """The session's Redis; on a real server, a database number of our own (flocked)."""
    if not REAL_REDIS_URL:
        yield redis_url
        return
    from bidroom.stores.redis import is_cluster_url

    if is_cluster_url(REAL_REDIS_URL) or REAL_REDIS_URL.startswith("unix:"):
        yield REAL_REDIS_URL
        return
    parts = urllib.parse.urlsplit(REAL_REDIS_URL)
    tag = "".join(c if c.isalnum() else "_" for c in parts.netloc)
    for db in range(15, 0, -1):  # the same lock files as tests/e2e: the two never collide
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
    pytest.fail("no free Redis database number (1..15) for the browser tests")


@contextlib.asynccontextmanager
async def start_live(data_dir: Path, redis_url: str, database_url: str
                     ) -> AsyncIterator[LiveServer]:
    """The app under uvicorn in this process, seeded, the test clock at T0. Its auctions and
    openings are taken out of the (shared) Redis afterwards."""
    if REAL_REDIS_URL and redis_url != REAL_REDIS_URL:
        from bidroom.stores.redis import connect_redis

        client = connect_redis(redis_url)
        try:
            await client.flushdb()
        finally:
            await client.aclose()
    settings = Settings(data_dir=data_dir, redis_url=redis_url, database_url=database_url,
                        test_clock=True)
    async with live_server(settings) as server:
        await server.set_clock(LIVE_T0)
        await server.seed()
        try:
            yield server
        finally:
            # The session's Redis outlives this server: leave nothing scheduled in it that a
            # later test's closer or opening runner would look for in its own database.
            services = server.services
            for row in await services.auctions.list_auctions(limit=100_000):
                await services.redis.zrem("bidroom:schedule", row.id)  # the closer's schedule
                await services.redis.delete(*services.executor.keys(row.id).all())
            rows = await services.openings.store.list_openings(everything=True)
            if rows:
                await services.redis.zrem(services.openings.schedule_key, *[r.id for r in rows])


@pytest.fixture
async def live(tmp_path: Path, browser_redis_url: str, migrated_database_url: str
               ) -> AsyncIterator[LiveServer]:
    """The app under uvicorn in this process (real sockets), seeded, the test clock at T0."""
    async with start_live(tmp_path, browser_redis_url, migrated_database_url) as server:
        yield server


# --------------------------------------------------------------------------- the browser


@pytest.fixture
async def ui(live: LiveServer) -> AsyncIterator[Any]:
    """A Chromium for this test and helpers to open pages as the seeded accounts."""
    from playwright.async_api import async_playwright, expect

    from tests.browser.support import BrowserSession

    expect.set_options(timeout=15_000)
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        session = BrowserSession(chromium, live)
        try:
            yield session
        finally:
            await chromium.close()
    assert not session.page_errors, f"uncaught JavaScript errors: {session.page_errors}"
