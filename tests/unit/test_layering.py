"""Imports run one way: web -> market -> bidroom (ARCHITECTURE.md). The core stays pure, and
no module imports itself back through others (no import cycle).

``lint-imports`` (pyproject.toml, [tool.importlinter]) checks the layers and the cycles between
sibling packages; the cycle check here works module by module, as Python runs the imports:
``from pkg import name`` first runs ``pkg/__init__.py``, so it depends on the package too, and a
package whose ``__init__`` imports a submodule that imports the package back is a cycle that
import-linter's sibling contract does not see. Imports inside functions and under
``if TYPE_CHECKING:`` count: they hide a dependency, they do not remove it.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("bidroom", "market", "web")
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
    "bidroom/merkle.py": {"asyncio", "redis", "sqlalchemy", "time", "datetime", "random",
                          "secrets", "os", "pathlib", "io", "market", "web"},
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


# The market's rules take dates as values (so they import datetime) but never read the clock.
MARKET_RULES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "market").rglob("rules.py"))
CLOCK_READS = {"now", "today", "utcnow", "time", "monotonic", "perf_counter", "fromtimestamp"}


def clock_reads(path: Path) -> list[str]:
    """Calls such as ``datetime.now()`` / ``date.today()`` / ``time.time()`` in a module
    (``fromtimestamp`` is a conversion, allowed: it is given the instant)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in CLOCK_READS - {"fromtimestamp"}):
            found.append(f"{path.name}:{node.lineno} {ast.unparse(node.func)}")
    return found


@pytest.mark.parametrize("module", MARKET_RULES)
def test_the_markets_rules_read_no_clock(module: str) -> None:
    assert MARKET_RULES, "no market rules found"
    assert clock_reads(ROOT / module) == []


def test_the_clock_read_check_finds_a_clock_read(tmp_path: Path) -> None:
    sample = tmp_path / "rules.py"
    sample.write_text("from datetime import date\n\ndef f():\n    return date.today()\n",
                      encoding="utf-8")
    assert clock_reads(sample) == ["rules.py:4 date.today"]


def test_the_load_tests_only_talk_to_the_server_over_the_network() -> None:
    for path in (ROOT / "loadtest").rglob("*.py"):
        assert not imported_roots(path) & {"bidroom", "market", "web"}, path


# ------------------------------------------------------------------------ import cycles


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_imports(path: Path, module: str, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``module`` (the file ``path``) imports, anywhere in it.

    ``import a.b.c`` depends on the longest known prefix of ``a.b.c``; ``from a.b import c``
    on ``a.b`` and, if it is a module, ``a.b.c``. Relative imports are resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, set[str]]:
    """Module -> the modules it imports, for every ``.py`` under ``root/<package>``."""
    files = {module_name(p, root): p for package in packages
             for p in sorted((root / package).rglob("*.py"))}
    return {m: module_imports(p, m, set(files)) for m, p in files.items()}


def import_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative), each
    sorted: every module in one imports every other, directly or not."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
    return sorted(cycles)


def test_no_module_imports_itself_back_through_others() -> None:
    assert import_cycles(import_graph(ROOT, LAYERS)) == []


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def test_the_cycle_check_finds_a_circle_through_three_modules(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import thing\n",
        "pkg/b.py": "from . import c\nthing = 1\n",
        "pkg/c.py": "def late():\n    import pkg.a\n",  # hidden in a function: still counts
        "pkg/d.py": "import pkg.a\n",  # imports the circle, is not in it
    })
    assert import_cycles(import_graph(root, ["pkg"])) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_the_cycle_check_sees_a_package_importing_its_own_importer(tmp_path: Path) -> None:
    # The case of bidroom.opening before: __init__ imports client, client imports envelope,
    # envelope did `from bidroom.opening import der`, which runs the package's __init__.
    root = _package(tmp_path, {
        "pkg/__init__.py": "from pkg.client import seal\n",
        "pkg/client.py": "from pkg.envelope import open_\nseal = 1\n",
        "pkg/envelope.py": "from pkg import der\nopen_ = 2\n",
        "pkg/der.py": "",
    })
    assert import_cycles(import_graph(root, ["pkg"])) == [["pkg", "pkg.client", "pkg.envelope"]]
    (root / "pkg/envelope.py").write_text("import pkg.der as der\nopen_ = 2\n", encoding="utf-8")
    assert import_cycles(import_graph(root, ["pkg"])) == []


def test_the_cycle_check_counts_type_checking_imports(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "import pkg.b\n",
        "pkg/b.py": """\
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from pkg.a import X
        """,
    })
    assert import_cycles(import_graph(root, ["pkg"])) == [["pkg.a", "pkg.b"]]


def test_a_graph_without_a_circle_has_no_cycle(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/top.py": "from pkg import low, mid\n",
        "pkg/mid.py": "from .low import x\n",
        "pkg/low.py": "x = 1\n",
    })
    assert import_cycles(import_graph(root, ["pkg"])) == []
