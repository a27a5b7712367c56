"""The HTTP API (issue #2) end to end, in-process: auth, roles, auctions, bids, close, OpenAPI.

Runs the real app (``web.app.create_app``) with its lifespan against Redis and SQL (embedded
defaults, or the servers named by BIDROOM_TEST_REDIS_URL / BIDROOM_TEST_DATABASE_URL). Time is
the test clock: a value in Redis that the test sets; nothing sleeps. Responses are checked
against the schemas the OpenAPI document declares for them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, Route, WebSocketRoute

from bidroom.errors import ValidationError
from bidroom.receipts import verify_document
from tests.conftest import Party, Seeder
from web.openapi import openapi_document
from web.services import Services

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC (08:00 Beijing)
START = T0 + 60_000
END = T0 + 3_600_000
CEILING = 1_000_000  # 10,000.00 yuan

DOC = openapi_document()


# --------------------------------------------------------------------------- schema checks


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = DOC["components"]["schemas"][name]
    return schema


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _has_type(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


def schema_errors(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """A small JSON Schema check covering the keywords the API's schemas use (jsonschema is
    not a dependency; when it is installed it checks the same data too)."""
    schema = _resolve(schema)
    errors: list[str] = []
    if "anyOf" in schema:
        if all(schema_errors(value, s, where) for s in schema["anyOf"]):
            errors.append(f"{where}: matches none of anyOf")
        return errors
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_has_type(value, k) for k in kinds):
            return [*errors, f"{where}: {value!r} is not {kind}"]
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where}: missing {name!r}")
        for name, item in value.items():
            if name in props:
                errors.extend(schema_errors(item, props[name], f"{where}.{name}"))
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: unexpected {name!r}")
    if isinstance(value, list):
        if "items" in schema:
            for i, item in enumerate(value):
                errors.extend(schema_errors(item, schema["items"], f"{where}[{i}]"))
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{where}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where}: more than {schema['maxItems']} items")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{where}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if _has_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} > {schema['maximum']}")
    return errors


def _inline(schema: Any) -> Any:
    """The schema with every $ref replaced by its target (for the jsonschema package)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline(_resolve(schema))
        return {k: _inline(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_inline(v) for v in schema]
    return schema


def assert_matches(value: Any, schema: dict[str, Any]) -> None:
    errors = schema_errors(value, schema)
    assert not errors, "\n".join(errors)
    try:
        import jsonschema  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        return
    jsonschema.validate(value, _inline(schema))


def documented(response: httpx.Response, path: str) -> Any:
    """The response's JSON, after checking it against what the document says of this route
    and status (``path`` is the route's template, e.g. ``/api/auctions/{auction_id}``)."""
    method = response.request.method.lower()
    operation = DOC["paths"][path][method]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path} does not document {status}"
    body = response.json()
    content = operation["responses"][status].get("content")
    if content is not None:
        assert_matches(body, content["application/json"]["schema"])
    if response.status_code >= 400:
        listed = operation["responses"][status]["description"]
        assert f"`{body['error']['code']}`" in listed, (
            f"{method} {path} answered {status} {body['error']['code']!r}, not documented"
        )
    return body


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


# --------------------------------------------------------------------------- the world


@dataclass
class World:
    client: httpx.AsyncClient
    services: Services
    seed: Seeder
    admin: Party
    purchaser: Party
    other_purchaser: Party
    agency: Party
    supervisor: Party
    suppliers: list[Party]
    outsider: Party

    async def create(self, by: Party | None = None, **overrides: Any) -> dict[str, Any]:
        body = auction_body([s.org_id for s in self.suppliers], **overrides)
        response = await self.client.post("/api/auctions", json=body,
                                          headers=(by or self.purchaser).headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = documented(response, "/api/auctions")
        return created

    async def bid(self, who: Party, auction_id: str, price: Any,
                  bid_id: str | None = None) -> httpx.Response:
        body = {"bid_id": bid_id or f"b{price}", "price_fen": price}
        return await self.client.post(f"/api/auctions/{auction_id}/bids", json=body,
                                       headers=who.headers)


def auction_body(invited: list[str], **settings: Any) -> dict[str, Any]:
    title = settings.pop("title", "计算机采购项目网上竞价")
    return {
        "title": title,
        "title_en": "Computer procurement reverse auction",
        "invited_supplier_ids": invited,
        "settings": {
            "ceiling_fen": CEILING,
            "start_ms": START,
            "end_ms": END,
            "step_value": 1_000,
            "budget_fen": 1_200_000,
            "min_valid_bidders": 3,
            **settings,
        },
    }


@pytest.fixture
async def world(app_client: httpx.AsyncClient, http_app: Starlette, seed: Seeder) -> World:
    await seed.set_clock(T0)
    services = http_app.state.services
    return World(
        client=app_client,
        services=services,
        seed=seed,
        admin=await seed.admin(),
        purchaser=await seed.purchaser(),
        other_purchaser=await seed.purchaser("某区人民医院"),
        agency=await seed.agency(),
        supervisor=await seed.supervisor(),
        suppliers=[
            await seed.supplier("甲科技有限公司"),
            await seed.supplier("乙信息技术有限公司", "medium"),
            await seed.supplier("丙电脑销售部", "micro"),
        ],
        outsider=await seed.supplier("丁贸易有限公司"),
    )


# --------------------------------------------------------------------------- system and auth


async def test_health_time_and_platform_key_need_no_token(world: World) -> None:
    client = world.client

    health = await client.get("/api/health")
    assert documented(health, "/api/health") == {"status": "ok"}
    clock = await client.get("/api/time")
    assert documented(clock, "/api/time") == {"server_time_ms": T0}
    key = documented(await client.get("/api/platform-key"), "/api/platform-key")
    assert key["algorithm"] == "Ed25519"
    assert key["key_id"] == world.services.platform_key.key_id
    assert key["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert (await client.get("/openapi.json")).status_code == 200


async def test_every_other_route_needs_a_valid_bearer_token(world: World) -> None:
    client = world.client

    missing = await client.get("/api/me")
    assert missing.status_code == 401
    assert error_code(missing) == "missing_token"
    assert missing.headers["www-authenticate"] == "Bearer"
    invalid = await client.get("/api/me", headers={"Authorization": "Bearer brt_nope"})
    assert documented(invalid, "/api/me")["error"]["code"] == "invalid_token"
    for method, path in [
        ("POST", "/api/auctions"),
        ("GET", "/api/auctions"),
        ("GET", "/api/auctions/auc_x"),
        ("POST", "/api/auctions/auc_x/bids"),
        ("GET", "/api/organisations"),
        ("POST", "/api/receipts/verify"),
        ("DELETE", "/api/tokens/tok_x"),
    ]:
        response = await client.request(method, path, json={})
        assert (response.status_code, error_code(response)) == (401, "missing_token"), path


async def test_me_describes_the_caller(world: World) -> None:
    me = documented(await world.client.get("/api/me", headers=world.agency.headers), "/api/me")

    assert me["org_id"] == world.agency.org_id
    assert me["org_kind"] == "agency"
    assert me["roles"] == ["agency"]
    assert me["user_id"] == world.agency.user_id


# --------------------------------------------------------------------------- registry


async def test_only_an_admin_registers_organisations_users_and_tokens(world: World) -> None:
    client, admin = world.client, world.admin
    org_body = {"kind": "supplier", "name": "戊网络科技有限公司", "size_class": "small",
                "credit_code": "91110108MA01ABCD2H"}

    refused = await client.post("/api/organisations", json=org_body,
                                headers=world.purchaser.headers)
    assert documented(refused, "/api/organisations")["error"]["code"] == "role_required"
    created = await client.post("/api/organisations", json=org_body, headers=admin.headers)
    org = documented(created, "/api/organisations")
    assert created.status_code == 201
    assert (org["kind"], org["size_class"], org["credit_code"]) == (
        "supplier", "small", "91110108MA01ABCD2H")
    taken = await client.post("/api/organisations", json=org_body, headers=admin.headers)
    assert (taken.status_code, error_code(taken)) == (409, "credit_code_taken")

    user_resp = await client.post(
        "/api/users", json={"org_id": org["id"], "name": "李四", "roles": ["supplier"]},
        headers=admin.headers)
    user = documented(user_resp, "/api/users")
    assert user_resp.status_code == 201 and user["roles"] == ["supplier"]
    wrong_role = await client.post(
        "/api/users", json={"org_id": org["id"], "name": "王五", "roles": ["purchaser"]},
        headers=admin.headers)
    assert documented(wrong_role, "/api/users")["error"]["code"] == "role_not_allowed"

    issued = await client.post(f"/api/users/{user['id']}/tokens", json={"label": "客户端"},
                               headers=admin.headers)
    token = documented(issued, "/api/users/{user_id}/tokens")
    assert issued.status_code == 201 and token["token"].startswith("brt_")
    bearer = {"Authorization": f"Bearer {token['token']}"}
    me = await client.get("/api/me", headers=bearer)
    assert me.json()["org_id"] == org["id"]

    not_admin = await client.delete(f"/api/tokens/{token['token_id']}", headers=bearer)
    assert error_code(not_admin) == "role_required"
    revoked = await client.delete(f"/api/tokens/{token['token_id']}", headers=admin.headers)
    assert documented(revoked, "/api/tokens/{token_id}") == {
        "token_id": token["token_id"], "revoked": True}
    after = await client.get("/api/me", headers=bearer)
    assert (after.status_code, error_code(after)) == (401, "invalid_token")
    unknown = await client.delete("/api/tokens/tok_missing", headers=admin.headers)
    assert documented(unknown, "/api/tokens/{token_id}")["error"]["code"] == "token_not_found"


async def test_a_purchaser_lists_only_suppliers_with_their_public_fields(world: World) -> None:
    client = world.client

    listed = await client.get("/api/organisations", headers=world.purchaser.headers)
    page = documented(listed, "/api/organisations")
    ids = {o["id"] for o in page["items"]}
    assert {s.org_id for s in [*world.suppliers, world.outsider]} <= ids
    assert all(o["kind"] == "supplier" for o in page["items"])
    assert all(set(o) == {"id", "name", "name_en", "kind", "size_class"}
               for o in page["items"])
    purchasers = await client.get("/api/organisations?kind=purchaser",
                                  headers=world.purchaser.headers)
    assert (purchasers.status_code, error_code(purchasers)) == (403, "role_required")
    by_supplier = await client.get("/api/organisations", headers=world.suppliers[0].headers)
    assert by_supplier.status_code == 403
    everything = await client.get("/api/organisations?limit=2", headers=world.admin.headers)
    first = documented(everything, "/api/organisations")
    assert len(first["items"]) == 2 and first["next_offset"] == 2
    assert "credit_code" in first["items"][0]
    bad = await client.get("/api/organisations?limit=0", headers=world.admin.headers)
    assert (bad.status_code, error_code(bad)) == (422, "invalid_query")


# --------------------------------------------------------------------------- creating


async def test_a_purchaser_creates_an_auction_with_its_live_room(world: World) -> None:
    auction = await world.create()

    assert auction["id"].startswith("auc_") and len(auction["id"]) == 36
    assert auction["purchaser"] == {"id": world.purchaser.org_id, "name": "某市第一中学",
                                    "name_en": "No. 1 Middle School"}
    assert auction["agency"] is None
    assert auction["status"] == "scheduled"
    assert auction["settings"]["auction_id"] == auction["id"]
    assert auction["settings"]["ceiling_fen"] == CEILING
    assert auction["invited_supplier_ids"] == sorted(s.org_id for s in world.suppliers)
    room = auction["room"]
    assert (room["phase"], room["seq"], room["invited"], room["server_time_ms"]) == (
        "scheduled", 0, 3, T0)
    assert "you" not in auction
    audit = await world.client.get(f"/api/auctions/{auction['id']}/audit",
                                   headers=world.purchaser.headers)
    records = documented(audit, "/api/auctions/{auction_id}/audit")["items"]
    assert [r["action"] for r in records] == ["create"]
    assert records[0]["actor_user_id"] == world.purchaser.user_id


async def test_an_auction_with_invalid_settings_is_refused_with_every_problem(
    world: World,
) -> None:
    body = auction_body([], ceiling_fen=1_000.5, end_ms=START - 1, step_kind="percent",
                        step_value=20_000, colour="red")
    body["settings"]["auction_id"] = "auc_mine"

    response = await world.client.post("/api/auctions", json=body,
                                       headers=world.purchaser.headers)

    error = documented(response, "/api/auctions")["error"]
    assert (response.status_code, error["code"]) == (422, "invalid_settings")
    problems = {(p["code"], p["field"]) for p in error["details"]["problems"]}
    assert problems == {
        ("read_only_field", "auction_id"),
        ("invalid_price", "ceiling_fen"),
        ("unknown_field", "colour"),
    }
    # Once the types are right, every rule problem is reported together.
    body = auction_body([], end_ms=START - 1, step_kind="percent", step_value=20_000,
                        budget_fen=CEILING - 1, min_valid_bidders=0)
    response = await world.client.post("/api/auctions", json=body,
                                       headers=world.purchaser.headers)
    problems = {(p["code"], p["field"])
                for p in documented(response, "/api/auctions")["error"]["details"]["problems"]}
    assert problems == {
        ("ceiling_above_budget", "ceiling_fen"),
        ("end_before_start", "end_ms"),
        ("invalid_step", "step_value"),
        ("invalid_field", "min_valid_bidders"),
    }


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"title": ""}, 422, "invalid_title"),
        ({"title": "长" * 201}, 422, "invalid_title"),
        ({"settings": [1, 2]}, 422, "invalid_settings"),
        ({"invited_supplier_ids": "org_x"}, 422, "invalid_field"),
        ({"extra": 1}, 422, "unknown_field"),
    ],
)
async def test_an_auction_with_a_bad_field_is_refused(
    world: World, change: dict[str, Any], status: int, code: str
) -> None:
    body = {**auction_body([]), **change}

    response = await world.client.post("/api/auctions", json=body,
                                       headers=world.purchaser.headers)

    assert (response.status_code, error_code(response)) == (status, code)
    documented(response, "/api/auctions")


async def test_an_auction_ending_in_the_past_is_refused(world: World) -> None:
    await world.seed.set_clock(END)

    response = await world.client.post("/api/auctions", json=auction_body([]),
                                       headers=world.purchaser.headers)

    error = documented(response, "/api/auctions")["error"]
    assert (response.status_code, error["code"]) == (422, "end_in_past")
    assert error["details"] == {"end_ms": END, "server_time_ms": END}


async def test_an_auction_inviting_an_unknown_or_non_supplier_organisation_is_refused(
    world: World,
) -> None:
    invited = [world.suppliers[0].org_id, "org_nobody", world.other_purchaser.org_id]

    response = await world.client.post("/api/auctions", json=auction_body(invited),
                                       headers=world.purchaser.headers)

    error = documented(response, "/api/auctions")["error"]
    assert (response.status_code, error["code"]) == (422, "unknown_supplier")
    assert error["details"]["supplier_ids"] == ["org_nobody", world.other_purchaser.org_id]
    listed = await world.client.get("/api/auctions", headers=world.purchaser.headers)
    assert listed.json()["items"] == []


async def test_an_agency_creates_an_auction_for_the_purchaser_it_names(world: World) -> None:
    client = world.client

    missing = await client.post("/api/auctions", json=auction_body([]),
                                headers=world.agency.headers)
    assert (missing.status_code, error_code(missing)) == (422, "missing_field")
    not_purchaser = await client.post(
        "/api/auctions",
        json={**auction_body([]), "purchaser_org_id": world.suppliers[0].org_id},
        headers=world.agency.headers)
    assert error_code(not_purchaser) == "unknown_purchaser"

    body = {**auction_body([]), "purchaser_org_id": world.purchaser.org_id}
    created = await client.post("/api/auctions", json=body, headers=world.agency.headers)
    view = documented(created, "/api/auctions")
    assert created.status_code == 201
    assert view["purchaser"]["id"] == world.purchaser.org_id
    assert view["agency"]["id"] == world.agency.org_id
    assert view["created_by_user_id"] == world.agency.user_id
    # Both the purchaser and its agency manage it.
    for manager, supplier in zip((world.purchaser, world.agency), world.suppliers, strict=False):
        invited = await client.post(f"/api/auctions/{view['id']}/invitations",
                                    json={"supplier_ids": [supplier.org_id]},
                                    headers=manager.headers)
        assert invited.json()["added"] == [supplier.org_id]
    other_agency = await world.seed.agency("另一代理机构")
    refused = await client.post(f"/api/auctions/{view['id']}/invitations",
                                json={"supplier_ids": [world.outsider.org_id]},
                                headers=other_agency.headers)
    assert (refused.status_code, error_code(refused)) == (403, "not_your_auction")


async def test_a_purchaser_cannot_create_an_auction_for_another_purchaser(world: World) -> None:
    body = {**auction_body([]), "purchaser_org_id": world.other_purchaser.org_id}

    response = await world.client.post("/api/auctions", json=body,
                                       headers=world.purchaser.headers)

    assert (response.status_code, error_code(response)) == (403, "not_your_organisation")


@pytest.mark.parametrize("who", ["supplier", "supervisor", "admin"])
async def test_only_purchasers_and_agencies_create_auctions(world: World, who: str) -> None:
    party = {"supplier": world.suppliers[0], "supervisor": world.supervisor,
             "admin": world.admin}[who]

    response = await world.client.post("/api/auctions", json=auction_body([]),
                                       headers=party.headers)

    assert (response.status_code, error_code(response)) == (403, "role_required")


# --------------------------------------------------------------------------- reading


async def test_each_party_lists_only_the_auctions_it_may_see(world: World) -> None:
    client = world.client
    mine = await world.create(title="本单位竞价")
    other_body = auction_body([world.outsider.org_id], title="他单位竞价")
    other = (await client.post("/api/auctions", json=other_body,
                               headers=world.other_purchaser.headers)).json()
    body = {**auction_body([world.outsider.org_id], title="代理竞价"),
            "purchaser_org_id": world.other_purchaser.org_id}
    run = (await client.post("/api/auctions", json=body, headers=world.agency.headers)).json()

    async def listed(party: Party) -> set[str]:
        response = await client.get("/api/auctions", headers=party.headers)
        page = documented(response, "/api/auctions")
        return {item["id"] for item in page["items"]}

    assert await listed(world.purchaser) == {mine["id"]}
    assert await listed(world.other_purchaser) == {other["id"], run["id"]}
    assert await listed(world.agency) == {run["id"]}
    assert await listed(world.suppliers[0]) == {mine["id"]}
    assert await listed(world.outsider) == {other["id"], run["id"]}
    assert await listed(world.supervisor) == {mine["id"], other["id"], run["id"]}
    assert await listed(world.admin) == {mine["id"], other["id"], run["id"]}

    page = (await client.get("/api/auctions", headers=world.suppliers[0].headers)).json()
    item = page["items"][0]
    assert (item["phase"], item["current_end_ms"], item["status"]) == (
        "scheduled", END, "scheduled")
    assert "invited_supplier_ids" not in item  # suppliers never see who else is invited
    limited = (await client.get("/api/auctions?limit=1", headers=world.admin.headers)).json()
    assert len(limited["items"]) == 1 and limited["next_offset"] == 1
    bad = await client.get("/api/auctions?status=open-ish", headers=world.admin.headers)
    assert (bad.status_code, error_code(bad)) == (422, "invalid_status")


async def test_the_status_follows_the_room_open_from_its_start_until_the_close(
    world: World,
) -> None:
    # The SQL column stayed "scheduled" while the room was live, so ?status=open matched
    # nothing: the listed status is open from the start instant until the close is recorded.
    client = world.client
    auction_id = (await world.create(min_valid_bidders=1))["id"]
    later_id = (await world.create(title="下一场竞价", start_ms=END + 1,
                                   end_ms=END + 600_000))["id"]

    async def listed(status: str) -> list[tuple[str, str, str]]:
        response = await client.get(f"/api/auctions?status={status}",
                                    headers=world.purchaser.headers)
        page = documented(response, "/api/auctions")
        return [(i["id"], i["status"], i["phase"]) for i in page["items"]]

    async def status_of(auction: str) -> str:
        detail = await client.get(f"/api/auctions/{auction}", headers=world.supervisor.headers)
        status: str = documented(detail, "/api/auctions/{auction_id}")["status"]
        return status

    await world.seed.set_clock(START - 1)
    assert await listed("open") == []
    assert await listed("scheduled") == [(later_id, "scheduled", "scheduled"),
                                         (auction_id, "scheduled", "scheduled")]
    assert await status_of(auction_id) == "scheduled"

    await world.seed.set_clock(START)  # the start instant: the room is open
    assert await listed("open") == [(auction_id, "open", "open")]
    assert await listed("scheduled") == [(later_id, "scheduled", "scheduled")]
    assert await status_of(auction_id) == "open"
    paused = await client.post(f"/api/auctions/{auction_id}/pause", json={"reason": "网络故障"},
                               headers=world.purchaser.headers)
    assert paused.status_code == 200, paused.text
    assert await listed("open") == [(auction_id, "open", "paused")]  # live, if paused
    resumed = await client.post(f"/api/auctions/{auction_id}/resume",
                                headers=world.purchaser.headers)
    assert resumed.status_code == 200, resumed.text
    assert (await world.bid(world.suppliers[0], auction_id, 900_000)).status_code == 201

    await world.services.closer.stop()  # the close is recorded here, by hand
    await world.seed.set_clock(END)
    assert await listed("open") == [(auction_id, "open", "closing")]  # due, not yet closed
    await world.services.closer.run_once()
    assert await listed("open") == []
    assert await listed("closed") == [(auction_id, "closed", "closed")]
    assert await status_of(auction_id) == "closed"
    assert await listed("scheduled") == [(later_id, "scheduled", "scheduled")]
    await world.seed.set_clock(END + 1)
    assert await listed("scheduled") == []
    assert await listed("open") == [(later_id, "open", "open")]


async def test_a_supplier_not_invited_cannot_view_the_auction(world: World) -> None:
    auction = await world.create()
    path = f"/api/auctions/{auction['id']}"

    response = await world.client.get(path, headers=world.outsider.headers)
    assert documented(response, "/api/auctions/{auction_id}")["error"]["code"] == "not_invited"
    assert response.status_code == 403
    other = await world.client.get(path, headers=world.other_purchaser.headers)
    assert other.status_code == 403
    result = await world.client.get(f"{path}/result", headers=world.outsider.headers)
    assert (result.status_code, error_code(result)) == (403, "not_invited")
    audit = await world.client.get(f"{path}/audit", headers=world.suppliers[0].headers)
    assert (audit.status_code, error_code(audit)) == (403, "not_your_auction")
    missing = await world.client.get("/api/auctions/auc_missing",
                                     headers=world.supervisor.headers)
    assert (missing.status_code, error_code(missing)) == (404, "auction_not_found")


async def test_views_stay_anonymous_until_the_close(world: World) -> None:
    auction = await world.create()
    auction_id = auction["id"]
    await world.seed.set_clock(START)
    first, second = world.suppliers[0], world.suppliers[1]
    assert (await world.bid(first, auction_id, 900_000)).status_code == 201
    assert (await world.bid(second, auction_id, 950_000)).status_code == 201

    supplier_view = documented(
        await world.client.get(f"/api/auctions/{auction_id}", headers=first.headers),
        "/api/auctions/{auction_id}")
    assert supplier_view["room"]["phase"] == "open"
    assert supplier_view["room"]["lowest_fen"] == 900_000
    assert "ladder" not in supplier_view["room"] and "bids" not in supplier_view["room"]
    you = supplier_view["you"]
    assert (you["rank"], you["best_fen"], you["alias"], you["max_allowed_fen"]) == (
        1, 900_000, 1, 899_000)
    assert [b["price_fen"] for b in you["own_bids"]] == [900_000]
    assert "invited_supplier_ids" not in supplier_view

    watcher = documented(
        await world.client.get(f"/api/auctions/{auction_id}", headers=world.purchaser.headers),
        "/api/auctions/{auction_id}")
    assert [(r["alias"], r["price_fen"]) for r in watcher["room"]["ladder"]] == [
        (1, 900_000), (2, 950_000)]
    assert "you" not in watcher
    text = json.dumps(watcher["room"], ensure_ascii=False)
    assert first.org_id not in text and first.name not in text


# --------------------------------------------------------------------------- control


async def test_pause_needs_a_reason_and_resume_gives_back_the_paused_time(world: World) -> None:
    client, purchaser = world.client, world.purchaser
    auction = await world.create()
    base = f"/api/auctions/{auction['id']}"
    await world.seed.set_clock(START + 1_000)

    blank = await client.post(f"{base}/pause", json={"reason": "  "}, headers=purchaser.headers)
    assert documented(blank, "/api/auctions/{auction_id}/pause")["error"]["code"] == (
        "reason_required")
    none = await client.post(f"{base}/pause", json={}, headers=purchaser.headers)
    assert (none.status_code, error_code(none)) == (422, "reason_required")
    paused = await client.post(f"{base}/pause", json={"reason": "平台网络故障"},
                               headers=purchaser.headers)
    body = documented(paused, "/api/auctions/{auction_id}/pause")
    assert (paused.status_code, body["reason"], body["at_ms"]) == (200, "平台网络故障",
                                                                   START + 1_000)
    again = await client.post(f"{base}/pause", json={"reason": "再次"},
                              headers=purchaser.headers)
    assert documented(again, "/api/auctions/{auction_id}/pause")["error"]["code"] == (
        "already_paused")
    assert again.status_code == 409
    refused_bid = await world.bid(world.suppliers[0], auction["id"], 900_000)
    assert (refused_bid.status_code, error_code(refused_bid)) == (409, "auction_paused")
    room = (await client.get(base, headers=purchaser.headers)).json()["room"]
    assert room["phase"] == "paused"
    assert room["paused"] == {"at_ms": START + 1_000, "reason": "平台网络故障"}

    await world.seed.set_clock(START + 61_000)
    resumed = await client.post(f"{base}/resume", json={"reason": "故障已排除"},
                                headers=purchaser.headers)
    body = documented(resumed, "/api/auctions/{auction_id}/resume")
    assert (body["paused_ms"], body["end_ms"]) == (60_000, END + 60_000)
    twice = await client.post(f"{base}/resume", headers=purchaser.headers)
    assert (twice.status_code, error_code(twice)) == (409, "not_paused")
    room = (await client.get(base, headers=purchaser.headers)).json()["room"]
    assert (room["phase"], room["end_ms"], room["paused"]) == ("open", END + 60_000, None)

    records = (await client.get(f"{base}/audit", headers=world.supervisor.headers)).json()
    actions = [(r["action"], r["details"].get("reason")) for r in records["items"]]
    assert actions == [("create", None), ("pause", "平台网络故障"), ("resume", "故障已排除")]
    # The closer now waits for the new end.
    due = await world.services.redis.zscore("bidroom:schedule", auction["id"])
    assert due == END + 60_000


async def test_a_supervisor_sees_everything_but_changes_nothing(world: World) -> None:
    client, supervisor = world.client, world.supervisor
    auction = await world.create()
    base = f"/api/auctions/{auction['id']}"
    await world.seed.set_clock(START)

    view = await client.get(base, headers=supervisor.headers)
    assert view.status_code == 200
    assert "ladder" in view.json()["room"]
    assert view.json()["invited_supplier_ids"]
    pause = await client.post(f"{base}/pause", json={"reason": "检查"},
                              headers=supervisor.headers)
    assert documented(pause, "/api/auctions/{auction_id}/pause")["error"]["code"] == (
        "not_your_auction")
    assert pause.status_code == 403
    for path, body in [("resume", {}), ("invitations", {"supplier_ids": ["org_x"]})]:
        response = await client.post(f"{base}/{path}", json=body, headers=supervisor.headers)
        assert (response.status_code, error_code(response)) == (403, "not_your_auction")
    bid = await world.bid(supervisor, auction["id"], 900_000)
    assert (bid.status_code, error_code(bid)) == (403, "suppliers_only")
    audit = await client.get(f"{base}/audit", headers=supervisor.headers)
    assert audit.status_code == 200
    other_manager = await client.post(f"{base}/pause", json={"reason": "x"},
                                      headers=world.other_purchaser.headers)
    assert (other_manager.status_code, error_code(other_manager)) == (403, "not_your_auction")


async def test_suppliers_invited_later_may_bid(world: World) -> None:
    client, purchaser, outsider = world.client, world.purchaser, world.outsider
    auction = await world.create()
    base = f"/api/auctions/{auction['id']}"
    await world.seed.set_clock(START)

    before = await world.bid(outsider, auction["id"], 900_000)
    assert documented(before, "/api/auctions/{auction_id}/bids")["error"]["code"] == (
        "not_invited")
    unknown = await client.post(f"{base}/invitations", json={"supplier_ids": ["org_none"]},
                                headers=purchaser.headers)
    assert (unknown.status_code, error_code(unknown)) == (422, "unknown_supplier")
    empty = await client.post(f"{base}/invitations", json={"supplier_ids": []},
                              headers=purchaser.headers)
    assert (empty.status_code, error_code(empty)) == (422, "invalid_field")
    invited = await client.post(
        f"{base}/invitations",
        json={"supplier_ids": [outsider.org_id, world.suppliers[0].org_id]},
        headers=purchaser.headers)
    body = documented(invited, "/api/auctions/{auction_id}/invitations")
    assert body["added"] == [outsider.org_id]
    again = await client.post(f"{base}/invitations", json={"supplier_ids": [outsider.org_id]},
                              headers=purchaser.headers)
    assert documented(again, "/api/auctions/{auction_id}/invitations")["error"] == {
        "code": "already_invited",
        "message": "供应商均已受邀 / every supplier named is already invited",
        "details": {"command": "invite"},
    }
    assert (await world.bid(outsider, auction["id"], 900_000)).status_code == 201
    view = (await client.get(base, headers=purchaser.headers)).json()
    assert outsider.org_id in view["invited_supplier_ids"]
    assert view["room"]["invited"] == 4
    actions = [r["action"] for r in
               (await client.get(f"{base}/audit", headers=purchaser.headers)).json()["items"]]
    assert actions == ["create", "invite"]


async def test_sign_in_is_required_when_the_auction_has_a_sign_in_period(
    world: World,
) -> None:
    client, supplier = world.client, world.suppliers[0]
    auction = await world.create(sign_in_ms=30_000)  # opens at T0 + 30 s
    base = f"/api/auctions/{auction['id']}"

    early = await client.post(f"{base}/sign-in", headers=supplier.headers)
    assert documented(early, "/api/auctions/{auction_id}/sign-in")["error"]["code"] == (
        "sign_in_not_open")
    await world.seed.set_clock(START - 10_000)
    signed = await client.post(f"{base}/sign-in", headers=supplier.headers)
    body = documented(signed, "/api/auctions/{auction_id}/sign-in")
    assert (body["supplier_id"], body["at_ms"]) == (supplier.org_id, START - 10_000)
    twice = await client.post(f"{base}/sign-in", headers=supplier.headers)
    assert (twice.status_code, error_code(twice)) == (409, "already_signed_in")
    by_purchaser = await client.post(f"{base}/sign-in", headers=world.purchaser.headers)
    assert (by_purchaser.status_code, error_code(by_purchaser)) == (403, "suppliers_only")

    await world.seed.set_clock(START)
    late = await world.bid(world.suppliers[1], auction["id"], 900_000)
    assert (late.status_code, error_code(late)) == (409, "not_signed_in")
    assert (await world.bid(supplier, auction["id"], 900_000)).status_code == 201
    no_sign_in = await world.create()
    refused = await client.post(f"/api/auctions/{no_sign_in['id']}/sign-in",
                                headers=supplier.headers)
    assert (refused.status_code, error_code(refused)) == (409, "sign_in_not_required")


# --------------------------------------------------------------------------- bids


async def test_an_accepted_bid_carries_a_receipt_that_verifies_with_the_platform_key(
    world: World,
) -> None:
    client, supplier = world.client, world.suppliers[0]
    auction = await world.create()
    await world.seed.set_clock(START + 5)

    response = await world.bid(supplier, auction["id"], 900_000, bid_id="b-0001")

    outcome = documented(response, "/api/auctions/{auction_id}/bids")
    assert response.status_code == 201
    assert (outcome["status"], outcome["price_fen"], outcome["bid_id"]) == (
        "accepted", 900_000, "b-0001")
    receipt = outcome["receipt"]
    assert (receipt["supplier_id"], receipt["auction_id"], receipt["seq"],
            receipt["server_time_ms"]) == (supplier.org_id, auction["id"], 1, START + 5)
    key = (await client.get("/api/platform-key")).json()
    verify_document(receipt, key["public_key_pem"])  # offline, with the published key only
    checked = await client.post("/api/receipts/verify", json=receipt, headers=supplier.headers)
    assert documented(checked, "/api/receipts/verify") == {"valid": True}

    forged = {**receipt, "price_fen": 800_000}
    with pytest.raises(ValidationError) as bad:
        verify_document(forged, key["public_key_pem"])
    assert bad.value.code == "bad_signature"
    refused = await client.post("/api/receipts/verify", json=forged, headers=supplier.headers)
    assert documented(refused, "/api/receipts/verify")["error"]["code"] == "bad_signature"
    assert refused.status_code == 422


async def test_the_same_bid_id_again_is_a_duplicate_with_the_original_receipt(
    world: World,
) -> None:
    supplier = world.suppliers[0]
    auction = await world.create()
    await world.seed.set_clock(START)
    first = await world.bid(supplier, auction["id"], 900_000, bid_id="same")
    await world.seed.set_clock(START + 1_000)

    repeat = await world.bid(supplier, auction["id"], 850_000, bid_id="same")

    outcome = documented(repeat, "/api/auctions/{auction_id}/bids")
    assert repeat.status_code == 200
    assert (outcome["status"], outcome["price_fen"]) == ("duplicate", 900_000)
    assert outcome["receipt"] == first.json()["receipt"]


async def test_a_bid_above_the_ceiling_is_rejected_with_the_highest_allowed_price(
    world: World,
) -> None:
    supplier = world.suppliers[0]
    auction = await world.create()
    await world.seed.set_clock(START)

    response = await world.bid(supplier, auction["id"], CEILING + 1)

    error = documented(response, "/api/auctions/{auction_id}/bids")["error"]
    assert response.status_code == 409
    assert error["code"] == "above_ceiling"
    assert error["message"] == "报价高于最高限价 / the price is above the ceiling price"
    assert error["details"]["max_allowed_fen"] == CEILING
    assert (await world.bid(supplier, auction["id"], 900_000)).status_code == 201
    small_step = await world.bid(supplier, auction["id"], 899_500)
    assert error_code(small_step) == "insufficient_decrement"
    assert small_step.json()["error"]["details"]["max_allowed_fen"] == 899_000
    early = await world.create()
    await world.seed.set_clock(START - 1)
    not_started = await world.bid(supplier, early["id"], 900_000)
    assert error_code(not_started) == "not_started"
    assert not_started.json()["error"]["details"]["max_allowed_fen"] is None


@pytest.mark.parametrize(
    ("price", "code"),
    [(900_000.0, "invalid_price"), ("900000", "invalid_price"), (True, "invalid_price"),
     (0, "invalid_price"), (-5, "invalid_price")],
)
async def test_a_price_that_is_not_a_positive_whole_number_of_fen_is_refused(
    world: World, price: Any, code: str
) -> None:
    auction = await world.create()
    await world.seed.set_clock(START)

    response = await world.bid(world.suppliers[0], auction["id"], price, bid_id="b1")

    assert (response.status_code, error_code(response)) == (422, code)
    documented(response, "/api/auctions/{auction_id}/bids")


async def test_a_float_price_is_refused_even_in_raw_json(world: World) -> None:
    auction = await world.create()
    await world.seed.set_clock(START)

    response = await world.client.post(
        f"/api/auctions/{auction['id']}/bids",
        content=b'{"bid_id": "b1", "price_fen": 900000.00}',
        headers={**world.suppliers[0].headers, "Content-Type": "application/json"})

    assert (response.status_code, error_code(response)) == (422, "invalid_price")


async def test_a_supplier_cannot_bid_as_another_supplier(world: World) -> None:
    auction = await world.create()
    await world.seed.set_clock(START)
    body = {"bid_id": "b1", "price_fen": 900_000, "supplier_id": world.suppliers[1].org_id}

    response = await world.client.post(f"/api/auctions/{auction['id']}/bids", json=body,
                                       headers=world.suppliers[0].headers)

    assert documented(response, "/api/auctions/{auction_id}/bids")["error"]["code"] == (
        "impersonation")
    assert response.status_code == 403
    own = {**body, "supplier_id": world.suppliers[0].org_id}
    ok = await world.client.post(f"/api/auctions/{auction['id']}/bids", json=own,
                                 headers=world.suppliers[0].headers)
    assert ok.status_code == 201
    by_purchaser = await world.bid(world.purchaser, auction["id"], 800_000)
    assert (by_purchaser.status_code, error_code(by_purchaser)) == (403, "suppliers_only")


async def test_bodies_that_are_not_json_objects_are_refused(world: World) -> None:
    auction = await world.create()
    url = f"/api/auctions/{auction['id']}/bids"
    headers = {**world.suppliers[0].headers, "Content-Type": "application/json"}

    for content, code in [
        (b"{not json", "malformed_json"),
        (b'{"price_fen": NaN, "bid_id": "x"}', "malformed_json"),
        (b"[1, 2]", "invalid_body"),
        (b"", "invalid_body"),
        (b'{"bid_id": "x", "price_fen": 1, "colour": "red"}', "unknown_field"),
        (b"{" + b" " * (300 * 1024) + b"}", "body_too_large"),
    ]:
        response = await world.client.post(url, content=content, headers=headers)
        assert (response.status_code, error_code(response)) == (422, code), content[:40]
        documented(response, "/api/auctions/{auction_id}/bids")
    unknown_route = await world.client.get("/api/nothing-here")
    assert (unknown_route.status_code, error_code(unknown_route)) == (404, "not_found")
    wrong_method = await world.client.put("/api/auctions", headers=world.purchaser.headers)
    assert (wrong_method.status_code, error_code(wrong_method)) == (405, "method_not_allowed")


# --------------------------------------------------------------------------- the close


def _core(result: dict[str, Any]) -> dict[str, Any]:
    """The fields the result's sha256 covers, without the names added for display."""
    keys = ["auction_id", "failed", "failure_reason", "valid_bidders", "ceiling_fen",
            "winner_id", "winning_fen", "savings_fen", "savings_bp", "ranking",
            "closed_at_ms", "final_end_ms", "extensions"]
    core = {k: copy.deepcopy(result[k]) for k in keys}
    for entry in core["ranking"]:
        entry.pop("supplier_name")
        entry.pop("supplier_name_en")
    return core


async def test_the_result_after_the_close_names_the_winner_with_ranking_and_bid_log(
    world: World,
) -> None:
    client = world.client
    first, second, third = world.suppliers
    auction = await world.create()
    auction_id = auction["id"]
    base = f"/api/auctions/{auction_id}"
    await world.seed.set_clock(START)
    for who, price in [(first, 900_000), (second, 950_000), (third, 800_000),
                       (first, 790_000)]:
        accepted = await world.bid(who, auction_id, price)
        assert accepted.status_code == 201, accepted.text

    early = await client.get(f"{base}/result", headers=world.purchaser.headers)
    assert documented(early, "/api/auctions/{auction_id}/result")["error"]["code"] == (
        "not_closed")
    assert early.status_code == 404
    # A late bid is auction_ended whether the room is closed yet or not; the app's background
    # closer is stopped so the close is recorded here, by hand, at a known point.
    await world.services.closer.stop()
    await world.seed.set_clock(END)
    late = await world.bid(second, auction_id, 700_000)
    assert (late.status_code, error_code(late)) == (409, "auction_ended")
    await world.services.closer.run_once()

    response = await client.get(f"{base}/result", headers=first.headers)
    result = documented(response, "/api/auctions/{auction_id}/result")
    assert (result["failed"], result["winner_id"], result["winning_fen"]) == (
        False, first.org_id, 790_000)
    assert (result["winner_name"], result["winner_name_en"]) == (first.name, f"{first.name} Ltd")
    assert (result["savings_fen"], result["savings_bp"], result["valid_bidders"]) == (
        210_000, 2_100, 3)
    assert [(r["rank"], r["supplier_id"], r["supplier_name"], r["price_fen"])
            for r in result["ranking"]] == [
        (1, first.org_id, first.name, 790_000),
        (2, third.org_id, third.name, 800_000),
        (3, second.org_id, second.name, 950_000),
    ]
    assert [(b["seq"], b["supplier_name"], b["price_fen"]) for b in result["bids"]] == [
        (1, first.name, 900_000), (2, second.name, 950_000), (3, third.name, 800_000),
        (4, first.name, 790_000)]
    canonical = json.dumps(_core(result), sort_keys=True, separators=(",", ":"))
    assert hashlib.sha256(canonical.encode()).hexdigest() == result["sha256"]
    assert result["closed_at_ms"] == END

    for party in (world.purchaser, world.supervisor, world.admin, third):
        seen = await client.get(f"{base}/result", headers=party.headers)
        assert seen.json() == result
    detail = (await client.get(base, headers=second.headers)).json()
    assert detail["status"] == "closed"
    assert detail["room"]["phase"] == "closed"
    assert detail["room"]["result"]["winner_name"] == first.name
    assert detail["you"]["rank"] == 3
    listed = (await client.get("/api/auctions", headers=world.purchaser.headers)).json()
    assert [(i["status"], i["phase"]) for i in listed["items"]] == [("closed", "closed")]
    after = await client.post(f"{base}/pause", json={"reason": "x"},
                              headers=world.purchaser.headers)
    assert (after.status_code, error_code(after)) == (409, "auction_closed")


async def test_an_auction_with_too_few_bidders_fails(world: World) -> None:
    auction = await world.create()
    await world.seed.set_clock(START)
    assert (await world.bid(world.suppliers[0], auction["id"], 900_000)).status_code == 201
    await world.seed.set_clock(END + 10)
    await world.services.closer.run_once()

    response = await world.client.get(f"/api/auctions/{auction['id']}/result",
                                      headers=world.purchaser.headers)

    result = documented(response, "/api/auctions/{auction_id}/result")
    assert (result["failed"], result["failure_reason"], result["winner_id"]) == (
        True, "too_few_bidders", None)
    assert result["ranking"][0]["supplier_name"] == world.suppliers[0].name
    listed = (await world.client.get("/api/auctions", headers=world.purchaser.headers)).json()
    assert listed["items"][0]["status"] == "failed"


# --------------------------------------------------------------------------- OpenAPI


def test_the_openapi_document_covers_every_route_and_nothing_else() -> None:
    from bidroom.config import Settings
    from web.app import create_app

    app = create_app(Settings())  # routes only: the lifespan does not run
    served: dict[str, set[str]] = {}
    for route in app.routes:
        if isinstance(route, WebSocketRoute):
            continue  # /ws is described in info.description, not under paths
        if isinstance(route, Mount):
            continue  # static files, if any, are not API operations
        assert isinstance(route, Route), route
        methods = set(route.methods or ()) - {"HEAD"}
        served.setdefault(route.path, set()).update(m.lower() for m in methods)

    documented_paths = {path: set(ops) for path, ops in DOC["paths"].items()}
    assert documented_paths == served
    assert DOC["openapi"].startswith("3.1")
    assert "/ws" in DOC["info"]["description"]
    assert "docs/protocol.md" in DOC["info"]["description"]


def test_every_documented_operation_is_bilingual_and_declares_its_security() -> None:
    public = {("get", "/api/health"), ("get", "/api/time"), ("get", "/api/platform-key"),
              ("get", "/openapi.json"),
              ("post", "/api/auth/ca/challenge"), ("post", "/api/auth/ca/login"),  # issue #3
              # the statutory calendar is public information (issue #11)
              ("get", "/api/calendar/periods"), ("get", "/api/calendar/dates"),
              ("get", "/api/calendar/days/{day}"), ("get", "/api/calendar/years/{year}"),
              # the public portal (no login, 政府采购网 style)
              ("get", "/api/portal/announcements"),
              ("get", "/api/portal/announcements/{announcement_id}")}
    ids = set()
    for path, operations in DOC["paths"].items():
        for method, op in operations.items():
            zh, _, en = op["summary"].partition(" / ")
            assert re.search(r"[\u4e00-\u9fff]", zh) and re.search(r"[A-Za-z]", en), path
            assert op["operationId"] not in ids
            ids.add(op["operationId"])
            if (method, path) in public:
                assert op["security"] == []
            else:
                assert op["security"] == [{"bearerAuth": []}], path
                assert "`missing_token`" in op["responses"]["401"]["description"]
            for name in re.findall(r"{(\w+)}", path):
                assert any(p["name"] == name and p["in"] == "path"
                           for p in op["parameters"]), (path, name)
            assert any(code.startswith("2") for code in op["responses"]), path
    assert DOC["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def _schema_refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["$ref"]} if "$ref" in value else set()
        for item in value.values():
            found |= _schema_refs(item)
        return found
    if isinstance(value, list):
        return set().union(*(_schema_refs(v) for v in value)) if value else set()
    return set()


def test_every_schema_reference_resolves_and_every_example_matches_its_schema() -> None:
    for target in _schema_refs(DOC):
        assert target.rsplit("/", 1)[-1] in DOC["components"]["schemas"], target
    checked = 0
    for path, operations in DOC["paths"].items():
        for method, op in operations.items():
            media = op.get("requestBody", {}).get("content", {}).get("application/json")
            if media and "example" in media:
                assert_matches(media["example"], media["schema"])
                checked += 1
            for status, response in op["responses"].items():
                content = response.get("content", {}).get("application/json", {})
                if "example" in content:
                    assert_matches(content["example"], content["schema"])
                    checked += 1
                for name, example in content.get("examples", {}).items():
                    assert_matches(example["value"], content["schema"])
                    assert example["value"]["error"]["code"] == name, (method, path, status)
                    checked += 1
    assert checked > 50


def test_the_schema_check_catches_a_wrong_body() -> None:
    schema = {"$ref": "#/components/schemas/BidInput"}

    assert schema_errors({"bid_id": "b1", "price_fen": 100}, schema) == []
    assert schema_errors({"bid_id": "b1", "price_fen": 1.5}, schema)
    assert schema_errors({"bid_id": "b1", "price_fen": True}, schema)
    assert schema_errors({"bid_id": "b 1", "price_fen": 100}, schema)
    assert schema_errors({"bid_id": "b1", "price_fen": 100, "x": 1}, schema)
    assert schema_errors({"price_fen": 100}, schema)
