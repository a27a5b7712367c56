"""Flags shared by the ``bidroom`` commands (``web.cli`` and the commands beside it, e.g.
``web.cli_registries``): each checks its value the way ``Settings`` checks its variable.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from bidroom.config import Settings
from bidroom.errors import ValidationError

__all__ = ["add_data_dir", "add_database_url", "setting_type"]


def setting_type(name: str) -> Callable[[str], str]:
    """An argparse ``type`` that checks a flag the way ``Settings`` checks its variable, so a
    bad value is refused by argparse with a message naming the flag (exit status 2)."""

    def check(text: str) -> str:
        try:
            Settings.from_env({}, **{name: text})
        except ValidationError as exc:
            # "port (overrides BIDROOM_PORT): expected …" → "expected …"
            raise argparse.ArgumentTypeError(exc.message.split(": ", 1)[-1]) from None
        return text

    check.__name__ = name  # argparse names the type in some messages
    return check


def add_data_dir(parser: argparse.ArgumentParser, default_note: str = "./var") -> None:
    parser.add_argument(
        "--data-dir",
        type=setting_type("data_dir"),
        metavar="DIR",
        help=f"数据目录 / data directory (BIDROOM_DATA_DIR, default {default_note})",
    )


def add_database_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        type=setting_type("database_url"),
        metavar="URL",
        help="数据库 / SQLAlchemy URL, e.g. postgresql+asyncpg://user@host/db "
        "(BIDROOM_DATABASE_URL, default: SQLite file DATA_DIR/bidroom.db)",
    )
