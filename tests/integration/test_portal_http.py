"""The portal's routes over HTTP: public (no token), a published lot found by region and
keyword, its announcement with each date's article, and bad queries answered 422 with a code."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import pytest

from market.calendar import BEIJING

pytestmark = pytest.mark.asyncio

YUAN = 100


def at(day: date, hh: int = 9, mm: int = 30) -> int:
    return int(datetime.combine(day, time(hh, mm), tzinfo=BEIJING).timestamp() * 1000)


async def _publish(app_client: Any, seed: Any) -> str:
    purchaser = await seed.purchaser()
    await seed.set_clock(at(date(2026, 9, 11), 8))
    created = await app_client.post("/api/projects", headers=purchaser.headers, json={
        "title": "某市第一中学多媒体教室建设", "method": "open_tender", "region_code": "440103",
        "lots": [{"title": "交互式智能平板", "category_code": "A02010104",
                  "budget_fen": 900_000 * YUAN, "ceiling_fen": 850_000 * YUAN}]})
    assert created.status_code == 201, created.text
    lot_id: str = created.json()["lots"][0]["id"]
    published = await app_client.post(f"/api/lots/{lot_id}/publish", headers=purchaser.headers,
                                      json={"documents_from_ms": at(date(2026, 9, 11), 9),
                                            "documents_until_ms": at(date(2026, 9, 30), 17),
                                            "deadline_ms": at(date(2026, 10, 8))})
    assert published.status_code == 200, published.text
    return lot_id


async def test_the_portal_is_public_and_shows_each_date_with_its_article(
        app_client: Any, seed: Any) -> None:
    lot_id = await _publish(app_client, seed)
    found = await app_client.get("/api/portal/announcements",
                                 params={"region": "440000", "q": "智能平板",
                                         "method": "open_tender", "category": "A02",
                                         "kind": "procurement",
                                         "from": "2026-09-11", "to": "2026-09-11"})
    assert found.status_code == 200, found.text
    page = found.json()
    assert [i["title"] for i in page["items"]] == ["某市第一中学多媒体教室建设 交互式智能平板"]
    assert page["next_cursor"] is None
    assert page["items"][0]["published_at_ms"] == at(date(2026, 9, 11), 8)
    for miss in ({"region": "430000"}, {"q": "医疗设备"}, {"method": "inquiry"},
                 {"category": "C"}, {"kind": "correction"}, {"from": "2026-09-12"}):
        other = await app_client.get("/api/portal/announcements", params=miss)
        assert other.status_code == 200 and other.json()["items"] == [], miss

    one = await app_client.get(f"/api/portal/announcements/{page['items'][0]['id']}")
    assert one.status_code == 200
    shown = one.json()
    assert shown["lot_id"] == lot_id and shown["kind"] == "procurement"
    assert {d["article"]: d["day"] for d in shown["dates"]} == {
        "O87 16": "2026-09-18", "O87 18": "2026-09-17", "GPL 35": "2026-10-08"}
    assert all(d["rule_zh"] and d["rule_en"] for d in shown["dates"])


async def test_bad_queries_are_refused_with_a_code_naming_the_field(app_client: Any) -> None:
    cases = [({"region": "44"}, "invalid_region"), ({"method": "auction"}, "invalid_method"),
             ({"category": "X1"}, "invalid_category"), ({"kind": "award"}, "invalid_kind"),
             ({"from": "2026-9-1"}, "invalid_day"),
             ({"from": "2026-09-02", "to": "2026-09-01"}, "invalid_range"),
             ({"q": "一 二 三 四 五 六"}, "too_many_terms"), ({"q": "长" * 51}, "term_too_long"),
             ({"cursor": "x"}, "invalid_cursor"), ({"limit": "0"}, "invalid_query"),
             ({"sort": "title"}, "unknown_parameter")]
    for params, code in cases:
        reply = await app_client.get("/api/portal/announcements", params=params)
        assert reply.status_code == 422, params
        assert reply.json()["error"]["code"] == code, params
    missing = await app_client.get("/api/portal/announcements/999999")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "announcement_not_found"
    word = await app_client.get("/api/portal/announcements/abc")
    assert word.status_code == 404
