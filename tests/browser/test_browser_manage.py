"""The purchaser's side in the browser: create and schedule an auction with every setting (the
form's validation messages, the server's own refusals, exact yuan → fen), then pause with a
reason, resume and invite from the watch room while a supplier sees it happen. Also the sign-in
page: a wrong token, and the demo's account list (only in a `bidroom demo` data dir)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import httpx

from tests.browser.conftest import LIVE_T0 as T0
from tests.browser.support import MINUTE, BrowserSession, api_get, expect, wait_live

if TYPE_CHECKING:
    from playwright.async_api import Page

SHANGHAI_MS = 8 * 3600 * 1000


def local_input(ms: int) -> str:
    """The value of a datetime-local input for an instant, in Asia/Shanghai."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp((ms + SHANGHAI_MS) / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M")


async def error_of(page: Page, field: str) -> str:
    return (await page.locator(f"#{field}-error").inner_text()).strip()


async def test_create_validate_schedule_pause_resume_and_invite(ui: BrowserSession) -> None:
    live = ui.live
    acc = live.accounts
    page = await ui.open_as("purchaser", "/app/auctions")
    await page.get_by_role("link", name="新建竞价").first.click()
    await expect(page).to_have_url(re.compile(r"/app/auctions/new$"))
    await expect(page.locator("#supplier-choices input")).to_have_count(5)

    # Every problem at once, in words, before anything is sent.
    await page.fill("#title", "")
    await page.fill("#ceiling", "12.345")
    await page.fill("#budget", "abc")
    await page.fill("#step", "0")
    await page.fill("#window", "x")
    await page.fill("#min_bidders", "0")
    await page.fill("#start", local_input(T0 + 30 * MINUTE))
    await page.fill("#end", local_input(T0 + 20 * MINUTE))
    await page.get_by_role("button", name="创建竞价").click()
    summary = page.locator("#error-summary")
    await expect(summary).to_be_visible()
    await expect(summary).to_be_focused()
    assert await error_of(page, "title") == "请填写项目名称。"
    assert await error_of(page, "ceiling") == "金额最多精确到分（两位小数）。"
    assert await error_of(page, "budget") == "金额格式不正确，请输入数字，例如 1234.50。"
    assert await error_of(page, "step") == "金额必须大于 0。"
    assert await error_of(page, "window") == "请输入分钟数（可带两位小数），例如 5 或 2.5。"
    assert await error_of(page, "min_bidders") == "请输入 1 到 1000 之间的整数。"
    assert await error_of(page, "end") == "结束时间必须晚于开始时间。"
    await expect(page.locator("#ceiling")).to_have_attribute("aria-invalid", "true")
    await expect(summary.locator("li")).to_have_count(7)
    # The summary's links take the keyboard to the field.
    await summary.get_by_role("link").first.click()
    await expect(page.locator("#title")).to_be_focused()

    await page.fill("#title", "西湖区第二小学课桌椅网上竞价")
    await page.fill("#ceiling", "10,000")
    await page.fill("#budget", "9,999.99")
    await page.fill("#step", "10000")
    await page.fill("#window", "2")
    await page.fill("#min_bidders", "2")
    await page.fill("#end", local_input(T0 + 31 * MINUTE))
    await page.get_by_role("button", name="创建竞价").click()
    assert await error_of(page, "ceiling") == "最高限价不得超过采购预算（87号令第12条）。"
    assert await error_of(page, "step") == "降价幅度必须小于最高限价。"

    # The server's own refusal shows on its field: the clock moved past the end meanwhile.
    await page.fill("#budget", "")
    await page.fill("#start", local_input(T0 + MINUTE))
    await page.fill("#step", "0.5")
    await page.check("input[name=step_kind][value=percent]")
    await expect(page.locator("#step-label")).to_have_text("最小降价幅度（%）")
    await live.set_clock(T0 + 40 * MINUTE)
    await page.get_by_role("button", name="创建竞价").click()
    await expect(page.locator("#end-error")).to_have_text("结束时间已过（按服务器时间）。")
    await live.set_clock(T0)

    # Every setting, then created and scheduled: the watch room opens.
    await page.fill("#title_en", "Desks and chairs")
    await page.fill("#ceiling", "123,456.78")
    await page.fill("#budget", "200000")
    await page.check("input[name=improvement][value=current_lowest]")
    await page.fill("#window", "2.5")
    await page.select_option("#trigger", "lead_change")
    await page.fill("#extension", "1.5")
    await page.fill("#max_extensions", "4")
    await page.fill("#max_total", "5")
    await page.uncheck("#show_lowest")
    await page.check(f'#supplier-choices input[value="{acc["s1"].org_id}"]')
    await page.check(f'#supplier-choices input[value="{acc["s2"].org_id}"]')
    await page.get_by_role("button", name="创建竞价").click()
    await expect(page).to_have_url(re.compile(r"/app/auctions/auc_[0-9a-f]+/watch$"))
    auction_id = page.url.split("/")[-2]
    doc = await api_get(live, "purchaser", f"/api/auctions/{auction_id}")
    assert doc["title"] == "西湖区第二小学课桌椅网上竞价" and doc["title_en"] == "Desks and chairs"
    assert sorted(doc["invited_supplier_ids"]) == sorted([acc["s1"].org_id, acc["s2"].org_id])
    settings = doc["settings"]
    assert {k: v for k, v in settings.items() if k != "auction_id"} == {
        "ceiling_fen": 12_345_678, "budget_fen": 20_000_000,
        # the inputs have whole minutes: T0 is hh:46:40, so hh:47:00 and hh:17:00
        "start_ms": T0 + 20_000, "end_ms": T0 + 30 * MINUTE + 20_000,
        "step_kind": "percent", "step_value": 50, "improvement": "current_lowest",
        "sniping_window_ms": 150_000, "sniping_trigger": "lead_change", "extension_ms": 90_000,
        "max_extensions": 4, "max_total_extension_ms": 300_000, "min_valid_bidders": 2,
        "show_lowest_to_suppliers": False, "sign_in_ms": 0,
    }
    await wait_live(page)
    await expect(page.locator("#phase")).to_have_text("未开始")
    await expect(page.locator("#countdown-label")).to_have_text("距竞价开始")

    # Open it, with a supplier in its room; pausing needs a reason.
    await live.set_clock(T0 + 2 * MINUTE)
    s1 = await ui.supplier_room("s1", auction_id)
    await expect(s1.locator("#lowest")).to_have_text("本场不公开")
    await expect(page.locator("#phase")).to_have_text("竞价中")
    await page.get_by_role("button", name="暂停竞价").click()
    await expect(page.locator("#pause-error")).to_have_text("暂停必须填写原因。")
    await page.fill("#pause-reason", "CA 服务故障，暂停竞价")
    await page.get_by_role("button", name="暂停竞价").click()
    await expect(page.locator("#pause-status")).to_contain_text("服务器已确认")
    for p in (page, s1):
        await expect(p.locator("#phase")).to_have_text("已暂停")
        await expect(p.locator('#banners [data-banner="paused"]')).to_contain_text(
            "原因：CA 服务故障，暂停竞价")
    await expect(s1.locator("#bid-submit")).to_be_disabled()
    await expect(s1.locator("#allowed")).to_have_text("竞价已暂停，暂不接受报价。")

    await live.set_clock(T0 + 3 * MINUTE)  # a pause of one minute: the end moves by it
    await page.get_by_role("button", name="恢复竞价").click()
    for p in (page, s1):
        await expect(p.locator("#phase")).to_have_text("竞价中")
        await expect(p.locator('#banners [data-banner="paused"]')).to_have_count(0)
        await expect(p.locator('#banners [data-banner="resumed"]')).to_contain_text("02:18:00")
    await expect(s1.locator("#bid-submit")).to_be_enabled()

    # Invite one more supplier: the count goes up for everyone.
    await expect(page.locator("#bidders")).to_have_text("0 / 2")
    await page.check(f'#invite-choices input[value="{acc["s3"].org_id}"]')
    await page.get_by_role("button", name="发送邀请").click()
    await expect(page.locator("#invite-status")).to_have_text("已邀请 1 家供应商。")
    await expect(page.locator("#bidders")).to_have_text("0 / 3")
    s3 = await ui.supplier_room("s3", auction_id)
    await expect(s3.locator("#max-allowed")).to_have_text("¥123,456.78")

    # The list shows the auction with its live phase.
    await page.goto(ui.url("/app/auctions"))
    item = page.locator(f'li[data-auction="{auction_id}"]')
    await expect(item.locator(".badge")).to_have_text("竞价中")
    await expect(item).to_contain_text("¥123,456.78")


async def test_an_agency_creates_for_its_purchaser(ui: BrowserSession) -> None:
    live = ui.live
    acc = live.accounts
    page = await ui.open_as("agency", "/app/auctions/new")
    await expect(page.locator("#purchaser-field")).to_be_visible()
    await page.fill("#title", "代理机构发起的竞价")
    await page.fill("#ceiling", "500")
    await page.fill("#step", "1")
    await page.fill("#start", local_input(T0 + MINUTE))
    await page.fill("#end", local_input(T0 + 20 * MINUTE))
    await page.get_by_role("button", name="创建竞价").click()
    await expect(page.locator("#purchaser-error")).to_have_text("代理机构须填写采购人的机构编号。")
    await page.fill("#purchaser", acc["s1"].org_id)
    await page.get_by_role("button", name="创建竞价").click()
    await expect(page.locator("#purchaser-error")).to_have_text("该编号不是采购人机构。")
    await page.fill("#purchaser", acc["purchaser"].org_id)
    await page.get_by_role("button", name="创建竞价").click()
    await expect(page).to_have_url(re.compile(r"/watch$"))
    auction_id = page.url.split("/")[-2]
    doc = await api_get(live, "purchaser", f"/api/auctions/{auction_id}")
    assert doc["agency"]["id"] == acc["agency"].org_id
    assert doc["settings"]["ceiling_fen"] == 50_000


async def test_sign_in_with_a_token_or_a_demo_account(ui: BrowserSession) -> None:
    live = ui.live
    acc = live.accounts
    data_dir = live.services.settings.data_dir
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        assert (await http.get("/api/demo/accounts")).status_code == 404  # not a demo dir
        (data_dir / "demo-accounts.json").write_text(json.dumps({"accounts": [
            {"role": "supervisor", "role_zh": "监督部门", "org_id": acc["supervisor"].org_id,
             "org_name": acc["supervisor"].name, "org_name_en": "Finance Bureau",
             "user_id": acc["supervisor"].user_id, "user_name": "王芳 / Wang Fang",
             "token": acc["supervisor"].token, "size_class": None},
        ]}), encoding="utf-8")
        assert (await http.get("/api/demo/accounts")).status_code == 404  # still no marker
        (data_dir / ".bidroom-demo").write_text("demo\n", encoding="utf-8")
        reply = await http.get("/api/demo/accounts")
        assert reply.status_code == 200 and reply.json()["accounts"][0]["role"] == "supervisor"
        root = await http.get("/")
        assert root.status_code == 302 and root.headers["location"] == "/app/"
        html = await http.get("/app/")
        assert "default-src 'self'" in html.headers["content-security-policy"]

    page = await ui.new_page()
    await page.goto(ui.url("/app/auctions"))  # not signed in: to the sign-in page
    await expect(page).to_have_url(re.compile(r"/app/\?next="))
    await page.get_by_label("API 令牌", exact=True).fill("brt_not_a_real_token")
    await page.get_by_label("API 令牌", exact=True).press("Enter")
    await expect(page.locator("#token-error")).to_have_text("令牌无效或已过期，请检查后重试。")
    demo = page.locator("#demo-list button")
    await expect(demo).to_have_count(1)
    await expect(demo).to_contain_text("监督部门")
    await demo.click()
    await expect(page).to_have_url(re.compile(r"/app/auctions$"))
    await expect(page.locator("#whoami")).to_contain_text("监督部门")
    await page.get_by_role("button", name="退出").click()
    await expect(page).to_have_url(re.compile(r"/app/$"))
