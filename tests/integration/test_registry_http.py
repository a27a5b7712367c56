"""The registries over HTTP (issue #11 item 1): region scoping as a matrix of caller × record
region × route, the extended organisation record, the region tree and the catalogue routes.

Every response is checked against the OpenAPI document (``documented``), error codes included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from market.catalog import Catalog, shipped_catalog_text
from market.registry import PersonInput, shipped_regions_text
from tests.conftest import Party, Seeder
from tests.integration.test_http_api import documented, error_code

T0 = 1_767_225_600_000
RECORD_REGIONS = ("440000", "440100", "440106", "440305", "330106", None)


@dataclass
class Record:
    region: str | None
    org_id: str
    user_id: str
    token_id: str


@dataclass
class World:
    client: httpx.AsyncClient
    callers: dict[str, Party]
    records: dict[str | None, Record]
    supplier_gz: str


async def _party(seed: Seeder, kind: str, name: str, role: str, region: str | None) -> Party:
    registry = seed.services.registry
    org = await registry.create_organisation(
        name, kind, region_code=region, size_class="small" if kind == "supplier" else None,
        now_ms=T0)
    user = await registry.create_user(org.id, f"{name}用户", [role], T0)
    token, _ = await registry.issue_token(user.id, label="test", now_ms=T0)
    return Party(org.id, user.id, token, name)


@pytest.fixture
async def world(app_client: httpx.AsyncClient, http_app: Starlette, seed: Seeder) -> World:
    await seed.set_clock(T0)
    services = http_app.state.services
    await services.registry.import_regions_csv(shipped_regions_text())
    await Catalog(services.sessions).import_csv(shipped_catalog_text())
    callers = {
        "platform_admin": await _party(seed, "platform", "平台运营方", "admin", None),
        "guangdong_admin": await _party(seed, "platform", "广东省运维", "admin", "440000"),
        "guangzhou_supervisor": await _party(seed, "supervisor", "广州市财政局", "supervisor",
                                             "440100"),
        "tianhe_supervisor": await _party(seed, "supervisor", "天河区财政局", "supervisor",
                                          "440106"),
        "shenzhen_supervisor": await _party(seed, "supervisor", "深圳市财政局", "supervisor",
                                            "440300"),
        "regionless_supervisor": await _party(seed, "supervisor", "某财政局", "supervisor", None),
        "tianhe_purchaser": await _party(seed, "purchaser", "天河某中学", "purchaser", "440106"),
        "nanshan_supplier": await _party(seed, "supplier", "南山某公司", "supplier", "440305"),
    }
    records = {}
    for region in RECORD_REGIONS:
        org = await services.registry.create_organisation(f"代理机构{region}", "agency",
                                                          region_code=region, now_ms=T0)
        user = await services.registry.create_user(org.id, "经办人", ["agency"], T0)
        _, token = await services.registry.issue_token(user.id, now_ms=T0)
        records[region] = Record(region, org.id, user.id, token.id)
    supplier = await services.registry.create_organisation(
        "广州某供应商", "supplier", size_class="micro", region_code="440104",
        persons=[PersonInput("legal_representative", "赵六", "11010519491231002X")], now_ms=T0)
    return World(app_client, callers, records, supplier.id)


ALL = set(RECORD_REGIONS)
GUANGDONG = {"440000", "440100", "440106", "440305"}
# Who sees which record regions: written out by hand, not computed with the rule under test.
SEES: dict[str, set[str | None]] = {
    "platform_admin": ALL,
    "guangdong_admin": GUANGDONG,
    "guangzhou_supervisor": {"440100", "440106"},
    "tianhe_supervisor": {"440106"},
    "shenzhen_supervisor": {"440305"},
    "regionless_supervisor": set(),
    "tianhe_purchaser": set(),
    "nanshan_supplier": set(),
}
ADMINS = {"platform_admin", "guangdong_admin"}
# What every organisation an admin or supervisor lists must start with (None: nothing listed).
PREFIXES: dict[str, str | None] = {
    "guangdong_admin": "44", "guangzhou_supervisor": "4401", "tianhe_supervisor": "440106",
    "shenzhen_supervisor": "4403", "regionless_supervisor": None,
}


async def test_listing_organisations_is_scoped(world: World) -> None:
    for caller, party in world.callers.items():
        response = await world.client.get("/api/organisations?kind=agency&limit=500",
                                          headers=party.headers)
        page = documented(response, "/api/organisations")
        if caller in ("tianhe_purchaser", "nanshan_supplier"):
            assert (response.status_code, error_code(response)) == (403, "role_required"), caller
            continue
        seen = {r.region for r in world.records.values()
                if r.org_id in {o["id"] for o in page["items"]}}
        assert seen == SEES[caller], caller
        if caller == "platform_admin":
            continue
        everything = documented(await world.client.get(
            "/api/organisations?limit=500", headers=party.headers), "/api/organisations")
        regions = {org["region_code"] for org in everything["items"]}
        prefix = PREFIXES[caller]
        if prefix is None:
            assert regions == set(), caller
        else:
            assert all(r is not None and r.startswith(prefix) for r in regions), caller


async def test_the_region_filter_narrows_within_the_scope(world: World) -> None:
    async def regions(caller: str, region: str) -> set[str | None]:
        page = documented(await world.client.get(
            f"/api/organisations?kind=agency&region={region}",
            headers=world.callers[caller].headers), "/api/organisations")
        ids = {o["id"] for o in page["items"]}
        return {r.region for r in world.records.values() if r.org_id in ids}

    assert await regions("platform_admin", "440100") == {"440100", "440106"}
    assert await regions("guangdong_admin", "330000") == set()
    assert await regions("guangzhou_supervisor", "440000") == {"440100", "440106"}
    bad = await world.client.get("/api/organisations?region=4401",
                                 headers=world.callers["platform_admin"].headers)
    assert (bad.status_code, error_code(bad)) == (422, "invalid_query")


async def test_reading_an_organisation_is_scoped(world: World) -> None:
    for caller, party in world.callers.items():
        for region, record in world.records.items():
            response = await world.client.get(f"/api/organisations/{record.org_id}",
                                              headers=party.headers)
            body = documented(response, "/api/organisations/{org_id}")
            if region in SEES[caller]:
                assert response.status_code == 200, (caller, region)
                assert body["region_code"] == region and body["persons"] == []
            else:
                assert (response.status_code, error_code(response)) == (
                    404, "organisation_not_found"), (caller, region)


async def test_mutating_routes_are_scoped_for_admins(world: World) -> None:
    for caller, party in world.callers.items():
        for region, record in world.records.items():
            user = await world.client.post(
                "/api/users", json={"org_id": record.org_id, "name": "新用户", "roles": ["agency"]},
                headers=party.headers)
            documented(user, "/api/users")
            token = await world.client.post(f"/api/users/{record.user_id}/tokens", json={},
                                            headers=party.headers)
            documented(token, "/api/users/{user_id}/tokens")
            revoke = await world.client.delete(f"/api/tokens/{record.token_id}",
                                               headers=party.headers)
            documented(revoke, "/api/tokens/{token_id}")
            outcome = (user.status_code, token.status_code, revoke.status_code)
            if caller not in ADMINS:
                assert outcome == (403, 403, 403), (caller, region)
                assert error_code(user) == "role_required"
            elif region in SEES[caller]:
                assert outcome == (201, 201, 200), (caller, region)
            else:
                assert outcome == (404, 404, 404), (caller, region)
                assert [error_code(r) for r in (user, token, revoke)] == [
                    "organisation_not_found", "user_not_found", "token_not_found"]


async def test_an_admin_registers_organisations_and_regions_only_in_its_region(
    world: World,
) -> None:
    for caller in ADMINS:
        headers = world.callers[caller].headers
        for region in ("440106", "330106", None):
            response = await world.client.post("/api/organisations", json={
                "kind": "agency", "name": f"新代理{caller}{region}", "region_code": region,
            }, headers=headers)
            documented(response, "/api/organisations")
            if region in SEES[caller]:
                assert response.status_code == 201, (caller, region)
            else:
                assert (response.status_code, error_code(response)) == (
                    403, "region_out_of_scope"), (caller, region)
    gd = world.callers["guangdong_admin"].headers
    added = await world.client.post("/api/regions", json={
        "code": "440111", "name": "白云区", "name_en": "Baiyun District"}, headers=gd)
    assert documented(added, "/api/regions") == {
        "code": "440111", "name": "白云区", "name_en": "Baiyun District", "level": "county",
        "parent_code": "440100"}
    outside = await world.client.post("/api/regions", json={"code": "330102", "name": "上城区"},
                                      headers=gd)
    assert (outside.status_code, error_code(outside)) == (403, "region_out_of_scope")
    orphan = await world.client.post("/api/regions", json={"code": "440511", "name": "金平区"},
                                     headers=gd)
    assert documented(orphan, "/api/regions")["error"]["code"] == "region_parent_missing"
    by_supervisor = await world.client.post(
        "/api/regions", json={"code": "440112", "name": "黄埔区"},
        headers=world.callers["guangzhou_supervisor"].headers)
    assert (by_supervisor.status_code, error_code(by_supervisor)) == (403, "role_required")


async def test_a_purchaser_reads_any_supplier_summary_and_a_supervisor_its_persons(
    world: World,
) -> None:
    path = f"/api/organisations/{world.supplier_gz}"
    summary = documented(await world.client.get(
        path, headers=world.callers["tianhe_purchaser"].headers), "/api/organisations/{org_id}")
    assert set(summary) == {"id", "name", "name_en", "kind", "size_class"}
    full = documented(await world.client.get(
        path, headers=world.callers["guangzhou_supervisor"].headers),
        "/api/organisations/{org_id}")
    assert full["persons"] == [{"role": "legal_representative", "name": "赵六"}]
    assert "11010519491231002X" not in str(full)
    other = await world.client.get(path, headers=world.callers["shenzhen_supervisor"].headers)
    assert (other.status_code, error_code(other)) == (404, "organisation_not_found")
    own = await world.client.get(
        f"/api/organisations/{world.callers['nanshan_supplier'].org_id}",
        headers=world.callers["nanshan_supplier"].headers)
    assert own.status_code == 200 and own.json()["region_code"] == "440305"
    peer = await world.client.get(path, headers=world.callers["nanshan_supplier"].headers)
    assert (peer.status_code, error_code(peer)) == (404, "organisation_not_found")


async def test_an_organisation_with_region_persons_and_a_checked_credit_code(
    world: World,
) -> None:
    headers = world.callers["platform_admin"].headers
    body: dict[str, Any] = {
        "kind": "supplier", "name": "深圳市腾讯计算机系统有限公司", "size_class": "large",
        "credit_code": "91440300708461136T", "region_code": "440305",
        "persons": [{"role": "legal_representative", "name": "马某",
                     "id_number": "11010519491231002X"},
                    {"role": "controlling_person", "name": "Jane Roe", "id_number": "K1234567",
                     "id_type": "other"}],
    }
    created = await world.client.post("/api/organisations", json=body, headers=headers)
    org = documented(created, "/api/organisations")
    assert created.status_code == 201
    assert (org["credit_code"], org["region_code"], org["level"]) == (
        "91440300708461136T", "440305", None)
    wrong = await world.client.post("/api/organisations", json={
        **body, "credit_code": "91440300708461136X"}, headers=headers)
    error = documented(wrong, "/api/organisations")["error"]
    assert (wrong.status_code, error["code"]) == (422, "invalid_credit_code")
    assert error["details"]["expected_check_character"] == "T"
    assert "T" in error["message"]
    bad_id = await world.client.post("/api/organisations", json={
        **body, "credit_code": None,
        "persons": [{"role": "legal_representative", "name": "马某",
                     "id_number": "110105194912310021"}]}, headers=headers)
    assert documented(bad_id, "/api/organisations")["error"]["code"] == "invalid_id_number"
    assert "110105194912310021" not in bad_id.text
    unit = await world.client.post("/api/organisations", json={
        "kind": "purchaser", "name": "广州市某某局", "region_code": "440100",
        "budget_unit_code": "401001"}, headers=headers)
    assert documented(unit, "/api/organisations")["level"] == "city"
    unknown_region = await world.client.post("/api/organisations", json={
        "kind": "agency", "name": "某代理", "region_code": "450100"}, headers=headers)
    assert documented(unknown_region, "/api/organisations")["error"]["code"] == (
        "region_not_found")


async def test_the_region_tree_routes(world: World) -> None:
    headers = world.callers["nanshan_supplier"].headers  # reference data: any signed-in user
    provinces = documented(await world.client.get("/api/regions", headers=headers),
                           "/api/regions")
    assert [r["code"] for r in provinces["items"]] == ["110000", "330000", "440000"]
    cities = documented(await world.client.get("/api/regions?parent=440000", headers=headers),
                        "/api/regions")
    assert [r["name"] for r in cities["items"]] == ["广州市", "深圳市"]
    found = documented(await world.client.get("/api/regions?q=南山", headers=headers),
                       "/api/regions")
    assert [r["code"] for r in found["items"]] == ["440305"]
    tianhe = documented(await world.client.get("/api/regions/440106", headers=headers),
                        "/api/regions/{code}")
    assert [a["name"] for a in tianhe["ancestors"]] == ["广东省", "广州市"]
    assert tianhe["children"] == [] and tianhe["parent_code"] == "440100"
    missing = await world.client.get("/api/regions/449900", headers=headers)
    assert documented(missing, "/api/regions/{code}")["error"]["code"] == "region_not_found"
    bad = await world.client.get("/api/regions?parent=44", headers=headers)
    assert documented(bad, "/api/regions")["error"]["code"] == "invalid_query"
    anonymous = await world.client.get("/api/regions")
    assert (anonymous.status_code, error_code(anonymous)) == (401, "missing_token")


async def test_the_catalogue_routes(world: World) -> None:
    headers = world.callers["tianhe_purchaser"].headers
    roots = documented(await world.client.get("/api/catalog/categories?parent=",
                                              headers=headers), "/api/catalog/categories")
    assert [c["code"] for c in roots["items"]] == ["A", "B", "C"]
    searched = documented(await world.client.get(
        "/api/catalog/categories?q=计算机&limit=2", headers=headers), "/api/catalog/categories")
    assert [c["code"] for c in searched["items"]] == ["A020101", "A02010105"]
    assert searched["next_offset"] == 2
    desktop = documented(await world.client.get("/api/catalog/categories/A02010105",
                                                headers=headers),
                         "/api/catalog/categories/{code}")
    assert (desktop["name"], desktop["kind"], desktop["parent_code"]) == (
        "台式计算机", "goods", "A020101")
    assert [a["code"] for a in desktop["ancestors"]] == ["A", "A02", "A0201", "A020101"]
    missing = await world.client.get("/api/catalog/categories/A99", headers=headers)
    assert documented(missing, "/api/catalog/categories/{code}")["error"]["code"] == (
        "category_not_found")
    bad_kind = await world.client.get("/api/catalog/categories?kind=food", headers=headers)
    assert documented(bad_kind, "/api/catalog/categories")["error"]["code"] == "invalid_query"
