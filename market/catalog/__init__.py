"""The procurement category catalogue (政府采购品目分类目录): A goods, B works, C services, a tree
by code prefix, imported from CSV (``bidroom catalog import``); the package ships a subset.

Must not import: web.
"""

from __future__ import annotations

from market.catalog.models import CategoryRow
from market.catalog.rules import Category, CategoryKind, parse_catalog_csv
from market.catalog.service import Catalog, CategoryDetail, ImportResult, shipped_catalog_text

__all__ = [
    "Catalog",
    "Category",
    "CategoryDetail",
    "CategoryKind",
    "CategoryRow",
    "ImportResult",
    "parse_catalog_csv",
    "shipped_catalog_text",
]
