"""Reload and network loss in the middle of an auction: the page reconnects (with backoff),
catches up and shows exactly the state the server has — never one it does not."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.browser.conftest import LIVE_T0 as T0
from tests.browser.support import (
    BrowserSession,
    api_bid,
    api_get,
    api_post,
    bid,
    create_auction,
    expect,
    wait_live,
    yuan,
)
from tests.live import LiveServer

if TYPE_CHECKING:
    from playwright.async_api import Page


async def assert_same_as_server(page: Page, live: LiveServer, key: str, auction_id: str) -> None:
    """The supplier page shows what GET /api/auctions/{id} says for this supplier."""
    doc = await api_get(live, key, f"/api/auctions/{auction_id}")
    room, you = doc["room"], doc["you"]
    await expect(page.locator("#lowest")).to_have_text(yuan(room["lowest_fen"]))
    await expect(page.locator("#my-rank")).to_have_text(
        f"第 {you['rank']} 名（共 {room['bidders']} 家）")
    await expect(page.locator("#my-best")).to_have_text(yuan(you["best_fen"]))
    await expect(page.locator("#my-bids")).to_have_text(str(you["bids"]))
    await expect(page.locator("#max-allowed")).to_have_text(yuan(you["max_allowed_fen"]))
    await expect(page.locator("#own-bids tbody tr")).to_have_count(len(you["own_bids"]))


async def test_a_reload_and_a_network_drop_mid_auction_reconnect_to_the_servers_state(
    ui: BrowserSession,
) -> None:
    live = ui.live
    auction_id = await create_auction(live)
    await live.set_clock(T0 + 2_000)
    s1 = await ui.supplier_room("s1", auction_id)
    supervisor = await ui.watch_room("supervisor", auction_id)

    await bid(s1, "9990")
    await expect(s1.locator("#bid-status")).to_contain_text("已被接受")
    await api_bid(live, "s2", auction_id, 998_500)
    await expect(s1.locator("#my-rank")).to_have_text("第 2 名（共 2 家）")

    # Reload: the same state, and the receipt kept for this tab.
    await s1.reload()
    await wait_live(s1)
    await assert_same_as_server(s1, live, "s1", auction_id)
    await expect(s1.locator("#own-bids details.receipt")).to_have_count(1)

    # The network goes away: the page says so, refuses to bid, and keeps the last state
    # marked as possibly stale — it does not guess.
    await s1.context.set_offline(True)
    await expect(s1.locator('#banners [data-banner="conn"]')).to_contain_text("网络已断开")
    await expect(s1.locator("#bid-submit")).to_be_disabled()
    await expect(s1.locator("#main")).to_have_class("stale")
    # Meanwhile the auction moves on: two more bids, and the purchaser pauses and resumes.
    await api_bid(live, "s2", auction_id, 997_000)
    await api_bid(live, "s3", auction_id, 996_000)
    await api_post(live, "purchaser", f"/api/auctions/{auction_id}/pause", {"reason": "网络检修"})
    await live.set_clock(T0 + 32_000)
    await api_post(live, "purchaser", f"/api/auctions/{auction_id}/resume", {})
    await expect(supervisor.locator("#ladder tbody tr")).to_have_count(3)
    await expect(supervisor.locator('#banners [data-banner="resumed"]')).to_contain_text("01:57:10")
    await expect(s1.locator("#lowest")).to_have_text("¥9,985.00")  # still the last known

    # Back online: reconnect, catch up on exactly the missed events, same state as the server.
    await s1.context.set_offline(False)
    await expect(s1.locator('#banners [data-banner="conn"]')).to_contain_text("已重新连接")
    await wait_live(s1)
    await assert_same_as_server(s1, live, "s1", auction_id)
    await expect(s1.locator("#my-rank")).to_have_text("第 3 名（共 3 家）")
    await expect(s1.locator("#main")).not_to_have_class("stale")
    caught_up = ui.messages(s1, "caught_up")
    assert caught_up and caught_up[-1]["missed"] == 4, caught_up  # 2 bids, pause, resume
    # Paused and resumed while away: the end moved by the 30 s pause (T0 + 10 min 30 s).
    await expect(s1.locator("#end-line")).to_contain_text("2030-03-18 01:57:10")
    await expect(s1.locator('#banners [data-banner="paused"]')).to_have_count(0)

    # And it is live again: a bid goes through and everyone sees it.
    await bid(s1, "9950")
    await expect(s1.locator("#my-rank")).to_have_text("第 1 名（共 3 家）")
    await expect(supervisor.locator("#lowest")).to_have_text("¥9,950.00")

    # The watch room too: offline, events missed, then back in step with the server.
    await supervisor.context.set_offline(True)
    await expect(supervisor.locator('#banners [data-banner="conn"]')).to_contain_text("网络已断开")
    await api_bid(live, "s2", auction_id, 994_000)
    await supervisor.context.set_offline(False)
    await wait_live(supervisor)
    doc = await api_get(live, "supervisor", f"/api/auctions/{auction_id}")
    ladder = supervisor.locator("#ladder tbody tr")
    await expect(ladder).to_have_count(len(doc["room"]["ladder"]))
    for i, row in enumerate(doc["room"]["ladder"]):
        await expect(ladder.nth(i)).to_contain_text(f"供应商{row['alias']}")
        await expect(ladder.nth(i)).to_contain_text(yuan(row["price_fen"]))
    await expect(supervisor.locator("#chart .bid-point")).to_have_count(len(doc["room"]["bids"]))


async def test_a_page_that_fell_behind_shows_the_latest_state_and_says_so(
    ui: BrowserSession,
) -> None:
    live = ui.live
    auction_id = await create_auction(live)
    await live.set_clock(T0 + 2_000)
    supervisor = await ui.watch_room("supervisor", auction_id)
    await api_bid(live, "s1", auction_id, 999_000)
    await expect(supervisor.locator("#ladder tbody tr")).to_have_count(1)

    # The server sees the page's connection fall behind (its unread bytes past the coalescing
    # mark, as on a slow network): the next events are held back from it, not queued.
    (conn,) = live.services.hub.connections(auction_id)
    conn.lagging = True
    await api_bid(live, "s2", auction_id, 998_000)
    await api_bid(live, "s3", auction_id, 997_000)
    await expect(supervisor.locator("#lowest")).to_have_text(yuan(999_000))

    # It has read its backlog: one tick brings the page to the room as it is, and it says so.
    conn.drained()  # type: ignore[attr-defined]
    await expect(supervisor.locator('#banners [data-banner="coalesced"]')).to_contain_text(
        "已合并 2 条更新")
    await expect(supervisor.locator("#lowest")).to_have_text(yuan(997_000))
    await expect(supervisor.locator("#ladder tbody tr")).to_have_count(3)
    # Live again from there: the next bid arrives as an event.
    await api_bid(live, "s1", auction_id, 996_000)
    await expect(supervisor.locator("#lowest")).to_have_text(yuan(996_000))
    doc = await api_get(live, "supervisor", f"/api/auctions/{auction_id}")
    assert await supervisor.evaluate("window.bidroomRoom.state.room.seq") == doc["room"]["seq"]
