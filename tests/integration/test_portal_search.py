"""The portal's search on real SQL (SQLite FTS5 trigram here; PostgreSQL pg_trgm in the
real-server pass): filters, Chinese full text of any length, the stable order and paging, and
the index following inserts, updates and deletes."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import pytest
from sqlalchemy import delete, update

from market.calendar import BEIJING, CalendarService, CalendarStore
from market.portal import PortalService
from market.projects.rules import Method, Publish
from market.projects.service import LotDraft, ProjectService
from market.projects.store import AnnouncementRow
from market.registry import OrgKind, Principal, Role

pytestmark = pytest.mark.asyncio

T0 = int(datetime.combine(date(2026, 9, 1), time(9, 0), tzinfo=BEIJING).timestamp() * 1000)
DAY = 86_400_000

ROWS = [  # (title, body, region, method, category, kind, day offset)
    ("广州市第一中学计算机采购", "台式计算机 200 台，含三年上门保修", "440106", "open_tender",
     "A02010104", "procurement", 0),
    ("深圳市人民医院医疗设备采购", "彩色超声诊断仪，医疗设备的安装与培训", "440304",
     "open_tender", "A032201", "procurement", 1),
    ("广东省财政厅物业管理服务", "办公楼物业管理服务，含保洁与安保", "440000",
     "competitive_consultation", "C1204", "procurement", 2),
    ("广州市卫生健康委医疗设备更正公告", "彩色超声诊断仪的技术参数更正", "440100",
     "open_tender", "A032201", "correction", 3),
    ("长沙市教育局计算机采购", "笔记本电脑 50 台", "430100", "inquiry", "A02010105",
     "procurement", 4),
    ("佛山市 IT 运维服务终止公告", "因预算调整终止；100% 由财政资金支付", "440600",
     "competitive_negotiation", "C1603", "termination", 5),
]


async def _seed(session_factory: Any, rows: list[tuple[Any, ...]] = ROWS) -> list[int]:
    async with session_factory() as session, session.begin():
        made = [AnnouncementRow(project_id=f"prj-{i}", lot_id=None, kind=kind, title=title,
                                body=body, region_code=region, method=method,
                                category_code=category, dates=[],
                                published_at_ms=T0 + offset * DAY)
                for i, (title, body, region, method, category, kind, offset) in enumerate(rows)]
        session.add_all(made)
        await session.flush()
        return [row.id for row in made]


async def _titles(portal: PortalService, **params: str) -> list[str]:
    page = await portal.search(portal.parse(params))
    return [item["title"] for item in page["items"]]


async def test_filters_combine_and_a_province_shows_its_cities_and_counties(
        session_factory: Any) -> None:
    await _seed(session_factory)
    portal = PortalService(session_factory)
    guangdong = await _titles(portal, region="440000")
    assert guangdong == ["佛山市 IT 运维服务终止公告", "广州市卫生健康委医疗设备更正公告",
                         "广东省财政厅物业管理服务", "深圳市人民医院医疗设备采购",
                         "广州市第一中学计算机采购"]  # newest first; not 长沙 (430100)
    assert await _titles(portal, region="440100") == [
        "广州市卫生健康委医疗设备更正公告", "广州市第一中学计算机采购"]
    assert await _titles(portal, region="440106") == ["广州市第一中学计算机采购"]
    assert await _titles(portal, method="inquiry") == ["长沙市教育局计算机采购"]
    assert await _titles(portal, category="A0201") == ["长沙市教育局计算机采购",
                                                        "广州市第一中学计算机采购"]
    assert await _titles(portal, category="a02010104") == ["广州市第一中学计算机采购"]
    assert await _titles(portal, kind="correction", region="440000") == [
        "广州市卫生健康委医疗设备更正公告"]
    assert await _titles(portal, **{"from": "2026-09-02", "to": "2026-09-03"}) == [
        "广东省财政厅物业管理服务", "深圳市人民医院医疗设备采购"]


async def test_chinese_full_text_in_title_or_body_of_any_length(session_factory: Any) -> None:
    await _seed(session_factory)
    portal = PortalService(session_factory)
    assert await _titles(portal, q="医疗设备") == ["广州市卫生健康委医疗设备更正公告",
                                                  "深圳市人民医院医疗设备采购"]
    assert await _titles(portal, q="超声诊断仪") == ["广州市卫生健康委医疗设备更正公告",
                                                    "深圳市人民医院医疗设备采购"]  # body only
    assert await _titles(portal, q="医疗设备 更正") == ["广州市卫生健康委医疗设备更正公告"]
    assert await _titles(portal, q="保洁") == ["广东省财政厅物业管理服务"]  # 2 chars: LIKE
    assert await _titles(portal, q="台") == ["长沙市教育局计算机采购", "广州市第一中学计算机采购"]
    assert await _titles(portal, q="计算机 广州", region="440000") == ["广州市第一中学计算机采购"]
    assert await _titles(portal, q="it 运维") == ["佛山市 IT 运维服务终止公告"]  # any case
    assert await _titles(portal, q="ＩＴ运维") == []  # NFKC: IT运维, not in the text
    assert await _titles(portal, q="100%") == ["佛山市 IT 运维服务终止公告"]
    assert await _titles(portal, q="10_%") == []  # % and _ are literal, not wildcards
    assert await _titles(portal, q='"医疗" OR 设备') == []  # FTS syntax is text, not operators
    assert await _titles(portal, q="没有这样的词") == []


async def test_paging_is_stable_and_complete_when_times_tie(session_factory: Any) -> None:
    same_time = [(f"同一时刻发布的公告{i:02d}", "物业管理服务", "440100", "open_tender", "C1204",
                  "procurement", 0) for i in range(7)]
    ids = await _seed(session_factory, same_time)
    portal = PortalService(session_factory)
    seen: list[int] = []
    cursor = ""
    while True:
        page = await portal.search(portal.parse({"q": "物业管理", "limit": "3",
                                                 "cursor": cursor}))
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
        await _seed(session_factory, same_time[:1])  # a newer one arrives meanwhile
    assert seen == sorted(ids, reverse=True)


async def test_the_index_follows_updates_and_deletes(session_factory: Any) -> None:
    ids = await _seed(session_factory)
    portal = PortalService(session_factory)
    async with session_factory() as session, session.begin():
        await session.execute(update(AnnouncementRow).where(AnnouncementRow.id == ids[0])
                              .values(title="广州市第一中学图书采购"))
        await session.execute(delete(AnnouncementRow).where(AnnouncementRow.id == ids[1]))
    assert await _titles(portal, q="图书采购") == ["广州市第一中学图书采购"]
    assert await _titles(portal, q="第一中学计算机") == []
    assert await _titles(portal, q="人民医院") == []


async def test_an_announcement_published_by_a_project_is_found_with_its_dates(
        session_factory: Any) -> None:
    def at(day: date, hh: int = 9) -> int:
        return int(datetime.combine(day, time(hh, 30), tzinfo=BEIJING).timestamp() * 1000)

    async def now() -> int:
        return at(date(2026, 9, 11), 8)

    purchaser = Principal("u-p", "采购员", "org-p", "某市教育局", OrgKind.PURCHASER,
                          frozenset({Role.PURCHASER}))
    projects = ProjectService(session_factory, CalendarService(CalendarStore(session_factory)),
                              now_ms=now)
    project, lots = await projects.create_project(
        purchaser, title="某市教育局多媒体教室建设", method=Method.OPEN_TENDER,
        region_code="440103",
        lots=[LotDraft("交互式智能平板", "A02010104", 90_000_000, 85_000_000)])
    await projects.run(purchaser, lots[0].id, lambda state, t: Publish(
        t, t, at(date(2026, 9, 30)), at(date(2026, 10, 8)), project.budget_fen))
    portal = PortalService(session_factory)
    page = await portal.search(portal.parse({"q": "智能平板", "region": "440000"}))
    assert [item["kind"] for item in page["items"]] == ["procurement"]
    shown = await portal.announcement(page["items"][0]["id"])
    assert {d["article"]: d["day"] for d in shown["dates"]} == {
        "O87 16": "2026-09-18", "O87 18": "2026-09-17", "GPL 35": "2026-10-08"}
    assert all(d["rule_zh"] and d["rule_en"] for d in shown["dates"])
    # the project's id is the announcement's reference: looked up, in any case
    for q in (project.id, project.id.lower(), project.id.upper()):
        page = await portal.search(portal.parse({"q": q}))
        assert [item["id"] for item in page["items"]] == [shown["id"]], q


async def test_every_plan_gives_the_same_page(session_factory: Any) -> None:
    """Which index leads changes the speed, never the answer (the small test data would only
    ever take the "text" plan on its own)."""
    from market.portal.rules import Plan
    from market.portal.store import search_statement

    await _seed(session_factory, ROWS * 3)
    portal = PortalService(session_factory)
    queries = [{"q": "医疗设备"}, {"q": "医疗设备", "region": "440000"},
               {"q": "计算机 台", "region": "440106"}, {"region": "440100", "kind": "correction"},
               {"q": "物业管理", "limit": "2", "cursor": f"{T0 + 2 * DAY}.9"},
               {"category": "A03", "q": "超声"}, {}]
    async with session_factory() as session:
        dialect = session.get_bind().dialect.name
        for params in queries:
            query = portal.parse(params)
            pages = {lead: [row.id for row in (await session.scalars(
                search_statement(query, dialect, Plan(lead)))).all()]
                for lead in ("text", "order", "region")}
            assert pages["text"] == pages["order"] == pages["region"], params
            assert pages["text"], params


async def test_a_project_number_is_looked_up_in_the_reference_column(
        session_factory: Any) -> None:
    """An identifier term (ASCII letters and digits with a digit, 6+) some announcement carries
    as its reference finds exactly those announcements, in any case; one that nobody carries is
    searched in the text as before; Chinese and short terms are unchanged."""
    rows = [  # (title, body, reference, day offset)
        ("广州市第一中学计算机采购公告", "台式计算机，项目编号GD20260012345。",
         "GD20260012345", 0),
        ("广州市第一中学计算机更正公告", "更正：项目编号GD20260012345的交货期。",
         "GD20260012345", 1),
        ("深圳市人民医院医疗设备采购公告", "项目编号GD20260012346，参照GD20260012345的参数。",
         "GD20260012346", 2),
        ("佛山市道路修缮工程", "施工须符合GB50300标准，项目编号GD20260099999。",
         "GD20260099999", 3),
    ]
    async with session_factory() as session, session.begin():
        made = [AnnouncementRow(project_id=f"prj-{i}", lot_id=None, kind="procurement",
                                title=title, body=body, region_code="440106",
                                method="open_tender", category_code="A02010104", dates=[],
                                published_at_ms=T0 + offset * DAY, reference=reference)
                for i, (title, body, reference, offset) in enumerate(rows)]
        session.add_all(made)
    portal = PortalService(session_factory)
    both = ["广州市第一中学计算机更正公告", "广州市第一中学计算机采购公告"]
    # the number's own announcements, not the one whose body merely mentions it
    assert await _titles(portal, q="GD20260012345") == both
    assert await _titles(portal, q="gd20260012345") == both
    assert await _titles(portal, q="ＧＤ２０２６００１２３４５") == both  # full width
    # with other terms and filters: they still hold, checked on those rows
    assert await _titles(portal, q="GD20260012345 更正") == both[:1]
    assert await _titles(portal, q="GD20260012345 正公") == both[:1]  # 2 characters too
    assert await _titles(portal, q="GD20260012345", region="440300") == []
    assert await _titles(portal, q="GD20260012345", limit="1") == both[:1]
    first = await portal.search(portal.parse({"q": "GD20260012345", "limit": "1"}))
    rest = await portal.search(portal.parse({"q": "GD20260012345", "limit": "1",
                                             "cursor": first["next_cursor"]}))
    assert [item["title"] for item in rest["items"]] == both[1:]
    assert rest["next_cursor"] is None
    # an identifier no announcement carries is full text: a standard's number in a body
    assert await _titles(portal, q="GB50300") == ["佛山市道路修缮工程"]
    assert await _titles(portal, q="gb50300") == ["佛山市道路修缮工程"]
    # not identifiers: as before (a trigram phrase; a 2-character LIKE; a 5-character run)
    assert await _titles(portal, q="计算机") == both
    assert await _titles(portal, q="参照") == ["深圳市人民医院医疗设备采购公告"]
    assert await _titles(portal, q="12345") == [
        "深圳市人民医院医疗设备采购公告", *both]
