"""The ``bidroom`` command: serve, demo, receipts, the platform key, migrations, bootstrap.

``main(argv)`` parses the command line and returns an exit status (0 success, 1 failure, 2 a
bad flag or setting). Subcommands:

``bidroom serve``
    Runs the HTTP/WebSocket server (uvicorn, one or more worker processes). Without a Redis URL
    this process first starts the *embedded* redis-server (data dir ``DATA_DIR/redis``, AOF with
    ``appendfsync always``) and hands its URL to every worker through ``BIDROOM_REDIS_URL``, so
    all workers share one Redis. The embedded server is a daemon: if this process is killed
    (``kill -9``) it keeps running with every acknowledged write on disk, and the next
    ``serve`` on the same data dir reuses it; if *it* dies, this process starts it again on
    the same AOF and socket within a second. A clean exit (Ctrl-C, SIGTERM) stops it. The
    database is migrated here too, once, before any worker starts.
``bidroom demo``
    Resets a demo data dir (``./var/demo``), seeds organisations, users, tokens and two
    auctions through the real registry and executor, prints who is who and copy-paste examples
    (Chinese first, English second; times in Beijing time, as the pages show them), writes the
    same table to ``DATA_DIR/demo-accounts.json`` and serves like ``serve``. Its sealed-bid
    opening closes ``--opening-deadline`` minutes (default 15) after the start.
``bidroom demo-opening``
    In a running demo, a fresh opening with a new deadline (same accounts and tokens), for the
    newcomer who arrives after the first one closed.
``bidroom verify`` (alias ``bidroom receipt verify``), ``bidroom platform-key``,
``bidroom db upgrade``, ``bidroom admin bootstrap``
    Offline verification of every document the platform signs (bid receipts, sealed bid
    receipts, opening records: ``bidroom.documents``), printing the public key, migrating, and
    the first admin credential.
``bidroom ca init|request|sign-csr|issue|revoke|list|import-root``
    The platform CA for sealed remote bid openings (``DATA_DIR/ca``): create it; on the
    supplier's machine make its keys and PKCS#10 requests (``request``); sign them for a
    registered organisation (``sign-csr``); ``issue`` (demo only: makes the supplier's keys on
    the operator's machine); revoke, list; and trust a licensed CA's root (and its CRL) in
    ``DATA_DIR/ca/roots``.
``bidroom backup``, ``bidroom restore``
    Everything a server keeps in one archive (SQL, Redis, the CA, the sealed bids, the
    platform key), and back into a fresh data dir (``bidroom.backup``).
``bidroom bid seal|unwrap-key|open``
    The supplier's side of a sealed bid: build, sign and seal the package (prints the
    envelope's SHA-256); unwrap the content key at the opening (prints it in hex); open an
    envelope locally with that key to check it.

Flags override ``BIDROOM_*`` environment variables (``Settings.from_env(**overrides)``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import sys
import tempfile
import textwrap
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bidroom.config import ENV_VARIABLES, Settings
from bidroom.errors import BidroomError, StoreError, ValidationError
from web.cli_args import add_data_dir as _add_data_dir
from web.cli_args import add_database_url as _add_database_url
from web.cli_args import setting_type as _setting_type
from web.cli_registries import add_registry_commands

__all__ = [
    "DEMO_ACCOUNTS_FILE",
    "DEMO_MARKER",
    "PLATFORM_KEY_FILE",
    "build_parser",
    "main",
]

PLATFORM_KEY_FILE = "platform-key.pem"
DEMO_ACCOUNTS_FILE = "demo-accounts.json"
DEMO_MARKER = ".bidroom-demo"
DEFAULT_DEMO_DIR = "var/demo"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

# Exit statuses.
OK, FAILED, USAGE = 0, 1, 2


# =============================================================================== the parser


class _Formatter(argparse.HelpFormatter):
    """Keeps the line breaks of a description (Chinese line, then English) and wraps each
    long line to the terminal width."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(
            textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent)
            if line.strip() else ""
            for line in text.splitlines()
        )


def _add_listen(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        type=_setting_type("host"),
        help="监听地址 / address to bind (BIDROOM_HOST, default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=_setting_type("port"),
        help="端口 / TCP port (BIDROOM_PORT, default 8000)",
    )
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="日志级别 / uvicorn log level (default info)",
    )


def _minutes(text: str) -> int:
    """A whole number of minutes, 1 to 10080 (a week), for the demo opening's times."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole minutes, got {text!r}") from None
    if not 1 <= value <= 7 * 24 * 60:
        raise argparse.ArgumentTypeError(f"expected 1 to 10080 minutes, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bidroom`` command (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="bidroom",
        description=(
            "Bidroom — 政府采购平台的实时引擎：在线反向竞价（网上竞价）；不见面开标（密封投标"
            "文件加密上传、投标人解密、唱标和签名的开标记录）；平台CA（供应商签名证书和加密"
            "证书，由供应商自己的证书请求签发）；供应商端的投标文件加密和解密；签名回执的离线"
            "验证；备份与恢复；数据库迁移和管理员令牌。\n"
            "Bidroom — the real-time engine of a government e-procurement platform: live "
            "reverse auctions (serve, demo); sealed remote bid openings — encrypted uploads, "
            "decryption by each bidder, the reveal and the signed record (served by serve); "
            "the platform CA, which certifies suppliers' signing and encryption keys from "
            "their own certificate requests (ca); the supplier's side of a sealed bid (bid); "
            "offline verification of signed receipts (receipt, platform-key); backup and "
            "restore of everything a server keeps (backup, restore); migrations and the "
            "first admin token (db, admin)."
        ),
        epilog=(
            "快速开始 / quick start:  bidroom demo\n"
            "每个命令的帮助 / help of one command:  bidroom COMMAND --help\n"
            "设置也可来自环境变量 / settings also come from BIDROOM_* environment variables "
            "(flags win); see docs/operations.md."
        ),
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"bidroom {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="运行服务器 / run the HTTP + WebSocket server",
        description=(
            "运行 Bidroom 服务器。未指定 Redis 时使用内置 Redis（AOF, appendfsync always），"
            "未指定数据库时使用 SQLite。\n"
            "Run the Bidroom server. Without a Redis URL an embedded redis-server is started "
            "in DATA_DIR/redis and shared by all workers; without a database URL a SQLite file "
            "in DATA_DIR is used. Ctrl-C or SIGTERM stops everything it started."
        ),
        formatter_class=_Formatter,
    )
    _add_listen(serve)
    serve.add_argument(
        "--workers",
        type=_setting_type("workers"),
        help="工作进程数 / server processes (BIDROOM_WORKERS, default 1)",
    )
    serve.add_argument(
        "--redis-url",
        type=_setting_type("redis_url"),
        metavar="URL",
        help="Redis URL: redis://, rediss://, unix://, redis+cluster://h:p,h:p "
        "(BIDROOM_REDIS_URL, default: embedded redis-server in DATA_DIR/redis)",
    )
    _add_database_url(serve)
    _add_data_dir(serve)
    serve.set_defaults(handler=_cmd_serve)

    demo = commands.add_parser(
        "demo",
        help="演示：示例机构、用户、令牌和竞价 / serve a demo with accounts and a live auction",
        description=(
            "重置演示数据目录，创建示例机构、用户、令牌以及一场正在进行的竞价，然后启动服务器。\n"
            "Reset the demo data dir, seed demo organisations, users, tokens and an auction "
            "that starts now, print who is who, then serve. Always uses the embedded Redis and "
            "SQLite (BIDROOM_REDIS_URL / BIDROOM_DATABASE_URL are ignored)."
        ),
        formatter_class=_Formatter,
    )
    _add_listen(demo)
    _add_data_dir(demo, default_note=f"./{DEFAULT_DEMO_DIR}; it is deleted and recreated")
    _add_opening_times(demo)  # arriving after the deadline: more, or `bidroom demo-opening`
    demo.set_defaults(handler=_cmd_demo)
    _add_demo_opening_command(commands)

    _add_verify_command(commands)

    platform_key = commands.add_parser(
        "platform-key",
        help="打印平台公钥 / print the platform public key (PEM)",
        description=(
            "打印平台公钥（交给供应商用于离线验证回执）。\n"
            "Print the platform's public key (PEM) to hand to suppliers for offline receipt "
            "verification. The key lives in DATA_DIR/platform-key.pem (created by the server)."
        ),
        formatter_class=_Formatter,
    )
    _add_data_dir(platform_key)
    platform_key.set_defaults(handler=_cmd_platform_key)

    db = commands.add_parser("db", help="数据库 / database schema",
                             description="数据库 / database schema")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_commands.add_parser(
        "upgrade",
        help="迁移到最新版本 / migrate the schema to the newest revision",
        description="迁移数据库到最新版本 / migrate the database to the newest revision "
        "(idempotent; `serve` does it too)",
    )
    _add_database_url(upgrade)
    _add_data_dir(upgrade)
    upgrade.set_defaults(handler=_cmd_db_upgrade)
    portal_sql = db_commands.add_parser(
        "portal-sql",
        help="公告检索的SQL语句 / the portal search's SQL for given queries (benchmark B7)",
        description="打印公告检索对给定查询执行的SQL语句 / print the SQL statements the portal's "
        "search runs for each query of QUERIES (JSON: {label: {parameter: value}}), compiled "
        "for the database's driver (web/portal_sql.py)",
    )
    _add_database_url(portal_sql)
    _add_data_dir(portal_sql)
    portal_sql.add_argument("queries", metavar="QUERIES", help="JSON {label: {param: value}}")
    portal_sql.set_defaults(handler=_cmd_db_portal_sql)

    admin = commands.add_parser("admin", help="管理 / administration",
                                description="管理 / administration")
    admin_commands = admin.add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    bootstrap = admin_commands.add_parser(
        "bootstrap",
        help="创建平台管理员并签发令牌 / create the platform admin and print a token",
        description=(
            "如无平台管理员则创建平台机构和管理员；签发一个新的管理员令牌，以 JSON 输出。\n"
            "Create the platform organisation and an admin user unless one exists, issue a "
            'new admin token and print {"user_id": …, "org_id": …, "token": …} as JSON. '
            "The token is shown once; keep it secret."
        ),
        formatter_class=_Formatter,
    )
    _add_data_dir(bootstrap)
    _add_database_url(bootstrap)
    bootstrap.add_argument("--org-name", default="平台运营方",
                           help="平台机构名称 / platform organisation name (default 平台运营方)")
    bootstrap.add_argument("--org-name-en", default="Platform operator",
                           help="英文名称 / English name (default 'Platform operator')")
    bootstrap.add_argument("--name", default="平台管理员",
                           help="管理员姓名 / the admin user's name (default 平台管理员)")
    bootstrap.set_defaults(handler=_cmd_admin_bootstrap)
    _add_ca_commands(commands)
    _add_bid_commands(commands)
    _add_backup_commands(commands)
    add_registry_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bidroom`` command; return the exit status."""
    _utf8_output()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (status 2)
        return _exit_code(exc)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ValidationError as exc:
        _error(exc.message)
        return USAGE if exc.code == "invalid_setting" else FAILED
    except BidroomError as exc:
        _error(exc.message)
        return FAILED
    except KeyboardInterrupt:
        return 130
    except _Terminated:  # SIGTERM while stopping: we were stopping anyway
        return OK


# ================================================================================== serve


class _Terminated(BaseException):
    """Raised by our SIGTERM handler so that ``finally`` blocks (stopping Redis) run."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def _cmd_serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env(
        host=args.host,
        port=args.port,
        workers=args.workers,
        redis_url=args.redis_url,
        database_url=args.database_url,
        data_dir=args.data_dir,
    )
    return serve(settings, log_level=args.log_level)


def serve(
    settings: Settings,
    *,
    log_level: str = "info",
    before_listening: Callable[[Settings], None] | None = None,
) -> int:
    """Start the embedded Redis if needed, migrate, then run uvicorn until stopped.

    ``before_listening(settings)`` runs after Redis and the database are ready (``settings``
    then carries the Redis URL) and before the server binds its port: ``demo`` seeds there.
    """
    from bidroom.receipts import PlatformKey
    from bidroom.stores.embedded import EmbeddedRedis, EmbeddedRedisWatchdog
    from web.db import upgrade_database_sync

    _check_port_free(settings.host, settings.port)  # before Redis and the migration
    embedded: EmbeddedRedis | None = None
    watchdog: EmbeddedRedisWatchdog | None = None
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if settings.redis_url is None:
            embedded = EmbeddedRedis(
                settings.data_dir / "redis", appendfsync=settings.redis_appendfsync
            )
            url = embedded.start()
            settings = dataclasses.replace(settings, redis_url=url)
            _say(f"内置 Redis / embedded Redis: pid {embedded.pid}, {url} "
                 f"(appendfsync {settings.redis_appendfsync}; restarted automatically if it "
                 f"exits)")
            watchdog = EmbeddedRedisWatchdog(embedded, on_restart=lambda r: _say(
                f"内置 Redis 已退出，已自动重启 / the embedded Redis had exited and was started "
                f"again: pid {r.pid}"))
            watchdog.start()
        database_url = settings.resolved_database_url()
        upgrade_database_sync(database_url)
        _say(f"数据库 / database: {_redact_database_url(database_url)} (migrated)")
        key = PlatformKey.load_or_create(settings.data_dir / PLATFORM_KEY_FILE)
        _say(f"平台密钥 / platform key: {settings.data_dir / PLATFORM_KEY_FILE} "
             f"(key_id {key.key_id})")
        if settings.test_clock:
            _say("警告：测试时钟已启用 / WARNING: BIDROOM_TEST_CLOCK=1 — never in production")
        _export_settings(settings)
        if before_listening is not None:
            before_listening(settings)
        base = _base_url(settings)
        _say(f"Bidroom 正在启动 / starting: {base}  (WebSocket {_ws_url(base)}, "
             f"{settings.workers} worker{'s' if settings.workers != 1 else ''})")
        return _run_uvicorn(settings, log_level)
    except _Terminated:
        return OK
    finally:
        signal.signal(signal.SIGTERM, _raise_terminated)  # a second SIGTERM still unwinds
        try:
            if watchdog is not None:
                watchdog.stop()  # first: it must not start the server we are stopping
            if embedded is not None:
                embedded.stop()
                _say("内置 Redis 已停止 / embedded Redis stopped")
        finally:
            signal.signal(signal.SIGTERM, previous)


def _check_port_free(host: str, port: int) -> None:
    """Refuse (``BidroomError`` ``port_in_use``: one line naming the port, exit status 1) when
    ``host:port`` cannot be bound, before anything is started or migrated.

    Binds a throw-away socket the way uvicorn will (``SO_REUSEADDR``, so a port in TIME_WAIT
    still counts as free) and closes it at once. Port 0 (any free port) is not checked.
    """
    import errno
    import socket

    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BidroomError(f"cannot resolve the address to bind {host!r}: {exc.strerror} / "
                         f"无法解析监听地址", code="bad_address") from exc
    family, kind, proto, _, address = infos[0]
    probe = socket.socket(family, kind, proto)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
    except OSError as exc:
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise BidroomError(f"port {port} is already in use ({where}): stop what listens there "
                             f"or pass --port / 端口 {port} 已被占用", code="port_in_use") from None
        raise BidroomError(f"cannot bind port {port} ({where}): {exc.strerror or exc} / "
                         f"无法监听端口 {port}", code="port_unavailable") from None
    finally:
        probe.close()


def _export_settings(settings: Settings) -> None:
    """Put the effective settings in ``os.environ``: uvicorn's workers (separate processes
    calling ``create_app()``) read them with ``Settings.from_env()``. The SQLite default is
    not exported: every worker derives the same path from ``BIDROOM_DATA_DIR``."""
    for name, variable in ENV_VARIABLES.items():
        value = getattr(settings, name)
        if value is None:
            os.environ.pop(variable, None)
        elif isinstance(value, bool):
            os.environ[variable] = "1" if value else "0"
        elif isinstance(value, tuple):
            os.environ[variable] = ",".join(value)
        else:
            os.environ[variable] = str(value)


def _run_uvicorn(settings: Settings, log_level: str) -> int:
    import uvicorn

    from web.wsproto import PROTOCOL as WS_PROTOCOL

    loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "auto"
    try:
        uvicorn.run(
            "web.app:create_app",  # an import string: workers > 1 import it themselves
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            ws=WS_PROTOCOL,  # websockets-sansio plus the direct frame path (web.wsproto)
            ws_per_message_deflate=False,
            loop=loop,
            lifespan="on",
            log_level=log_level,
            timeout_graceful_shutdown=10,
            # the app decides whose X-Forwarded-For to believe (BIDROOM_TRUSTED_PROXIES,
            # web.client_address): uvicorn's default would trust any from 127.0.0.1
            proxy_headers=False,
        )
    except SystemExit as exc:  # uvicorn exits with 3 when the app fails to start
        return _exit_code(exc)
    return OK


# =================================================================================== demo


@dataclass
class DemoAccount:
    """One demo user and its token, as printed and written to demo-accounts.json."""

    role: str
    role_zh: str
    org_id: str
    org_name: str
    org_name_en: str
    user_id: str
    user_name: str
    token: str
    size_class: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class DemoAuction:
    id: str
    title: str
    title_en: str
    start_ms: int
    end_ms: int
    ceiling_fen: int


@dataclass
class DemoData:
    accounts: list[DemoAccount] = field(default_factory=list)
    auctions: list[DemoAuction] = field(default_factory=list)
    server_time_ms: int = 0


# (role, 中文角色, org kind, org zh, org en, size class, user name)
_DEMO_ORGS: tuple[tuple[str, str, str, str, str, str | None, str], ...] = (
    ("admin", "平台管理员", "platform", "政采竞价平台运营中心",
     "Procurement Platform Operations Centre", None, "平台管理员 / Platform admin"),
    ("purchaser", "采购人", "purchaser", "杭州市西湖区教育局",
     "Xihu District Education Bureau, Hangzhou", None, "张敏 / Zhang Min"),
    ("agency", "采购代理机构", "agency", "浙江公信招标代理有限公司",
     "Zhejiang Gongxin Tendering Agency Co., Ltd.", None, "李华 / Li Hua"),
    ("supervisor", "监督部门", "supervisor", "杭州市西湖区财政局",
     "Xihu District Finance Bureau, Hangzhou", None, "王芳 / Wang Fang"),
    ("supplier", "供应商", "supplier", "浙江华东信息技术股份有限公司",
     "Zhejiang Huadong Information Technology Co., Ltd.", "large", "陈刚 / Chen Gang"),
    ("supplier", "供应商", "supplier", "杭州钱江电脑科技有限公司",
     "Hangzhou Qianjiang Computer Technology Co., Ltd.", "medium", "刘洋 / Liu Yang"),
    ("supplier", "供应商", "supplier", "杭州西溪数码设备有限公司",
     "Hangzhou Xixi Digital Equipment Co., Ltd.", "small", "赵静 / Zhao Jing"),
    ("supplier", "供应商", "supplier", "杭州之江办公设备经营部",
     "Hangzhou Zhijiang Office Equipment Store", "micro", "孙磊 / Sun Lei"),
)
_SIZE_ZH = {"large": "大型", "medium": "中型", "small": "小型", "micro": "微型"}


def _cmd_demo(args: argparse.Namespace) -> int:
    settings = Settings.from_env(
        host=args.host, port=args.port, data_dir=args.data_dir or DEFAULT_DEMO_DIR
    )
    if settings.redis_url is not None or settings.database_url is not None:
        _say("演示总是使用内置 Redis 和 SQLite / the demo always uses the embedded Redis and "
             "SQLite: BIDROOM_REDIS_URL / BIDROOM_DATABASE_URL are ignored")
    # The demo is a real-time demo in its own data dir: never a real server, never a test clock.
    settings = dataclasses.replace(settings, redis_url=None, database_url=None, test_clock=False)
    _reset_demo_dir(settings.data_dir)

    def seed_and_announce(ready: Settings) -> None:
        assert ready.redis_url is not None
        data = asyncio.run(
            _seed_demo(ready, redis_url=ready.redis_url,
                       database_url=ready.resolved_database_url())
        )
        _write_demo_accounts(ready, data)
        print(_demo_banner(ready, data), flush=True)
        from web.demo_opening import OpeningTimes, announce  # the sealed-bid opening (issue #3)

        times = OpeningTimes(deadline=args.opening_deadline, window=args.opening_window,
                             objections=args.opening_objections)
        print(announce(ready, data.accounts, _base_url(ready), _self_command(), times),
              flush=True)

    return serve(settings, log_level=args.log_level, before_listening=seed_and_announce)


def _add_demo_opening_command(commands: Any) -> None:
    demo_opening = commands.add_parser(
        "demo-opening",
        help="在运行中的演示里重新开始开标演示 / restart just the demo's opening (running demo)",
        description=(
            "在正在运行的演示中新建一场开标演示（新的截止时间），其余账号、令牌和竞价不变。\n"
            "Create a fresh demo opening in the demo that is running on DATA_DIR, with a new "
            "deadline (the first one closes 15 minutes after `bidroom demo` starts): the "
            "accounts, tokens and auctions stay as they are. Prints the new walkthrough."
        ),
        formatter_class=_Formatter,
    )
    demo_opening.add_argument(
        "--data-dir", metavar="DIR", default=DEFAULT_DEMO_DIR,
        help=f"运行中演示的数据目录 / the running demo's data dir (default ./{DEFAULT_DEMO_DIR})",
    )
    _add_opening_times(demo_opening)
    demo_opening.set_defaults(handler=_cmd_demo_opening)


def _add_opening_times(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--opening-deadline", type=_minutes, default=15, metavar="MINUTES",
        help="开标演示的投标截止（=开标）距现在的分钟数 / minutes from now to the demo "
        "opening's deadline (= the opening; sign-in is open until then), default 15",
    )
    parser.add_argument(
        "--opening-window", type=_minutes, default=30, metavar="MINUTES",
        help="解密时长 / the decryption window after the deadline, minutes (default 30)",
    )
    parser.add_argument(
        "--opening-objections", type=_minutes, default=5, metavar="MINUTES",
        help="异议期 / the objection window after 唱标, minutes (default 5)",
    )


def _cmd_demo_opening(args: argparse.Namespace) -> int:
    from types import SimpleNamespace

    from bidroom.stores.embedded import EmbeddedRedis
    from web.demo_opening import OpeningTimes, announce

    data_dir = Path(args.data_dir)
    accounts_file = data_dir / DEMO_ACCOUNTS_FILE
    redis_url = EmbeddedRedis(data_dir / "redis").running_url() \
        if (data_dir / DEMO_MARKER).exists() else None
    if redis_url is None or not accounts_file.exists():
        _error(f"no demo is running on {data_dir}: start one with `{_self_command()} demo` "
               "(or pass its --data-dir) / 该目录没有运行中的演示")
        return FAILED
    doc = json.loads(accounts_file.read_text(encoding="utf-8"))
    accounts = [SimpleNamespace(role=a["role"], org_id=a["org_id"], org_name=a["org_name"],
                                user_id=a["user_id"], token=a["token"])
                for a in doc["accounts"]]
    settings = dataclasses.replace(Settings.from_env({}, data_dir=str(data_dir)),
                                   redis_url=redis_url, database_url=None)
    times = OpeningTimes(deadline=args.opening_deadline, window=args.opening_window,
                         objections=args.opening_objections)
    print(announce(settings, accounts, doc["base_url"], _self_command(), times), flush=True)
    return OK


def _reset_demo_dir(path: Path) -> None:
    """Stop the demo's embedded Redis, delete the directory and recreate it empty.

    Refuses a non-empty directory without the demo marker: ``--data-dir ./var`` must never
    wipe a real installation.
    """
    from bidroom.stores.embedded import EmbeddedRedis

    if path.exists():
        if not path.is_dir():
            raise ValidationError(f"--data-dir {path} is not a directory", code="invalid_setting")
        if any(path.iterdir()) and not (path / DEMO_MARKER).exists():
            raise ValidationError(
                f"{path} is not a Bidroom demo directory (no {DEMO_MARKER} in it) and the demo "
                f"deletes its directory; choose another --data-dir / 该目录不是演示目录，拒绝删除",
                code="invalid_setting",
            )
        if (path / "redis").is_dir():
            EmbeddedRedis(path / "redis").stop()
        shutil.rmtree(path)
    path.mkdir(parents=True, mode=0o700)
    (path / DEMO_MARKER).write_text(
        "Created by `bidroom demo`: this directory is deleted on the next demo run.\n",
        encoding="utf-8",
    )


async def _seed_demo(settings: Settings, *, redis_url: str, database_url: str) -> DemoData:
    """Create the demo's accounts and auctions through the registry, repository and executor."""
    from bidroom.auction.closer import AuctionCloser
    from bidroom.auction.executor import AuctionExecutor
    from bidroom.auction.rules import AuctionSettings, StepKind, validate_settings
    from bidroom.stores.redis import connect_redis, redis_time_ms
    from bidroom.stores.sql import AuctionRepository, make_engine, make_session_factory
    from market.auctions import open_auction
    from market.registry import OrgKind, Registry, Role, new_id

    redis = connect_redis(redis_url)
    engine = make_engine(database_url)
    try:
        registry = Registry(make_session_factory(engine))
        repository = AuctionRepository(make_session_factory(engine))
        executor = AuctionExecutor(redis, stream_maxlen=settings.stream_maxlen)

        async def now_ms() -> int:
            return await redis_time_ms(redis)

        closer = AuctionCloser(executor, repository, now_ms=now_ms)
        now = await now_ms()  # server time: the clock the Lua script decides with
        data = DemoData(server_time_ms=now)
        for role, role_zh, kind, org_zh, org_en, size, user_name in _DEMO_ORGS:
            org = await registry.create_organisation(
                org_zh, OrgKind(kind), name_en=org_en, size_class=size, now_ms=now
            )
            user = await registry.create_user(org.id, user_name, [Role(role)], now_ms=now)
            token, _ = await registry.issue_token(user.id, label="demo", now_ms=now)
            data.accounts.append(DemoAccount(role, role_zh, org.id, org_zh, org_en, user.id,
                                             user_name, token, size))
        by_role = {a.role: a for a in data.accounts}
        purchaser, agency = by_role["purchaser"], by_role["agency"]
        suppliers = [a.org_id for a in data.accounts if a.role == "supplier"]

        minute = 60_000
        plans = (
            # 50 desktop computers: starts now, ends in 10 minutes, anti-sniping 2 + 2 min ×5.
            ("台式计算机 50 台", "50 desktop computers",
             AuctionSettings(auction_id=new_id("auc"), ceiling_fen=25_000_000, start_ms=now,
                             end_ms=now + 10 * minute, step_kind=StepKind.AMOUNT,
                             step_value=50_000, budget_fen=25_000_000,
                             sniping_window_ms=2 * minute, extension_ms=2 * minute,
                             max_extensions=5)),
            # A4 paper: scheduled in an hour; a percentage step (0.5%).
            ("A4 复印纸 2000 箱", "2,000 boxes of A4 copy paper",
             AuctionSettings(auction_id=new_id("auc"), ceiling_fen=30_000_000,
                             start_ms=now + 60 * minute, end_ms=now + 90 * minute,
                             step_kind=StepKind.PERCENT, step_value=50, budget_fen=32_000_000,
                             sniping_window_ms=3 * minute, extension_ms=3 * minute,
                             max_extensions=3)),
        )
        for title, title_en, auction in plans:
            problems = validate_settings(auction)
            if problems:  # pragma: no cover - the demo's own settings are fixed
                raise ValidationError(f"demo auction settings: {problems}")
            await open_auction(
                executor, repository, closer, settings=auction, title=title,
                title_en=title_en, purchaser_org_id=purchaser.org_id,
                agency_org_id=agency.org_id, created_by_user_id=agency.user_id,
                actor_org_id=agency.org_id, invited=suppliers, now_ms=now,
                audit_details={"source": "bidroom demo"},
            )
            data.auctions.append(DemoAuction(auction.auction_id, title, title_en,
                                             auction.start_ms, auction.end_ms,
                                             auction.ceiling_fen))
        return data
    finally:
        await engine.dispose()
        try:
            await redis.aclose()
        except Exception:  # pragma: no cover - closing a client must not hide the real error
            pass


def _write_demo_accounts(settings: Settings, data: DemoData) -> Path:
    """DATA_DIR/demo-accounts.json (mode 0600: it holds tokens)."""
    base = _base_url(settings)
    doc = {
        "base_url": base,
        "openapi_url": f"{base}/openapi.json",
        "ws_url": f"{_ws_url(base)}",
        "server_time_ms": data.server_time_ms,
        "auctions": [dataclasses.asdict(a) for a in data.auctions],
        "accounts": [a.as_dict() for a in data.accounts],
    }
    path = settings.data_dir / DEMO_ACCOUNTS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(doc, out, ensure_ascii=False, indent=2)
        out.write("\n")
    return path


def _width(text: str) -> int:
    """Display width in a terminal: CJK characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def _clock(ms: int) -> str:
    """Beijing time, as every page shows it, whatever this machine's zone (UTC on a server)."""
    from bidroom.clock import beijing_time

    return beijing_time(ms)


def _demo_banner(settings: Settings, data: DemoData) -> str:
    from bidroom.clock import TIME_LABEL

    base = _base_url(settings)
    live, later = data.auctions[0], data.auctions[1]
    purchaser = next(a for a in data.accounts if a.role == "purchaser")
    supplier1 = next(a for a in data.accounts if a.role == "supplier")
    cmd = _self_command()
    accounts_file = settings.data_dir / DEMO_ACCOUNTS_FILE
    rule = "=" * 100
    lines = [
        "",
        rule,
        "Bidroom 演示 / demo",
        rule,
        f"  浏览器 / open in a browser: {base}/app/  (选择演示账号 / pick a demo account)",
        f"  服务地址 / server:          {base}",
        f"  接口文档 / OpenAPI:         {base}/openapi.json",
        f"  WebSocket:                  {_ws_url(base)}",
        f"  平台公钥 / platform key:    {base}/api/platform-key",
        f"  时间 / times:               {TIME_LABEL}, 与页面一致 / as the pages show them; "
        f"now {_clock(data.server_time_ms)}",
        "",
        "竞价 / auctions:",
        f"  {live.id}  {live.title} / {live.title_en}",
        f"      现在开始，{_clock(live.end_ms)} 结束（可延时）/ open now until "
        f"{_clock(live.end_ms)} (anti-sniping may extend it); 最高限价 ceiling "
        f"{_yuan(live.ceiling_fen)}, 降价幅度 step {_yuan(50_000)}",
        f"  {later.id}  {later.title} / {later.title_en}",
        f"      {_clock(later.start_ms)} 开始 / starts at {_clock(later.start_ms)} "
        f"(in 1 hour); 最高限价 ceiling {_yuan(later.ceiling_fen)}",
        "",
        "谁是谁（令牌仅供演示）/ who is who (demo tokens):",
    ]
    role_w = max(_width(f"{a.role_zh} {a.role}") for a in data.accounts) + 2
    org_w = max(max(_width(a.org_name), _width(a.org_name_en)) for a in data.accounts) + 2
    lines.append("  " + _pad("角色 role", role_w) + _pad("机构 organisation", org_w)
                 + "令牌 token")
    for account in data.accounts:
        role = f"{account.role_zh} {account.role}"
        size = ""
        if account.size_class is not None:
            size = f"  ({_SIZE_ZH[account.size_class]} {account.size_class})"
        lines.append("  " + _pad(role, role_w) + _pad(account.org_name, org_w) + account.token)
        lines.append("  " + _pad("", role_w) + account.org_name_en + size)
    lines += [
        f"  （同一内容见 / the same as JSON: {accounts_file}）",
        "",
        "试一试 / try it:",
        "  # 采购人查看竞价列表 / the purchaser lists the auctions",
        f"  curl -s -H 'Authorization: Bearer {purchaser.token}' {base}/api/auctions",
        "",
        "  # 供应商 1 出价（回执保存到 bid.json）/ supplier 1 bids (the response, with its "
        "receipt, goes to bid.json)",
        f"  curl -s -X POST -H 'Authorization: Bearer {supplier1.token}' \\",
        "       -H 'Content-Type: application/json' \\",
        f"       -d '{{\"bid_id\":\"demo-1\",\"price_fen\":{live.ceiling_fen - 50_000}}}' \\",
        f"       -o bid.json {base}/api/auctions/{live.id}/bids",
        "",
        "  # 离线验证回执签名 / verify the receipt's signature offline",
        f"  {cmd} platform-key --data-dir {settings.data_dir} > platform.pub",
        f"  {cmd} verify bid.json --public-key platform.pub",
        "",
        "按 Ctrl-C 停止 / press Ctrl-C to stop",
        rule,
    ]
    return "\n".join(lines)


# ================================================================================ receipt


_VERIFY_DESCRIPTION = (
    "离线验证平台签名的文件：出价回执、投标文件回执、开标记录……（从文件中读取其类型）。\n"
    "Verify a document the platform signed, offline: a bid receipt, a sealed bid's receipt, "
    "the opening record, every kind the platform signs (bidroom.documents); the kind is read "
    "from the document. DOC.json is the document as received, or a whole answer that holds it "
    "under \"receipt\" (a bid or upload answer saved by curl -o). Checked against the "
    "platform's public key (PEM) or a certificate of it. Exit status 0: valid, and one line "
    "says what the document says; 1: invalid or of an unknown kind (the reason is printed)."
)


def _add_verify_command(commands: Any) -> None:
    """``bidroom verify`` and its alias ``bidroom receipt verify`` (the same arguments)."""

    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("document", metavar="DOC.json",
                            help="签名文件 / the signed document (JSON)")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument(
            "--public-key",
            metavar="FILE",
            help="平台公钥 PEM 文件 / the platform public key (PEM), see `bidroom platform-key`",
        )
        source.add_argument(
            "--certificate",
            metavar="FILE",
            help="平台证书 / a certificate (PEM or DER) of the platform's Ed25519 key; only "
            "its key is used",
        )
        source.add_argument(
            "--server",
            metavar="URL",
            help="从服务器获取公钥 / fetch the public key from URL/api/platform-key first",
        )
        parser.set_defaults(handler=_cmd_verify)

    verify = commands.add_parser(
        "verify",
        help="离线验证平台签名的文件 / verify any platform-signed document offline",
        description=_VERIFY_DESCRIPTION,
        formatter_class=_Formatter,
    )
    arguments(verify)
    receipt = commands.add_parser(
        "receipt", help="出价回执 / receipts (`receipt verify` = `verify`)",
        description="出价回执 / receipts"
    )
    receipt_commands = receipt.add_subparsers(dest="receipt_command", metavar="ACTION",
                                              required=True)
    alias = receipt_commands.add_parser(
        "verify",
        help="同 bidroom verify / the same as `bidroom verify`",
        description=_VERIFY_DESCRIPTION,
        formatter_class=_Formatter,
    )
    arguments(alias)


def _cmd_verify(args: argparse.Namespace) -> int:
    from bidroom.documents import verify_document_file

    with tempfile.TemporaryDirectory(prefix="bidroom-verify-") as tmp:
        if args.server:
            key_path = Path(tmp) / "platform.pub"
            key_path.write_text(_fetch_public_key(args.server), encoding="utf-8")
        else:
            key_path = Path(args.public_key or args.certificate)
        try:
            verified = verify_document_file(Path(args.document), key_path)
        except ValidationError as exc:
            if exc.code == "unreadable_file":
                _error(exc.message)
            else:
                print(f"无效 / invalid: {exc.message}", file=sys.stderr)
            return FAILED
    print(f"有效 / valid: {verified.summary()}")
    return OK


def _fetch_public_key(server: str) -> str:
    """GET SERVER/api/platform-key: a PEM body, or JSON carrying the PEM."""
    parts = urllib.parse.urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(f"--server: expected an http(s):// URL, got {server!r}",
                              code="invalid_setting")
    url = server.rstrip("/") + "/api/platform-key"
    request = urllib.request.Request(
        url, headers={"Accept": "application/x-pem-file, application/json;q=0.9"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body: str = response.read().decode("utf-8")
    except (urllib.error.URLError, OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"cannot fetch the platform key from {url}: {exc}",
                         code="unreachable") from exc
    if body.lstrip().startswith("-----BEGIN"):
        return body
    try:
        doc = json.loads(body)
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict):
        for name in ("public_key_pem", "pem", "public_key"):
            value = doc.get(name)
            if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
                return value
    raise StoreError(f"{url} did not answer with a PEM public key", code="unreachable")


# ================================================================== platform-key, db, admin


def _cmd_platform_key(args: argparse.Namespace) -> int:
    from bidroom.receipts import PlatformKey

    settings = Settings.from_env(data_dir=args.data_dir)
    path = settings.data_dir / PLATFORM_KEY_FILE
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        _error(f"no platform key at {path}: start the server once (it creates the key) or pass "
               "the server's --data-dir / 未找到平台密钥")
        return FAILED
    key = PlatformKey.from_pem(pem)
    sys.stdout.write(key.public_key_pem())
    print(f"key_id {key.key_id}", file=sys.stderr)
    return OK


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    from web.db import head_revision, upgrade_database_sync

    settings = Settings.from_env(data_dir=args.data_dir, database_url=args.database_url)
    url = settings.resolved_database_url()
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    upgrade_database_sync(url)
    print(f"{_redact_database_url(url)}: 已迁移到 / at revision {head_revision()}")
    return OK


def _cmd_db_portal_sql(args: argparse.Namespace) -> int:
    from web.portal_sql import portal_statements

    settings = Settings.from_env(data_dir=args.data_dir, database_url=args.database_url)
    print(json.dumps(portal_statements(settings.resolved_database_url(),
                                       json.loads(args.queries)), ensure_ascii=False))
    return OK


def _cmd_admin_bootstrap(args: argparse.Namespace) -> int:
    settings = Settings.from_env(data_dir=args.data_dir, database_url=args.database_url)
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    result = asyncio.run(
        _bootstrap_admin(settings.resolved_database_url(), org_name=args.org_name,
                         org_name_en=args.org_name_en, user_name=args.name)
    )
    print(json.dumps(result, ensure_ascii=False))
    return OK


async def _bootstrap_admin(
    database_url: str, *, org_name: str, org_name_en: str, user_name: str
) -> dict[str, Any]:
    """Reuse the first enabled admin of a platform organisation, or create both; issue a token."""
    from bidroom.stores.sql import make_engine, make_session_factory
    from market.registry import OrgKind, Registry, Role
    from web.db import upgrade_database

    await upgrade_database(database_url)
    engine = make_engine(database_url)
    try:
        registry = Registry(make_session_factory(engine))
        now = int(time.time() * 1000)
        platforms = await registry.list_organisations(OrgKind.PLATFORM)
        admin = None
        for org in platforms:
            for user in await registry.list_users(org.id):
                if Role.ADMIN in user.roles and not user.disabled:
                    admin = user
                    break
            if admin is not None:
                break
        created = admin is None
        if admin is None:
            org = platforms[0] if platforms else await registry.create_organisation(
                org_name, OrgKind.PLATFORM, name_en=org_name_en, now_ms=now
            )
            admin = await registry.create_user(org.id, user_name, [Role.ADMIN], now_ms=now)
        token, _ = await registry.issue_token(admin.id, label="bootstrap", now_ms=now)
        return {"user_id": admin.id, "org_id": admin.org_id, "token": token, "created": created}
    finally:
        await engine.dispose()


# ============================================================== ca, bid (sealed bid opening)


# RFC 5280 CRLReason names (x509.ReasonFlags values), removeFromCRL excepted.
_REVOCATION_REASONS = (
    "unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
    "cessationOfOperation", "certificateHold", "privilegeWithdrawn", "aACompromise",
)


def _add_ca_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ca-dir",
        metavar="DIR",
        help="CA 目录 / the platform CA directory (default DATA_DIR/ca)",
    )
    _add_data_dir(parser)


def _ca_dir(args: argparse.Namespace) -> Path:
    if args.ca_dir:
        return Path(args.ca_dir).expanduser().absolute()
    return Settings.from_env(data_dir=args.data_dir).data_dir / "ca"


def _add_ca_commands(commands: Any) -> None:
    """``bidroom ca …``: the platform CA of sealed remote bid openings (不见面开标)."""
    ca = commands.add_parser(
        "ca",
        help="平台CA：签发供应商双证书 / platform CA: dual certificates for suppliers",
        description=(
            "平台CA（内置/演示用；正式部署导入持牌CA的根证书）：签发签名证书和加密证书。\n"
            "The platform CA (embedded/demo use; real deployments trust licensed CAs): issues "
            "each supplier a signing and an encryption certificate, revokes them, keeps the CRL."
        ),
        formatter_class=_Formatter,
    )
    ca_commands = ca.add_subparsers(dest="ca_command", metavar="ACTION", required=True)
    init = ca_commands.add_parser(
        "init",
        help="创建CA / create the CA (never overwrites)",
        description="创建平台CA根证书和密钥 / create the CA root key and certificate in the CA "
        "directory (ca-key.pem 0600, ca-cert.pem, crl.pem); refuses to overwrite one.",
        formatter_class=_Formatter,
    )
    _add_ca_dir(init)
    init.add_argument("--name", default="Bidroom Platform CA 平台CA",
                      help="CA 名称 / the CA's name (default 'Bidroom Platform CA 平台CA')")
    init.add_argument("--key-type", choices=("ec-p256", "rsa-3072"), default="ec-p256",
                      help="根密钥类型 / root key type (default ec-p256)")
    init.set_defaults(handler=_cmd_ca_init)

    request = ca_commands.add_parser(
        "request",
        help="供应商端：生成密钥和证书请求 / supplier side: make keys and CSRs",
        description=(
            "在供应商自己的电脑上运行：生成签名密钥和加密密钥（私钥 0600，不离开本机）以及两个"
            "证书请求（PKCS#10）sign.csr、enc.csr；只把两个 .csr 文件交给平台CA。\n"
            "Run on the supplier's own machine: make the signing and the encryption key "
            "(sign-key.pem, enc-key.pem, mode 0600; they never leave this machine) and one "
            "PKCS#10 certificate request for each (sign.csr, enc.csr). Send only the two .csr "
            "files to the platform CA (`bidroom ca sign-csr`)."
        ),
        formatter_class=_Formatter,
    )
    request.add_argument("--org-id", required=True,
                         help="本机构在平台的编号 / your organisation id on the platform (org_…)")
    request.add_argument("--name", required=True, help="机构名称 / organisation name")
    request.add_argument("--out", required=True, metavar="DIR", help="输出目录 / output directory")
    request.add_argument("--signing-key-type", choices=("ec-p256", "rsa-2048"),
                         default="ec-p256",
                         help="签名密钥类型 / signing key type (default ec-p256)")
    request.set_defaults(handler=_cmd_ca_request)

    sign_csr = ca_commands.add_parser(
        "sign-csr",
        help="CA：签发供应商证书请求 / CA: sign a supplier's certificate requests",
        description=(
            "平台CA签发供应商的证书请求（`bidroom ca request` 生成，或其他工具生成的 PKCS#10）。"
            "--org-id 必须是平台已登记的机构；证书的机构名称取自登记信息。\n"
            "Sign a supplier's PKCS#10 requests (from `bidroom ca request` or any other tool, "
            "e.g. openssl req): each request's signature is checked, --org-id must name an "
            "organisation registered on the platform (the database of --data-dir / "
            "--database-url), and the certificate carries that organisation's registered name. "
            "The usage (signing or encryption) comes from the key usage the request asks for, "
            "or --usage. Writes sign-cert.pem and/or enc-cert.pem to --out."
        ),
        formatter_class=_Formatter,
    )
    _add_ca_dir(sign_csr)
    _add_database_url(sign_csr)
    sign_csr.add_argument("csr", nargs="+", metavar="REQUEST.csr",
                          help="证书请求（PEM 或 DER）/ the request(s), PEM or DER")
    sign_csr.add_argument("--org-id", required=True,
                          help="已登记机构编号 / a registered organisation id (org_…)")
    sign_csr.add_argument("--usage", choices=("signing", "encryption"),
                          help="用途（请求未注明时）/ the usage, when a request names none "
                          "(only with one request)")
    sign_csr.add_argument("--out", required=True, metavar="DIR", help="输出目录 / output directory")
    sign_csr.add_argument("--valid-days", type=int, default=365,
                          help="有效期（天）/ validity in days (default 365)")
    sign_csr.set_defaults(handler=_cmd_ca_sign_csr)

    issue = ca_commands.add_parser(
        "issue",
        help="仅演示：在本机生成供应商私钥并签发 / demo only: make a supplier's keys here, issue",
        description=(
            "仅用于演示和测试：在运营方这台电脑上生成供应商的私钥并签发签名证书和加密证书，写入 "
            "--out：sign-cert.pem, sign-key.pem, enc-cert.pem, enc-key.pem。正式使用时供应商"
            "自己生成密钥（`bidroom ca request`），CA 只签发请求（`bidroom ca sign-csr`）。\n"
            "Demo and tests only: generate the supplier's private keys here, on the operator's "
            "machine, and issue its dual certificates into --out (keys mode 0600). For real "
            "suppliers use `bidroom ca request` on the supplier's machine and `bidroom ca "
            "sign-csr` here: then the operator never holds a supplier key. --org-id must name "
            "a registered organisation."
        ),
        formatter_class=_Formatter,
    )
    _add_ca_dir(issue)
    _add_database_url(issue)
    issue.add_argument("--org-id", required=True,
                       help="已登记机构编号 / a registered organisation id (org_…)")
    issue.add_argument("--name",
                       help="机构名称（须与登记一致）/ organisation name (default and must be: the "
                       "registered name)")
    issue.add_argument("--out", required=True, metavar="DIR", help="输出目录 / output directory")
    issue.add_argument("--valid-days", type=int, default=365,
                       help="有效期（天）/ validity in days (default 365)")
    issue.add_argument("--signing-key-type", choices=("ec-p256", "rsa-2048"), default="ec-p256",
                       help="签名密钥类型 / signing key type (default ec-p256)")
    issue.set_defaults(handler=_cmd_ca_issue)

    revoke = ca_commands.add_parser(
        "revoke",
        help="吊销证书 / revoke a certificate and re-sign the CRL",
        description="吊销证书并更新 CRL / revoke a certificate (serial in hex, as `ca list` "
        "shows it) and re-sign the CRL.",
        formatter_class=_Formatter,
    )
    _add_ca_dir(revoke)
    revoke.add_argument("serial", help="证书序列号（十六进制）/ certificate serial number, hex")
    revoke.add_argument(
        "--reason",
        choices=_REVOCATION_REASONS,
        default="unspecified",
        help="吊销原因 / reason (default unspecified)",
    )
    revoke.set_defaults(handler=_cmd_ca_revoke)

    listing = ca_commands.add_parser(
        "list",
        help="列出已签发证书 / list issued certificates",
        description="列出已签发的证书 / list the issued certificates (serial, usage, "
        "organisation, validity, revocation).",
        formatter_class=_Formatter,
    )
    _add_ca_dir(listing)
    listing.add_argument("--json", action="store_true", help="JSON 输出 / print JSON")
    listing.set_defaults(handler=_cmd_ca_list)

    import_root = ca_commands.add_parser(
        "import-root",
        help="导入持牌CA根证书 / trust a licensed CA's root certificate",
        description=(
            "导入外部（持牌）CA 的根证书到 DATA_DIR/ca/roots（须为自签名 CA 证书），可同时导入其 "
            "CRL；服务器每次校验时重新读取。\n"
            "Copy an external (licensed) CA's root certificate into DATA_DIR/ca/roots after "
            "checking it is a self-signed CA certificate (basicConstraints cA=TRUE); with --crl, "
            "also that CA's CRL (checked against the root; a newer CRL replaces the older). The "
            "server reads the directory afresh for every check."
        ),
        formatter_class=_Formatter,
    )
    _add_data_dir(import_root)
    import_root.add_argument("root", nargs="?", metavar="ROOT.pem",
                             help="根证书（PEM 或 DER）/ the root certificate (PEM or DER)")
    import_root.add_argument("--crl", metavar="FILE",
                             help="该CA的CRL / a CRL of that CA (PEM or DER)")
    import_root.set_defaults(handler=_cmd_ca_import_root)


def _now() -> datetime:
    return datetime.now(UTC)


def _cmd_ca_init(args: argparse.Namespace) -> int:
    from bidroom.opening.ca import PlatformCA

    directory = _ca_dir(args)
    ca = PlatformCA.init(directory, name=args.name, now=_now(), key_type=args.key_type)
    cert = ca.certificate
    print(f"已创建CA / CA created in {directory}")
    print(f"  subject  {cert.subject.rfc4514_string()}")
    print(f"  serial   {cert.serial_number:x}")
    print(f"  valid    {cert.not_valid_before_utc:%Y-%m-%d} → {cert.not_valid_after_utc:%Y-%m-%d}")
    print(f"  root     {directory / 'ca-cert.pem'} (trust this certificate)")
    return OK


def _registered_organisation(args: argparse.Namespace) -> tuple[str, str]:
    """(id, name) of the organisation ``--org-id`` names in the platform's registry (the
    database of ``--data-dir`` / ``--database-url``); ``unknown_organisation`` otherwise."""
    from bidroom.errors import NotFoundError
    from bidroom.stores.sql import make_engine, make_session_factory
    from market.registry import Registry

    settings = Settings.from_env(data_dir=args.data_dir, database_url=args.database_url)
    url = settings.resolved_database_url()
    if settings.database_url is None and not settings.sqlite_path.exists():
        raise NotFoundError(
            f"no platform database at {settings.sqlite_path} to check --org-id against: pass "
            "the server's --data-dir or --database-url / 未找到平台数据库",
            code="no_database")

    async def look_up() -> Any:
        engine = make_engine(url)
        try:
            return await Registry(make_session_factory(engine)).get_organisation(args.org_id)
        finally:
            await engine.dispose()

    org = asyncio.run(look_up())
    if org is None:
        raise NotFoundError(
            f"--org-id {args.org_id}: no such organisation is registered on the platform "
            "(create it first: POST /api/organisations) / 机构未登记", code="unknown_organisation")
    return str(org.id), str(org.name)


def _cmd_ca_request(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization

    from bidroom.errors import ConflictError
    from bidroom.opening.ca import generate_key, make_csr, private_key_pem

    out = Path(args.out).expanduser()
    files = ("sign-key.pem", "enc-key.pem", "sign.csr", "enc.csr")
    existing = [str(out / name) for name in files if (out / name).exists()]
    if existing:
        raise ConflictError(f"refusing to overwrite {', '.join(existing)}", code="file_exists")
    sign_key = generate_key(args.signing_key_type)
    enc_key = generate_key("rsa-2048")
    pem = serialization.Encoding.PEM
    contents = (
        (private_key_pem(sign_key), 0o600),
        (private_key_pem(enc_key), 0o600),
        (make_csr(sign_key, org_id=args.org_id, name=args.name, usage="signing")
         .public_bytes(pem), 0o644),
        (make_csr(enc_key, org_id=args.org_id, name=args.name, usage="encryption")
         .public_bytes(pem), 0o644),
    )
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, (data, mode) in zip(files, contents, strict=True):
        fd = os.open(out / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as target:
            target.write(data)
        print(f"  {out / name}")
    print("私钥留在本机；只把 sign.csr 和 enc.csr 交给平台CA / keep the keys on this machine; "
          "send only sign.csr and enc.csr to the platform CA (bidroom ca sign-csr)")
    return OK


def _cmd_ca_sign_csr(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization

    from bidroom.errors import ConflictError
    from bidroom.opening.ca import PlatformCA, certificate_usages, load_csr

    if args.usage and len(args.csr) != 1:
        _error("--usage goes with one request only")
        return USAGE
    requests = [load_csr(_read_file(path)) for path in args.csr]  # all readable, or nothing
    org_id, name = _registered_organisation(args)
    ca = PlatformCA.load(_ca_dir(args))
    out = Path(args.out).expanduser()
    existing = [str(out / f) for f in ("sign-cert.pem", "enc-cert.pem") if (out / f).exists()]
    if existing:  # checked before signing: an issued certificate is never left undelivered
        raise ConflictError(f"refusing to overwrite {', '.join(existing)}", code="file_exists")
    certificates = [ca.sign_csr(csr, org_id=org_id, name=name, now=_now(), usage=args.usage,
                                valid_days=args.valid_days) for csr in requests]
    out.mkdir(parents=True, exist_ok=True)
    print(f"已签发 / issued for {name} ({org_id}):")
    for cert in certificates:
        usage = "signing" if "signing" in certificate_usages(cert) else "encryption"
        target = out / ("sign-cert.pem" if usage == "signing" else "enc-cert.pem")
        if target.exists():
            raise ConflictError(f"refusing to overwrite {target}", code="file_exists")
        target.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        print(f"  {usage:<10}  serial {cert.serial_number:x}  {target}")
    return OK


def _cmd_ca_issue(args: argparse.Namespace) -> int:
    from bidroom.opening.ca import PlatformCA

    org_id, registered = _registered_organisation(args)
    if args.name is not None and args.name != registered:
        raise ValidationError(
            f"--name {args.name!r} is not the registered name of {org_id} ({registered!r})",
            code="org_name_mismatch")
    ca = PlatformCA.load(_ca_dir(args))
    pair = ca.issue_dual(org_id, registered, now=_now(), valid_days=args.valid_days,
                         signing_key_type=args.signing_key_type)
    paths = pair.write(Path(args.out))
    print(f"已签发（演示：私钥在本机生成）/ issued for {registered} ({org_id}) — demo: the "
          "private keys were made on this machine:")
    print(f"  签名证书 signing     serial {pair.sign_cert.serial_number:x}")
    print(f"  加密证书 encryption  serial {pair.enc_cert.serial_number:x}")
    for path in paths:
        print(f"  {path}")
    print("私钥仅交给供应商 / hand the private keys to the supplier only")
    return OK


def _cmd_ca_revoke(args: argparse.Namespace) -> int:
    from cryptography import x509

    from bidroom.opening.ca import PlatformCA

    text = args.serial.strip().lower().removeprefix("0x").replace(":", "")
    try:
        serial = int(text, 16)
    except ValueError:
        _error(f"not a hexadecimal serial number: {args.serial!r}")
        return USAGE
    ca = PlatformCA.load(_ca_dir(args))
    crl = ca.revoke(serial, now=_now(), reason=x509.ReasonFlags(args.reason))
    print(f"已吊销 / revoked {serial:x} ({args.reason}); CRL now lists "
          f"{len(list(crl))} certificate(s): {ca.directory / 'crl.pem'}")
    return OK


def _imported_roots(ca_dir: Path) -> list[tuple[Path, Any]]:
    """The root certificates in ``ca_dir/roots`` (as the server loads them), by file name."""
    from bidroom.opening.ca import load_certificate

    roots = ca_dir / "roots"
    if not roots.is_dir():
        return []
    return [(path, load_certificate(path.read_bytes())) for path in sorted(roots.iterdir())
            if path.name.endswith((".pem", ".crt", ".cer"))
            and not path.name.endswith((".crl", ".crl.pem"))]


def _cmd_ca_list(args: argparse.Namespace) -> int:
    from bidroom.opening.ca import PlatformCA, certificate_fingerprint

    ca_dir = _ca_dir(args)
    records = PlatformCA.load(ca_dir).list_issued()
    roots = _imported_roots(ca_dir)
    if args.json:
        # Issued certificates, then imported roots (``usage`` "root", ``file`` set).
        print(json.dumps([
            {
                "serial": f"{r.serial:x}", "org_id": r.org_id, "name": r.name, "usage": r.usage,
                "not_before": r.not_before.isoformat(), "not_after": r.not_after.isoformat(),
                "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
                "revocation_reason": r.revocation_reason,
            }
            for r in records
        ] + [
            {
                "serial": f"{c.serial_number:x}", "org_id": None,
                "name": c.subject.rfc4514_string(), "usage": "root",
                "not_before": c.not_valid_before_utc.isoformat(),
                "not_after": c.not_valid_after_utc.isoformat(),
                "revoked_at": None, "revocation_reason": None, "file": str(path),
                "fingerprint": certificate_fingerprint(c),
            }
            for path, c in roots
        ], ensure_ascii=False, indent=2))
        return OK
    if not records:
        print("尚未签发证书 / no certificates issued yet")
    for r in records:
        state = f"吊销 revoked {r.revoked_at:%Y-%m-%d}" if r.revoked_at else "有效 valid"
        print(f"{r.serial:x}  {r.usage or '?':<10}  {r.org_id or '-'}  {r.name}  "
              f"→ {r.not_after:%Y-%m-%d}  {state}")
    if roots:
        print("导入的根证书 / imported roots:")
    for path, c in roots:
        print(f"  {path.name}  {c.subject.rfc4514_string()}  → {c.not_valid_after_utc:%Y-%m-%d}  "
              f"sha256 {certificate_fingerprint(c)}")
    return OK


def _cmd_ca_import_root(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization

    from bidroom.opening.ca import TrustStore, certificate_fingerprint

    if not args.root and not args.crl:
        _error("give ROOT.pem, --crl FILE or both")
        return USAGE
    roots = Settings.from_env(data_dir=args.data_dir).data_dir / "ca" / "roots"
    trust = TrustStore(cert for _, cert in _imported_roots(roots.parent))
    if args.root:
        cert = trust.import_root(Path(args.root).expanduser().read_bytes())  # checks: a CA
        fingerprint = certificate_fingerprint(cert)
        target = roots / f"{fingerprint[:16]}.pem"
        roots.mkdir(parents=True, exist_ok=True)
        if target.exists():
            print(f"已导入 / already imported: {target}")
        else:
            target.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            print(f"已导入根证书 / imported root {cert.subject.rfc4514_string()}")
            print(f"  sha256   {fingerprint}")
            print(f"  file     {target}")
    if args.crl:
        raw = Path(args.crl).expanduser().read_bytes()
        trust.add_crl(raw)  # checks: a CRL, signed by the root it names (if imported)
        crl = trust.crls[-1]
        issuer = next((c for c in trust.roots if c.subject == crl.issuer), None)
        if issuer is None:
            _error(f"the CRL's issuer {crl.issuer.rfc4514_string()} is not an imported root")
            return FAILED
        target = roots / f"{certificate_fingerprint(issuer)[:16]}.crl.pem"
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        os.replace(tmp, target)
        print(f"已导入CRL / imported the CRL of {crl.issuer.rfc4514_string()} "
              f"({len(list(crl))} revoked): {target}")
    return OK


def _add_bid_commands(commands: Any) -> None:
    """``bidroom bid …``: the supplier's side of a sealed bid."""
    bid = commands.add_parser(
        "bid",
        help="投标文件加密、解密 / seal a bid, unwrap its key, open it locally",
        description=(
            "供应商端：制作、签名并加密投标文件；开标时用加密证书私钥解出内容密钥。\n"
            "The supplier's side of a sealed remote opening: build, sign and seal the bid "
            "package; at the opening, unwrap the content key with the encryption key."
        ),
        formatter_class=_Formatter,
    )
    bid_commands = bid.add_subparsers(dest="bid_command", metavar="ACTION", required=True)
    seal = bid_commands.add_parser(
        "seal",
        help="制作并加密投标文件 / build, sign and seal a bid",
        description=(
            "用开标一览表和投标文件制作投标包，用签名证书签名，用加密证书（及备用开标证书）"
            "加密（CMS AuthEnvelopedData, AES-256-GCM, RSA-OAEP）。打印密文的 SHA-256。\n"
            "Build the bid package from the opening form and documents, sign it with the "
            "signing certificate and seal it to the encryption certificate (and the backup "
            "opening certificate, if any). Prints the sealed file's SHA-256."
        ),
        formatter_class=_Formatter,
    )
    seal.add_argument("--form", required=True, metavar="FORM.json",
                      help="开标一览表 / the opening form (JSON; total_price_fen in fen)")
    seal.add_argument("--document", action="append", default=[], metavar="FILE",
                      help="投标文件 / a bid document (repeat for several)")
    seal.add_argument("--sign-cert", required=True, metavar="PEM", help="签名证书 / signing cert")
    seal.add_argument("--sign-key", required=True, metavar="PEM", help="签名私钥 / signing key")
    seal.add_argument("--enc-cert", required=True, metavar="PEM",
                      help="加密证书 / encryption certificate")
    seal.add_argument("--backup-cert", metavar="PEM",
                      help="备用开标证书 / the backup opening key's certificate")
    seal.add_argument("--out", required=True, metavar="FILE", help="输出 / the sealed file")
    seal.set_defaults(handler=_cmd_bid_seal)

    unwrap = bid_commands.add_parser(
        "unwrap-key",
        help="解出内容密钥 / unwrap the content key (at the opening)",
        description=(
            "开标解密时：用加密证书私钥解出内容密钥（十六进制），提交给开标系统。\n"
            "At the opening: unwrap the envelope's content key with the encryption private "
            "key and print it in hex — what the supplier submits in the decryption window."
        ),
        formatter_class=_Formatter,
    )
    unwrap.add_argument("--envelope", required=True, metavar="FILE", help="密文 / sealed file")
    unwrap.add_argument("--enc-cert", required=True, metavar="PEM",
                        help="加密证书 / encryption certificate")
    unwrap.add_argument("--enc-key", required=True, metavar="PEM",
                        help="加密私钥 / encryption private key")
    unwrap.set_defaults(handler=_cmd_bid_unwrap_key)

    opening = bid_commands.add_parser(
        "open",
        help="本地解密检查 / decrypt and check a sealed bid locally",
        description=(
            "用内容密钥解密、验证签名、检查开标一览表。\n"
            "Decrypt a sealed bid with its content key, verify the signature and check the "
            "package; with --ca-cert the signer certificate is verified too (now)."
        ),
        formatter_class=_Formatter,
    )
    opening.add_argument("--envelope", required=True, metavar="FILE", help="密文 / sealed file")
    opening.add_argument("--key-hex", required=True, metavar="HEX",
                         help="内容密钥（十六进制）/ the content key in hex")
    opening.add_argument("--out", required=True, metavar="DIR", help="输出目录 / output directory")
    opening.add_argument("--ca-cert", action="append", default=[], metavar="PEM",
                         help="信任的CA根证书 / a trusted CA root (repeatable)")
    opening.add_argument("--crl", action="append", default=[], metavar="FILE",
                         help="CRL (PEM/DER, repeatable)")
    opening.set_defaults(handler=_cmd_bid_open)


def _cmd_bid_seal(args: argparse.Namespace) -> int:
    from bidroom.opening.client import seal_bid_files

    result = seal_bid_files(
        form=Path(args.form),
        documents=[Path(p) for p in args.document],
        sign_cert=Path(args.sign_cert),
        sign_key=Path(args.sign_key),
        enc_cert=Path(args.enc_cert),
        backup_cert=Path(args.backup_cert) if args.backup_cert else None,
        out=Path(args.out),
    )
    print(f"sha256 {result.sha256}")
    print(f"已加密 / sealed: {args.out} ({result.size} bytes)", file=sys.stderr)
    return OK


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}",
                              code="unreadable_file") from exc


def _cmd_bid_unwrap_key(args: argparse.Namespace) -> int:
    from bidroom.opening.client import content_key_for

    key = content_key_for(Path(args.envelope), _read_file(args.enc_cert),
                          _read_file(args.enc_key))
    print(key.hex())
    return OK


def _cmd_bid_open(args: argparse.Namespace) -> int:
    from bidroom.money import format_yuan
    from bidroom.opening.ca import TrustStore, load_certificate
    from bidroom.opening.envelope import open_envelope

    try:
        key = bytes.fromhex(args.key_hex.strip())
    except ValueError:
        _error("--key-hex: not hexadecimal")
        return USAGE
    trust: TrustStore | None = None
    if args.ca_cert:
        trust = TrustStore([load_certificate(_read_file(p)) for p in args.ca_cert])
        for crl in args.crl:
            trust.add_crl(_read_file(crl))
    opened = open_envelope(Path(args.envelope), key, Path(args.out), trust=trust, at=_now())
    cert = opened.signer_certificate
    signer = opened.signer
    if signer is not None:
        print(f"签名有效 / signature valid: {signer.name} ({signer.org_id}), "
              f"certificate {signer.serial:x} verified")
    else:
        print(f"签名有效 / signature valid: {cert.subject.rfc4514_string()} "
              "(certificate not checked against a CA: pass --ca-cert)")
    if opened.signing_time is not None:
        from bidroom.clock import TIME_LABEL, beijing_time

        signed_ms = int(opened.signing_time.timestamp() * 1000)
        print(f"签名时间 / signing time: {beijing_time(signed_ms)} {TIME_LABEL}")
    form = opened.form
    print(f"投标总价 / total price: {form['total_price_fen']} fen "
          f"({format_yuan(form['total_price_fen'])}); delivery {form['delivery_days']} days; "
          f"warranty {form['warranty_months']} months")
    for item in form["items"]:
        print(f"  {item['name']}: {item['value']}")
    print(f"文件 / documents: {', '.join(opened.documents) or '-'}")
    print(f"投标包 / package: {opened.package_path} (sha256 {opened.package_sha256})")
    return OK


# ========================================================================= backup, restore


def _add_stores(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        type=_setting_type("redis_url"),
        metavar="URL",
        help="Redis URL (BIDROOM_REDIS_URL, default: the embedded Redis of DATA_DIR/redis)",
    )
    _add_database_url(parser)
    _add_data_dir(parser)


def _add_backup_commands(commands: Any) -> None:
    """``bidroom backup`` / ``bidroom restore``: every store in one archive (bidroom.backup)."""
    backup = commands.add_parser(
        "backup",
        help="备份全部数据 / back up SQL, Redis, the CA, sealed bids and the platform key",
        description=(
            "把数据库（SQLite 在线备份或 pg_dump）、Redis 全部键、平台CA（DATA_DIR/ca）、"
            "密封投标文件（DATA_DIR/openings）和平台密钥写入一个归档（0600）。服务器运行时也可备份。"
            "归档不含供应商或评标人员的私钥；其中 CA 私钥和平台密钥须加密保管。\n"
            "Write one archive (mode 0600) with the database (SQLite's online backup API, or "
            "pg_dump for PostgreSQL), every Redis key (DUMP), the platform CA (DATA_DIR/ca), "
            "the sealed bids (DATA_DIR/openings) and the platform key. Works while the server "
            "runs. No supplier's or official's private key goes in; the CA key and the "
            "platform key do: keep the archive encrypted (e.g. gpg -c). See docs/operations.md."
        ),
        formatter_class=_Formatter,
    )
    backup.add_argument("--out", required=True, metavar="FILE.tar.gz",
                        help="归档文件（不覆盖）/ the archive to write (never overwritten)")
    _add_stores(backup)
    backup.set_defaults(handler=_cmd_backup)

    restore = commands.add_parser(
        "restore",
        help="从备份恢复到新的数据目录 / restore a backup into a fresh data dir",
        description=(
            "把 `bidroom backup` 的归档恢复到新的数据目录、空的 Redis 和（PostgreSQL 时）"
            "空的数据库；先校验每个文件的 SHA-256。\n"
            "Restore an archive of `bidroom backup` into a fresh data dir, an empty Redis and "
            "(PostgreSQL) an empty database, after checking every member's SHA-256. Then run "
            "`bidroom serve` on it."
        ),
        formatter_class=_Formatter,
    )
    restore.add_argument("archive", metavar="FILE.tar.gz", help="归档 / the archive")
    _add_stores(restore)
    restore.set_defaults(handler=_cmd_restore)


def _store_settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(data_dir=args.data_dir, redis_url=args.redis_url,
                             database_url=args.database_url)


def _cmd_backup(args: argparse.Namespace) -> int:
    from bidroom.backup import create_backup

    settings = _store_settings(args)
    summary = create_backup(settings, Path(args.out).expanduser(), now=_now())
    print(f"已备份 / backed up to {args.out}: {summary.sql} database, {summary.redis_keys} "
          f"Redis keys, {len(summary.files) - 2} files ({summary.sealed_bids} sealed bids)")
    print("归档含 CA 私钥和平台密钥，请加密保管 / the archive holds the CA key and the platform "
          "key: keep it encrypted", file=sys.stderr)
    return OK


def _cmd_restore(args: argparse.Namespace) -> int:
    from bidroom.backup import restore_backup

    settings = _store_settings(args)
    summary = restore_backup(Path(args.archive).expanduser(), settings)
    print(f"已恢复 / restored the backup of {summary.created_at} into {settings.data_dir}: "
          f"{summary.sql} database, {summary.redis_keys} Redis keys, "
          f"{len(summary.files) - 2} files ({summary.sealed_bids} sealed bids)")
    return OK


# ================================================================================ helpers


def _version() -> str:
    try:
        from importlib.metadata import version

        return str(version("bidroom"))
    except Exception:  # pragma: no cover - not installed
        return "unknown"


def _utf8_output() -> None:
    """Chinese text must not crash a terminal or pipe that is not UTF-8."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and (stream.encoding or "").lower().replace("-", "") != "utf8":
            reconfigure(errors="backslashreplace")


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return OK
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return FAILED


def _say(message: str) -> None:
    print(f"bidroom: {message}", flush=True)


def _error(message: str) -> None:
    print(f"bidroom: 错误 / error: {message}", file=sys.stderr, flush=True)


def _base_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"  # bound to every address: this one is clickable
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def _ws_url(base: str) -> str:
    scheme, _, rest = base.partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"


def _redact_database_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def _self_command() -> str:
    """How to run this command again, for printed examples."""
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if program is not None and program.name == "bidroom":
        found = shutil.which("bidroom")
        if found and Path(found).resolve() == program.resolve():
            return "bidroom"
        return str(program)
    return f"{sys.executable} -m web.cli"


if __name__ == "__main__":
    sys.exit(main())
