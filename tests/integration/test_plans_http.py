"""Plans over HTTP and region scoping on the project and plan routes, as a matrix of caller ×
record region × route (issue #11: "Region scoping is enforced on every route"). Every answer
is checked against the OpenAPI document (``documented``), error codes included.

Who sees what is written out by hand below, not computed with the rule under test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

import httpx
import pytest
from starlette.applications import Starlette

from market.calendar import BEIJING
from market.catalog import Catalog, shipped_catalog_text
from market.registry import shipped_regions_text
from tests.conftest import Party, Seeder
from tests.integration.test_http_api import documented, error_code

YUAN = 100
REGIONS = ("440000", "440100", "440106", "440305", "330106")


def at(day: date, hh: int = 9, mm: int = 30) -> int:
    return int(datetime.combine(day, time(hh, mm), tzinfo=BEIJING).timestamp() * 1000)


T0 = at(date(2026, 9, 1), 8)


@dataclass
class Record:
    """What a purchasing unit of one region owns: a draft project, a published one, a budget
    project with one plan."""

    region: str
    owner: Party
    draft: str
    draft_lot: str
    published: str
    budget: str
    plan: str


@dataclass
class World:
    client: httpx.AsyncClient
    callers: dict[str, Party]
    records: dict[str, Record]


async def _party(seed: Seeder, kind: str, name: str, role: str, region: str | None) -> Party:
    registry = seed.services.registry
    org = await registry.create_organisation(
        name, kind, region_code=region, size_class="small" if kind == "supplier" else None,
        now_ms=T0)
    user = await registry.create_user(org.id, f"{name}用户", [role], T0)
    token, _ = await registry.issue_token(user.id, label="test", now_ms=T0)
    return Party(org.id, user.id, token, name)


async def _project(client: httpx.AsyncClient, owner: Party, region: str, title: str,
                   plan_id: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "title": title, "method": "open_tender", "region_code": region,
        "lots": [{"title": "台式计算机", "category_code": "A02010105",
                  "budget_fen": 1_000_000 * YUAN, "ceiling_fen": 950_000 * YUAN}]}
    if plan_id is not None:
        body["plan_id"] = plan_id
    created = await client.post("/api/projects", json=body, headers=owner.headers)
    assert created.status_code == 201, created.text
    result: dict[str, object] = created.json()
    return result


@pytest.fixture
async def world(app_client: httpx.AsyncClient, http_app: Starlette, seed: Seeder) -> World:
    await seed.set_clock(T0)
    services = http_app.state.services
    await services.registry.import_regions_csv(shipped_regions_text())
    await Catalog(services.sessions).import_csv(shipped_catalog_text())
    client = app_client
    records: dict[str, Record] = {}
    for region in REGIONS:
        owner = await _party(seed, "purchaser", f"采购人{region}", "purchaser", region)
        budget = await client.post("/api/budget-projects", headers=owner.headers, json={
            "code": f"{region}-2026-001", "name": "教学设备", "fiscal_year": 2026,
            "amount_fen": 5_000_000 * YUAN})
        assert budget.status_code == 201, budget.text
        plan = await client.post(f"/api/budget-projects/{budget.json()['id']}/plans",
                                 headers=owner.headers, json={
                                     "name": "计算机", "category_code": "A020101",
                                     "amount_fen": 3_000_000 * YUAN})
        assert plan.status_code == 201, plan.text
        draft = await _project(client, owner, region, f"草稿{region}", plan.json()["id"])
        published = await _project(client, owner, region, f"已发布{region}")
        lot_id = published["lots"][0]["id"]  # type: ignore[index]
        ok = await client.post(f"/api/lots/{lot_id}/publish", headers=owner.headers, json={
            "documents_from_ms": at(date(2026, 9, 11), 9),
            "documents_until_ms": at(date(2026, 9, 30), 17),
            "deadline_ms": at(date(2026, 10, 8))})
        assert ok.status_code == 200, ok.text
        records[region] = Record(region, owner, str(draft["id"]),
                                 str(draft["lots"][0]["id"]),  # type: ignore[index]
                                 str(published["id"]), budget.json()["id"], plan.json()["id"])
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
        "tianhe_purchaser": records["440106"].owner,
        "nanshan_supplier": await _party(seed, "supplier", "南山某公司", "supplier", "440305"),
        "agency": await _party(seed, "agency", "某代理", "agency", "440100"),
    }
    return World(client, callers, records)


ALL = set(REGIONS)
GUANGDONG = {"440000", "440100", "440106", "440305"}
# The regions whose records an administrator or supervisor sees.
SCOPED: dict[str, set[str]] = {
    "platform_admin": ALL,
    "guangdong_admin": GUANGDONG,
    "guangzhou_supervisor": {"440100", "440106"},
    "tianhe_supervisor": {"440106"},
    "shenzhen_supervisor": {"440305"},
    "regionless_supervisor": set(),
}
# Everyone else: its own (the Tianhe purchaser owns the 440106 records) and published projects.
OWN: dict[str, set[str]] = {"tianhe_purchaser": {"440106"}, "nanshan_supplier": set(),
                            "agency": set()}


def sees_project(caller: str, region: str, *, published: bool) -> bool:
    if caller in SCOPED:
        return region in SCOPED[caller]
    return published or region in OWN[caller]


def sees_plan(caller: str, region: str) -> bool:
    return region in SCOPED.get(caller, OWN.get(caller, set()))


async def test_project_routes_are_scoped(world: World) -> None:
    for caller, party in world.callers.items():
        listed = documented(await world.client.get("/api/projects?limit=500",
                                                   headers=party.headers), "/api/projects")
        ids = {item["id"] for item in listed["items"]}
        assert listed["total"] == len(ids), caller
        for region, record in world.records.items():
            for project_id, published in ((record.draft, False), (record.published, True)):
                expected = sees_project(caller, region, published=published)
                assert (project_id in ids) is expected, (caller, region, published)
                got = await world.client.get(f"/api/projects/{project_id}",
                                             headers=party.headers)
                documented(got, "/api/projects/{project_id}")
                assert got.status_code == (200 if expected else 404), (caller, region)
                if not expected:
                    assert error_code(got) == "project_not_found"
            plan = await world.client.get(
                f"/api/lots/{record.draft_lot}/plan",
                params={"documents_from_ms": at(date(2026, 9, 11))}, headers=party.headers)
            documented(plan, "/api/lots/{lot_id}/plan")
            expected = sees_project(caller, region, published=False)
            assert plan.status_code == (200 if expected else 404), (caller, region)
            if not expected:
                assert error_code(plan) == "lot_not_found"


async def test_plan_routes_are_scoped(world: World) -> None:
    for caller, party in world.callers.items():
        listed = await world.client.get("/api/budget-projects", headers=party.headers)
        ids = {b["id"] for b in documented(listed, "/api/budget-projects")["items"]}
        for region, record in world.records.items():
            expected = sees_plan(caller, region)
            assert (record.budget in ids) is expected, (caller, region)
            budget = await world.client.get(f"/api/budget-projects/{record.budget}",
                                            headers=party.headers)
            documented(budget, "/api/budget-projects/{budget_project_id}")
            plan = await world.client.get(f"/api/plans/{record.plan}", headers=party.headers)
            documented(plan, "/api/plans/{plan_id}")
            split = await world.client.get(f"/api/budget-projects/{record.budget}/splitting",
                                           headers=party.headers)
            documented(split, "/api/budget-projects/{budget_project_id}/splitting")
            if expected:
                assert (budget.status_code, plan.status_code) == (200, 200), (caller, region)
            else:
                assert (error_code(budget), error_code(plan)) == (
                    "budget_project_not_found", "plan_not_found"), (caller, region)
            if caller not in SCOPED:
                assert (split.status_code, error_code(split)) == (403, "role_required")
            elif expected:
                assert split.status_code == 200, (caller, region)
            else:
                assert (split.status_code, error_code(split)) == (
                    404, "budget_project_not_found"), (caller, region)
            # only the owner adds plans and intentions; anyone else is told it is not found
            add = await world.client.post(f"/api/budget-projects/{record.budget}/plans",
                                          headers=party.headers, json={
                                              "name": "家具", "category_code": "A0501",
                                              "amount_fen": 1})
            documented(add, "/api/budget-projects/{budget_project_id}/plans")
            owner = caller == "tianhe_purchaser" and region == "440106"
            if owner:
                assert add.status_code == 201
            elif caller == "tianhe_purchaser":
                assert error_code(add) == "budget_project_not_found"
            else:
                assert (add.status_code, error_code(add)) == (403, "role_required")


async def test_a_plan_over_http_from_budget_to_splitting(world: World) -> None:
    record = world.records["440106"]
    owner = record.owner.headers
    over = await world.client.post(f"/api/budget-projects/{record.budget}/plans", headers=owner,
                                   json={"name": "家具", "category_code": "A0501",
                                         "amount_fen": 2_000_000 * YUAN + 1})
    body = documented(over, "/api/budget-projects/{budget_project_id}/plans")
    assert body["error"]["code"] == "plans_exceed_budget"
    assert body["error"]["details"] == {"article": "GPL 6", "remaining_fen": 2_000_000 * YUAN,
                                        "amount_fen": 2_000_000 * YUAN + 1}
    # the draft drew 1,000,000 yuan: 2,000,000 left on the plan
    plan = documented(await world.client.get(f"/api/plans/{record.plan}", headers=owner),
                      "/api/plans/{plan_id}")
    assert plan["remaining_fen"] == 2_000_000 * YUAN
    assert [p["lot_id"] for p in plan["purchases"]] == [record.draft_lot]
    exceeded = await world.client.post("/api/projects", headers=owner, json={
        "title": "太多", "method": "inquiry", "region_code": "440106", "plan_id": record.plan,
        "lots": [{"title": "台式计算机", "category_code": "A02010105",
                  "budget_fen": 2_000_000 * YUAN + 1, "ceiling_fen": 1}]})
    assert documented(exceeded, "/api/projects")["error"]["code"] == "plan_exceeded"
    outside = await world.client.post("/api/projects", headers=owner, json={
        "title": "家具", "method": "inquiry", "region_code": "440106", "plan_id": record.plan,
        "lots": [{"title": "椅子", "category_code": "A0501", "budget_fen": 1,
                  "ceiling_fen": 1}]})
    assert documented(outside, "/api/projects")["error"]["code"] == "category_outside_plan"
    # an intention on 1 Sep whose expected month is September leaves no 30 days
    early = await world.client.post(f"/api/plans/{record.plan}/intentions", headers=owner, json={
        "name": "台式计算机采购", "requirement_summary": "台式计算机120台", "budget_fen": 100,
        "expected_month": "2026-09"})
    error = documented(early, "/api/plans/{plan_id}/intentions")["error"]
    assert error["code"] == "intention_too_late"
    assert error["details"]["earliest_day"] == "2026-10-08"
    assert error["details"]["article"] == "财库〔2020〕10号"
    ok = await world.client.post(f"/api/plans/{record.plan}/intentions", headers=owner, json={
        "name": "台式计算机采购", "requirement_summary": "台式计算机120台", "budget_fen": 100,
        "expected_month": "2026-10"})
    assert documented(ok, "/api/plans/{plan_id}/intentions")["expected_month"] == "2026-10"
    # publishing the planned draft before 8 Oct is refused with the rule; no write
    publish = await world.client.post(f"/api/lots/{record.draft_lot}/publish", headers=owner,
                                      json={"documents_from_ms": at(date(2026, 9, 11), 9),
                                            "documents_until_ms": at(date(2026, 9, 30), 17),
                                            "deadline_ms": at(date(2026, 10, 8))})
    error = documented(publish, "/api/lots/{lot_id}/publish")["error"]
    assert (error["code"], error["details"]["earliest_day"]) == ("intention_too_late",
                                                                 "2026-10-08")
    # splitting: two inquiries of 2,000,000 yuan and one fen under the plan exceed 4,000,000
    budget = await world.client.post("/api/budget-projects", headers=owner, json={
        "code": "SPLIT-1", "name": "拆分", "fiscal_year": 2026, "amount_fen": 9_000_000 * YUAN})
    split_plan = await world.client.post(
        f"/api/budget-projects/{budget.json()['id']}/plans", headers=owner,
        json={"name": "计算机", "category_code": "A020101", "amount_fen": 9_000_000 * YUAN})
    for amount in (2_000_000 * YUAN, 2_000_000 * YUAN, 1):
        made = await world.client.post("/api/projects", headers=owner, json={
            "title": "分批", "method": "inquiry", "region_code": "440106",
            "plan_id": split_plan.json()["id"],
            "lots": [{"title": "台式计算机", "category_code": "A02010105", "budget_fen": amount,
                      "ceiling_fen": amount}]})
        assert made.status_code == 201, made.text
    report = documented(await world.client.get(
        f"/api/budget-projects/{budget.json()['id']}/splitting",
        headers=world.callers["guangzhou_supervisor"].headers),
        "/api/budget-projects/{budget_project_id}/splitting")
    assert report["threshold_fen"] == 4_000_000 * YUAN
    assert [(f["category_code"], f["total_fen"], f["article"]) for f in report["flags"]] == [
        ("A020101", 4_000_000 * YUAN + 1, "Reg 28")]
