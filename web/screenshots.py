"""Screenshots of every browser page with demo data, for docs/screenshots/.

    .venv/bin/python -m web.screenshots [--out docs/screenshots] [--chromium /usr/bin/chromium]

Starts ``bidroom demo`` on a free port in a temporary data dir, opens an auction of its own
that lasts under a minute (real time: the demo has no test clock), lets four suppliers bid —
one of them through the page, so its receipts show — until an anti-sniping extension, and
photographs each page in Chromium (Python Playwright, Debian's chromium; nothing is
downloaded). It waits for that auction to close and photographs the result. About a minute.

Pages: sign-in (token, CA certificate, demo accounts), the list, the create form, the supplier's
room (desktop, phone, English), the watch room with its chart, the result; and, with the demo's
certificates, an opening of its own: the hall after a decryption in the page, the hall after
唱标 with an objection, and the signed record; the procurement pages: the project list, the
new-project form, a project's plan with a refused deadline, the project after publication (and
in English), and the administrator's calendar for next year; budgets and plans with an
intention, the new-project form on a plan, the administrator's splitting check, a published
lot's documents, registrations and downloads, the supplier's tenders and its registered lot
(and in English); the public portal (search, one announcement with
its statutory dates).
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

__all__ = ["main"]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--font-render-hinting=none", "--lang=zh-CN",
]
SECOND = 1000

# (seconds after the start, supplier number 1..4 or 0 for the page's supplier, price in fen)
BIDS: tuple[tuple[float, int, int], ...] = (
    (1.5, 2, 59_600_000), (3.0, 0, 59_400_000), (5.0, 3, 59_250_000), (7.5, 4, 59_000_000),
    (10.0, 2, 58_800_000), (12.5, 0, 58_600_000), (15.0, 3, 58_350_000),
    (18.0, 4, 58_100_000), (21.0, 0, 57_900_000), (24.5, 2, 57_700_000),
    (27.5, 3, 57_450_000),
)


def _say(text: str) -> None:
    print(f"screenshots: {text}", flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _http(method: str, url: str, token: str | None = None,
          body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def _put_bytes(url: str, token: str, data: bytes) -> Any:
    request = urllib.request.Request(url, data=data, method="PUT")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/octet-stream")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


class DemoServer:
    """``bidroom demo`` in a process group of its own; its accounts from demo-accounts.json."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / "demo.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.doc: dict[str, Any] = {}

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BIDROOM_")}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "web.cli", "demo", "--port", str(self.port),
                 "--data-dir", str(self.data_dir)],
                cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        accounts = self.data_dir / "demo-accounts.json"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the demo exited; see {self.log_path}:\n{self.log_tail()}")
            if accounts.exists():
                with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                    if _http("GET", f"{self.base}/api/health") == {"status": "ok"}:
                        self.doc = json.loads(accounts.read_text(encoding="utf-8"))
                        return
            time.sleep(0.2)  # waiting for a process to come up
        raise RuntimeError(f"the demo did not start in 90 s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        from bidroom.stores.embedded import EmbeddedRedis

        with contextlib.suppress(Exception):  # never leave the demo's Redis behind
            EmbeddedRedis(self.data_dir / "redis").stop()

    def account(self, role: str, n: int = 1) -> dict[str, Any]:
        found = [a for a in self.doc["accounts"] if a["role"] == role]
        account: dict[str, Any] = found[n - 1]
        return account


class Shooter:
    def __init__(self, browser: Browser, demo: DemoServer, out: Path) -> None:
        self.browser = browser
        self.demo = demo
        self.out = out
        self.errors: list[str] = []
        self.made: list[Path] = []

    async def page(self, token: str | None, *, width: int = 1280, height: int = 860,
                   lang: str = "zh", scale: float = 1) -> Page:
        context = await self.browser.new_context(
            viewport={"width": width, "height": height}, device_scale_factor=scale,
            locale="zh-CN", timezone_id="Asia/Shanghai")
        script = f"localStorage.setItem('bidroom.lang', {json.dumps(lang)});"
        if token:
            script += f"sessionStorage.setItem('bidroom.token', {json.dumps(token)});"
        await context.add_init_script(script)
        page = await context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        return page

    async def shoot(self, page: Page, name: str, *, full_page: bool = True) -> None:
        await page.evaluate("document.fonts.ready")
        path = self.out / f"{name}.png"
        await page.screenshot(path=str(path), full_page=full_page, animations="disabled",
                              caret="hide")
        self.made.append(path)
        _say(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")


async def _live(page: Page, text: str = "实时连接") -> None:
    from playwright.async_api import expect

    await expect(page.locator("#conn-state")).to_have_text(text, timeout=20_000)


class OpeningScene:
    """A sealed-bid opening of our own whose deadline passes while the auction runs: three
    suppliers seal (with the demo's certificates in DATA_DIR/suppliers/<n>) and upload."""

    def __init__(self, demo: DemoServer, work: Path) -> None:
        self.demo = demo
        self.work = work
        self.opening_id = ""
        self.deadline_ms = 0

    def folder(self, n: int) -> Path:
        return self.demo.data_dir / "suppliers" / str(n)

    def available(self) -> bool:
        return all((self.folder(n) / "enc-key.pem").exists() for n in (1, 2, 3))

    def start(self) -> None:
        from datetime import UTC, datetime

        from bidroom.opening.client import seal_bid_files

        base, demo = self.demo.base, self.demo
        agency, purchaser = demo.account("agency"), demo.account("purchaser")
        suppliers = [demo.account("supplier", n) for n in range(1, 5)]
        now = _http("GET", f"{base}/api/time")["server_time_ms"]
        self.deadline_ms = now + 40 * SECOND
        created = _http("POST", f"{base}/api/openings", agency["token"], {
            "title": "西湖区中小学多媒体教室设备采购项目（第二包）",
            "title_en": "Multimedia classroom equipment, lot 2",
            "purchaser_org_id": purchaser["org_id"],
            "invited_supplier_ids": [s["org_id"] for s in suppliers],
            "settings": {"deadline_ms": self.deadline_ms, "sign_in_ms": 10 * 60 * SECOND,
                         "decryption_window_ms": 10 * 60 * SECOND,
                         "objection_window_ms": 15 * 60 * SECOND},
        })
        self.opening_id = created["id"]
        prices = {1: 47_760_000, 2: 48_300_000, 3: 47_120_000}
        for n, price in prices.items():
            folder = self.folder(n)
            sealed = self.work / f"opening-bid-{n}.cms"
            seal_bid_files(
                form={"total_price_fen": price, "delivery_days": 20 + 5 * n,
                      "warranty_months": 36,
                      "items": [{"name": "交互式智能平板 86 英寸", "value": f"型号 IFP-86{n}"},
                                {"name": "数量", "value": "240 台"}]},
                documents=[folder / "技术方案.txt"], sign_cert=folder / "sign-cert.pem",
                sign_key=folder / "sign-key.pem", enc_cert=folder / "enc-cert.pem",
                out=sealed, now=datetime.fromtimestamp(now / 1000, tz=UTC))
            token = suppliers[n - 1]["token"]
            _put_bytes(f"{base}/api/openings/{self.opening_id}/bid", token, sealed.read_bytes())
            _http("POST", f"{base}/api/openings/{self.opening_id}/sign-in", token, {})

    async def shoot(self, shooter: Shooter) -> None:
        from playwright.async_api import expect

        from bidroom.opening.client import unwrap_for_submission

        base, demo = self.demo.base, self.demo
        suppliers = [demo.account("supplier", n) for n in range(1, 4)]
        hall = f"{base}/app/openings/{self.opening_id}"
        wait_s = (self.deadline_ms - _http("GET", f"{base}/api/time")["server_time_ms"]) / 1000
        await asyncio.sleep(max(0.0, wait_s) + 1.5)  # real time: the demo has no test clock
        supplier = await shooter.page(suppliers[0]["token"])
        await supplier.goto(hall)
        agency = await shooter.page(demo.account("agency")["token"], height=1000)
        await agency.goto(hall)
        for page in (supplier, agency):
            await _live(page)
            await expect(page.locator("#bidders tbody tr")).to_have_count(3, timeout=20_000)
        # Supplier 1 decrypts in its page with its key file; 2 and 3 with their programs.
        await supplier.set_input_files("#enc-key", str(self.folder(1) / "enc-key.pem"))
        await supplier.locator("#decrypt-button").click()
        await expect(supplier.locator("#decrypt-status")).to_contain_text("解密成功")
        for n in (2, 3):
            token = suppliers[n - 1]["token"]
            wrapped = _http("GET", f"{base}/api/openings/{self.opening_id}/bid/encrypted-key",
                            token)
            key = unwrap_for_submission(wrapped["encrypted_key_b64"],
                                        (self.folder(n) / "enc-key.pem").read_bytes())
            _http("POST", f"{base}/api/openings/{self.opening_id}/decrypt", token,
                  {"content_key_b64": key})
        await expect(agency.locator("#decrypted-count")).to_have_text("3")
        await shooter.shoot(supplier, "opening-hall-decrypted")
        await agency.locator("#reveal-button").click()
        for page in (supplier, agency):
            await expect(page.locator("#record tbody tr")).to_have_count(3)
        await supplier.get_by_label("提出异议（将向所有参加人公开）").fill(
            "请核实供应商3的交货期是否满足招标文件要求")
        await supplier.get_by_role("button", name="提交异议").click()
        await expect(agency.locator("#objections li[data-objection]")).to_have_count(1)
        await shooter.shoot(agency, "opening-hall")
        await supplier.goto(f"{hall}/record")
        await expect(supplier.locator("#record tbody tr")).to_have_count(3)
        await shooter.shoot(supplier, "opening-record")


async def _projects(shooter: Shooter) -> None:
    """The procurement pages: the project list, the new-project form, a project whose first
    lot's deadline is refused as too early (the plan's dates with their articles), the same
    project after publication with its announcement, in English, and the admin's calendar for
    next year (not known yet: the provisional banner) with one day entered."""
    from playwright.async_api import expect

    base, demo = shooter.demo.base, shooter.demo
    purchaser, agency = demo.account("purchaser"), demo.account("agency")
    _http("POST", f"{base}/api/projects", purchaser["token"], {
        "title": "西湖区教育局办公家具采购", "title_en": "Office furniture", "method": "inquiry",
        "region_code": "330106", "lots": [{"title": "办公桌椅", "category_code": "A0501",
                                           "budget_fen": 28_000_000, "ceiling_fen": 27_500_000}]})
    page = await shooter.page(purchaser["token"], height=900)
    await page.goto(f"{base}/app/projects/new")
    await page.fill("#title", "西湖区中小学计算机教室设备采购项目")
    await page.fill("#title_en", "Computer classrooms for Xihu schools")
    await page.fill("#region", "330106")
    await page.fill("#agency", agency["org_id"])
    await page.fill("#lot1-title", "台式计算机 480 台")
    await page.fill("#lot1-category", "A02010105")
    await page.fill("#lot1-budget", "2,880,000")
    await page.fill("#lot1-ceiling", "2,850,000.50")
    await page.fill("#lot1-bond", "57600")
    await page.click("#add-lot")
    await page.fill("#lot2-title", "激光打印机 60 台")
    await page.fill("#lot2-category", "A020210")
    await page.fill("#lot2-budget", "180000")
    await page.fill("#lot2-ceiling", "185000")
    await page.click("#project-submit")
    await expect(page.locator("#error-summary")).to_be_visible()
    await shooter.shoot(page, "project-new")
    await page.fill("#lot2-ceiling", "176000")
    await page.click("#project-submit")
    await expect(page.locator("article.lot-card")).to_have_count(2, timeout=20_000)
    lot = await page.locator("article.lot-card").first.get_attribute("data-lot")
    card = page.locator(f'article[data-lot="{lot}"]')
    await expect(card.locator('li[data-period="bid_deadline"]')).to_be_visible()
    start = await card.locator(f"#from-{lot}").input_value()
    day = start[:10]
    await card.locator(f"#until-{lot}").fill(f"{day}T17:00")
    await card.locator(f"#deadline-input-{lot}").fill(f"{day}T17:30")
    await card.locator(f"#publish-submit-{lot}").click()
    await expect(card.locator(f"#status-{lot}")).to_contain_text("最早可为")
    await shooter.shoot(page, "project-plan")
    await card.locator(f"#earliest-{lot}").click()
    await card.locator(f"#publish-submit-{lot}").click()
    await expect(card.locator("[data-status]")).to_have_text("已发布公告")
    await expect(page.locator(f"#correction-moves-{lot}")).to_be_visible()
    await shooter.shoot(page, "project-announced")
    url = page.url
    english = await shooter.page(agency["token"], lang="en", height=900)
    await english.goto(url)
    await expect(english.locator(f'article[data-lot="{lot}"] [data-status]')).to_have_text(
        "Announced")
    await shooter.shoot(english, "project-en")
    listing = await shooter.page(purchaser["token"])
    await listing.goto(f"{base}/app/projects")
    await expect(listing.locator("li[data-project]")).to_have_count(2)
    await shooter.shoot(listing, "projects")

    admin = await shooter.page(demo.account("admin")["token"], height=900)
    now = _http("GET", f"{base}/api/time")["server_time_ms"]
    year = time.gmtime(now / 1000 + 8 * 3600).tm_year + 1
    await admin.goto(f"{base}/app/calendar?year={year}")
    await expect(admin.locator('#banners [data-banner="unknown"]')).to_be_visible()
    await admin.fill("#entry-day", f"{year}-01-01")
    await admin.fill("#entry-name", "元旦")
    await admin.click("#entry-submit")
    await expect(admin.locator(f'#days tr[data-day="{year}-01-01"]')).to_be_visible()
    await shooter.shoot(admin, "calendar")
    # Leave the demo's calendar as it was (the year stays unknown).
    await admin.locator(f'button[data-remove="{year}-01-01"]').click()
    await expect(admin.locator(f'#days tr[data-day="{year}-01-01"]')).to_have_count(0)


def _upload(url: str, token: str, data: bytes, content_type: str) -> Any:
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


async def _tendering(shooter: Shooter) -> None:
    """Budgets and plans with a published intention and its 30-day rule; the new-project form
    drawing on the plan; a published lot's supplier page (registered with an e-guarantee, the
    document downloaded and checked), the supplier's tenders, the purchaser's documents,
    registrations and downloads with their fingerprints, and the administrator's splitting check."""
    from playwright.async_api import expect

    demo = shooter.demo
    base = demo.base
    purchaser, admin = demo.account("purchaser"), demo.account("admin")
    s1, s2 = demo.account("supplier", 1), demo.account("supplier", 2)
    # The demo ships no category catalogue: import the shipped subset (one SQLite writer more).
    await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "web.cli", "catalog", "import", "--data-dir",
                         str(demo.data_dir)], cwd=REPO_ROOT, check=True, capture_output=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("BIDROOM_")})
    now = _http("GET", f"{base}/api/time")["server_time_ms"]
    tm = time.gmtime(now / 1000 + 8 * 3600)
    later = time.gmtime(now / 1000 + 8 * 3600 + 62 * 86400)
    budget = _http("POST", f"{base}/api/budget-projects", purchaser["token"], {
        "code": f"330106-{tm.tm_year}-017", "name": f"{tm.tm_year}年中小学信息化设备购置",
        "fiscal_year": tm.tm_year, "amount_fen": 600_000_000, "region_code": "330106"})
    plan = _http("POST", f"{base}/api/budget-projects/{budget['id']}/plans", purchaser["token"],
                 {"name": "计算机采购", "category_code": "A020101", "amount_fen": 400_000_000})
    _http("POST", f"{base}/api/budget-projects/{budget['id']}/plans", purchaser["token"],
          {"name": "办公家具", "category_code": "A0501", "amount_fen": 80_000_000})
    _http("POST", f"{base}/api/plans/{plan['id']}/intentions", purchaser["token"], {
        "name": "西湖区中小学计算机教室设备采购",
        "requirement_summary": "台式计算机480台，三年上门保修",
        "budget_fen": 288_000_000, "expected_month": f"{later.tm_year}-{later.tm_mon:02d}"})
    page = await shooter.page(purchaser["token"], height=900)
    await page.goto(f"{base}/app/budgets?budget={budget['id']}")
    await page.locator(f"#plan-open-{plan['id']}").click()
    await expect(page.locator(f"#int-{plan['id']}-earliest")).to_be_visible()
    await shooter.shoot(page, "budgets")
    await page.goto(f"{base}/app/projects/new?plan={plan['id']}")
    await expect(page.locator("#plan")).to_have_value(plan["id"])
    await shooter.shoot(page, "project-new-plan", full_page=False)
    supervising = await shooter.page(admin["token"])
    await supervising.goto(f"{base}/app/budgets?budget={budget['id']}")
    await expect(supervising.locator(f"#splitting-{budget['id']}")).to_be_visible()
    await shooter.shoot(supervising, "budgets-supervisor")

    # A lot without a plan, published now with its earliest legal dates, and its document.
    project = _http("POST", f"{base}/api/projects", purchaser["token"], {
        "title": "西湖区图书馆自助借还设备采购", "title_en": "Self-service library kiosks",
        "method": "open_tender", "region_code": "330106",
        "lots": [{"title": "自助借还机 12 台", "category_code": "A02010105",
                  "budget_fen": 96_000_000, "ceiling_fen": 95_000_000, "bond_fen": 1_920_000}]})
    lot = project["lots"][0]["id"]
    document = "招标文件：自助借还机 12 台，含安装调试与三年维保。\n".encode() * 40
    _upload(f"{base}/api/lots/{lot}/documents?title=%E6%8B%9B%E6%A0%87%E6%96%87%E4%BB%B6"
            f"&filename=%E6%8B%9B%E6%A0%87%E6%96%87%E4%BB%B6.pdf", purchaser["token"], document,
            "application/pdf")
    # Issued a few seconds from now (publication ≤ the documents' start, O87 18 counts from it).
    issue = _http("GET", f"{base}/api/time")["server_time_ms"] + 3 * SECOND
    dates = _http("GET", f"{base}/api/lots/{lot}/plan?documents_from_ms={issue}",
                  purchaser["token"])["dates"]
    day = max(d["day"] for d in dates)
    y, m, d = (int(x) for x in day.split("-"))
    deadline = int(calendar.timegm((y, m, d, 1, 30, 0, 0, 0, 0)) * 1000)  # 09:30 Beijing
    _http("POST", f"{base}/api/lots/{lot}/publish", purchaser["token"], {
        "documents_from_ms": issue, "documents_until_ms": deadline, "deadline_ms": deadline})
    await asyncio.sleep(4)  # until the documents are issued (a real clock: the demo's)
    _http("POST", f"{base}/api/lots/{lot}/registrations", s2["token"], {"bond": {
        "method": "transfer", "amount_fen": 1_920_000, "reference": "TX20260918000321",
        "payer_account": "6222021202004567890"}})
    bidder = await shooter.page(s1["token"], height=900)
    await bidder.goto(f"{base}/app/bids/{project['id']}")
    card = bidder.locator(f'article[data-lot="{lot}"]')
    await card.get_by_label("保函编号").fill("BH330106202609180017")
    await card.get_by_label("出具机构").fill("中国银行杭州西湖支行")
    await card.locator(f"#register-submit-{lot}").click()
    await expect(card.locator(f"#my-registration-{lot}")).to_be_visible()
    async with bidder.expect_download():
        await card.get_by_role("button", name="下载").click()
    await expect(card.locator(f"#status-{lot}")).to_contain_text("SHA-256")
    await shooter.shoot(bidder, "bid-supplier")
    await bidder.goto(f"{base}/app/bids")
    await expect(bidder.locator(f'li[data-project="{project["id"]}"]')).to_be_visible()
    await shooter.shoot(bidder, "bids")
    await page.goto(f"{base}/app/projects/{project['id']}")
    await expect(page.locator(f'table.downloads tr[data-org="{s1["org_id"]}"]')).to_be_visible()
    await page.locator(f"#tendering-{lot}").scroll_into_view_if_needed()
    await shooter.shoot(page, "project-tendering")
    english = await shooter.page(s1["token"], lang="en", height=900)
    await english.goto(f"{base}/app/bids/{project['id']}")
    await expect(english.locator(f"#my-registration-{lot}")).to_be_visible()
    await shooter.shoot(english, "bid-supplier-en")


async def _portal(shooter: Shooter, base: str, purchaser: dict[str, Any]) -> None:
    """The public portal, signed out: two lots published now (deadline 30 days on, so the
    dates may cross into a year the calendar marks provisional), the search and one notice."""
    from playwright.async_api import expect

    day = 86_400_000
    now = _http("GET", f"{base}/api/time")["server_time_ms"]
    for title, lot, category in (("区实验小学多媒体教室建设", "交互式智能平板", "A02010104"),
                                 ("区人民医院医疗设备采购", "彩色超声诊断仪", "A032201")):
        created = _http("POST", f"{base}/api/projects", purchaser["token"], {
            "title": title, "method": "open_tender", "region_code": "440106",
            "lots": [{"title": lot, "category_code": category, "budget_fen": 90_000_000,
                      "ceiling_fen": 85_000_000}]})
        _http("POST", f"{base}/api/lots/{created['lots'][0]['id']}/publish", purchaser["token"],
              {"documents_from_ms": now + 60_000, "documents_until_ms": now + 25 * day,
               "deadline_ms": now + 30 * day})
    page = await shooter.page(None)
    await page.goto(f"{base}/app/portal?region=440000")
    await expect(page.locator("#portal-results li")).to_have_count(2)
    await shooter.shoot(page, "portal")
    await page.locator("#portal-results li").last.get_by_role("link").click()
    await expect(page.locator("#notice-dates tbody tr")).to_have_count(3)
    await shooter.shoot(page, "portal-notice")


async def _run(out: Path, chromium: str, demo: DemoServer, work: Path) -> list[Path]:
    from playwright.async_api import async_playwright, expect

    base = demo.base
    agency, purchaser = demo.account("agency"), demo.account("purchaser")
    suppliers = [demo.account("supplier", n) for n in range(1, 5)]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        shooter = Shooter(browser, demo, out)
        try:
            # A sealed-bid opening whose deadline passes while the auction below runs.
            scene = OpeningScene(demo, work)
            if scene.available():
                scene.start()
            else:
                _say("no demo certificates in DATA_DIR/suppliers: the opening hall is skipped")

            # Sign-in with the demo's accounts; the purchaser's list; the create form.
            page = await shooter.page(None)
            await page.goto(f"{base}/app/")
            await expect(page.locator("#demo-list button")).to_have_count(len(demo.doc["accounts"]))
            await shooter.shoot(page, "signin")

            # An auction of our own that runs for under a minute, with anti-sniping.
            now = _http("GET", f"{base}/api/time")["server_time_ms"]
            start = now + 12 * SECOND  # after the pages below have loaded
            created = _http("POST", f"{base}/api/auctions", agency["token"], {
                "title": "教学用笔记本电脑 120 台网上竞价",
                "title_en": "120 laptops for teaching: online reverse auction",
                "purchaser_org_id": purchaser["org_id"],
                "invited_supplier_ids": [s["org_id"] for s in suppliers],
                "settings": {
                    "ceiling_fen": 60_000_000, "budget_fen": 62_000_000,
                    "start_ms": start, "end_ms": start + 30 * SECOND,
                    "step_kind": "amount", "step_value": 50_000,
                    "sniping_window_ms": 6 * SECOND, "extension_ms": 6 * SECOND,
                    "max_extensions": 3, "min_valid_bidders": 3,
                },
            })
            auction_id = created["id"]

            page = await shooter.page(purchaser["token"])
            await page.goto(f"{base}/app/auctions")
            await expect(page.locator(f'li[data-auction="{auction_id}"]')).to_be_visible()
            await shooter.shoot(page, "auctions")
            await page.goto(f"{base}/app/auctions/new")
            await expect(page.locator("#supplier-choices input")).to_have_count(4)
            await page.fill("#title", "西湖区实验小学课桌椅网上竞价")
            await page.fill("#ceiling", "380000")
            await page.fill("#budget", "360000")
            await page.fill("#step", "12.345")
            await page.get_by_role("button", name="创建竞价").click()
            await expect(page.locator("#error-summary")).to_be_visible()
            await shooter.shoot(page, "create")

            # The rooms: supplier 1 bids through its page, the others over HTTP.
            room = await shooter.page(suppliers[0]["token"])
            await room.goto(f"{base}/app/auctions/{auction_id}/bid")
            phone = await shooter.page(suppliers[1]["token"], width=390, height=844, scale=2)
            await phone.goto(f"{base}/app/auctions/{auction_id}/bid")
            english = await shooter.page(suppliers[2]["token"], lang="en")
            await english.goto(f"{base}/app/auctions/{auction_id}/bid")
            watch = await shooter.page(purchaser["token"], height=1000)
            await watch.goto(f"{base}/app/auctions/{auction_id}/watch")
            for p in (room, phone, watch):
                await _live(p)
            await _live(english, "Live")
            t0 = time.monotonic() - (_http("GET", f"{base}/api/time")["server_time_ms"]
                                     - start) / 1000
            for at, who, price in BIDS:
                await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
                if who == 0:
                    await room.fill("#price", f"{price // 100}.{price % 100:02d}")
                    await room.click("#bid-submit")
                    await expect(room.locator("#bid-status")).to_contain_text("已被接受")
                else:
                    _http("POST", f"{base}/api/auctions/{auction_id}/bids",
                          suppliers[who - 1]["token"],
                          {"bid_id": uuid.uuid4().hex, "price_fen": price})
            await expect(watch.locator("#chart .ext-marker")).to_have_count(1)
            await room.locator("#own-bids details.receipt").first.locator("summary").click()
            await room.fill("#price", "579,500")
            await room.click("#bid-submit")  # refused by the form: above the allowed price
            await shooter.shoot(room, "supplier-room")
            await shooter.shoot(phone, "supplier-room-phone")
            await shooter.shoot(english, "supplier-room-en")
            await shooter.shoot(watch, "watch-room")

            # The close, then the result with identities.
            await expect(watch.locator("#winner-name")).to_be_visible(timeout=60_000)
            await shooter.shoot(watch, "watch-room-closed")
            await watch.goto(f"{base}/app/auctions/{auction_id}/result")
            await expect(watch.locator("#ranking tbody tr")).to_have_count(4)
            await shooter.shoot(watch, "result")
            await _portal(shooter, base, purchaser)
            if scene.opening_id:
                await scene.shoot(shooter)
            await _projects(shooter)
            await _tendering(shooter)
            if shooter.errors:
                raise RuntimeError(f"JavaScript errors in the pages: {shooter.errors}")
            return shooter.made
        finally:
            await browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m web.screenshots",
        description="Screenshot every browser page with demo data (docs/screenshots/*.png).")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--chromium", default=os.environ.get("BIDROOM_CHROMIUM",
                                                             "/usr/bin/chromium"),
                        help="the Chromium binary (default: Debian's /usr/bin/chromium)")
    args = parser.parse_args(argv)
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        print("screenshots: needs Playwright: .venv/bin/pip install -e '.[dev]'", file=sys.stderr)
        return 2
    if not os.access(args.chromium, os.X_OK):
        print(f"screenshots: no Chromium at {args.chromium}: sudo apt-get install chromium",
              file=sys.stderr)
        return 2
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bidroom-shots-") as tmp:
        demo = DemoServer(Path(tmp) / "demo")
        try:
            demo.start()
            _say(f"demo server at {demo.base}")
            made = asyncio.run(_run(out, args.chromium, demo, Path(tmp)))
        except Exception as exc:
            print(f"screenshots: failed: {exc}\n--- demo log ---\n{demo.log_tail()}",
                  file=sys.stderr)
            return 1
        finally:
            demo.stop()
    _say(f"{len(made)} screenshots in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
