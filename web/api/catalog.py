"""Catalogue routes: browse and search the procurement category catalogue (政府采购品目分类目录).

Reference data for every signed-in user; the list itself is imported with
``bidroom catalog import FILE.csv`` (market.catalog).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from market.catalog import Catalog, CategoryRow
from web.api.common import (
    LIMIT_PARAM,
    OFFSET_PARAM,
    OperationSet,
    QueryParam,
    Reply,
    json_response,
    page_of,
    ref,
)
from web.auth import require_principal, services_of

__all__ = ["ops"]

ops = OperationSet("catalog")


def category_view(row: CategoryRow) -> dict[str, Any]:
    return {"code": row.code, "name": row.name, "name_en": row.name_en, "kind": row.kind,
            "parent_code": row.parent_code}


def _catalog(request: Request) -> Catalog:
    return Catalog(services_of(request).sessions)


@ops.add(
    "GET",
    "/api/catalog/categories",
    summary_zh="品目目录检索",
    summary_en="Browse or search the procurement catalogue",
    description=(
        "Categories by code. `q` matches a code prefix (`A0201`) or part of the name "
        "(`计算机`, `computer`); `parent` keeps a code's direct children (empty: the roots A, "
        "B, C); `kind` keeps goods, works or services."
    ),
    who="any signed-in user",
    query=(
        QueryParam("q", {"type": "string", "minLength": 1, "maxLength": 100},
                   "编码前缀或名称 / code prefix or name"),
        QueryParam("parent", {"type": "string", "maxLength": 16},
                   "上级品目 / parent code (empty: the roots)"),
        QueryParam("kind", {"type": "string", "enum": ["goods", "works", "services"]},
                   "货物/工程/服务 / goods, works or services"),
        LIMIT_PARAM,
        OFFSET_PARAM,
    ),
    responses={200: Reply("a page of categories", {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": ref("Category")},
            "next_offset": {"type": ["integer", "null"]},
        },
        "required": ["items", "next_offset"],
    })},
    errors={422: ("invalid_query",)},
)
async def list_categories(request: Request) -> Response:
    await require_principal(request)
    page = page_of(request)
    params = request.query_params
    rows, more = await _catalog(request).search(
        query=params.get("q"),
        parent=params.get("parent"),
        kind=params.get("kind") or None,
        limit=page.limit,
        offset=page.offset,
    )
    return json_response({"items": [category_view(r) for r in rows],
                          "next_offset": page.end if more else None})


@ops.add(
    "GET",
    "/api/catalog/categories/{code}",
    summary_zh="品目详情",
    summary_en="Read a category",
    description="A category with its ancestors (the root letter first) and its children.",
    who="any signed-in user",
    responses={200: Reply("the category", ref("CategoryDetail"))},
    errors={404: ("category_not_found",)},
)
async def get_category(request: Request) -> Response:
    await require_principal(request)
    detail = await _catalog(request).get(request.path_params["code"])
    return json_response({
        **category_view(detail.category),
        "ancestors": [category_view(r) for r in detail.ancestors],
        "children": [category_view(r) for r in detail.children],
    })
