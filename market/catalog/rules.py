"""Pure rules of the procurement category catalogue (政府采购品目分类目录, 财库〔2022〕31号).

A code is a letter for the kind — ``A`` goods (货物), ``B`` works (工程), ``C`` services (服务) —
followed by two-digit segments, one per level: ``A`` → ``A02`` → ``A0201`` → ``A020101`` →
``A02010104``. The tree is by code prefix: a code's parent is the code without its last
segment. ``parse_catalog_csv`` reads the import format (docs/registry.md) from text; it does no
I/O, so the service, the CLI and the tests share one reader.

Must not import: web.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from market.codelist import ListProblem, parse_code_list

__all__ = [
    "MAX_NAME",
    "CatalogProblem",
    "Category",
    "CategoryKind",
    "category_ancestors",
    "category_kind",
    "category_parent",
    "parse_catalog_csv",
    "valid_category_code",
]

MAX_NAME: Final = 200
_CODE: Final = re.compile(r"[ABC](?:[0-9]{2}){0,6}")


class CategoryKind(StrEnum):
    GOODS = "goods"  # A 货物
    WORKS = "works"  # B 工程
    SERVICES = "services"  # C 服务


_KINDS: Final = {"A": CategoryKind.GOODS, "B": CategoryKind.WORKS, "C": CategoryKind.SERVICES}


def valid_category_code(code: str) -> bool:
    """A, B or C followed by up to six two-digit segments."""
    return isinstance(code, str) and _CODE.fullmatch(code) is not None


def category_kind(code: str) -> CategoryKind:
    """Goods, works or services, from the code's letter (the code must be valid)."""
    return _KINDS[code[0]]


def category_parent(code: str) -> str | None:
    """The parent code (the code without its last segment); None for A, B and C."""
    return None if len(code) <= 1 else code[:-2] if len(code) > 3 else code[0]


def category_ancestors(code: str) -> tuple[str, ...]:
    """The ancestors of a code, the root letter first."""
    chain: list[str] = []
    parent = category_parent(code)
    while parent is not None:
        chain.append(parent)
        parent = category_parent(parent)
    return tuple(reversed(chain))


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    name: str
    name_en: str | None = None  # None: the file has no name_en column (keep what is stored)

    @property
    def parent(self) -> str | None:
        return category_parent(self.code)

    @property
    def kind(self) -> CategoryKind:
        return category_kind(self.code)


@dataclass(frozen=True, slots=True)
class CatalogProblem:
    """Why an import file is refused: the line (1-based, counting comment lines) and reason."""

    line: int
    reason: str


def parse_catalog_csv(text: str) -> list[Category] | CatalogProblem:
    """The categories of an import file, in file order, or its first problem.

    Format: UTF-8 CSV (a byte-order mark is ignored); lines starting with ``#`` before the
    header are comments; the header names the columns ``code`` and ``name`` and optionally
    ``name_en``, in any order; one category per row. A code appears once; every code's parent
    must appear in the same file (or already be in the catalogue — the service checks that).
    """
    rows = parse_code_list(text, valid=valid_category_code,
                           example="a category code such as A02010104", max_name=MAX_NAME,
                           entries="categories", upper=True)
    if isinstance(rows, ListProblem):
        return CatalogProblem(rows.line, rows.reason)
    return [Category(r.code, r.name, r.name_en) for r in rows]
