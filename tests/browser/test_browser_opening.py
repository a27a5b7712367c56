"""The opening hall (开标大厅) in real Chromium: a supplier signs in with its CA certificate (the
browser signs the server's challenge with WebCrypto), uploads its sealed bid, signs in to the
hall and decrypts its own bid with its encryption key file — read in the browser, never
uploaded; the 唱标 record then reaches every open page in the same event, objections are
raised and answered in the open, and the agency confirms the record."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from bidroom.opening.ca import PlatformCA
from bidroom.opening.runner import load_or_init_ca
from tests.browser.conftest import LIVE_T0 as T0
from tests.browser.conftest import start_live
from tests.browser.support import MINUTE, BrowserSession, expect
from tests.live import LiveServer
from tests.opening_kit import Keys, at, form, issue

if TYPE_CHECKING:
    from playwright.async_api import Page

DEADLINE = T0 + 60 * MINUTE
PRICES = {"s1": 23_880_000, "s2": 24_150_000, "s3": 23_560_000}


@pytest.fixture
async def live(tmp_path: Path, browser_redis_url: str, migrated_database_url: str
               ) -> AsyncIterator[LiveServer]:
    """The app with its platform CA (DATA_DIR/ca), made a day before the test clock."""
    PlatformCA.init(tmp_path / "ca", now=at(T0 - 24 * 60 * MINUTE))
    async with start_live(tmp_path, browser_redis_url, migrated_database_url) as server:
        yield server


@pytest.fixture
def machines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The suppliers' own machines: outside the server's data dir."""
    return tmp_path_factory.mktemp("suppliers-own-machines")


async def hall_page(page: Page) -> None:
    await expect(page.locator("#conn-state")).to_have_text("实时连接")
    await expect(page.locator("#main")).not_to_have_attribute("aria-busy", "true")


async def test_ca_login_decrypt_in_the_hall_and_the_record_reaches_every_page(
    ui: BrowserSession, machines: Path,
) -> None:
    live = ui.live
    acc = live.accounts
    ca = load_or_init_ca(live.services.settings.data_dir / "ca", now_ms=T0)
    keys: dict[str, Keys] = {
        k: issue(ca, acc[k].org_id, acc[k].name, machines / k, now_ms=T0 - 60 * MINUTE)
        for k in PRICES
    }
    sealed: dict[str, Path] = {}
    for key, price in PRICES.items():  # each seals on its own machine
        sealed[key] = machines / f"{key}.cms"
        keys[key].seal(sealed[key], form(price), now_ms=T0)

    async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as http:
        def auth(key: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {acc[key].token}"}

        created = await http.post("/api/openings", headers=auth("agency"), json={
            "title": f"西湖区中小学多媒体教室设备采购 {uuid.uuid4().hex[:4]}",
            "title_en": "Multimedia classroom equipment",
            "purchaser_org_id": acc["purchaser"].org_id,
            "invited_supplier_ids": [acc[k].org_id for k in PRICES],
            "settings": {"deadline_ms": DEADLINE, "objection_window_ms": 5 * MINUTE},
        })
        assert created.status_code == 201, created.text
        opening_id = created.json()["id"]
        for key in ("s2", "s3"):  # their own programs upload theirs
            uploaded = await http.put(f"/api/openings/{opening_id}/bid",
                                      content=sealed[key].read_bytes(), headers=auth(key))
            assert uploaded.status_code == 201, uploaded.text

        # Supplier 1 signs in with its certificate. A key that does not match is refused.
        s1 = await ui.new_page()
        sent: list[str] = []
        s1.on("request", lambda r: sent.append(r.post_data or ""))
        await s1.goto(ui.url("/app/"))
        await s1.set_input_files("#ca-cert", keys["s1"].sign_cert)
        await s1.set_input_files("#ca-key", keys["s1"].enc_key)
        await s1.get_by_role("button", name="证书登录").click()
        await expect(s1.locator("#ca-error")).to_have_text("签名验证失败：私钥与证书不匹配。")
        await s1.set_input_files("#ca-key", keys["s1"].sign_key)
        await s1.get_by_role("button", name="证书登录").click()
        await expect(s1).to_have_url(re.compile(r"/app/auctions$"))
        await expect(s1.locator("#whoami")).to_contain_text(acc["s1"].name)
        item = s1.locator(f'li[data-opening="{opening_id}"]')
        await expect(item.locator(".badge")).to_have_text("接受投标")
        await item.get_by_role("link", name="进入开标大厅").click()
        await hall_page(s1)

        # It uploads its sealed file through the hall; nobody learns who else has bid.
        await s1.set_input_files("#bid-file", sealed["s1"])
        await s1.get_by_role("button", name="上传").click()
        await expect(s1.locator("#upload-status")).to_contain_text("已上传")
        await expect(s1.locator("#my-status")).to_have_text("密封")
        await expect(s1.locator("#bid-count")).to_have_text("截止前不公开")
        agency = await ui.open_as("agency", f"/app/openings/{opening_id}")
        supervisor = await ui.open_as("supervisor", f"/app/openings/{opening_id}", width=390)
        for page in (agency, supervisor):
            await hall_page(page)
            await expect(page.locator("#bid-count")).to_have_text("3")
            await expect(page.locator("#bidders-empty")).to_have_text("投标截止前不公开投标人。")

        # Sign-in opens half an hour before the deadline.
        await live.set_clock(DEADLINE - 10 * MINUTE)
        await s1.get_by_role("button", name="签到").click()
        await expect(s1.locator("#my-signed-in")).to_have_text("是")
        for key in ("s2", "s3"):
            signed = await http.post(f"/api/openings/{opening_id}/sign-in", headers=auth(key))
            assert signed.status_code == 200, signed.text
        await expect(agency.locator("#signed-count")).to_have_text("3")

        # The deadline is the opening: bidders become known to all, no content yet.
        await live.set_clock(DEADLINE)
        for page in (s1, agency, supervisor):
            await expect(page.locator("#phase")).to_have_text("解密中")
            await expect(page.locator("#bidders tbody tr")).to_have_count(3)
            await expect(page.locator('#banners [data-banner="phase"]')).to_contain_text(
                "投标已截止，开标开始")

        # Supplier 1 decrypts its own bid with its encryption key file, in the browser.
        await s1.set_input_files("#enc-key", keys["s1"].enc_key)
        await s1.get_by_role("button", name="解密", exact=True).click()
        await expect(s1.locator("#decrypt-status")).to_contain_text("解密成功")
        for page in (s1, agency, supervisor):
            row = page.locator(f'#bidders tr[data-supplier="{acc["s1"].org_id}"]')
            await expect(row.locator(".bid-status")).to_have_text("已解密")
        key_body = "".join(keys["s1"].enc_key.read_text().splitlines()[1:-1])
        assert not any("PRIVATE KEY" in body or key_body[:64] in body for body in sent), \
            "a private key left the browser"
        for key in ("s2", "s3"):
            wrapped = await http.get(f"/api/openings/{opening_id}/bid/encrypted-key",
                                     headers=auth(key))
            content_key = keys[key].unwrap(wrapped.json()["encrypted_key_b64"])
            done = await http.post(f"/api/openings/{opening_id}/decrypt", headers=auth(key),
                                   json={"content_key_b64": content_key})
            assert done.status_code == 200, done.text
        await expect(agency.locator("#decrypted-count")).to_have_text("3")

        # 唱标: the record reaches every open page in one and the same event.
        await agency.get_by_role("button", name="唱标").click()
        for page in (s1, agency, supervisor):
            await expect(page.locator("#record tbody tr")).to_have_count(3)
            await expect(page.locator("#phase")).to_have_text("已唱标")
            for key, price in PRICES.items():
                row = page.locator(f'#record tr[data-supplier="{acc[key].org_id}"]')
                await expect(row).to_contain_text(acc[key].name)
                await expect(row).to_contain_text(f"¥{price // 100:,}.{price % 100:02d}")
        revealed = [[m for m in ui.messages(page, "opening_event")
                     if m["event"]["kind"] == "record_revealed"] for page in (s1, agency,
                                                                               supervisor)]
        assert all(len(r) == 1 for r in revealed)
        assert revealed[0] == revealed[1] == revealed[2]  # the same message, to everyone
        assert await supervisor.evaluate("document.scrollingElement.scrollWidth <= 390")

        # An objection, in the open; the agency answers it; then confirms the record.
        await s1.get_by_label("提出异议（将向所有参加人公开）").fill("对供应商3的交货期有疑义")
        await s1.get_by_role("button", name="提交异议").click()
        objection = agency.locator("#objections li[data-objection]")
        await expect(objection).to_contain_text("对供应商3的交货期有疑义")
        await expect(supervisor.locator("#objections")).to_contain_text("对供应商3的交货期有疑义")
        await agency.get_by_label("答复异议 #1").fill("经核对，交货期符合招标文件要求")
        await agency.get_by_role("button", name="答复", exact=True).click()
        await expect(s1.locator("#objections")).to_contain_text("经核对，交货期符合招标文件要求")
        await live.set_clock(DEADLINE + 6 * MINUTE)
        await agency.get_by_role("button", name="确认开标记录").click()
        for page in (s1, agency, supervisor):
            await expect(page.locator("#phase")).to_have_text("开标结束")

        await s1.get_by_role("link", name="开标记录（平台签名）").click()
        await expect(s1).to_have_url(re.compile(rf"/app/openings/{opening_id}/record$"))
        await expect(s1.locator("#record tbody tr")).to_have_count(3)
        await expect(s1.locator("#record-status")).to_have_text("已确认")
        await expect(s1.locator("#record-objections")).to_contain_text("经核对")


async def test_a_rejoining_hall_page_catches_up_after_a_network_drop(
    ui: BrowserSession, machines: Path,
) -> None:
    live = ui.live
    acc = live.accounts
    async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as http:
        created = await http.post("/api/openings", headers={
            "Authorization": f"Bearer {acc['agency'].token}"}, json={
            "title": "网络中断测试", "purchaser_org_id": acc["purchaser"].org_id,
            "invited_supplier_ids": [acc[k].org_id for k in PRICES],
            "settings": {"deadline_ms": DEADLINE}})
        assert created.status_code == 201, created.text
        opening_id: str = created.json()["id"]
    agency = await ui.open_as("agency", f"/app/openings/{opening_id}")
    await hall_page(agency)
    await expect(agency.locator("#bid-count")).to_have_text("0")
    await agency.context.set_offline(True)
    await expect(agency.locator('#banners [data-banner="conn"]')).to_contain_text("网络已断开")
    # Too few bids at the deadline: no opening (O87 41) — decided while the page was away.
    await live.set_clock(DEADLINE)
    async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as http, \
            asyncio.timeout(10):
        while True:  # until the server's own scheduler has acted on the clock (bounded)
            log = (await http.get(f"/api/openings/{opening_id}/log", headers={
                "Authorization": f"Bearer {acc['agency'].token}"})).json()
            if "opening_failed" in [e["kind"] for e in log["items"]]:
                break
            await asyncio.sleep(0.05)
    await agency.context.set_offline(False)
    await hall_page(agency)
    await expect(agency.locator("#phase")).to_have_text("不开标")
    await expect(agency.locator('#banners [data-banner="phase"]')).to_contain_text("不开标")
    caught_up: list[dict[str, Any]] = ui.messages(agency, "opening_caught_up")
    assert caught_up and caught_up[-1]["missed"] >= 1, caught_up


async def test_the_hall_and_the_record_say_what_happened_to_each_bid_in_words(
    ui: BrowserSession, machines: Path,
) -> None:
    """撤销 and 撤回 in words, with the bid bond and the agency's stated reason; a bidder kept
    out by a platform fault is not among those deemed to accept (issue #10 §3, §7b)."""
    live = ui.live
    acc = live.accounts
    bidders = ("s1", "s2", "s3", "s4")
    ca = load_or_init_ca(live.services.settings.data_dir / "ca", now_ms=T0)
    reason = "CA 服务中断，供应商3无法签到 / the CA service was down"
    async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as http:
        def auth(key: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {acc[key].token}"}

        created = await http.post("/api/openings", headers=auth("agency"), json={
            "title": f"开标记录用词测试 {uuid.uuid4().hex[:4]}",
            "purchaser_org_id": acc["purchaser"].org_id,
            "invited_supplier_ids": [acc[k].org_id for k in bidders],
            "settings": {"deadline_ms": DEADLINE, "objection_window_ms": 5 * MINUTE}})
        assert created.status_code == 201, created.text
        opening_id = created.json()["id"]
        keys: dict[str, Keys] = {}
        for n, key in enumerate(bidders):
            keys[key] = issue(ca, acc[key].org_id, acc[key].name, machines / key,
                              now_ms=T0 - 60 * MINUTE)
            path = machines / f"{key}.cms"
            keys[key].seal(path, form(20_000_000 + n), now_ms=T0)
            uploaded = await http.put(f"/api/openings/{opening_id}/bid",
                                      content=path.read_bytes(), headers=auth(key))
            assert uploaded.status_code == 201, uploaded.text
        await live.set_clock(DEADLINE)
        for key in ("s1", "s2"):
            assert (await http.post(f"/api/openings/{opening_id}/sign-in",
                                    headers=auth(key))).status_code == 200
            wrapped = await http.get(f"/api/openings/{opening_id}/bid/encrypted-key",
                                     headers=auth(key))
            done = await http.post(f"/api/openings/{opening_id}/decrypt", headers=auth(key),
                                   json={"content_key_b64": keys[key].unwrap(
                                       wrapped.json()["encrypted_key_b64"])})
            assert done.status_code == 200, done.text
        fault = await http.post(
            f"/api/openings/{opening_id}/bids/{acc['s3'].org_id}/platform-fault",
            headers=auth("agency"), json={"reason": reason})
        assert fault.status_code == 200, fault.text

        agency = await ui.open_as("agency", f"/app/openings/{opening_id}")
        await hall_page(agency)
        s3_row = agency.locator(f'#bidders tr[data-supplier="{acc["s3"].org_id}"]')
        await expect(s3_row.locator(".bid-status")).to_have_text(
            "撤回：因投标人之外的原因未能解密，视为撤回；投标保证金予以退还；"
            f"代理机构认定平台故障：{reason}")
        # the window ends: s4 never came, its bid is revoked (撤销) — live, in words
        await live.set_clock(DEADLINE + 30 * MINUTE)
        s4_row = agency.locator(f'#bidders tr[data-supplier="{acc["s4"].org_id}"]')
        await expect(s4_row.locator(".bid-status")).to_have_text(
            "撤销：解密时间内投标人未解密，视为撤销（投标人原因）；投标保证金可不予退还")
        await agency.get_by_role("button", name="唱标").click()
        not_opened = agency.locator("#not-opened")
        await expect(not_opened).to_contain_text("投标保证金可不予退还")
        await expect(not_opened).to_contain_text(reason)
        await live.set_clock(DEADLINE + 36 * MINUTE)
        await agency.get_by_role("button", name="确认开标记录").click()
        await expect(agency.locator("#phase")).to_have_text("开标结束")
        for code in ("revoked_by_bidder", "withdrawn_platform_fault", "may_be_kept"):
            assert code not in await agency.locator("#main").inner_text()

    record = await ui.open_as("s1", f"/app/openings/{opening_id}/record")
    await expect(record.locator("#record tbody tr")).to_have_count(2)
    await expect(record.locator("#deemed")).to_have_text(
        f"未签到的投标人视为认可开标结果：{acc['s4'].name}")
    await expect(record.locator("#platform-fault")).to_contain_text(acc["s3"].name)
    await expect(record.locator("#deemed")).not_to_contain_text(acc["s3"].name)
    s4 = record.locator(f'#not-opened li[data-supplier="{acc["s4"].org_id}"]')
    await expect(s4).to_contain_text("撤销（解密时间内投标人未解密")
    await record.get_by_role("button", name="English").click()
    await expect(s4).to_contain_text("the bid bond may be kept")
    await expect(record.locator("#platform-fault")).to_contain_text(
        "not deemed to accept")
    for code in ("revoked_by_bidder", "withdrawn_platform_fault", "may_be_kept"):
        assert code not in await record.locator("#main").inner_text()
