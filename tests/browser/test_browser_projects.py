"""The purchaser's procurement pages in Chromium: a project created through the form (yuan typed,
integer fen stored exactly), the publication form with the statutory dates shown live with
their articles (provisional in 2030, a year nobody has entered), a too-early deadline refused
in words with its article and earliest legal day, the publication and its announcement, the
language switch; a bid-affecting correction that moves the deadline (O87 27); the qualification
review after an opening, by the commissioned agency, and the re-tender it leads to; the
administrator's calendar page entering a day and declaring a year complete."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from market.projects.rules import CloseBidding, RecordOpening
from market.registry import Role
from tests.browser.conftest import LIVE_T0 as T0
from tests.browser.support import BrowserSession, api_get, api_post, expect

HOUR = 3600 * 1000
DAY = 24 * HOUR
SHANGHAI_MS = 8 * HOUR


def local_input(ms: int) -> str:
    """The value of a datetime-local input for an instant, in Asia/Shanghai."""
    return datetime.fromtimestamp((ms + SHANGHAI_MS) / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M")


def weekday_zh(day: str) -> str:
    names = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]
    return f"{day}（{names[datetime.fromisoformat(day).weekday()]}）"


async def test_create_plan_refuse_publish_and_reword(ui: BrowserSession) -> None:
    live = ui.live
    page = await ui.open_as("purchaser", "/app/projects")
    await page.get_by_role("navigation").get_by_role("link", name="采购项目").click()
    await page.get_by_role("link", name="新建采购项目").click()
    await expect(page).to_have_url(re.compile(r"/app/projects/new$"))

    # The form's own checks first: the ceiling above the budget, a bond above 2 % (Reg 33).
    await page.fill("#title", "某市第一中学计算机采购")
    await page.fill("#region", "440100")
    await page.fill("#lot1-title", "台式计算机")
    await page.fill("#lot1-category", "A02010105")
    await page.fill("#lot1-budget", "1,000,000.10")
    await page.fill("#lot1-ceiling", "1000000.11")
    await page.fill("#lot1-bond", "20000.01")
    await page.get_by_role("button", name="保存项目（草稿）").click()
    await expect(page.locator("#lot1-ceiling-error")).to_have_text(
        "最高限价不得超过采购预算（87号令第12条）。")
    await expect(page.locator("#lot1-bond-error")).to_have_text(
        "投标保证金不得超过预算的 2%（实施条例第33条）。")
    await page.fill("#lot1-ceiling", "950000.07")
    await page.fill("#lot1-bond", "20000")
    await page.get_by_role("button", name="保存项目（草稿）").click()
    await expect(page).to_have_url(re.compile(r"/app/projects/P[0-9a-f]+$"))
    project_id = page.url.rsplit("/", 1)[1]
    project = await api_get(live, "purchaser", f"/api/projects/{project_id}")
    lot = project["lots"][0]
    # Yuan text to fen, exactly: no float on the way.
    assert (lot["budget_fen"], lot["ceiling_fen"], lot["bond_fen"]) == (100_000_010, 95_000_007,
                                                                         2_000_000)
    card = page.locator(f'article[data-lot="{lot["id"]}"]')
    await expect(card.locator("[data-status]")).to_have_text("草稿")
    await expect(card.locator(".next-step")).to_contain_text("发布采购公告")

    # The plan, live from the server's calendar, with each date's article and rule.
    docs_from = -(-T0 // HOUR) * HOUR  # the form's default: the next full hour
    plan = await api_get(live, "purchaser",
                         f"/api/lots/{lot['id']}/plan?documents_from_ms={docs_from}")
    by_period = {d["period"]: d for d in plan["dates"]}
    deadline_day = by_period["bid_deadline"]["day"]
    item = card.locator('li[data-period="bid_deadline"]')
    await expect(item.locator("[data-day]")).to_have_text(weekday_zh(deadline_day))
    await expect(item).to_contain_text("政府采购法第35条")
    await expect(item).to_contain_text("不得少于20日")
    await expect(card.locator('li[data-period="announcement_period"]')).to_contain_text(
        "87号令第16条")
    await expect(card.locator('li[data-period="documents_available"]')).to_contain_text(
        "87号令第18条")
    # 2030 is a year nobody has entered: provisional, with the warning.
    await expect(item.locator(".badge.provisional")).to_have_text("临时日期")
    await expect(item.locator(".warning")).to_contain_text("2030 年节假日安排尚未录入")

    # A deadline three days out: refused in words, with the article and the earliest day.
    await card.locator(f"#until-{lot['id']}").fill(local_input(docs_from + 2 * DAY))
    await card.locator(f"#deadline-input-{lot['id']}").fill(local_input(docs_from + 3 * DAY))
    await card.get_by_role("button", name="发布采购公告").click()
    status = card.locator(f"#status-{lot['id']}")
    await expect(status).to_have_attribute("role", "alert")
    await expect(status).to_contain_text("投标截止时间早于法定最早日期。")
    await expect(status).to_contain_text("依据：政府采购法第35条。")
    await expect(status).to_contain_text(f"最早可为 {weekday_zh(deadline_day)}（北京时间）。")
    assert (await api_get(live, "purchaser", f"/api/projects/{project_id}")
            )["lots"][0]["status"] == "draft"

    # The earliest legal dates, then publication: the announcement with its dates.
    await card.get_by_role("button", name="按法定最早日期填写").click()
    await expect(card.locator(f"#deadline-input-{lot['id']}")).to_have_value(
        f"{deadline_day}T09:30")
    await card.get_by_role("button", name="发布采购公告").click()
    await expect(card.locator("[data-status]")).to_have_text("已发布公告")
    await expect(card.locator(f"#status-{lot['id']}")).to_have_text("采购公告已发布。")
    announcement = page.locator('#announcements li[data-kind="procurement"]')
    await expect(announcement).to_have_count(1)
    await expect(announcement).to_contain_text("采购公告")
    await expect(announcement.locator('li[data-period="bid_deadline"] [data-day]')).to_have_text(
        weekday_zh(deadline_day))
    await expect(card.locator(f"#deadline-{lot['id']}")).to_have_text(f"{deadline_day} 09:30:00")
    # The correction form says whether a bid-affecting correction today moves the deadline.
    await expect(card.locator(f"#correction-moves-{lot['id']}")).to_contain_text("87号令第27条")

    # The language switch rewords the page, the refusal words included.
    await page.locator("#lang-toggle").click()
    await expect(card.locator("[data-status]")).to_have_text("Announced")
    await expect(announcement).to_contain_text("GPL art. 35")
    await expect(announcement.locator(".badge").first).to_have_text("Procurement notice")
    await expect(page.locator("#ann-heading")).to_have_text("This project's announcements")


async def test_qualification_fails_the_lot_then_retender(ui: BrowserSession) -> None:
    live = ui.live
    acc = live.accounts
    project = await api_post(live, "purchaser", "/api/projects", {
        "title": "区图书馆书架采购", "method": "open_tender", "region_code": "440106",
        "agency_org_id": acc["agency"].org_id,
        "lots": [{"title": "书架", "category_code": "A0501", "budget_fen": 50_000_000,
                  "ceiling_fen": 48_000_000}]})
    lot_id = project["lots"][0]["id"]
    docs_from = T0 + HOUR
    plan = await api_get(live, "purchaser",
                         f"/api/lots/{lot_id}/plan?documents_from_ms={docs_from}")
    deadline = max(d["day"] for d in plan["dates"])
    deadline_ms = int(datetime.fromisoformat(f"{deadline}T09:30:00+08:00").timestamp() * 1000)
    await api_post(live, "purchaser", f"/api/lots/{lot_id}/publish", {
        "documents_from_ms": docs_from, "documents_until_ms": deadline_ms,
        "deadline_ms": deadline_ms})
    # The opening (another module's, fed by events later) ran: three bidders are in.
    bidders = tuple(acc[k].org_id for k in ("s1", "s2", "s3"))
    projects = live.services.projects
    await projects.run(None, lot_id, lambda s, now: CloseBidding(deadline_ms, bidders))
    await projects.run(None, lot_id, lambda s, now: RecordOpening(deadline_ms + 1, bidders))

    # The commissioned agency runs the review (the purchaser could too).
    page = await ui.open_as("agency", f"/app/projects/{project['id']}")
    card = page.locator(f'article[data-lot="{lot_id}"]')
    await expect(card.locator("[data-status]")).to_have_text("已开标")
    await expect(card.locator(".next-step")).to_contain_text("87号令第44条")
    rows = card.locator("tr[data-bidder]")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(0)).to_contain_text(acc["s1"].name)
    # A fail without its reason is stopped in words; with it, fewer than 3 pass: the lot fails.
    await rows.nth(1).get_by_label("不合格", exact=True).check()
    await card.get_by_role("button", name="提交资格审查结论").click()
    await expect(card.locator(f"#status-{lot_id}")).to_have_text(
        "不合格须说明理由（87号令第44条）。")
    await rows.nth(1).get_by_role("textbox").fill("营业执照已过期")
    await card.get_by_role("button", name="提交资格审查结论").click()
    await expect(card.locator("[data-status]")).to_have_text("废标")
    await expect(card.locator(".next-step")).to_contain_text("合格投标人不足3家")
    await expect(card.locator(".qual-results")).to_contain_text("营业执照已过期")
    await expect(page.locator('#announcements li[data-kind="failure"]')).to_contain_text("O87 44")
    lot = (await api_get(live, "purchaser", f"/api/projects/{project['id']}"))["lots"][0]
    assert [q["passed"] for q in lot["qualification"]] == [True, False, True]

    # O87 43: re-tender by another method; the lot is a draft again with a new plan.
    await card.get_by_label("采购方式").select_option("competitive_negotiation")
    await card.get_by_role("button", name="重新采购（回到草稿）").click()
    await expect(card.locator("[data-status]")).to_have_text("草稿")
    await expect(card.locator('li[data-period="negotiation_response"]')).to_contain_text(
        "74号令第29条")


async def test_calendar_enter_a_day_and_declare_a_year(ui: BrowserSession) -> None:
    live = ui.live
    reg = live.services.registry
    org = await reg.create_organisation("平台运营中心", "platform", now_ms=0)
    admin = await reg.create_user(org.id, "管理员", [Role.ADMIN], now_ms=0)
    token, _ = await reg.issue_token(admin.id, now_ms=0)

    page = await ui.new_page(token=token)
    await page.goto(ui.url("/app/projects"))
    await page.get_by_role("navigation").get_by_role("link", name="节假日日历").click()
    await expect(page).to_have_url(re.compile(r"/app/calendar"))
    # The test clock is in 2030, a year the holiday package does not know.
    banner = page.locator('#banners [data-banner="unknown"]')
    await expect(banner).to_contain_text("2030 年节假日安排尚未录入")
    await expect(banner).to_contain_text("临时日期")

    await page.fill("#entry-day", "2030-01-01")
    await page.get_by_label("休息（节假日）").check()
    await page.fill("#entry-name", "元旦")
    await page.get_by_role("button", name="保存这一天").click()
    row = page.locator('#days tr[data-day="2030-01-01"]')
    await expect(row).to_contain_text("元旦")
    await expect(row).to_contain_text("管理员录入")
    await expect(row).to_contain_text("节假日")
    day = await api_get(live, "purchaser", "/api/calendar/days/2030-01-01")
    assert (day["working"], day["source"]) == (False, "administrator")

    await page.fill("#entry-day", "2030-13-01")
    await page.get_by_role("button", name="保存这一天").click()
    await expect(page.locator("#entry-day-error")).to_have_text("日期格式为 YYYY-MM-DD。")

    await page.get_by_role("button", name="声明 2030 年已录入完整").click()
    await expect(banner).to_have_count(0)
    await expect(page.locator("#year-standing")).to_contain_text("已声明完整")
    assert (await api_get(live, "purchaser", "/api/calendar/years/2030"))["known"] is True

    await row.get_by_role("button", name="删除 2030-01-01").click()
    await expect(row).to_have_count(0)
    await page.locator("#lang-toggle").click()
    await expect(page.locator("#days-heading")).to_have_text("Holidays and make-up days of 2030")


async def test_a_bid_affecting_correction_moves_the_deadline(ui: BrowserSession) -> None:
    live = ui.live
    project = await api_post(live, "purchaser", "/api/projects", {
        "title": "区医院空调维保采购", "method": "open_tender", "region_code": "440104",
        "lots": [{"title": "空调维保", "category_code": "C", "budget_fen": 30_000_000,
                  "ceiling_fen": 30_000_000}]})
    lot_id = project["lots"][0]["id"]
    docs_from = T0 + HOUR
    plan = await api_get(live, "purchaser",
                         f"/api/lots/{lot_id}/plan?documents_from_ms={docs_from}")
    deadline = max(d["day"] for d in plan["dates"])
    deadline_ms = int(datetime.fromisoformat(f"{deadline}T09:30:00+08:00").timestamp() * 1000)
    await api_post(live, "purchaser", f"/api/lots/{lot_id}/publish", {
        "documents_from_ms": docs_from, "documents_until_ms": deadline_ms,
        "deadline_ms": deadline_ms})
    # Ten days before the deadline a bid-affecting correction leaves less than 15 (O87 27).
    now = deadline_ms - 10 * DAY
    await live.set_clock(now)
    today = datetime.fromtimestamp((now + SHANGHAI_MS) / 1000, tz=UTC).strftime("%Y-%m-%d")
    moved_to = (await api_get(
        live, "purchaser", f"/api/calendar/dates?period=correction_notice&from={today}"))["day"]
    assert moved_to > deadline

    page = await ui.open_as("purchaser", f"/app/projects/{project['id']}")
    card = page.locator(f'article[data-lot="{lot_id}"]')
    await expect(card.locator(f"#correction-moves-{lot_id}")).to_have_text(
        f"今天发布影响投标的更正，投标截止将顺延至 {weekday_zh(moved_to)}"
        "（87号令第27条：距截止不少于15日）。")
    await card.get_by_label("更正内容可能影响投标文件编制").check()
    await card.get_by_role("button", name="发布更正公告").click()
    await expect(card.locator(f"#deadline-{lot_id}")).to_have_text(f"{moved_to} 09:30:00")
    await expect(card.locator(f"#status-{lot_id}")).to_have_text(
        f"更正公告已发布，投标截止改为 {moved_to} 09:30:00（87号令第27条）。")
    correction = page.locator('#announcements li[data-kind="correction"]')
    await expect(correction).to_contain_text("更正公告")
    await expect(correction.locator('li[data-period="correction_notice"]')).to_contain_text(
        "87号令第27条")
