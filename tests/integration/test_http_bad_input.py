"""Bad input at the HTTP edge: every text field, key and number of a body, every path and
query value is checked before anything reaches a store, and answers a 4xx with a stable code
(docs/protocol.md, "HTTP errors"). Each case here was a 500 before.

In-process (httpx's ASGITransport re-raises a server error, so a 500 fails the test loudly);
embedded Redis and SQLite, the test clock.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from bidroom.opening.ca import PlatformCA
from tests.conftest import Party, Seeder
from tests.opening_kit import at, issue, pem_of

T0 = 1_767_225_600_000
MIN = 60_000


def auction(invited: list[str], **fields: Any) -> dict[str, Any]:
    return {"title": "计算机采购项目网上竞价", "invited_supplier_ids": invited,
            "settings": {"ceiling_fen": 1_000_000, "start_ms": T0 + MIN,
                         "end_ms": T0 + 60 * MIN}, **fields}


async def send(client: httpx.AsyncClient, method: str, path: str, body: Any,
               headers: dict[str, str]) -> httpx.Response:
    """The body as JSON with every non-ASCII character escaped, as most JSON libraries send it
    (httpx's own ``json=`` cannot encode a lone surrogate; a "\\ud800" escape can carry one)."""
    return await client.request(method, path, content=json.dumps(body).encode("ascii"),
                                headers={**headers, "Content-Type": "application/json"})


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


@pytest.fixture
async def parties(seed: Seeder) -> dict[str, Party]:
    await seed.set_clock(T0)
    return {"admin": await seed.admin(), "purchaser": await seed.purchaser(),
            "agency": await seed.agency(), "supplier": await seed.supplier("某某科技有限公司")}


SURROGATE = "\ud800"


@pytest.mark.parametrize("text", [SURROGATE, "abc\udfff", "\ud83d"])
async def test_a_lone_surrogate_in_a_name_label_title_or_reason_is_invalid_text(
    app_client: httpx.AsyncClient, parties: dict[str, Party], text: str,
) -> None:
    """JSON's "\\ud800" escape decodes to a lone surrogate, which no store can encode: it was a
    500 (UnicodeEncodeError from the SQL layer) in every one of these."""
    admin, purchaser = parties["admin"].headers, parties["purchaser"]
    cases: list[tuple[str, str, dict[str, Any], dict[str, str]]] = [
        ("POST", "/api/organisations", {"kind": "supplier", "name": f"坏名字{text}",
                                        "size_class": "small"}, admin),
        ("POST", "/api/organisations", {"kind": "purchaser", "name": "学校",
                                        "name_en": text}, admin),
        ("POST", "/api/users", {"org_id": purchaser.org_id, "name": text,
                                "roles": ["purchaser"]}, admin),
        ("POST", f"/api/users/{purchaser.user_id}/tokens", {"label": text}, admin),
        ("POST", "/api/auctions", auction([], title=text), purchaser.headers),
        ("POST", "/api/auctions", auction([], title_en=text), purchaser.headers),
        ("POST", "/api/openings", {"title": text, "settings": {"deadline_ms": T0 + 30 * MIN}},
         purchaser.headers),
    ]
    for method, path, body, headers in cases:
        response = await send(app_client, method, path, body, headers)
        error = refused(response, 422, "invalid_text")
        assert error["details"]["problem"] == "lone_surrogate", (path, error)
    created = await app_client.post("/api/auctions", json=auction([]),
                                    headers=purchaser.headers)
    auction_id = created.json()["id"]
    pause = await send(app_client, "POST", f"/api/auctions/{auction_id}/pause",
                       {"reason": f"停电{text}"}, purchaser.headers)
    error = refused(pause, 422, "invalid_text")
    assert error["details"]["field"] == "reason"
    organisations = await app_client.get("/api/organisations", headers=admin)
    assert all("坏名字" not in o["name"] for o in organisations.json()["items"])  # none stored


async def test_a_lone_surrogate_deep_in_a_body_or_in_a_key_is_invalid_text_naming_where(
    app_client: httpx.AsyncClient, parties: dict[str, Party],
) -> None:
    purchaser = parties["purchaser"]
    deep = await send(app_client, "POST", "/api/auctions", auction([f"org_{SURROGATE}"]),
                      purchaser.headers)
    assert refused(deep, 422, "invalid_text")["details"]["field"] == "invited_supplier_ids[0]"
    # an unknown key was echoed in unknown_field's details: the JSON answer could not be encoded
    key = await send(app_client, "POST", "/api/auctions", {**auction([]), SURROGATE: 1},
                     purchaser.headers)
    refused(key, 422, "invalid_text")
    raw = b'{"title": "\\ud800", "settings": {}}'  # as a client's JSON library sends it
    sent = await app_client.post("/api/auctions", content=raw, headers={
        **purchaser.headers, "Content-Type": "application/json"})
    refused(sent, 422, "invalid_text")


@pytest.mark.parametrize("text", ["北京\x00公司", "北京\x1b[31m公司", "北京\n公司", "北京\t公司",
                                  "北京\x85公司"])
async def test_a_control_character_in_a_one_line_field_is_invalid_text(
    app_client: httpx.AsyncClient, parties: dict[str, Party], text: str,
) -> None:
    response = await app_client.post("/api/organisations", headers=parties["admin"].headers,
                                     json={"kind": "purchaser", "name": text})
    assert refused(response, 422, "invalid_text")["details"]["problem"] == "control_character"


async def test_newlines_stay_allowed_in_multi_line_text_and_astral_characters_everywhere(
    app_client: httpx.AsyncClient, parties: dict[str, Party],
) -> None:
    purchaser = parties["purchaser"]
    created = await app_client.post("/api/auctions", headers=purchaser.headers,
                                    json=auction([], title="𠀀𠀁 采购 😀"))
    assert created.status_code == 201, created.text
    assert created.json()["title"] == "𠀀𠀁 采购 😀"
    auction_id = created.json()["id"]
    paused = await app_client.post(f"/api/auctions/{auction_id}/pause", headers=purchaser.headers,
                                   json={"reason": "供电故障\r\n正在抢修"})
    assert paused.status_code in (200, 409), paused.text  # not refused as text
    assert paused.json().get("error", {}).get("code") != "invalid_text"
    bell = await app_client.post(f"/api/auctions/{auction_id}/pause", headers=purchaser.headers,
                                 json={"reason": "供电\x07故障"})
    refused(bell, 422, "invalid_text")


async def test_an_integer_beyond_what_json_carries_exactly_is_invalid_number(
    app_client: httpx.AsyncClient, parties: dict[str, Party],
) -> None:
    """It overflowed SQLite's 64-bit INTEGER: 500."""
    purchaser = parties["purchaser"]
    token = await app_client.post(f"/api/users/{purchaser.user_id}/tokens",
                                  headers=parties["admin"].headers,
                                  json={"expires_at_ms": 10**20})
    assert refused(token, 422, "invalid_number")["details"]["field"] == "expires_at_ms"
    body = auction([])
    body["settings"]["end_ms"] = -(2**63)
    refused(await app_client.post("/api/auctions", headers=purchaser.headers, json=body),
            422, "invalid_number")


async def test_bad_path_and_query_values_are_refused_before_any_store(
    app_client: httpx.AsyncClient, parties: dict[str, Party],
) -> None:
    purchaser = parties["purchaser"]
    huge = await app_client.get("/api/auctions", params={"offset": 10**12},
                                headers=purchaser.headers)
    refused(huge, 422, "invalid_query")  # was a 500: the offset overflowed SQLite
    control = await app_client.get("/api/auctions", params={"status": "open\x00"},
                                   headers=purchaser.headers)
    refused(control, 422, "invalid_query")
    for bad in ("auc_%00", "a" * 65, "auc_%1b"):
        response = await app_client.get(f"/api/auctions/{bad}", headers=purchaser.headers)
        refused(response, 404, "not_found")
        # the token is still checked first
        refused(await app_client.get(f"/api/auctions/{bad}"), 401, "missing_token")


async def test_a_pem_with_characters_outside_ascii_is_a_bad_certificate(
    app_client: httpx.AsyncClient, http_app: Starlette, parties: dict[str, Party],
    tmp_path: Path,
) -> None:
    """PEM is ASCII: "中" in it was a 500 (UnicodeEncodeError in ca.py)."""
    supplier = parties["supplier"]
    ca = PlatformCA.init(tmp_path / "other-ca", now=at(T0 - 24 * 60 * MIN))
    keys = issue(ca, supplier.org_id, "某某科技有限公司", tmp_path / "own", now_ms=T0 - MIN)
    good = pem_of(keys.certificate("sign"))
    for spoilt in (good.replace("-----END", "中-----END"), "-----BEGIN CERTIFICATE-----\n中\n",
                   good[:40] + "é" + good[40:]):
        response = await app_client.put("/api/certificates/me", headers=supplier.headers, json={
            "signing_certificate_pem": spoilt, "encryption_certificate_pem": keys.enc_cert_pem()})
        refused(response, 422, "bad_certificate")


async def test_an_objection_id_of_non_ascii_digits_is_no_such_objection(
    app_client: httpx.AsyncClient, parties: dict[str, Party],
) -> None:
    """"²".isdigit() is true but int("²") raises: that was a 500."""
    agency = parties["agency"]
    created = await app_client.post("/api/openings", headers=agency.headers, json={
        "title": "某市第一中学计算机采购", "purchaser_org_id": parties["purchaser"].org_id,
        "invited_supplier_ids": [parties["supplier"].org_id],
        "settings": {"deadline_ms": T0 + 30 * MIN}})
    assert created.status_code == 201, created.text
    opening_id = created.json()["id"]
    for raw in ("\u00b2", "\u0663"):
        response = await app_client.post(f"/api/openings/{opening_id}/objections/{raw}/answer",
                                         headers=agency.headers, json={"text": "答复"})
        assert response.status_code == 409, response.text


async def test_no_backup_is_409_as_documented(
    app_client: httpx.AsyncClient, parties: dict[str, Party],
) -> None:
    """docs/protocol.md documents no_backup as a 409 (the opening's state refuses it); the
    share route served it as a 404."""
    agency = parties["agency"]
    created = await app_client.post("/api/openings", headers=agency.headers, json={
        "title": "无备用密钥", "purchaser_org_id": parties["purchaser"].org_id,
        "invited_supplier_ids": [parties["supplier"].org_id],
        "settings": {"deadline_ms": T0 + 30 * MIN}})
    opening_id = created.json()["id"]
    share = await app_client.get(f"/api/openings/{opening_id}/backup/share",
                                 headers=agency.headers)
    refused(share, 409, "no_backup")
    submitted = await app_client.post(f"/api/openings/{opening_id}/backup/shares",
                                      headers=agency.headers,
                                      json={"content_key_b64": "A" * 43 + "="})
    refused(submitted, 409, "no_backup")  # not "not_an_official": nobody is one here
    status = await app_client.get(f"/api/openings/{opening_id}/backup", headers=agency.headers)
    refused(status, 409, "no_backup")
