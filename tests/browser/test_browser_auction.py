"""A live auction in real Chromium: two suppliers bid from two browser contexts while the
purchaser watches from a third; the chart and the ladder follow live, a late bid shows the
extension banner everywhere, a price above the allowed one is refused by the form (and, when
forced through, by the server, whose message is shown), the auction closes on time and the
result page names the winner. Time moves with the test clock; nothing sleeps."""

from __future__ import annotations

import re
from typing import Any

from tests.browser.conftest import LIVE_T0 as T0
from tests.browser.support import (
    MINUTE,
    BrowserSession,
    api_bid,
    bid,
    create_auction,
    expect,
    wait_live,
    yuan,
)


async def test_two_suppliers_bid_live_the_purchaser_watches_and_the_result_names_the_winner(
    ui: BrowserSession,
) -> None:
    live = ui.live
    acc = live.accounts
    auction_id = await create_auction(live)
    await live.set_clock(T0 + 2_000)

    # The purchaser signs in with its token on the sign-in page and opens the watch room.
    watcher = await ui.new_page()
    await watcher.goto(ui.url("/app/"))
    await watcher.get_by_label("API 令牌", exact=True).fill(acc["purchaser"].token)
    await watcher.get_by_role("button", name="登录", exact=True).click()
    await expect(watcher).to_have_url(re.compile(r"/app/auctions$"))
    item = watcher.locator(f'li[data-auction="{auction_id}"]')
    await expect(item.locator(".badge")).to_have_text("竞价中")
    await expect(watcher.locator("#time-zone")).to_have_text("时间均为北京时间（UTC+8）")
    await expect(watcher.locator("#as-of")).to_contain_text("（北京时间）")
    await item.get_by_role("link", name="观看竞价").click()
    await wait_live(watcher)
    await expect(watcher.locator("#ladder-empty")).to_be_visible()

    s1 = await ui.supplier_room("s1", auction_id)
    s2 = await ui.supplier_room("s2", auction_id, width=375, height=800)  # a phone
    await expect(s1.locator("#max-allowed")).to_have_text("¥10,000.00")

    # Supplier 1 bids; its receipt, rank and history come back from the server.
    await bid(s1, "9,990")
    await expect(s1.locator("#bid-status")).to_contain_text("已被接受")
    await expect(s1.locator("#my-rank")).to_have_text("第 1 名（共 1 家）")
    await expect(s1.locator("#own-bids tbody tr")).to_have_count(1)
    await expect(s1.locator("#own-bids details.receipt summary")).to_contain_text("全场序号 #1")
    await expect(s1.locator("#max-allowed")).to_have_text("¥9,980.00")
    await expect(watcher.locator("#ladder tbody tr")).to_have_count(1)
    await expect(watcher.locator("#chart .bid-point")).to_have_count(1)
    await expect(watcher.locator("#lowest")).to_have_text("¥9,990.00")

    # Supplier 2, on a phone, bids with the keyboard (Enter submits the form).
    await s2.locator("#price").fill("9980.00")
    await s2.locator("#price").press("Enter")
    await expect(s2.locator("#my-rank")).to_have_text("第 1 名（共 2 家）")
    await expect(s1.locator("#my-rank")).to_have_text("第 2 名（共 2 家）")
    await expect(s1.locator("#lowest")).to_have_text("¥9,980.00")
    ladder = watcher.locator("#ladder tbody tr")
    await expect(ladder).to_have_count(2)
    await expect(ladder.nth(0)).to_contain_text("供应商2")
    await expect(ladder.nth(0)).to_contain_text("¥9,980.00")
    await expect(ladder.nth(1)).to_contain_text("供应商1")
    await expect(watcher.locator("#chart .bid-point")).to_have_count(2)
    await expect(watcher.locator("#savings")).to_have_text("0.20%（¥20.00）")
    for page in (watcher, s1, s2):  # anonymity until the close (背靠背)
        for key in ("s1", "s2"):
            assert acc[key].name not in await page.locator("main").inner_text()

    # A price above the allowed one is refused by the form: nothing is sent.
    sent_before = len(ui.bids_sent(s1))
    await bid(s1, "9985")
    await expect(s1.locator("#bid-error")).to_have_text(
        "报价 ¥9,985.00 高于本次允许的最高报价 ¥9,980.00，未提交。")
    await expect(s1.locator("#price")).to_have_attribute("aria-invalid", "true")
    await bid(s1, "9979.999")
    await expect(s1.locator("#bid-error")).to_have_text("金额最多精确到分（两位小数）。")
    assert len(ui.bids_sent(s1)) == sent_before
    # Forced through (a page whose idea of the allowed price is wrong): the server refuses it
    # and the page words its reason in the page's language; the displayed state does not move.
    await s1.evaluate("window.bidroomRoom.state.you.max_allowed_fen = 100000000")
    await bid(s1, "9985")
    await expect(s1.locator("#bid-error")).to_contain_text("服务器拒绝了报价：降价幅度不足。")
    await expect(s1.locator("#bid-error")).to_contain_text("¥9,980.00")
    assert ui.bids_sent(s1)[-1]["price_fen"] == 998_500
    await expect(s1.locator("#my-best")).to_have_text("¥9,990.00")
    await expect(watcher.locator("#ladder tbody tr")).to_have_count(2)

    # A late bid, inside the last two minutes, extends the end for everyone.
    await live.set_clock(T0 + 9 * MINUTE)
    await bid(s1, "9,970.00")
    await expect(s1.locator("#bid-status")).to_contain_text("已被接受")
    for page in (s1, s2, watcher):
        banner = page.locator('#banners [data-banner="ext"]')
        await expect(banner).to_contain_text("竞价已延时（第 1 次）")
        await expect(banner).to_contain_text("结束时间延至 01:58:40")  # T0 + 12 min, Shanghai
        await expect(page.locator("#phase")).to_have_text("延时竞价中")
    await expect(watcher.locator("#chart .ext-marker")).to_have_count(1)
    await expect(watcher.locator("#extensions")).to_have_text("1")

    # The auction closes on time with everyone still watching; identities are revealed.
    await live.set_clock(T0 + 12 * MINUTE)
    for page in (s1, s2, watcher):
        await expect(page.locator("#phase")).to_have_text("已结束")
        await expect(page.locator("#winner-name")).to_have_text(acc["s1"].name)
    await expect(s1.locator("#my-final")).to_have_text("您的报价最低，为成交候选供应商。")
    await expect(s2.locator("#my-final")).to_have_text("您的最终排名：第 2 名。")
    await expect(s1.locator("#bid-submit")).to_be_disabled()
    await expect(watcher.locator("#result-ranking tbody tr")).to_have_count(2)

    await watcher.locator("#result-link").click()
    await expect(watcher).to_have_url(re.compile(rf"/app/auctions/{auction_id}/result$"))
    await expect(watcher.locator("#winner-name")).to_have_text(acc["s1"].name)
    await expect(watcher.locator("#winning-price")).to_have_text(yuan(997_000))
    await expect(watcher.locator("#time-zone")).to_have_text("时间均为北京时间（UTC+8）")
    await expect(watcher.locator("#ranking tbody tr")).to_have_count(2)
    await expect(watcher.locator("#result-log tbody tr")).to_have_count(3)
    await expect(watcher.locator("#result-log tbody tr").first).to_contain_text(acc["s1"].name)


def _no_overflow(page_width: int) -> Any:
    return f"document.scrollingElement.scrollWidth <= {page_width}"


async def test_the_rooms_fit_a_phone_and_every_control_has_a_label(ui: BrowserSession) -> None:
    live = ui.live
    auction_id = await create_auction(live)
    await live.set_clock(T0 + 2_000)
    s1 = await ui.supplier_room("s1", auction_id, width=375, height=740)
    watcher = await ui.watch_room("purchaser", auction_id, width=375, height=740)
    await bid(s1, "9990")
    await expect(watcher.locator("#chart .bid-point")).to_have_count(1)
    for page in (s1, watcher):
        assert await page.evaluate(_no_overflow(375)), "the page scrolls sideways at 375 px"
        unlabelled = await page.evaluate("""() => [...document.querySelectorAll(
            'input:not([type=hidden]), select, textarea, button')]
            .filter((el) => !el.closest('[hidden]'))
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                            && !el.textContent.trim())
            .map((el) => el.id || el.outerHTML.slice(0, 60))""")
        assert unlabelled == []
        assert await page.locator("[aria-live=polite]#lowest").count() == 1
        assert await page.locator("#countdown[role=timer]").count() == 1
    # The countdown runs on server time: the test clock says 9 min 58 s are left.
    await expect(s1.locator("#countdown")).to_have_text(re.compile(r"^09:[45]\d$"))
    # English on request, kept for the next page.
    await s1.get_by_role("button", name="English").click()
    await expect(s1.locator("#bid-submit")).to_have_text("Place bid")
    await expect(s1.locator("#my-rank")).to_have_text("#1 of 1")
    await s1.reload()
    await expect(s1.locator("#phase")).to_have_text("Open")
    await expect(s1.locator("html")).to_have_attribute("lang", "en")


async def test_a_refusal_is_worded_in_the_pages_language_and_a_bid_shows_the_suppliers_count(
    ui: BrowserSession,
) -> None:
    """The server's reason code, not its bilingual message, and reworded on a language switch;
    the supplier's first bid reads "my bid 1" beside the auction's sequence number."""
    live = ui.live
    auction_id = await create_auction(live)
    s1 = await ui.supplier_room("s1", auction_id)  # the clock is at T0: before the start
    await bid(s1, "9990")
    error = s1.locator("#bid-error")
    await expect(error).to_have_text("服务器拒绝了报价：竞价尚未开始。")
    assert ui.bids_sent(s1)[-1]["price_fen"] == 999_000  # the server said no, not the form
    await s1.get_by_role("button", name="English").click()
    await expect(error).to_have_text("The server refused the bid: The auction has not started.")
    await s1.get_by_role("button", name="中文").click()
    await expect(error).to_have_text("服务器拒绝了报价：竞价尚未开始。")

    # Another supplier bids first (sequence 1), so this supplier's only bid is sequence 2.
    await live.set_clock(T0 + 2_000)
    await expect(s1.locator("#phase")).to_have_text("竞价中")
    await api_bid(live, "s2", auction_id, 999_000)
    await bid(s1, "9980")
    await expect(s1.locator("#bid-status")).to_have_text(
        "报价 ¥9,980.00 已被接受（您的第 1 次报价，全场序号 2），平台签名回执已保存。")
    row = s1.locator("#own-bids tbody tr")
    await expect(row).to_have_count(1)
    await expect(row.locator("td").nth(0)).to_have_text("1")
    await expect(row.locator("td").nth(1)).to_have_text("2")
    await expect(s1.locator("#own-bids thead")).to_contain_text("我的第几次")
    await expect(s1.locator("#own-bids thead")).to_contain_text("全场序号")
    await bid(s1, "9960")
    await expect(s1.locator("#bid-status")).to_contain_text("您的第 2 次报价，全场序号 3")
    await expect(row.first.locator("td").nth(0)).to_have_text("2")
    await s1.get_by_role("button", name="English").click()
    await expect(s1.locator("#bid-status")).to_contain_text("your bid no. 2, auction seq. 3")
