"""The plan-to-registration pages in Chromium: a purchaser registers a budget project (yuan typed,
fen stored exactly), adds a plan and publishes its procurement intention with the 30-day rule's
earliest start shown from the calendar (财库〔2020〕10号); a project drawing on the plan through
the new-project form; a tender document uploaded as the raw body, with the SHA-256 the server
answers; a supplier finds the published project, registers with an electronic guarantee,
downloads the document (its bytes checked against the announced SHA-256) and sees its
registration; a second supplier reusing that guarantee is refused in words; the purchaser sees
the registration and the download with the supplier's device fingerprint and address; the
language switch rewords; the supplier withdraws before the deadline."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

from market.catalog import Catalog, shipped_catalog_text
from market.feed.service import core_id_for
from market.registry import Role, shipped_regions_text
from tests.browser.conftest import LIVE_T0 as T0
from tests.browser.support import BrowserSession, api_get, api_post, expect

HOUR = 3600 * 1000
DAY = 24 * HOUR
SHANGHAI_MS = 8 * HOUR
DOCUMENT = "%PDF-1.4\n招标文件：台式计算机120台，三年保修。\n".encode()


def beijing_day(ms: int) -> str:
    return datetime.fromtimestamp((ms + SHANGHAI_MS) / 1000, tz=UTC).strftime("%Y-%m-%d")


def weekday_zh(day: str) -> str:
    names = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]
    return f"{day}（{names[datetime.fromisoformat(day).weekday()]}）"


async def test_plan_project_document_registration_and_evidence(ui: BrowserSession,
                                                               tmp_path: Path) -> None:
    live = ui.live
    acc = live.accounts
    await Catalog(live.services.sessions).import_csv(shipped_catalog_text())

    # ------------------------------------------------------------ budget project, plan, intention
    page = await ui.open_as("purchaser", "/app/projects")
    await page.get_by_role("navigation").get_by_role("link", name="预算与计划").click()
    await expect(page).to_have_url(re.compile(r"/app/budgets$"))
    await expect(page.locator("#bp-year")).to_have_value("2030")
    await page.fill("#bp-code", "440106-2030-001")
    await page.fill("#bp-name", "2030年教学设备购置")
    await page.fill("#bp-amount", "3,000,000.05")
    await page.fill("#bp-region", "440106")
    await page.get_by_role("button", name="登记预算项目").click()
    budget_item = page.locator("#budget-list li[data-budget]")
    await expect(budget_item).to_have_count(1)
    await expect(budget_item).to_contain_text("¥3,000,000.05")
    budget = (await api_get(live, "purchaser", "/api/budget-projects"))["items"][0]
    assert (budget["amount_fen"], budget["region_code"]) == (300_000_005, "440106")

    plan_form = page.locator(f"#plan-{budget['id']}")
    await plan_form.get_by_label("计划名称").fill("计算机采购")
    await plan_form.get_by_label("品目编码").fill("A020101")
    await plan_form.get_by_label("计划金额（元）").fill("3,000,000.06")
    await plan_form.get_by_role("button", name="保存采购计划").click()
    # GPL 6: more than the budget project has: refused in words, with what is left.
    await expect(page.locator(f"#plan-{budget['id']}-status")).to_have_text(
        "采购计划合计不得超过预算项目金额。 依据：政府采购法第6条。 尚余 ¥3,000,000.05。")
    await plan_form.get_by_label("计划金额（元）").fill("2000000")
    await plan_form.get_by_role("button", name="保存采购计划").click()
    plan_card = page.locator("article[data-plan]")
    await expect(plan_card).to_have_count(1)
    plan_id = await plan_card.get_attribute("data-plan")
    assert plan_id

    # The 30-day rule, from the server's calendar (intention_notice), with its article.
    earliest = await api_get(
        live, "purchaser", f"/api/calendar/dates?period=intention_notice&from={beijing_day(T0)}")
    rule = plan_card.locator(f"#int-{plan_id}-earliest")
    await expect(rule).to_contain_text(f"最早可于 {weekday_zh(earliest['day'])} 开始")
    await expect(rule).to_contain_text("财库〔2020〕10号")
    await plan_card.get_by_label("采购项目名称").fill("某中学台式计算机采购")
    await plan_card.get_by_label("预算金额（元）").fill("1000000")
    await plan_card.get_by_label("预计采购时间（月份）").fill("2030-05")
    await plan_card.get_by_label("采购需求概况").fill("台式计算机120台，三年保修")
    await plan_card.get_by_role("button", name="公开采购意向").click()
    intention = plan_card.locator("li[data-intention]")
    await expect(intention).to_contain_text("某中学台式计算机采购")
    await expect(intention.locator('li[data-period="intention_notice"] [data-day]')).to_have_text(
        weekday_zh(earliest["day"]))

    # ------------------------------------------------------------ a project drawing on the plan
    await plan_card.get_by_role("link", name="依据本计划新建采购项目").click()
    await expect(page).to_have_url(re.compile(r"/app/projects/new\?plan="))
    await expect(page.locator("#plan")).to_have_value(plan_id)
    await expect(page.locator("#region")).to_have_value("440106")
    await page.fill("#title", "某中学台式计算机采购")
    await page.fill("#lot1-title", "台式计算机")
    await page.fill("#lot1-category", "A02010105")
    await page.fill("#lot1-budget", "1000000")
    await page.fill("#lot1-ceiling", "950000")
    await page.fill("#lot1-bond", "20000")
    await page.get_by_role("button", name="保存项目（草稿）").click()
    await expect(page).to_have_url(re.compile(r"/app/projects/P[0-9a-f]+$"))
    project_id = page.url.rsplit("/", 1)[1]
    project = await api_get(live, "purchaser", f"/api/projects/{project_id}")
    assert project["plan_id"] == plan_id
    lot_id = project["lots"][0]["id"]
    await expect(page.locator("#project-plan-id")).to_have_text(plan_id)

    # ------------------------------------------------------------ the tender document
    card = page.locator(f'article[data-lot="{lot_id}"]')
    await card.locator(f"#doc-file-{lot_id}").set_input_files(
        {"name": "招标文件.pdf", "mimeType": "application/pdf", "buffer": DOCUMENT})
    await card.get_by_role("button", name="上传", exact=True).click()
    sha = hashlib.sha256(DOCUMENT).hexdigest()
    await expect(card.locator(f"#upload-status-{lot_id}")).to_have_text(
        f"“招标文件”第1版已上传，服务器计算的 SHA-256：{sha}")
    await expect(card.locator(f'tr[data-version="1"] [data-sha256="{sha}"]')).to_have_count(1)

    # Publication 31 days after the intention (its routes' own tests cover the form).
    now = T0 + 31 * DAY
    await live.set_clock(now)
    plan = await api_get(live, "purchaser", f"/api/lots/{lot_id}/plan?documents_from_ms={now}")
    deadline = max(d["day"] for d in plan["dates"])
    deadline_ms = int(datetime.fromisoformat(f"{deadline}T09:30:00+08:00").timestamp() * 1000)
    await api_post(live, "purchaser", f"/api/lots/{lot_id}/publish", {
        "documents_from_ms": now, "documents_until_ms": deadline_ms, "deadline_ms": deadline_ms})
    await live.set_clock(now + HOUR)

    # ------------------------------------------------------------ the supplier registers, downloads
    supplier = await ui.open_as("s1", "/app/auctions")
    await supplier.get_by_role("navigation").get_by_role("link", name="投标").click()
    await expect(supplier).to_have_url(re.compile(r"/app/bids$"))
    await supplier.fill("#bids-search", "台式计算机")
    listed = supplier.locator(f'li[data-project="{project_id}"]')
    await expect(listed.locator(f'li[data-lot="{lot_id}"]')).to_contain_text("未报名")
    await listed.get_by_role("link", name="查看并报名").click()
    await expect(supplier).to_have_url(re.compile(rf"/app/bids/{project_id}$"))
    lot = supplier.locator(f'article[data-lot="{lot_id}"]')
    await expect(lot.locator(f"#bond-rule-{lot_id}")).to_contain_text("¥20,000.00")
    # Before registering, the document is listed with its hash but not offered.
    await expect(lot.locator(f'[data-sha256="{sha}"]')).to_have_count(1)
    await expect(lot.get_by_role("button", name="下载")).to_have_count(0)
    await lot.get_by_label("保函编号").fill("BH2030041800017")
    await lot.get_by_label("出具机构").fill("中国银行广州分行")
    await lot.get_by_role("button", name="报名", exact=True).click()
    mine = lot.locator(f"#my-registration-{lot_id}")
    await expect(mine).to_contain_text("已报名")
    await expect(mine.locator(".bond")).to_have_text(
        "电子保函 BH2030041800017（中国银行广州分行），¥20,000.00")
    fingerprint = await supplier.locator("#fingerprint-note").get_attribute("data-fingerprint")
    assert fingerprint and re.fullmatch(r"[0-9a-f]{64}", fingerprint)
    async with supplier.expect_download() as downloading:
        await lot.get_by_role("button", name="下载").click()
    download = await downloading.value
    assert download.suggested_filename == "招标文件.pdf"
    saved = tmp_path / "got.pdf"
    await download.save_as(saved)
    assert saved.read_bytes() == DOCUMENT
    await expect(lot.locator(f"#status-{lot_id}")).to_have_text(
        f"已下载 招标文件.pdf，SHA-256 与公布值一致：{sha}")
    # The same browser profile computes the same fingerprint again (localStorage keeps its id).
    await supplier.reload()
    await expect(supplier.locator("#fingerprint-note")).to_have_attribute(
        "data-fingerprint", fingerprint)
    # The feed created the lot's opening and invited the registration: the page links its hall.
    await expect(supplier.locator(f"#hall-link-{lot_id}")).to_have_attribute(
        "href", f"/app/openings/{core_id_for('opening', lot_id, 1)}")
    await expect(supplier.locator(f"#hall-{lot_id}")).to_contain_text("开标大厅已开放")

    # One guarantee backs one registration: a second supplier reusing it is refused in words.
    other = await ui.open_as("s2", f"/app/bids/{project_id}")
    other_lot = other.locator(f'article[data-lot="{lot_id}"]')
    await other_lot.get_by_label("保函编号").fill("BH2030041800017")
    await other_lot.get_by_label("出具机构").fill("中国银行广州分行")
    await other_lot.get_by_role("button", name="报名", exact=True).click()
    await expect(other_lot.locator(f"#status-{lot_id}")).to_have_text(
        "此付款或保函已用于本包的另一报名。")

    # ------------------------------------------------------------ the purchaser sees the evidence
    await page.reload()
    card = page.locator(f'article[data-lot="{lot_id}"]')
    reg_row = card.locator(f'tr[data-supplier="{acc["s1"].org_id}"]')
    await expect(reg_row).to_contain_text(acc["s1"].name)
    await expect(reg_row.locator(".bond")).to_have_text(
        "电子保函 BH2030041800017（中国银行广州分行），¥20,000.00")
    download_row = card.locator(f'table.downloads tr[data-org="{acc["s1"].org_id}"]')
    await expect(download_row).to_have_count(1)
    await expect(download_row.locator(".fingerprint")).to_have_text(fingerprint)
    await expect(download_row).to_contain_text("127.0.0.1")
    await expect(download_row).to_contain_text("招标文件 v1")
    downloads = await api_get(live, "purchaser", f"/api/lots/{lot_id}/downloads")
    assert [d["device_fingerprint"] for d in downloads["items"]] == [fingerprint]

    # The language switch rewords the panel.
    await page.locator("#lang-toggle").click()
    await expect(card.locator(f"#tendering-h-{lot_id}")).to_have_text(
        "Tender documents, registrations and downloads")
    await expect(reg_row.locator(".bond")).to_have_text(
        "e-guarantee BH2030041800017 (中国银行广州分行), ¥20,000.00")
    await expect(page.get_by_role("navigation").get_by_role("link", name="Budgets and plans")
                 ).to_be_visible()

    # ------------------------------------------------------------ withdrawal before the deadline
    lot = supplier.locator(f'article[data-lot="{lot_id}"]')
    await lot.locator("summary").filter(has_text="撤回报名").click()
    await lot.get_by_role("button", name="撤回报名").click()
    await expect(lot.locator(f"#my-registration-{lot_id}")).to_contain_text("已撤回")
    await expect(lot.locator(f"#my-registration-{lot_id}")).to_contain_text("应于")
    regs = await api_get(live, "s1", f"/api/lots/{lot_id}/registrations")
    assert [r["status"] for r in regs["items"]] == ["withdrawn"]


async def test_a_supervisor_sees_the_splitting_flag(ui: BrowserSession) -> None:
    """Two inquiries of one category on one budget project, each under the open-tender threshold
    (4,000,000 yuan) and together above it: the Tianhe supervisor's page flags them (Reg 28);
    the purchaser's page shows no splitting section (it is the supervisors')."""
    live = ui.live
    services = live.services
    await services.registry.import_regions_csv(shipped_regions_text())
    await Catalog(services.sessions).import_csv(shipped_catalog_text())
    budget = await api_post(live, "purchaser", "/api/budget-projects", {
        "code": "440106-2030-002", "name": "2030年办公设备", "fiscal_year": 2030,
        "amount_fen": 1_000_000_000, "region_code": "440106"})
    plan = await api_post(live, "purchaser", f"/api/budget-projects/{budget['id']}/plans", {
        "name": "计算机", "category_code": "A020101", "amount_fen": 900_000_000})
    lots = []
    for n in (1, 2):
        project = await api_post(live, "purchaser", "/api/projects", {
            "title": f"计算机询价{n}", "method": "inquiry", "region_code": "440106",
            "plan_id": plan["id"],
            "lots": [{"title": "台式计算机", "category_code": "A02010105",
                      "budget_fen": 250_000_000, "ceiling_fen": 250_000_000}]})
        lots.append(project["lots"][0]["id"])
    org = await services.registry.create_organisation("天河区财政局", "supervisor",
                                                      region_code="440106", now_ms=0)
    user = await services.registry.create_user(org.id, "监管员", [Role.SUPERVISOR], now_ms=0)
    token, _ = await services.registry.issue_token(user.id, now_ms=0)

    page = await ui.new_page(token=token)
    await page.goto(ui.url("/app/projects"))
    await page.get_by_role("navigation").get_by_role("link", name="预算与计划").click()
    await page.get_by_role("button", name="查看采购计划").click()
    flag = page.locator(f'#splitting-{budget["id"]} li[data-flag="A020101"]')
    await expect(flag).to_contain_text("2 个采购包合计 ¥5,000,000.00，超过数额标准 ¥4,000,000.00")
    await expect(flag).to_contain_text("政府采购法实施条例第28条")
    await expect(flag).to_contain_text(lots[0])
    await expect(page.locator("#new-budget-card")).to_be_hidden()

    purchaser = await ui.open_as("purchaser", f"/app/budgets?budget={budget['id']}")
    await expect(purchaser.locator("article[data-plan]")).to_have_count(1)
    await expect(purchaser.locator(f"#splitting-{budget['id']}")).to_have_count(0)
