"""The public portal in the browser, signed out: search by keyword and region, open the
announcement, read each statutory date with its article (Beijing time), switch to English; no
request carries a token."""

from __future__ import annotations

import re
from datetime import date, datetime, time

import httpx

from market.calendar import BEIJING
from tests.browser.support import BrowserSession, expect

YUAN = 100


def at(day: date, hh: int = 9, mm: int = 30) -> int:
    return int(datetime.combine(day, time(hh, mm), tzinfo=BEIJING).timestamp() * 1000)


async def _publish(ui: BrowserSession) -> None:
    live = ui.live
    await live.set_clock(at(date(2026, 9, 11), 8))
    headers = {"Authorization": f"Bearer {live.accounts['purchaser'].token}"}
    async with httpx.AsyncClient(base_url=live.base_url, headers=headers) as http:
        for title, region in (("交互式智能平板", "440103"), ("物业管理服务", "430100")):
            created = await http.post("/api/projects", json={
                "title": "某市第一中学多媒体教室建设", "method": "open_tender",
                "region_code": region,
                "lots": [{"title": title, "category_code": "A02010104",
                          "budget_fen": 900_000 * YUAN, "ceiling_fen": 850_000 * YUAN}]})
            assert created.status_code == 201, created.text
            lot_id = created.json()["lots"][0]["id"]
            published = await http.post(f"/api/lots/{lot_id}/publish", json={
                "documents_from_ms": at(date(2026, 9, 11), 9),
                "documents_until_ms": at(date(2026, 9, 30), 17),
                "deadline_ms": at(date(2026, 10, 8))})
            assert published.status_code == 200, published.text


async def test_a_visitor_finds_an_announcement_and_reads_its_dates_and_articles(
        ui: BrowserSession) -> None:
    await _publish(ui)
    page = await ui.new_page()
    sent_tokens: list[str] = []
    page.on("request", lambda request: sent_tokens.extend(
        [request.url] if "authorization" in request.headers else []))
    await page.goto(ui.url("/app/portal"))
    results = page.locator("#portal-results li")
    await expect(results).to_have_count(2)  # everything, newest first

    await page.fill("#q", "智能平板")
    await page.fill("#region", "440000")
    await page.get_by_role("button", name="检索").click()
    await expect(results).to_have_count(1)
    await expect(page).to_have_url(re.compile(r"q=%E6%99%BA.*region=440000"))
    line = results.first
    await expect(line).to_contain_text("某市第一中学多媒体教室建设 交互式智能平板")
    await expect(line).to_contain_text("采购公告")
    await expect(line).to_contain_text("2026-09-11 08:30:00 （北京时间）")
    await expect(line).to_contain_text("公开招标")

    await page.fill("#region", "4400")
    await page.get_by_role("button", name="检索").click()
    await expect(page.locator("#portal-error")).to_have_text("行政区划代码须为6位数字。")
    await page.fill("#region", "")
    await page.fill("#q", "没有这样的项目")
    await page.get_by_role("button", name="检索").click()
    await expect(page.locator("#portal-empty")).to_be_visible()

    await page.fill("#q", "智能平板")
    await page.get_by_role("button", name="检索").click()
    await results.first.get_by_role("link").click()
    await expect(page).to_have_url(re.compile(r"/app/portal/\d+$"))
    await expect(page.locator("#notice-title")).to_have_text(
        "某市第一中学多媒体教室建设 交互式智能平板")
    dates = page.locator("#notice-dates tbody tr")
    await expect(dates).to_have_count(3)
    await expect(page.locator('tr[data-article="GPL 35"]')).to_contain_text("2026-10-08")
    await expect(page.locator('tr[data-article="GPL 35"]')).to_contain_text("不得少于20日")
    await expect(page.locator('tr[data-article="O87 16"]')).to_contain_text("2026-09-18")
    await expect(page.locator('tr[data-article="O87 18"]')).to_contain_text("2026-09-17")
    await expect(page.locator("#notice-meta")).to_contain_text("（北京时间）")

    await page.click("#lang-toggle")
    await expect(page.locator("#dates-heading")).to_have_text("Statutory dates")
    await expect(page.locator('tr[data-article="GPL 35"]')).to_contain_text("at least 20 days")
    await expect(page.locator("#notice-meta")).to_contain_text("(Beijing time)")
    await expect(page.locator("#notice-kind")).to_have_text("Procurement notice")
    assert sent_tokens == []
    assert ui.page_errors == []
