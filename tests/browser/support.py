"""Helpers of the browser tests (not a test module): pages opened as the seeded accounts,
auctions created over HTTP, bids typed into the form, the room's state read from the server.

Importing this module without Playwright installed skips the importing test module (with the
message saying how to run the browser tests), or fails it under ``BIDROOM_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.browser.conftest import HOW_TO_RUN, REQUIRE_BROWSER
from tests.live import LiveServer

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page


def _playwright_expect() -> Any:
    """Playwright's ``expect``, or skip the importing test module (fail under
    ``BIDROOM_REQUIRE_BROWSER=1``) when the package is not installed."""
    try:
        from playwright.async_api import expect as found
    except ImportError:
        if REQUIRE_BROWSER:
            pytest.fail(f"BIDROOM_REQUIRE_BROWSER=1 but Playwright is missing; {HOW_TO_RUN}",
                        pytrace=False)
        pytest.skip(f"the playwright package is not installed: {HOW_TO_RUN}",
                    allow_module_level=True)
    return found


expect = _playwright_expect()

MINUTE = 60_000


def yuan(fen: int) -> str:
    """The page's money format: 123450 -> "¥1,234.50"."""
    return f"¥{fen // 100:,}.{fen % 100:02d}"


@dataclass
class BrowserSession:
    browser: Browser
    live: LiveServer
    page_errors: list[str] = field(default_factory=list)
    bid_frames: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    received: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.live.base_url + path

    async def new_page(self, *, width: int = 1280, height: int = 900, token: str | None = None
                       ) -> Page:
        """A page in a context of its own (its own storage: one user per context)."""
        context = await self.browser.new_context(viewport={"width": width, "height": height},
                                                 locale="zh-CN",
                                                 # times must show in Asia/Shanghai anyway
                                                 timezone_id="America/Los_Angeles")
        if token is not None:
            # Signed in: the token is where the sign-in page keeps it (this tab's storage).
            await context.add_init_script(
                f"sessionStorage.setItem('bidroom.token', {json.dumps(token)});")
        page = await context.new_page()
        page.on("pageerror", lambda exc: self.page_errors.append(f"{page.url}: {exc}"))
        frames: list[dict[str, Any]] = []
        received: list[dict[str, Any]] = []
        self.bid_frames[id(page)] = frames
        self.received[id(page)] = received

        def watch(ws: Any) -> None:
            def sent(payload: str | bytes) -> None:
                if isinstance(payload, str):
                    msg = json.loads(payload)
                    if msg.get("type") == "bid":
                        frames.append(msg)

            def got(payload: str | bytes) -> None:
                if isinstance(payload, str):
                    received.append(json.loads(payload))

            ws.on("framesent", sent)
            ws.on("framereceived", got)

        page.on("websocket", watch)
        return page

    async def open_as(self, key: str, path: str, **kwargs: Any) -> Page:
        page = await self.new_page(token=self.live.accounts[key].token, **kwargs)
        await page.goto(self.url(path))
        return page

    async def supplier_room(self, key: str, auction_id: str, **kwargs: Any) -> Page:
        page = await self.open_as(key, f"/app/auctions/{auction_id}/bid", **kwargs)
        await wait_live(page)
        return page

    async def watch_room(self, key: str, auction_id: str, **kwargs: Any) -> Page:
        page = await self.open_as(key, f"/app/auctions/{auction_id}/watch", **kwargs)
        await wait_live(page)
        return page

    def bids_sent(self, page: Page) -> list[dict[str, Any]]:
        """Every bid frame the page sent over its WebSockets."""
        return self.bid_frames[id(page)]

    def messages(self, page: Page, type_: str) -> list[dict[str, Any]]:
        """The messages of one type the page received over its WebSockets."""
        return [m for m in self.received[id(page)] if m.get("type") == type_]


async def wait_live(page: Page) -> None:
    await expect(page.locator("#conn-state")).to_have_text("实时连接")
    await expect(page.locator("#main")).not_to_have_attribute("aria-busy", "true")


async def bid(page: Page, price: str) -> None:
    """Type a price (yuan) into the bid form and submit it."""
    await page.fill("#price", price)
    await page.click("#bid-submit")


async def create_auction(live: LiveServer, *, invite: tuple[str, ...] = ("s1", "s2", "s3"),
                         by: str = "purchaser", **settings: Any) -> str:
    """An auction over HTTP: ceiling ¥10,000.00, step ¥10.00, T0+1 s to T0+10 min, anti-sniping
    2 min + 2 min (at most 3), at least 2 valid bidders — unless ``settings`` say otherwise."""
    from tests.browser.conftest import LIVE_T0

    accounts = live.accounts
    body = {
        "title": f"办公电脑采购 {uuid.uuid4().hex[:4]}",
        "title_en": "Office computers",
        "invited_supplier_ids": [accounts[k].org_id for k in invite],
        "settings": {
            "ceiling_fen": 1_000_000,
            "start_ms": LIVE_T0 + 1_000,
            "end_ms": LIVE_T0 + 10 * MINUTE,
            "step_kind": "amount",
            "step_value": 1_000,
            "sniping_window_ms": 2 * MINUTE,
            "extension_ms": 2 * MINUTE,
            "max_extensions": 3,
            "min_valid_bidders": 2,
            **settings,
        },
    }
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        response = await http.post("/api/auctions", json=body, headers={
            "Authorization": f"Bearer {accounts[by].token}"})
    assert response.status_code == 201, response.text
    auction_id: str = response.json()["id"]
    return auction_id


async def api_post(live: LiveServer, key: str, path: str, body: dict[str, Any]
                   ) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        response = await http.post(path, json=body, headers={
            "Authorization": f"Bearer {live.accounts[key].token}"})
    assert response.status_code in (200, 201), response.text
    doc: dict[str, Any] = response.json()
    return doc


async def api_get(live: LiveServer, key: str, path: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        response = await http.get(path, headers={
            "Authorization": f"Bearer {live.accounts[key].token}"})
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


async def api_bid(live: LiveServer, key: str, auction_id: str, price_fen: int) -> dict[str, Any]:
    """A bid over HTTP (another supplier's program, not a page)."""
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        response = await http.post(
            f"/api/auctions/{auction_id}/bids",
            json={"bid_id": uuid.uuid4().hex, "price_fen": price_fen},
            headers={"Authorization": f"Bearer {live.accounts[key].token}"})
    assert response.status_code == 201, response.text
    doc: dict[str, Any] = response.json()
    return doc
