"""Connecting to Redis: one function from a URL to an asyncio client, and the server clock.

Accepted URLs (``BIDROOM_REDIS_URL``, or what :class:`~bidroom.stores.embedded.EmbeddedRedis`
returns):

==========================================  =================================================
``unix:///abs/path/redis.sock[?db=N]``      one server over a unix socket (the embedded one)
``redis://[user:pass@]host:port[/db]``      one server over TCP
``rediss://…``                              the same over TLS
``redis://host:port?cluster=1``             Redis Cluster, discovered from that node
``redis+cluster://h1:p1,h2:p2[?…]``         Redis Cluster with several startup nodes
``rediss+cluster://h1:p1,h2:p2[?…]``        the same over TLS
==========================================  =================================================

Other query parameters are redis-py's (``socket_timeout=5``, ``health_check_interval=30``…).
Responses are never decoded (``decode_responses=False``): events are msgpack bytes.

Clients connect lazily, so a wrong URL is only detected by the first command; wrap calls with
:func:`store_errors` (as :func:`redis_time_ms` does) to turn driver connection failures into
:class:`bidroom.errors.StoreError`.

Must not import: market, web.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Iterator
from typing import Any, TypeAlias

import redis.exceptions
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode

from bidroom.errors import StoreError, ValidationError

__all__ = [
    "CLUSTER_SCHEMES",
    "RedisClient",
    "connect_redis",
    "is_cluster_url",
    "redis_time_ms",
    "store_errors",
]

#: What the rest of the core holds: a single-server or a cluster client (same command API).
RedisClient: TypeAlias = Redis | RedisCluster

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
POOL_SIZE = 64  # connections per process to one Redis server
POOL_TIMEOUT_S = 10.0  # how long a command waits for a free connection before StoreError
_PLAIN_SCHEMES = ("redis", "rediss", "unix")
_TRUE = ("1", "true", "yes", "on")


def _invalid(url: str, why: str) -> ValidationError:
    return ValidationError(
        f"invalid Redis URL {_redact(url)!r}: {why}", code="invalid_setting", setting="redis_url"
    )


def _redact(url: str) -> str:
    """The URL without its password, for error messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    userinfo, _, hostpart = rest.partition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostpart}" if ":" in userinfo else url


def _split_query(query: str) -> tuple[bool, str]:
    """(cluster requested?, the query without the ``cluster`` parameter)."""
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    cluster = any(k == "cluster" and v.lower() in _TRUE for k, v in pairs)
    rest = urllib.parse.urlencode([(k, v) for k, v in pairs if k != "cluster"])
    return cluster, rest


def is_cluster_url(url: str) -> bool:
    """True for ``redis+cluster://`` / ``rediss+cluster://`` URLs and ``?cluster=1``."""
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in CLUSTER_SCHEMES or _split_query(parts.query)[0]


def _parse_hostport(url: str, text: str) -> tuple[str, int]:
    if text.startswith("["):  # [::1]:7000
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise _invalid(url, f"node {text!r} needs [ipv6]:port")
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            host, port = text, "6379"
    if not host:
        raise _invalid(url, f"node {text!r} has no host")
    try:
        number = int(port)
    except ValueError:
        raise _invalid(url, f"node {text!r} has a non-numeric port") from None
    if not 0 < number < 65536:
        raise _invalid(url, f"node {text!r} has a port out of range")
    return host, number


def _connect_cluster_nodes(url: str, parts: urllib.parse.SplitResult) -> RedisCluster:
    base_scheme = parts.scheme.removesuffix("+cluster")
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not hosts:
        raise _invalid(url, "no cluster node given")
    nodes = [_parse_hostport(url, item.strip()) for item in hosts.split(",") if item.strip()]
    if not nodes:
        raise _invalid(url, "no cluster node given")
    if parts.path not in ("", "/", "/0"):
        raise _invalid(url, "Redis Cluster has only database 0")
    _, query = _split_query(parts.query)
    first_host, first_port = nodes[0]
    host_text = f"[{first_host}]" if ":" in first_host else first_host
    single = urllib.parse.urlunsplit(
        (base_scheme, f"{userinfo}{at}{host_text}:{first_port}", "", query, "")
    )
    startup = [ClusterNode(host, port) for host, port in nodes[1:]]
    return RedisCluster.from_url(single, startup_nodes=startup or None, decode_responses=False)


def connect_redis(url: str) -> RedisClient:
    """An asyncio Redis (or Redis Cluster) client for ``url``; see the module doc for URLs.

    Does not connect yet. Raises :class:`ValidationError` (``invalid_setting``) for a URL it
    cannot use.
    """
    parts = urllib.parse.urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        if scheme in CLUSTER_SCHEMES:
            return _connect_cluster_nodes(url, parts)
        if scheme not in _PLAIN_SCHEMES:
            raise _invalid(
                url, f"the scheme must be one of {', '.join((*_PLAIN_SCHEMES, *CLUSTER_SCHEMES))}"
            )
        cluster, query = _split_query(parts.query)
        if scheme == "unix" and not parts.path:
            raise _invalid(url, "unix:// needs an absolute socket path")
        if cluster:
            if scheme == "unix":
                raise _invalid(url, "Redis Cluster cannot be reached over a unix socket")
            single = urllib.parse.urlunsplit((scheme, parts.netloc, parts.path, query, ""))
            return RedisCluster.from_url(single, decode_responses=False)
        # A blocking pool: under a burst, a command waits for a free connection (bounded by
        # POOL_TIMEOUT_S) instead of failing with "Too many connections" — a refused bid
        # under load would be an outage, a 5 ms wait is not.
        pool = BlockingConnectionPool.from_url(url, decode_responses=False,
                                               max_connections=POOL_SIZE,
                                               timeout=POOL_TIMEOUT_S)
        return Redis.from_pool(pool)  # the client owns (and closes) its pool
    except ValidationError:
        raise
    except (ValueError, TypeError, redis.exceptions.RedisError) as exc:
        raise _invalid(url, str(exc)) from exc


@contextlib.contextmanager
def store_errors(what: str = "Redis") -> Iterator[None]:
    """Turn redis-py's connection, timeout and cluster failures into :class:`StoreError`.

    A ``ResponseError`` (the server refused a command, e.g. a bad script) is a bug rather than
    an outage and propagates unchanged.
    """
    try:
        yield
    except (
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        redis.exceptions.BusyLoadingError,
        redis.exceptions.ClusterError,
        redis.exceptions.RedisClusterException,
        OSError,
    ) as exc:
        raise StoreError(f"{what} is unavailable: {exc}", code="store_unavailable") from exc


def _as_int(value: Any) -> int:
    if isinstance(value, bytes):
        value = value.decode("ascii")
    return int(value)


async def redis_time_ms(client: RedisClient) -> int:
    """The Redis server's clock (``TIME``) in integer milliseconds since the epoch."""
    with store_errors("Redis"):
        reply: Any = await client.time()
    if isinstance(reply, dict):  # a cluster client asked several nodes: take any one
        reply = next(iter(reply.values()))
    seconds, micros = (_as_int(part) for part in reply)
    return seconds * 1000 + micros // 1000
