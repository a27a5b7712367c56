"""End-to-end harness: a real ``bidroom serve`` process, its clock, and accounts made over HTTP.

Not a test module. ``tests/e2e/conftest.py`` builds ``ServerProcess`` objects for the
``server`` / ``server_factory`` fixtures; tests use the helpers below.

* ``ServerProcess(data_dir, redis_url=…, database_url=…, workers=…)`` starts
  ``python -m web.cli serve`` in its own process group on a free port with
  ``BIDROOM_TEST_CLOCK=1``, waits (bounded polling) until ``GET /api/health`` answers and
  every worker has started (uvicorn logs each one's startup), and
  offers ``base_url``, ``ws_url``, ``pid``, ``kill9()``, ``terminate()``, ``restart()``.
  Output goes to ``data_dir/server.log``; a failed start raises with its tail.
* ``set_clock(server, ms)`` / ``advance_clock`` / ``get_clock``: the test clock, the Redis key
  ``bidroom:testclock`` the server reads its time from. Tests move time; they never sleep.
* ``bootstrap_admin(server)`` runs ``bidroom admin bootstrap`` on the server's database and
  returns an admin token; ``seed(server, admin_token)`` creates a purchaser, an agency, a
  supervisor and suppliers, each with a user and a token, through the HTTP admin API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

__all__ = [
    "REPO_ROOT",
    "Party",
    "Seed",
    "ServerFactory",
    "ServerProcess",
    "advance_clock",
    "api_client",
    "bootstrap_admin",
    "child_env",
    "create_auction",
    "embedded_redis_url",
    "free_port",
    "get_clock",
    "run_cli",
    "seed",
    "set_clock",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_CLOCK_KEY = "bidroom:testclock"  # web.services.TEST_CLOCK_KEY
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
CLI_TIMEOUT_S = 120.0
LOG_NAME = "server.log"


#: The type of the ``server_factory`` fixture (tests/e2e/conftest.py): keyword options
#: ``workers``, ``embedded_default``, ``share_stores_with``, ``env``, ``name``, ``start``.
ServerFactory = Callable[..., "ServerProcess"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bound to port 0, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def child_env(extra: Mapping[str, str] | None = None, *, test_clock: bool = True) -> dict[str, str]:
    """The environment of a server or CLI child: ours without any ``BIDROOM_*`` variable (a
    developer's shell must not leak into a test), plus ``BIDROOM_TEST_CLOCK`` and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIDROOM_")}
    env["PYTHONUNBUFFERED"] = "1"
    if test_clock:
        env["BIDROOM_TEST_CLOCK"] = "1"
    env.update(extra or {})
    return env


def embedded_redis_url(redis_dir: Path) -> str:
    """The URL of the embedded Redis that ``serve`` starts in ``redis_dir`` (``DATA_DIR/redis``),
    computed from where it puts its socket (see ``bidroom.stores.embedded``)."""
    record = redis_dir / "redis.sock.path"
    try:
        path = Path(record.read_text(encoding="utf-8").strip())
    except OSError:
        path = redis_dir / "redis.sock"
    return "unix://" + urllib.parse.quote(str(path))


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


class ServerProcess:
    """One ``bidroom`` server process (and its uvicorn workers) for a test.

    ``redis_url`` None: ``serve`` starts the embedded Redis itself in ``data_dir/redis`` (the
    production default; it survives ``kill9()``, and ``close()`` stops it). ``database_url``
    None: the SQLite file in ``data_dir``. ``subcommand`` ``("demo",)`` runs the demo instead
    (it takes only ``--host/--port/--data-dir``). The output of every start is appended to
    ``log_path`` (default ``data_dir/server.log``; for ``demo`` ``DATA_DIR.server.log`` beside
    it, since the demo deletes its data dir).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        redis_url: str | None = None,
        database_url: str | None = None,
        workers: int = 1,
        env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        subcommand: Sequence[str] = ("serve",),
        startup_timeout: float = STARTUP_TIMEOUT_S,
        log_path: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.given_redis_url = redis_url
        self.given_database_url = database_url
        self.workers = workers
        self.env = dict(env or {})
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.subcommand = tuple(subcommand)
        self.startup_timeout = startup_timeout
        if log_path is None:
            # ``demo`` deletes its data dir on start: its log lives beside it.
            log_path = (self.data_dir / LOG_NAME if self.subcommand == ("serve",)
                        else self.data_dir.with_name(f"{self.data_dir.name}.{LOG_NAME}"))
        self.log_path = Path(log_path)
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ addresses

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    @property
    def pid(self) -> int:
        """The pid of the ``bidroom`` process (uvicorn's master when workers > 1)."""
        if self._proc is None:
            raise RuntimeError("the server has not been started")
        return self._proc.pid

    @property
    def redis_url(self) -> str:
        """The Redis the server uses: the one given, or the embedded one in data_dir/redis."""
        if self.given_redis_url is not None:
            return self.given_redis_url
        return embedded_redis_url(self.data_dir / "redis")

    @property
    def database_url(self) -> str:
        """The database the server uses: the one given, or its SQLite default."""
        if self.given_database_url is not None:
            return self.given_database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'bidroom.db'}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "web.cli", *self.subcommand,
                "--host", self.host, "--port", str(self.port), "--data-dir", str(self.data_dir)]
        if self.subcommand == ("serve",):
            args += ["--workers", str(self.workers)]
            if self.given_redis_url is not None:
                args += ["--redis-url", self.given_redis_url]
            if self.given_database_url is not None:
                args += ["--database-url", self.given_database_url]
        return args

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ServerProcess:
        """Start the process and wait until ``/api/health`` answers 200 (and every worker
        has started)."""
        if self.running:
            raise RuntimeError("the server is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        command = self.command()
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start {self.starts}: {' '.join(command)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=child_env(self.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill9() reaches the workers
            )
        try:
            self.wait_healthy()
        except BaseException:
            self._kill_group()
            raise
        return self

    def wait_healthy(self, timeout: float | None = None) -> None:
        """Poll ``GET /api/health`` until it answers 200 and, with several workers, until every
        worker has started (bounded); raise with the log tail.

        The first worker up answers the health check while the others may still be starting,
        and until they accept, the kernel gives every new connection to the first one: a test
        that needs connections spread over the workers must not begin before all are up."""
        deadline = time.monotonic() + (self.startup_timeout if timeout is None else timeout)
        pause = 0.05
        last = "no answer yet"
        with httpx.Client(timeout=2.0) as client:
            while True:
                if not self.running:
                    raise RuntimeError(
                        f"the server exited with status {self.returncode} during startup\n"
                        f"--- {self.log_path} ---\n{self.log_tail()}"
                    )
                try:
                    reply = client.get(f"{self.base_url}/api/health")
                    started = self.workers_started() if self.expected_workers > 1 else 1
                    if reply.status_code == 200 and started >= self.expected_workers:
                        return
                    last = (f"HTTP {reply.status_code}: {reply.text[:200]}"
                            if reply.status_code != 200 else
                            f"{started} of {self.expected_workers} workers started")
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                if time.monotonic() >= deadline:
                    raise RuntimeError(
                        f"the server did not become healthy at {self.base_url} in time "
                        f"({last})\n--- {self.log_path} ---\n{self.log_tail()}"
                    )
                time.sleep(pause)
                pause = min(pause * 1.5, 0.5)

    @property
    def expected_workers(self) -> int:
        """How many worker processes this start must bring up (``demo`` runs one)."""
        return self.workers if self.subcommand == ("serve",) else 1

    def workers_started(self) -> int:
        """Workers that have finished starting since the last ``start()``: uvicorn logs
        "Application startup complete." once per worker process."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return 0
        current = text.rpartition(f"=== start {self.starts}:")[2]
        return current.count("Application startup complete.")

    def kill9(self) -> None:
        """SIGKILL the whole process group (the server and its uvicorn workers) and reap it.
        The embedded Redis is a daemon in its own session: it survives, as in production."""
        self._kill_group()

    def terminate(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM (a clean shutdown, which stops an embedded Redis the server started); wait
        for the exit and return the status. SIGKILLs the group if it does not exit in time."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return self.returncode or 0
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            status = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_group()
            raise RuntimeError(
                f"the server did not exit within {timeout:g}s of SIGTERM\n"
                f"--- {self.log_path} ---\n{self.log_tail()}"
            ) from None
        self._kill_group()  # stray workers, if any
        return status

    def restart(self, *, kill: bool = False) -> ServerProcess:
        """Stop (SIGTERM, or SIGKILL with ``kill=True``) and start again on the same port and
        data dir."""
        if kill:
            self.kill9()
        else:
            self.terminate()
        return self.start()

    async def astart(self) -> ServerProcess:
        """``start()`` without blocking the test's event loop (e.g. open WebSockets)."""
        return await asyncio.to_thread(self.start)

    async def arestart(self, *, kill: bool = False) -> ServerProcess:
        return await asyncio.to_thread(self.restart, kill=kill)

    async def aterminate(self) -> int:
        return await asyncio.to_thread(self.terminate)

    def close(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and an embedded Redis it left running."""
        try:
            if self.running:
                try:
                    self.terminate()
                except RuntimeError:
                    pass
        finally:
            self._kill_group()
            if self.given_redis_url is None and (self.data_dir / "redis").is_dir():
                from bidroom.stores.embedded import EmbeddedRedis

                EmbeddedRedis(self.data_dir / "redis").stop()

    def _kill_group(self) -> None:
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_TIMEOUT_S)

    def log_tail(self, lines: int = 80) -> str:
        return _tail(self.log_path, lines)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else f"stopped ({self.returncode})"
        return f"ServerProcess({self.base_url}, {state}, data_dir={str(self.data_dir)!r})"


# ====================================================================================== CLI


async def run_cli(*args: str, env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``python -m web.cli ARGS`` to completion (at most 2 minutes):
    (status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "web.cli", *args,
        cwd=REPO_ROOT, env=child_env(env, test_clock=False),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), CLI_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


async def bootstrap_admin(server: ServerProcess) -> str:
    """``bidroom admin bootstrap`` against the server's data dir / database: an admin token."""
    args = ["admin", "bootstrap", "--data-dir", str(server.data_dir)]
    if server.given_database_url is not None:
        args += ["--database-url", server.given_database_url]
    status, out, err = await run_cli(*args)
    assert status == 0, f"admin bootstrap failed ({status}):\n{out}\n{err}"
    token: str = json.loads(out)["token"]
    return token


# ===================================================================================== clock


async def set_clock(server: ServerProcess, ms: int) -> None:
    """Set the server's clock (the test clock) to ``ms`` milliseconds since the epoch."""
    from bidroom.stores.redis import connect_redis

    client = connect_redis(server.redis_url)
    try:
        await client.set(TEST_CLOCK_KEY, str(int(ms)))
    finally:
        await client.aclose()


async def get_clock(server: ServerProcess) -> int | None:
    """The test clock's value (None when unset: the server then uses Redis' TIME)."""
    from bidroom.stores.redis import connect_redis

    client = connect_redis(server.redis_url)
    try:
        raw = await client.get(TEST_CLOCK_KEY)
    finally:
        await client.aclose()
    return None if raw is None else int(raw)


async def advance_clock(server: ServerProcess, delta_ms: int) -> int:
    """Move the test clock forward by ``delta_ms`` (it must have been set); the new time."""
    from bidroom.stores.redis import connect_redis

    client = connect_redis(server.redis_url)
    try:
        if await client.get(TEST_CLOCK_KEY) is None:
            raise RuntimeError("set_clock() first: the test clock is not set")
        return int(await client.incrby(TEST_CLOCK_KEY, int(delta_ms)))
    finally:
        await client.aclose()


# ================================================================================ accounts


def api_client(server: ServerProcess, token: str | None = None,
               timeout: float = 10.0) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on the server's base URL, with a bearer token if given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=timeout)


@dataclass(frozen=True)
class Party:
    """One organisation with one user and that user's API token."""

    kind: str  # purchaser | agency | supervisor | supplier
    org_id: str
    name: str
    name_en: str
    user_id: str
    token: str
    size_class: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Seed:
    admin_token: str
    purchaser: Party
    agency: Party
    supervisor: Party
    suppliers: tuple[Party, ...]

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def supplier_ids(self) -> list[str]:
        return [s.org_id for s in self.suppliers]


_SIZES = ("large", "medium", "small", "micro")


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await client.post(path, json=body)
    assert reply.status_code == 201, f"POST {path} {body}: {reply.status_code} {reply.text}"
    doc: dict[str, Any] = reply.json()
    return doc


async def _party(client: httpx.AsyncClient, kind: str, name: str, name_en: str,
                 size_class: str | None = None) -> Party:
    org_body: dict[str, Any] = {"kind": kind, "name": name, "name_en": name_en}
    if size_class is not None:
        org_body["size_class"] = size_class
    org = await _post(client, "/api/organisations", org_body)
    user = await _post(client, "/api/users",
                       {"org_id": org["id"], "name": f"{name} 经办人", "roles": [kind]})
    token = await _post(client, f"/api/users/{user['id']}/tokens", {"label": "e2e"})
    return Party(kind, org["id"], name, name_en, user["id"], token["token"], size_class)


async def create_auction(server: ServerProcess, accounts: Seed, *, title: str, title_en: str,
                         start_ms: int, end_ms: int, ceiling_fen: int, step_fen: int) -> str:
    """Create, as the seeded purchaser through the HTTP API, an auction inviting every seeded
    supplier, with an amount step; return its id."""
    async with api_client(server, accounts.purchaser.token) as http:
        created = await http.post("/api/auctions", json={
            "title": title, "title_en": title_en,
            "invited_supplier_ids": accounts.supplier_ids,
            "settings": {"ceiling_fen": ceiling_fen, "start_ms": start_ms, "end_ms": end_ms,
                         "step_kind": "amount", "step_value": step_fen},
        })
    assert created.status_code == 201, created.text
    auction_id: str = created.json()["id"]
    return auction_id


async def seed(server: ServerProcess, admin_token: str, *, suppliers: int = 3) -> Seed:
    """Create, through the HTTP admin API, a purchaser, an agency, a supervisor and
    ``suppliers`` suppliers (size classes cycling large, medium, small, micro), each with one
    user of the matching role and a token."""
    async with api_client(server, admin_token) as client:
        purchaser = await _party(client, "purchaser", "测试市教育局", "Test City Education Bureau")
        agency = await _party(client, "agency", "测试招标代理有限公司",
                              "Test Tendering Agency Ltd.")
        supervisor = await _party(client, "supervisor", "测试市财政局", "Test City Finance Bureau")
        made = [
            await _party(client, "supplier", f"测试供应商{i}有限公司", f"Test Supplier {i} Ltd.",
                         _SIZES[(i - 1) % len(_SIZES)])
            for i in range(1, suppliers + 1)
        ]
    return Seed(admin_token, purchaser, agency, supervisor, tuple(made))
