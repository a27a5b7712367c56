"""The embedded redis-server: start, reuse, crash survival with AOF, stale leftovers.

These always run against EmbeddedRedis itself (whatever BIDROOM_TEST_REDIS_URL says), each test
with its own data directory and server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import redis
from redis.asyncio import Redis, RedisCluster

from bidroom.errors import StoreError, ValidationError
from bidroom.stores.embedded import (
    MAX_UNIX_SOCKET_PATH_BYTES,
    EmbeddedRedis,
    EmbeddedRedisWatchdog,
)
from bidroom.stores.redis import connect_redis, is_cluster_url, redis_time_ms


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state != "Z"


def _wait_until_dead(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} still alive after {timeout}s"
        time.sleep(0.01)


def _sync(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


@pytest.fixture
def servers() -> Iterator[list[EmbeddedRedis]]:
    """Every EmbeddedRedis a test registers is stopped afterwards, even if the test fails."""
    started: list[EmbeddedRedis] = []
    yield started
    for server in started:
        try:
            server.stop()
        except StoreError:
            pid = server.pid
            if pid is not None and _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "redis"


def test_start_returns_a_unix_url_in_the_data_dir_and_stop_ends_the_process(
    data_dir: Path, servers: list[EmbeddedRedis]
) -> None:
    server = EmbeddedRedis(data_dir)
    servers.append(server)
    url = server.start()
    assert url == f"unix://{data_dir.resolve()}/redis.sock"
    assert server.url == url
    pid = server.pid
    assert pid is not None and _alive(pid)
    client = _sync(url)
    assert client.ping() is True
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.config_get("appendfsync") == {"appendfsync": "always"}
    assert client.config_get("port") == {"port": "0"}
    assert client.config_get("save") == {"save": ""}
    client.close()
    assert (data_dir / "redis.pid").read_text().strip() == str(pid)

    server.stop()
    assert not _alive(pid)
    assert not (data_dir / "redis.sock").exists()
    assert not (data_dir / "redis.pid").exists()
    with pytest.raises(StoreError):
        _ = server.url


def test_stop_is_a_no_op_when_nothing_runs(data_dir: Path) -> None:
    server = EmbeddedRedis(data_dir)
    server.stop()
    data_dir.mkdir()
    server.stop()
    assert server.pid is None


def test_a_second_instance_on_the_same_dir_reuses_the_running_server(
    data_dir: Path, servers: list[EmbeddedRedis]
) -> None:
    first = EmbeddedRedis(data_dir)
    servers.append(first)
    url = first.start()
    _sync(url).set("written-by", b"first")

    second = EmbeddedRedis(data_dir)
    assert second.start() == url
    assert second.pid == first.pid
    assert _sync(second.url).get("written-by") == b"first"
    # Starting the first one again is idempotent too.
    assert first.start() == url
    assert first.pid == second.pid


def test_a_server_started_by_a_crashed_process_is_reused(
    data_dir: Path, servers: list[EmbeddedRedis]
) -> None:
    """The daemonized server outlives a parent killed with SIGKILL; the next start reuses it."""
    script = (
        "import os, sys, signal\n"
        "from pathlib import Path\n"
        "from bidroom.stores.embedded import EmbeddedRedis\n"
        "server = EmbeddedRedis(Path(sys.argv[1]))\n"
        "print(server.start(), server.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", script, str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    url, pid_text = done.stdout.split()
    orphan_pid = int(pid_text)
    server = EmbeddedRedis(data_dir)
    servers.append(server)
    assert _alive(orphan_pid)

    assert server.start() == url
    assert server.pid == orphan_pid


def test_processes_starting_at_once_share_one_server(
    data_dir: Path, servers: list[EmbeddedRedis]
) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from bidroom.stores.embedded import EmbeddedRedis\n"
        "server = EmbeddedRedis(Path(sys.argv[1]))\n"
        "print(server.start(), server.pid, flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    servers.append(EmbeddedRedis(data_dir))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(3)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    assert len(set(outputs)) == 1, outputs
    pid = int(outputs[0].split()[1])
    assert _alive(pid)


def test_acknowledged_writes_survive_sigkill_of_redis_server_with_appendfsync_always(
    data_dir: Path, servers: list[EmbeddedRedis]
) -> None:
    server = EmbeddedRedis(data_dir, appendfsync="always")
    servers.append(server)
    url = server.start()
    client = _sync(url)
    for i in range(50):
        client.rpush("bidroom:{a:1}:log", msgpack.packb({"seq": i + 1, "price_fen": 1000 - i}))
    client.set("last", b"\x00\xffbinary")
    client.close()
    killed = server.pid
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    _wait_until_dead(killed)
    # A killed server leaves its pidfile and socket behind.
    assert (data_dir / "redis.pid").exists()

    again = EmbeddedRedis(data_dir)
    servers.append(again)
    assert again.start() == url
    assert again.pid != killed
    client = _sync(url)
    entries = [msgpack.unpackb(raw) for raw in client.lrange("bidroom:{a:1}:log", 0, -1)]
    assert [e["seq"] for e in entries] == list(range(1, 51))
    assert entries[-1]["price_fen"] == 951
    assert client.get("last") == b"\x00\xffbinary"
    client.close()


def test_the_watchdog_starts_a_killed_server_again_on_the_same_socket_with_its_data(
    data_dir: Path, servers: list[EmbeddedRedis]
) -> None:
    server = EmbeddedRedis(data_dir, appendfsync="always")
    servers.append(server)
    url = server.start()
    restarted: list[int | None] = []
    watchdog = EmbeddedRedisWatchdog(server, on_restart=lambda r: restarted.append(r.pid))
    assert watchdog.check() is False  # alive: nothing to do
    client = _sync(url)
    client.set("acknowledged", b"1")
    client.close()
    killed = server.pid
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    _wait_until_dead(killed)

    assert watchdog.check() is True  # what its thread does every second
    assert server.url == url and server.pid not in (None, killed)
    assert restarted == [server.pid] and watchdog.restarts == 1
    client = _sync(url)  # the same URL the app's clients hold
    assert client.get("acknowledged") == b"1"
    client.close()
    assert watchdog.check() is False

    server.stop()  # a stopped server is not the watchdog's to start
    assert watchdog.check() is False and server.pid is None


def test_the_watchdog_thread_watches_until_stopped(
    data_dir: Path, servers: list[EmbeddedRedis]
) -> None:
    server = EmbeddedRedis(data_dir, appendfsync="always")
    servers.append(server)
    server.start()
    restarted = threading.Event()
    watchdog = EmbeddedRedisWatchdog(server, interval_s=0.05,
                                     on_restart=lambda r: restarted.set())
    watchdog.start()
    try:
        killed = server.pid
        assert killed is not None
        os.kill(killed, signal.SIGKILL)
        assert restarted.wait(30), "the watchdog did not start the server again"
        assert server.pid != killed and _sync(server.url).ping()
    finally:
        watchdog.stop()
    server.stop()


def test_data_survives_a_clean_stop_and_start(data_dir: Path, servers: list[EmbeddedRedis]) -> None:
    server = EmbeddedRedis(data_dir, appendfsync="everysec")
    servers.append(server)
    client = _sync(server.start())
    client.set("k", b"v")
    client.close()
    server.stop()
    client = _sync(server.start())
    assert client.get("k") == b"v"
    assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
    client.close()


def test_a_stale_pidfile_naming_a_dead_process_and_a_stale_socket_are_cleaned_up(
    data_dir: Path, servers: list[EmbeddedRedis]
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    data_dir.mkdir(parents=True)
    (data_dir / "redis.pid").write_text(f"{dead.pid}\n")
    (data_dir / "redis.sock").write_bytes(b"not a socket")

    server = EmbeddedRedis(data_dir)
    servers.append(server)
    url = server.start()
    assert server.pid not in (None, dead.pid)
    assert (data_dir / "redis.pid").read_text().strip() == str(server.pid)
    assert _sync(url).ping() is True


def test_a_pidfile_naming_a_live_unrelated_process_is_treated_as_stale(
    data_dir: Path, servers: list[EmbeddedRedis]
) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "redis.pid").write_text(f"{os.getpid()}\n")  # alive, but not a redis-server

    server = EmbeddedRedis(data_dir)
    servers.append(server)
    server.start()
    assert server.pid != os.getpid()
    assert _sync(server.url).ping() is True


def test_a_data_dir_too_long_for_a_unix_socket_gets_a_short_recorded_socket(
    tmp_path: Path, servers: list[EmbeddedRedis]
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    assert len(str(deep / "redis.sock")) > MAX_UNIX_SOCKET_PATH_BYTES
    server = EmbeddedRedis(deep)
    servers.append(server)
    url = server.start()
    socket = server.socket_path
    assert socket is not None
    assert len(os.fsencode(str(socket))) <= MAX_UNIX_SOCKET_PATH_BYTES
    assert (deep / "redis.sock.path").read_text().strip() == str(socket)
    assert _sync(url).ping() is True

    other = EmbeddedRedis(deep)
    assert other.start() == url
    assert other.pid == server.pid

    server.stop()
    assert not socket.parent.exists()
    assert not (deep / "redis.sock.path").exists()


def test_an_unknown_appendfsync_policy_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        EmbeddedRedis(Path("unused"), appendfsync="sometimes")
    assert info.value.code == "invalid_setting"


def test_a_server_that_cannot_start_reports_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config redis-server refuses (a bad appendfsync slipped past) is reported, not hung on."""
    server = EmbeddedRedis(tmp_path / "bad")
    monkeypatch.setattr(server, "appendfsync", "sometimes")
    with pytest.raises(StoreError) as info:
        server.start()
    assert "appendfsync" in info.value.message
    assert server.pid is None


async def test_connect_redis_on_the_unix_url_round_trips_msgpack_bytes(
    data_dir: Path, servers: list[EmbeddedRedis]
) -> None:
    server = EmbeddedRedis(data_dir)
    servers.append(server)
    client = connect_redis(server.start())
    assert isinstance(client, Redis)
    try:
        event = {"type": "BidAccepted", "seq": 7, "price_fen": 123_456, "alias": "供应商 A"}
        await client.xadd("bidroom:{a:1}:ev", {"e": msgpack.packb(event)}, id="0-7")
        entries = await client.xrange("bidroom:{a:1}:ev")
        assert entries is not None
        entry_id, fields = entries[0]
        assert entry_id == b"0-7"
        assert fields is not None
        assert msgpack.unpackb(fields[b"e"]) == event
        assert await client.get("missing") is None
        await client.set("raw", b"\x81\xa1a\x01")
        assert await client.get("raw") == b"\x81\xa1a\x01"  # bytes, never decoded
    finally:
        await client.aclose()


async def test_a_script_can_read_redis_time_and_write_after_it(
    data_dir: Path, servers: list[EmbeddedRedis]
) -> None:
    server = EmbeddedRedis(data_dir)
    servers.append(server)
    client = connect_redis(server.start())
    try:
        script = (
            "local t = redis.call('TIME')\n"
            "local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
            "redis.call('SET', KEYS[1], ms)\n"
            "return ms"
        )
        before = await redis_time_ms(client)
        from_script = await client.eval(script, 1, "bidroom:{a:1}:t")
        after = await redis_time_ms(client)
        assert before <= from_script <= after
        assert await client.get("bidroom:{a:1}:t") == str(from_script).encode()
        assert abs(before - time.time() * 1000) < 60_000
    finally:
        await client.aclose()


async def test_redis_time_ms_raises_store_error_when_the_server_is_gone(tmp_path: Path) -> None:
    client = connect_redis(f"unix://{tmp_path}/nothing-here.sock")
    try:
        with pytest.raises(StoreError) as info:
            await redis_time_ms(client)
        assert info.value.code == "store_unavailable"
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("url", "nodes"),
    [
        ("redis://127.0.0.1:7000?cluster=1", ["127.0.0.1:7000"]),
        ("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", ["127.0.0.1:7000", "127.0.0.1:7001"]),
        ("rediss+cluster://u:p%40ss@127.0.0.1:7000?socket_timeout=3", ["127.0.0.1:7000"]),
    ],
)
def test_cluster_urls_give_a_cluster_client_with_their_startup_nodes(
    url: str, nodes: list[str]
) -> None:
    client = connect_redis(url)
    assert isinstance(client, RedisCluster)
    assert is_cluster_url(url)
    assert sorted(node.name for node in client.startup_nodes) == nodes
    assert client.connection_kwargs["decode_responses"] is False
    if url.startswith("rediss"):
        assert client.connection_kwargs["password"] == "p@ss"
        assert client.connection_kwargs["socket_timeout"] == 3.0


def test_plain_urls_give_a_single_server_client_that_does_not_decode() -> None:
    for url in ("redis://127.0.0.1:6379/2", "rediss://h:6380", "unix:///tmp/r.sock?db=1"):
        client = connect_redis(url)
        assert isinstance(client, Redis)
        assert not is_cluster_url(url)
        assert client.connection_pool.connection_kwargs.get("decode_responses", False) is False


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379",
        "redis+cluster://",
        "redis+cluster://h:port",
        "redis+cluster://h:1/3",
        "unix:///tmp/r.sock?cluster=1",
        "redis://h?socket_timeout=abc",
    ],
)
def test_unusable_redis_urls_are_refused_as_invalid_settings(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        connect_redis(url)
    assert info.value.code == "invalid_setting"


def test_a_refused_url_does_not_echo_its_password() -> None:
    with pytest.raises(ValidationError) as info:
        connect_redis("http://user:hunter2@h:1")
    assert "hunter2" not in info.value.message
