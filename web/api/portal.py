"""The public portal's routes (no token): search the announcements, read one with its statutory
dates. ``market.portal`` parses the query, searches and shapes the answer; this module maps
HTTP to it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from market.portal import PortalService
from market.portal.rules import DEFAULT_LIMIT, KINDS, MAX_LIMIT
from web.api.calendar import DATE_VIEW
from web.api.common import OperationSet, QueryParam, Reply, json_response
from web.api.projects import METHOD
from web.api.schemas import ID, MS, STRING, enum_of, nullable, obj
from web.auth import services_of

__all__ = ["ops"]

ops = OperationSet("portal")

_KIND = enum_of(list(KINDS), "公告类型: 采购公告, 更正公告, 废标公告, 终止公告")
_ANNOUNCEMENT_ID = {"type": "integer", "minimum": 1}
_RESULT = obj({"id": _ANNOUNCEMENT_ID, "kind": _KIND, "title": STRING, "region_code": STRING,
               "method": METHOD, "category_code": STRING, "published_at_ms": MS,
               "excerpt": STRING})
_QUERY = (
    QueryParam("region", {"type": "string", "pattern": "^[1-8][0-9]{5}$"},
               "行政区划代码: a province (440000) shows its cities and counties"),
    QueryParam("method", METHOD, "采购方式"),
    QueryParam("category", {"type": "string", "pattern": "^[ABCabc][0-9]{0,10}$"},
               "品目代码前缀 (A goods, A02…, A02010104)"),
    QueryParam("kind", _KIND, "公告类型"),
    QueryParam("from", {"type": "string", "format": "date"}, "first Beijing day (included)"),
    QueryParam("to", {"type": "string", "format": "date"}, "last Beijing day (included)"),
    QueryParam("q", {"type": "string", "maxLength": 200},
               "关键词: up to 5 terms separated by spaces, each in the title or the body"),
    QueryParam("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                         "default": DEFAULT_LIMIT}, "page size / 每页条数"),
    QueryParam("cursor", {"type": "string", "pattern": "^[0-9]{1,15}\\.[0-9]{1,18}$"},
               "next_cursor of the previous page"),
)

_SEARCH_EXAMPLE = {"items": [{
    "id": 1201, "kind": "procurement", "title": "某市教育局计算机采购 台式计算机",
    "region_code": "440106", "method": "open_tender", "category_code": "A02010104",
    "published_at_ms": 1789349400000, "excerpt": "某市教育局计算机采购 台式计算机：采购公告"}],
    "next_cursor": "1789349400000.1201"}


@ops.add(
    "GET", "/api/portal/announcements",
    summary_zh="公告检索", summary_en="Search the published announcements",
    description=(
        "Public (政府采购网): announcements filtered by region (with everything below it), "
        "method, category prefix, kind and Beijing days, and full-text search in Chinese over "
        "title and body (terms of 3+ characters use the trigram index; 1–2 characters a scan). "
        "Newest first (`published_at_ms`, then `id`, descending); the next page is "
        "`cursor=next_cursor`."),
    public=True,
    query=_QUERY,
    responses={200: Reply("a page of results", obj({
        "items": {"type": "array", "items": _RESULT}, "next_cursor": nullable(STRING)}),
        _SEARCH_EXAMPLE)},
    errors={422: ("unknown_parameter", "invalid_region", "invalid_method", "invalid_category",
                  "invalid_kind", "invalid_day", "invalid_range", "too_many_terms",
                  "term_too_long", "invalid_cursor")},
)
async def search_announcements(request: Request) -> Response:
    portal = PortalService(services_of(request).sessions)
    query = portal.parse(dict(request.query_params))
    return json_response(await portal.search(query))


@ops.add(
    "GET", "/api/portal/announcements/{announcement_id}",
    summary_zh="公告详情", summary_en="One announcement",
    description="The announcement with its statutory dates, each with the period, the article "
                "(GPL 35, O87 16/18/27/69) and what the rule says, as computed at publication.",
    public=True,
    responses={200: Reply("the announcement", obj({
        "id": _ANNOUNCEMENT_ID, "project_id": ID, "lot_id": nullable(ID), "kind": _KIND,
        "title": STRING, "body": STRING, "region_code": STRING, "method": METHOD,
        "category_code": STRING, "published_at_ms": MS,
        "dates": {"type": "array", "items": DATE_VIEW}}))},
    errors={404: ("announcement_not_found",)},
)
async def get_announcement(request: Request) -> Response:
    raw = request.path_params["announcement_id"]
    announcement_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else 0
    return json_response(await PortalService(services_of(request).sessions)
                         .announcement(announcement_id))
