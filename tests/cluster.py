"""A local 3-master Redis Cluster for tests, started from the machine's ``redis-server``.

Used where the tests must prove that the room script and the fan-out run unchanged on Redis
Cluster: the ``cluster_url`` fixture, and with ``BIDROOM_TEST_REDIS_CLUSTER=1`` the session's
``redis_url`` itself (tests/conftest.py), so that whole suites run on a cluster (.ci/run does it
for tests/e2e). ``BIDROOM_REQUIRE_REAL_SERVERS=1`` (set by .ci/run) turns a missing binary into
a failure instead of a skip. ``flush_cluster(url)`` empties every master between tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


def _free_ports(n: int) -> list[int]:
    # Cluster bus ports are port + 10000: pick ports whose bus port is free too.
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10_000 > 65_535 or port in ports:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
        ports.append(port)
    return ports


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


class LocalCluster:
    def __init__(self, workdir: Path, masters: int = 3) -> None:
        self.workdir = workdir
        self.ports = _free_ports(masters)
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self) -> str:
        binary = redis_server_binary()
        assert binary is not None
        for port in self.ports:
            node_dir = self.workdir / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            self.procs.append(subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", "nodes.conf", "--dir", str(node_dir), "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--logfile", "redis.log"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        cli = shutil.which("redis-cli")
        assert cli is not None
        deadline = time.monotonic() + 20
        for port in self.ports:  # wait for each node to answer (a process coming up)
            while subprocess.run([cli, "-p", str(port), "ping"], capture_output=True
                                 ).stdout.strip() != b"PONG":
                assert time.monotonic() < deadline, f"redis node {port} did not start"
                time.sleep(0.05)
        create = subprocess.run(
            [cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
             "--cluster-replicas", "0", "--cluster-yes"], capture_output=True, timeout=60)
        assert create.returncode == 0, create.stdout + create.stderr
        for port in self.ports:  # wait until every node sees every slot served
            while True:
                info = subprocess.run([cli, "-p", str(port), "cluster", "info"],
                                      capture_output=True).stdout
                if b"cluster_state:ok" in info:
                    break
                assert time.monotonic() < deadline + 40, info
                time.sleep(0.05)
        return self.url

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()

    def __enter__(self) -> str:
        """Start the cluster (stopping whatever did start if that fails); its URL."""
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def flush_cluster(url: str) -> None:
    """Empty every master of the Redis Cluster at ``url`` (``FLUSHALL`` on each: a cluster has
    no database numbers, and one ``FLUSHDB`` would reach only the node it is sent to)."""
    import urllib.parse

    import redis.cluster

    parts = urllib.parse.urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    first = hosts.split(",", 1)[0]  # one node is enough: the client discovers the others
    scheme = parts.scheme.removesuffix("+cluster")
    client = redis.cluster.RedisCluster.from_url(f"{scheme}://{userinfo}{at}{first}")
    try:
        client.flushall(target_nodes=redis.cluster.RedisCluster.PRIMARIES)
    finally:
        client.close()


def require_cluster_binary() -> None:
    if redis_server_binary() is None or shutil.which("redis-cli") is None:
        if os.environ.get("BIDROOM_REQUIRE_REAL_SERVERS") == "1":
            pytest.fail("redis-server/redis-cli not found, and CI requires the cluster tests")
        pytest.skip("no redis-server binary on this machine: install Redis 7 to run the "
                    "Redis Cluster tests (CI does)")
