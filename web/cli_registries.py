"""``bidroom catalog import`` and ``bidroom regions import``: load the procurement category
catalogue and the region tree from CSV (format: docs/registry.md). Without a file, the subset
shipped in the package is imported. Each import is one transaction: all rows or none.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from bidroom.config import Settings
from bidroom.errors import ValidationError
from web.cli_args import add_data_dir as _add_data_dir
from web.cli_args import add_database_url as _add_database_url

__all__ = ["add_registry_commands"]


def add_registry_commands(commands: Any) -> None:
    """Add the ``catalog`` and ``regions`` command groups to ``bidroom``'s sub-parsers."""
    for name, help_zh, help_en, handler in (
        ("catalog", "品目目录", "procurement category catalogue", _cmd_catalog_import),
        ("regions", "行政区划", "region tree", _cmd_regions_import),
    ):
        group = commands.add_parser(name, help=f"{help_zh} / {help_en}",
                                    description=f"{help_zh} / {help_en}")
        actions = group.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)
        importer = actions.add_parser(
            "import",
            help=f"从 CSV 导入{help_zh} / import the {help_en} from CSV",
            description=(
                f"从 CSV 文件导入{help_zh}（新增或更名，全部成功或全部不写）；"
                "不给文件则导入随包附带的子集。 / "
                f"Import the {help_en} from a CSV file (columns code, name[, name_en]; see "
                "docs/registry.md): adds new codes and renames known ones, all or nothing. "
                "Without FILE, the subset shipped in the package is imported."
            ),
        )
        importer.add_argument("file", nargs="?", type=Path, metavar="FILE.csv",
                              help="CSV 文件 / the CSV file (default: the shipped subset)")
        _add_database_url(importer)
        _add_data_dir(importer)
        importer.set_defaults(handler=handler)


def _read(path: Path | None, shipped: str) -> str:
    if path is None:
        return shipped
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValidationError(f"cannot read {path}: {error}", code="invalid_file") from error


def _cmd_catalog_import(args: argparse.Namespace) -> int:
    from market.catalog import Catalog, shipped_catalog_text

    text = _read(args.file, shipped_catalog_text() if args.file is None else "")

    async def run(sessions: Any) -> dict[str, Any]:
        result = await Catalog(sessions).import_csv(text)
        return {"created": result.created, "updated": result.updated}

    return _with_database(args, run)


def _cmd_regions_import(args: argparse.Namespace) -> int:
    from market.registry import Registry, shipped_regions_text

    text = _read(args.file, shipped_regions_text() if args.file is None else "")

    async def run(sessions: Any) -> dict[str, Any]:
        created, updated = await Registry(sessions).import_regions_csv(text)
        return {"created": created, "updated": updated}

    return _with_database(args, run)


def _with_database(args: argparse.Namespace, run: Any) -> int:
    from bidroom.stores.sql import make_engine, make_session_factory
    from web.db import upgrade_database

    settings = Settings.from_env(data_dir=args.data_dir, database_url=args.database_url)
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    url = settings.resolved_database_url()

    async def main() -> dict[str, Any]:
        await upgrade_database(url)
        engine = make_engine(url)
        try:
            result: dict[str, Any] = await run(make_session_factory(engine))
            return result
        finally:
            await engine.dispose()

    print(json.dumps(asyncio.run(main()), ensure_ascii=False))
    return 0
