"""The browser pages (issue #4): plain HTML, CSS and JavaScript modules served by the app.

No build step and nothing from a CDN: every page is a static HTML file in ``web/static`` whose
JavaScript modules fetch the HTTP API with the user's bearer token and follow the auction room
over the WebSocket (JSON text frames, subprotocol ``bidroom.v1.json``). The server renders no
data into the pages; the token never appears in a URL.

Routes:

============================================  ==========================================
``GET /``                                     redirects to ``/app/``
``GET /app/``                                 sign in: API token, CA certificate, demo account
``GET /app/auctions``                         the caller's auctions with their live phase
``GET /app/auctions/new``                     create and schedule a reverse auction
``GET /app/auctions/{auction_id}/bid``        the supplier's auction room
``GET /app/auctions/{auction_id}/watch``      the watch room (purchaser, agency, supervisor)
``GET /app/auctions/{auction_id}/result``     the result of a closed auction
``GET /app/openings/{opening_id}``            the opening hall (开标大厅), every party
``GET /app/openings/{opening_id}/record``     the signed opening record after 唱标
``GET /app/projects``                         procurement projects (purchaser, agency)
``GET /app/projects/new``                     a new project with its lots (purchaser)
``GET /app/projects/{project_id}``            a project: each lot's next legal step
``GET /app/calendar``                         the statutory calendar's year (admin enters)
``GET /app/budgets``                          budget projects, plans, intentions, splitting flags
``GET /app/bids``                             the supplier's tenders: published projects' lots
``GET /app/bids/{project_id}``                register with a bond, download the documents
``GET /app/portal``                           the public portal: search the announcements
``GET /app/portal/{announcement_id}``         one announcement with its statutory dates
``GET /static/…``                             CSS and JavaScript modules
``GET /api/demo/accounts``                    the demo's accounts, only in a ``bidroom demo`` dir
============================================  ==========================================

Every page is sent with a strict Content-Security-Policy: scripts, styles and connections to
this origin only (the WebSocket included), no inline script.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from web.errors import error_response

__all__ = ["CSP", "PAGES", "STATIC_DIR", "routes"]

STATIC_DIR = Path(__file__).resolve().parent / "static"

DEMO_ACCOUNTS_FILE = "demo-accounts.json"  # the same names as web.cli (not imported: it is big)
DEMO_MARKER = ".bidroom-demo"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

# path under /app -> HTML file in STATIC_DIR
PAGES: dict[str, str] = {
    "/": "index.html",
    "/auctions": "auctions.html",
    "/auctions/new": "create.html",
    "/auctions/{auction_id}/bid": "supplier.html",
    "/auctions/{auction_id}/watch": "watch.html",
    "/auctions/{auction_id}/result": "result.html",
    "/openings/{opening_id}": "hall.html",
    "/openings/{opening_id}/record": "record.html",
    "/projects": "projects.html",
    "/projects/new": "project-new.html",
    "/projects/{project_id}": "project.html",
    "/calendar": "calendar.html",
    "/budgets": "budgets.html",
    "/bids": "bids.html",
    "/bids/{project_id}": "bid.html",
    "/portal": "portal.html",
    "/portal/{announcement_id}": "notice.html",
}


def _page(filename: str) -> Any:
    path = STATIC_DIR / filename

    async def endpoint(request: Request) -> Response:
        return FileResponse(path, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    endpoint.__name__ = f"page_{filename.removesuffix('.html')}"
    return endpoint


class _Static(StaticFiles):
    """Static files that are revalidated on every load (no stale module after an upgrade)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"cache-control", b"no-cache"))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


async def demo_accounts(request: Request) -> Response:
    """``DATA_DIR/demo-accounts.json``, only when the data dir was made by ``bidroom demo``."""
    data_dir = Path(request.app.state.settings.data_dir)
    path = data_dir / DEMO_ACCOUNTS_FILE
    if not (data_dir / DEMO_MARKER).is_file() or not path.is_file():
        return error_response("not_demo", "not a demo server / 非演示环境", 404)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return error_response("not_demo", "the demo accounts file cannot be read", 404)
    return JSONResponse(doc, headers={"Cache-Control": "no-store"})


class _Exactly(Mount):
    """A mount that answers one exact path only (the site root's redirect).

    Pages and static files are mounts, not API ``Route``s: the OpenAPI document lists every
    ``Route`` of the app, and these are not API operations.
    """

    def __init__(self, path: str, endpoint: Any) -> None:
        super().__init__("", routes=[Route(path, endpoint, methods=["GET", "HEAD"])])
        self._exact = path

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and scope["path"] == self._exact:
            return super().matches(scope)
        return Match.NONE, {}


async def _to_app(request: Request) -> Response:
    return RedirectResponse("/app/", status_code=302)


def routes() -> list[BaseRoute]:
    """The pages under ``/app``, ``/static``, ``/api/demo/accounts`` and ``/`` → ``/app/``."""
    pages = [Route(path, _page(filename), methods=["GET", "HEAD"])
             for path, filename in PAGES.items()]
    return [
        Mount("/app", routes=pages, name="app"),
        Mount("/static", app=_Static(directory=STATIC_DIR), name="static"),
        Mount("/api/demo", routes=[Route("/accounts", demo_accounts, methods=["GET"])]),
        _Exactly("/", _to_app),
    ]
