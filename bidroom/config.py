"""Settings of one Bidroom server, from ``BIDROOM_*`` environment variables and CLI flags.

``Settings.from_env()`` reads the environment; keyword overrides (the CLI's flags) win over it,
and an override that is ``None`` (a flag not given) is ignored. An empty variable counts as
unset. A bad value raises ``ValidationError(code="invalid_setting")`` whose message names the
variable.

=============================  =================  ==============================================
variable                       default            meaning
=============================  =================  ==============================================
``BIDROOM_DATA_DIR``           ``./var``          where the embedded Redis (AOF), the SQLite file
                                                  and the platform key live (made absolute)
``BIDROOM_REDIS_URL``          (embedded)         ``unix://``, ``redis://``, ``rediss://``,
                                                  ``redis+cluster://h:p,h:p`` or ``?cluster=1``;
                                                  unset: a redis-server started in the data dir
``BIDROOM_DATABASE_URL``       (SQLite file)      SQLAlchemy async URL; unset:
                                                  ``sqlite+aiosqlite:///DATA_DIR/bidroom.db``
``BIDROOM_HOST``               ``127.0.0.1``      address the HTTP/WebSocket server binds
``BIDROOM_PORT``               ``8000``           its TCP port (0–65535)
``BIDROOM_WORKERS``            ``1``              server processes (≥ 1)
``BIDROOM_PUBLIC_URL``         (none)             ``http(s)://…`` base URL as clients see it
``BIDROOM_REDIS_APPENDFSYNC``  ``always``         embedded Redis AOF fsync: ``always``,
                                                  ``everysec`` or ``no``
``BIDROOM_STREAM_MAXLEN``      ``10000``          room events kept per auction for catch-up
``BIDROOM_WS_SEND_BUFFER``     ``1048576``        bytes a WebSocket may leave unread (beyond the
                                                  kernel's socket buffer) before the server
                                                  closes it as a slow consumer (4008)
``BIDROOM_WS_COALESCE_BUFFER`` ``262144``         unread bytes past which a WebSocket falls
                                                  behind: room events are held back and it
                                                  gets the latest state (``tick``) once it
                                                  has read its backlog; ``0`` turns it off
``BIDROOM_WS_FLOOD_LIMIT``     ``50``             messages per second a client may send
``BIDROOM_WS_FLOOD_BURST``     ``100``            burst allowed above that rate before the
                                                  server closes the connection
``BIDROOM_TEST_CLOCK``         ``0``              ``1`` enables the test clock (test servers
                                                  only); only ``0`` and ``1`` are accepted
``BIDROOM_TRUSTED_PROXIES``    (none)             comma-separated addresses or networks of
                                                  reverse proxies whose ``X-Forwarded-For`` is
                                                  believed (``10.0.0.0/8,127.0.0.1``); unset:
                                                  a client's address is the TCP peer's
=============================  =================  ==============================================

Must not import: market, web, or any driver.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bidroom.errors import ValidationError

__all__ = ["ENV_VARIABLES", "REDIS_URL_SCHEMES", "Settings"]

REDIS_URL_SCHEMES = ("unix", "redis", "rediss", "redis+cluster", "rediss+cluster")
_APPENDFSYNC = ("always", "everysec", "no")
_OPTIONAL = frozenset({"redis_url", "database_url", "public_url"})


@dataclass(frozen=True)
class Settings:
    """Everything a server process needs to know at startup. Immutable.

    Build it with :meth:`from_env` (every value checked); the plain constructor does no
    checking and keeps ``data_dir`` as given (tests).
    """

    data_dir: Path = field(default_factory=lambda: Path("var"))
    redis_url: str | None = None
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    public_url: str | None = None
    redis_appendfsync: str = "always"
    stream_maxlen: int = 10_000
    ws_send_buffer: int = 1_048_576
    ws_coalesce_buffer: int = 262_144
    ws_flood_limit: int = 50
    ws_flood_burst: int = 100
    test_clock: bool = False
    trusted_proxies: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``environ`` (default ``os.environ``), then ``overrides`` on top.

        Overrides are field names (``port=8080``); ``None`` means "not given". A string
        override is parsed like the environment variable (``port="8080"`` works).
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, (variable, _) in _FIELDS.items():
            raw = env.get(variable)
            if raw is not None and raw.strip() != "":
                values[name] = _parse(name, raw.strip(), variable)
        for name, value in overrides.items():
            if value is None:
                continue
            if name not in _FIELDS:
                raise ValidationError(
                    f"unknown setting {name!r}", code="invalid_setting", setting=name
                )
            label = f"{name} (overrides {_FIELDS[name][0]})"
            values[name] = _parse(name, value.strip() if isinstance(value, str) else value, label)
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"]).expanduser().absolute()
        else:
            values["data_dir"] = Path("var").absolute()
        return cls(**values)

    @property
    def uses_embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def sqlite_path(self) -> Path:
        """The default database file: ``data_dir/bidroom.db``."""
        return self.data_dir.absolute() / "bidroom.db"

    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL to use.

        Unset: ``sqlite+aiosqlite:////abs/DATA_DIR/bidroom.db``. A URL naming no async driver
        gets ours: ``postgres://``/``postgresql://`` → ``postgresql+asyncpg://`` and
        ``sqlite://`` → ``sqlite+aiosqlite://``. Anything else is returned as given.
        """
        if self.database_url is None:
            return f"sqlite+aiosqlite:///{self.sqlite_path}"
        scheme, sep, rest = self.database_url.partition("://")
        if sep and scheme in ("postgres", "postgresql"):
            return f"postgresql+asyncpg://{rest}"
        if sep and scheme == "sqlite":
            return f"sqlite+aiosqlite://{rest}"
        return self.database_url

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed, each parsed and checked like an override."""
        parsed: dict[str, Any] = {
            name: None if value is None and name in _OPTIONAL else _parse(name, value, name)
            for name, value in changes.items()
        }
        return dataclasses.replace(self, **parsed)


# --------------------------------------------------------------------------- parsers


class _Bad(Exception):
    """A parser's refusal; ``from_env`` turns it into a ValidationError naming the variable."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def _int_between(low: int, high: int | None = None) -> Callable[[object], int]:
    expected = f"an integer ≥ {low}" if high is None else f"an integer from {low} to {high}"

    def parse(value: object) -> int:
        if isinstance(value, bool):
            raise _Bad(expected)
        if isinstance(value, int):
            number = value
        elif isinstance(value, str):
            try:
                number = int(value, 10)
            except ValueError:
                raise _Bad(expected) from None
        else:
            raise _Bad(expected)
        if number < low or (high is not None and number > high):
            raise _Bad(expected)
        return number

    return parse


def _off_or_at_least(low: int) -> Callable[[object], int]:
    """0 (the feature is off) or an integer ≥ ``low``."""
    whole = _int_between(0)

    def parse(value: object) -> int:
        number = whole(value)
        if 0 < number < low:
            raise _Bad(f"0 (off) or an integer ≥ {low}")
        return number

    return parse


def _path(value: object) -> Path:
    if isinstance(value, Path):
        return value
    if isinstance(value, str) and value and "\x00" not in value:
        return Path(value)
    raise _Bad("a directory path")


def _text(value: object) -> str:
    if isinstance(value, str) and value and not any(c.isspace() for c in value):
        return value
    raise _Bad("a non-empty string without spaces")


def _redis_url(value: object) -> str:
    text = _text(value)
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in REDIS_URL_SCHEMES or not rest:
        raise _Bad(f"a URL with a scheme among {', '.join(REDIS_URL_SCHEMES)}")
    return text


def _database_url(value: object) -> str:
    text = _text(value)
    scheme, sep, rest = text.partition("://")
    if not sep or not scheme or not rest:
        raise _Bad("a SQLAlchemy URL such as postgresql+asyncpg://user@host/db")
    return text


def _public_url(value: object) -> str:
    text = _text(value)
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise _Bad("an http:// or https:// base URL")
    return text.rstrip("/")


def _appendfsync(value: object) -> str:
    if isinstance(value, str) and value.lower() in _APPENDFSYNC:
        return value.lower()
    raise _Bad("one of " + ", ".join(_APPENDFSYNC))


def _test_clock(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if value == "1":
        return True
    if value == "0":
        return False
    raise _Bad("1 (on) or 0 (off)")


def _networks(value: object) -> tuple[str, ...]:
    """Addresses or networks (``10.0.0.0/8``), comma-separated or as a tuple; normalised."""
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, tuple | list):
        raise _Bad("comma-separated IP addresses or networks")
    try:
        return tuple(str(ipaddress.ip_network(str(p).strip(), strict=False))
                     for p in parts if str(p).strip())
    except ValueError:
        raise _Bad("comma-separated IP addresses or networks such as 10.0.0.0/8") from None


_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "data_dir": ("BIDROOM_DATA_DIR", _path),
    "redis_url": ("BIDROOM_REDIS_URL", _redis_url),
    "database_url": ("BIDROOM_DATABASE_URL", _database_url),
    "host": ("BIDROOM_HOST", _text),
    "port": ("BIDROOM_PORT", _int_between(0, 65535)),
    "workers": ("BIDROOM_WORKERS", _int_between(1, 1024)),
    "public_url": ("BIDROOM_PUBLIC_URL", _public_url),
    "redis_appendfsync": ("BIDROOM_REDIS_APPENDFSYNC", _appendfsync),
    "stream_maxlen": ("BIDROOM_STREAM_MAXLEN", _int_between(1)),
    "ws_send_buffer": ("BIDROOM_WS_SEND_BUFFER", _int_between(1024)),
    "ws_coalesce_buffer": ("BIDROOM_WS_COALESCE_BUFFER", _off_or_at_least(1024)),
    "ws_flood_limit": ("BIDROOM_WS_FLOOD_LIMIT", _int_between(1)),
    "ws_flood_burst": ("BIDROOM_WS_FLOOD_BURST", _int_between(1)),
    "test_clock": ("BIDROOM_TEST_CLOCK", _test_clock),
    "trusted_proxies": ("BIDROOM_TRUSTED_PROXIES", _networks),
}


def _parse(name: str, value: object, label: str) -> Any:
    if name not in _FIELDS:
        raise ValidationError(f"unknown setting {name!r}", code="invalid_setting", setting=name)
    variable, parse = _FIELDS[name]
    try:
        return parse(value)
    except _Bad as bad:
        raise ValidationError(
            f"{label}: expected {bad.expected}, got {value!r}",
            code="invalid_setting",
            setting=name,
            variable=variable,
        ) from None


#: Setting name → environment variable, for documentation and the CLI's help.
ENV_VARIABLES: dict[str, str] = {name: variable for name, (variable, _) in _FIELDS.items()}
