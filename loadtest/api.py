"""Setting up a load test through Bidroom's HTTP API: parties, tokens, auctions, results.

Plain ``urllib`` (standard library, synchronous) so that it works the same in Locust (gevent
patches the socket module) and in the benchmark runner (called before, or in a thread beside,
its event loop). Every request has a timeout; nothing here retries forever.
Must not import bidroom, market or web.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Api",
    "ApiError",
    "Party",
    "auction_settings",
    "create_auction",
    "create_parties",
    "create_party",
    "wait_healthy",
]

_SIZES = ("large", "medium", "small", "micro")


class ApiError(RuntimeError):
    """An HTTP answer other than the expected one (status and body in the message)."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Party:
    """An organisation with one user and that user's bearer token."""

    kind: str
    org_id: str
    user_id: str
    token: str


class Api:
    """A tiny JSON client for one server and (optionally) one bearer token."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def with_token(self, token: str) -> Api:
        return Api(self.base_url, token, self.timeout)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                expect: Sequence[int] = (200, 201)) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as reply:
                status, raw = reply.status, reply.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        text = raw.decode("utf-8", "replace")
        if status not in expect:
            raise ApiError(method, path, status, text)
        return json.loads(text) if text else None

    def get(self, path: str, expect: Sequence[int] = (200,)) -> Any:
        return self.request("GET", path, expect=expect)

    def post(self, path: str, body: dict[str, Any] | None = None,
             expect: Sequence[int] = (200, 201)) -> Any:
        return self.request("POST", path, body or {}, expect)

    def server_time_ms(self) -> int:
        return int(self.get("/api/time")["server_time_ms"])


def wait_healthy(base_url: str, timeout: float = 60.0) -> None:
    """Poll ``GET /api/health`` until it answers 200 (bounded by ``timeout`` seconds)."""
    api = Api(base_url, timeout=2.0)
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            api.get("/api/health")
            return
        except (OSError, ApiError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TimeoutError(f"{base_url} did not become healthy in {timeout:g}s ({last})")


def create_party(admin: Api, kind: str, index: int, label: str = "load") -> Party:
    """One organisation of ``kind`` with a user of the matching role and a token."""
    org_body: dict[str, Any] = {
        "kind": kind,
        "name": f"压测{kind}{label}{index}",
        "name_en": f"Load {kind} {label} {index}",
    }
    if kind == "supplier":
        org_body["size_class"] = _SIZES[index % len(_SIZES)]
    org = admin.post("/api/organisations", org_body)
    user = admin.post("/api/users", {"org_id": org["id"], "name": f"压测用户{index}",
                                     "roles": [kind]})
    token = admin.post(f"/api/users/{user['id']}/tokens", {"label": label})
    return Party(kind, org["id"], user["id"], token["token"])


def create_parties(admin: Api, kind: str, count: int, label: str = "load",
                   threads: int = 8) -> list[Party]:
    """``count`` parties of one kind, created by a few threads at once (order kept)."""
    if count <= 0:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(threads, count))) as pool:
        return list(pool.map(lambda i: create_party(admin, kind, i, label), range(count)))


def auction_settings(start_ms: int, end_ms: int, *, ceiling_fen: int = 1_000_000_000_000,
                     step_fen: int = 1, improvement: str = "own_previous",
                     sniping_window_ms: int = 0, min_valid_bidders: int = 1,
                     show_lowest_to_suppliers: bool = True) -> dict[str, Any]:
    """Settings for load: a high ceiling and a 1-fen step, so a bidder can bid for hours."""
    return {
        "ceiling_fen": ceiling_fen,
        "start_ms": start_ms,
        "end_ms": end_ms,
        "step_kind": "amount",
        "step_value": step_fen,
        "improvement": improvement,
        "sniping_window_ms": sniping_window_ms,
        "extension_ms": 60_000,
        "min_valid_bidders": min_valid_bidders,
        "show_lowest_to_suppliers": show_lowest_to_suppliers,
    }


def create_auction(purchaser: Api, supplier_ids: Sequence[str], settings: dict[str, Any],
                   title: str = "压测竞价") -> dict[str, Any]:
    """Create an auction as the purchaser, inviting ``supplier_ids``; the detail answered."""
    detail: dict[str, Any] = purchaser.post("/api/auctions", {
        "title": title,
        "title_en": "Load test auction",
        "invited_supplier_ids": list(supplier_ids),
        "settings": settings,
    })
    return detail
