"""Imports run one way: web -> market -> bidroom (ARCHITECTURE.md). The core stays pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "bidroom": {"market", "web", "loadtest", "tests"},
    "market": {"web", "loadtest", "tests"},
    "web": {"loadtest", "tests"},
}
# The pure rules import no I/O at all.
PURE = {
    "bidroom/auction/rules.py": {"asyncio", "redis", "sqlalchemy", "time", "datetime", "random"},
    "market/registry/rules.py": {"asyncio", "redis", "sqlalchemy", "time", "datetime", "random",
                                 "secrets", "os", "pathlib"},
    "market/catalog/rules.py": {"asyncio", "redis", "sqlalchemy", "time", "datetime", "random",
                                "secrets", "os", "pathlib"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_never_imports_the_layers_above_it(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
        if imported_roots(path) & FORBIDDEN[package]
    }
    assert offenders == {}


@pytest.mark.parametrize(("module", "banned"), sorted(PURE.items()))
def test_the_pure_rules_do_no_io_and_read_no_clock(module: str, banned: set[str]) -> None:
    assert imported_roots(ROOT / module) & banned == set()


def test_the_load_tests_only_talk_to_the_server_over_the_network() -> None:
    for path in (ROOT / "loadtest").rglob("*.py"):
        assert not imported_roots(path) & {"bidroom", "market", "web"}, path
