"""``bidroom catalog import`` and ``bidroom regions import``, in-process, on a SQLite file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bidroom.stores.sql import make_engine, make_session_factory
from market.catalog import Catalog
from market.registry import Registry
from web.cli import main


def _args(tmp_path: Path, *words: str) -> list[str]:
    return [*words, "--database-url", f"sqlite:///{tmp_path / 'cli.db'}",
            "--data-dir", str(tmp_path)]


async def _categories(tmp_path: Path) -> list[str]:
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    try:
        rows, _ = await Catalog(make_session_factory(engine)).search(limit=500)
        return [r.code for r in rows]
    finally:
        await engine.dispose()


async def _regions(tmp_path: Path) -> list[str]:
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    try:
        return [r.code for r in await Registry(make_session_factory(engine)).list_regions()]
    finally:
        await engine.dispose()


def test_the_catalogue_import_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_args(tmp_path, "catalog", "import")) == 0
    assert json.loads(capsys.readouterr().out) == {"created": 17, "updated": 0}
    full = tmp_path / "full.csv"
    full.write_text("code,name\nA02,设备\nA03,文物和陈列品\n", encoding="utf-8")
    assert main(_args(tmp_path, "catalog", "import", str(full))) == 0
    assert json.loads(capsys.readouterr().out) == {"created": 1, "updated": 0}
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name\nA04,图书和档案\nA0599,x\nQ1,y\n", encoding="utf-8")
    assert main(_args(tmp_path, "catalog", "import", str(bad))) == 1
    assert "line 4" in capsys.readouterr().err
    codes = asyncio.run(_categories(tmp_path))
    assert "A03" in codes and "A04" not in codes  # the bad file wrote nothing


def test_the_regions_import_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_args(tmp_path, "regions", "import")) == 0
    assert json.loads(capsys.readouterr().out)["created"] == 15
    orphan = tmp_path / "orphan.csv"
    orphan.write_text("code,name\n450000,广西壮族自治区\n460105,秀英区\n", encoding="utf-8")
    assert main(_args(tmp_path, "regions", "import", str(orphan))) == 1
    assert "460100" in capsys.readouterr().err
    assert asyncio.run(_regions(tmp_path)) == ["110000", "330000", "440000"]
