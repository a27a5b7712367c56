"""The catalogue's use cases: import a list (one transaction), look a category up, browse its
children, search by code prefix or name. Must not import: web.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidroom.errors import NotFoundError, ValidationError
from bidroom.stores.sql import sql_errors
from market.catalog.models import CategoryRow
from market.catalog.rules import (
    CatalogProblem,
    Category,
    CategoryKind,
    category_ancestors,
    parse_catalog_csv,
    valid_category_code,
)

__all__ = ["Catalog", "CategoryDetail", "ImportResult", "shipped_catalog_text"]

_MAX_QUERY = 100


def shipped_catalog_text() -> str:
    """The subset of the catalogue shipped in the package (market/catalog/data/categories.csv)."""
    return resources.files("market.catalog").joinpath("data/categories.csv").read_text("utf-8")


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int
    updated: int


@dataclass(frozen=True, slots=True)
class CategoryDetail:
    category: CategoryRow
    ancestors: list[CategoryRow]
    children: list[CategoryRow]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Catalog:
    """The procurement category catalogue on SQL. Each method is one short transaction."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    async def import_csv(self, text: str) -> ImportResult:
        """Import a catalogue file (``rules.parse_catalog_csv``): new codes are added, known
        ones renamed. All or nothing: a malformed file (``invalid_catalog_file``) or a code
        whose parent is neither in the file nor in the catalogue (``category_parent_missing``)
        writes nothing."""
        parsed = parse_catalog_csv(text)
        if isinstance(parsed, CatalogProblem):
            raise ValidationError(
                f"line {parsed.line}: {parsed.reason}", code="invalid_catalog_file",
                line=parsed.line,
            )
        return await self.import_categories(parsed)

    async def import_categories(self, categories: list[Category]) -> ImportResult:
        in_file = {c.code for c in categories}
        created = updated = 0
        with sql_errors("import catalogue"):
            async with self._sessions() as session, session.begin():
                known = {
                    row.code: row
                    for row in (
                        await session.scalars(
                            select(CategoryRow).where(CategoryRow.code.in_(in_file))
                        )
                    ).all()
                }
                wanted_parents = {c.parent for c in categories if c.parent is not None} - in_file
                present = set(
                    (
                        await session.scalars(
                            select(CategoryRow.code).where(CategoryRow.code.in_(wanted_parents))
                        )
                    ).all()
                ) if wanted_parents else set()
                for category in categories:
                    parent = category.parent
                    if parent is not None and parent not in in_file and parent not in present:
                        raise ValidationError(
                            f"the parent {parent} of {category.code} is neither in the file "
                            "nor in the catalogue",
                            code="category_parent_missing", category=category.code,
                            parent=parent,
                        )
                    row = known.get(category.code)
                    if row is None:
                        session.add(CategoryRow(
                            code=category.code, name=category.name,
                            name_en=category.name_en or "",
                            kind=str(category.kind), parent_code=parent,
                        ))
                        created += 1
                    else:
                        name_en = row.name_en if category.name_en is None else category.name_en
                        if (row.name, row.name_en) != (category.name, name_en):
                            row.name, row.name_en = category.name, name_en
                            updated += 1
        return ImportResult(created, updated)

    async def get(self, code: str) -> CategoryDetail:
        """A category with its ancestors (root first) and children (by code);
        ``category_not_found`` when the code is unknown."""
        code = code.strip().upper() if isinstance(code, str) else ""
        with sql_errors("get category"):
            async with self._sessions() as session:
                row = await session.get(CategoryRow, code) if valid_category_code(code) else None
                if row is None:
                    raise NotFoundError(f"category {code} not found",
                                        code="category_not_found", category=code)
                chain = category_ancestors(code)
                ancestors = list((await session.scalars(
                    select(CategoryRow).where(CategoryRow.code.in_(chain))
                    .order_by(func.length(CategoryRow.code))
                )).all()) if chain else []
                children = list((await session.scalars(
                    select(CategoryRow).where(CategoryRow.parent_code == code)
                    .order_by(CategoryRow.code)
                )).all())
        return CategoryDetail(row, ancestors, children)

    async def search(
        self,
        *,
        query: str | None = None,
        parent: str | None = None,
        kind: CategoryKind | str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[CategoryRow], bool]:
        """Categories by code, and whether more follow. ``query`` matches a code prefix
        (``A0201``) or a part of the Chinese or English name (``计算机``); ``parent`` keeps the
        direct children of a code (``""``: the roots A, B, C); ``kind`` keeps goods, works or
        services."""
        stmt = select(CategoryRow).order_by(CategoryRow.code)
        if query is not None:
            query = query.strip()
            if not query or len(query) > _MAX_QUERY:
                raise ValidationError(f"q must be 1 to {_MAX_QUERY} characters",
                                      code="invalid_query", parameter="q")
            pattern = f"%{_escape_like(query)}%"
            stmt = stmt.where(or_(
                CategoryRow.code.like(f"{_escape_like(query.upper())}%", escape="\\"),
                CategoryRow.name.like(pattern, escape="\\"),
                CategoryRow.name_en.ilike(pattern, escape="\\"),
            ))
        if parent is not None:
            parent = parent.strip().upper()
            if parent and not valid_category_code(parent):
                raise ValidationError(f"{parent!r} is not a category code",
                                      code="invalid_query", parameter="parent")
            stmt = stmt.where(
                CategoryRow.parent_code.is_(None) if not parent
                else CategoryRow.parent_code == parent
            )
        if kind is not None:
            try:
                wanted = CategoryKind(kind)
            except ValueError:
                raise ValidationError(f"unknown category kind {kind!r}", code="invalid_query",
                                      parameter="kind") from None
            stmt = stmt.where(CategoryRow.kind == str(wanted))
        with sql_errors("search catalogue"):
            async with self._sessions() as session:
                rows = list((await session.scalars(stmt.offset(offset).limit(limit + 1))).all())
        return rows[:limit], len(rows) > limit
