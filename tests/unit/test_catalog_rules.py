"""Pure rules of the procurement category catalogue: codes, the prefix tree, the CSV reader."""

from __future__ import annotations

import pytest

from market.catalog.rules import (
    CatalogProblem,
    Category,
    CategoryKind,
    category_ancestors,
    category_kind,
    category_parent,
    parse_catalog_csv,
    valid_category_code,
)
from market.catalog.service import shipped_catalog_text


@pytest.mark.parametrize(("code", "parent"), [
    ("A", None), ("A02", "A"), ("A0201", "A02"), ("A020101", "A0201"),
    ("A02010104", "A020101"), ("C", None), ("B01", "B"),
])
def test_the_parent_is_the_code_without_its_last_segment(code: str, parent: str | None) -> None:
    assert valid_category_code(code)
    assert category_parent(code) == parent


def test_kinds_and_ancestors() -> None:
    assert category_kind("A02010104") is CategoryKind.GOODS
    assert category_kind("B") is CategoryKind.WORKS
    assert category_kind("C0101") is CategoryKind.SERVICES
    assert category_ancestors("A02010104") == ("A", "A02", "A0201", "A020101")


@pytest.mark.parametrize("code", ["", "D", "A2", "A020", "a02", "A02-01", "A0201010101010"])
def test_malformed_codes(code: str) -> None:
    assert not valid_category_code(code)


def test_the_csv_reader() -> None:
    text = "# 子集\ncode,name_en,name\nA,Goods,货物\na02,,设备\n"
    assert parse_catalog_csv(text) == [Category("A", "货物", "Goods"),
                                       Category("A02", "设备", "")]
    # Without a name_en column the English names are None: an import keeps the stored ones.
    assert parse_catalog_csv("code,name\nA,货物\n") == [Category("A", "货物", None)]
    assert parse_catalog_csv("code\nA\n") == CatalogProblem(1, "the header must name the "
                                                               "columns code and name")
    assert parse_catalog_csv("code,name\nA,货物\nZ9,x\n") == CatalogProblem(
        3, "'Z9' is not a category code such as A02010104")
    assert parse_catalog_csv("code,name\nA,\n") == CatalogProblem(
        2, "the name must be 1 to 200 characters")
    assert parse_catalog_csv("code,name\n") == CatalogProblem(1, "the file lists no categories")


def test_the_shipped_subset_is_a_closed_tree_marked_as_a_subset() -> None:
    text = shipped_catalog_text()
    assert "SUBSET" in text.splitlines()[0]
    parsed = parse_catalog_csv(text)
    assert isinstance(parsed, list)
    codes = {c.code for c in parsed}
    assert {"A", "B", "C", "A02010104"} <= codes
    assert all(c.parent is None or c.parent in codes for c in parsed)
