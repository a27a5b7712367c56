"""The expert registry (评审专家库) over HTTP and through its service: registration, region
scoping, the status machine, the user link and /me, unavailability and the candidates' facts.
Every answer is checked against the OpenAPI document (``documented``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from market.catalog import Catalog, shipped_catalog_text
from market.experts.rules import AffiliationKind, DayRange, RelationKind
from market.experts.store import ExpertRow, RelationRow
from market.registry import shipped_regions_text
from market.registry.rules import id_check_character, person_id_hash
from tests.conftest import Party, Seeder
from tests.integration.test_http_api import documented, error_code

T0 = 1_788_000_000_000
CREDIT = "91350100M000100Y43"


def id_number(first17: str) -> str:
    return first17 + id_check_character(first17)


EXPERT_ID = id_number("44010619800101001")
OTHER_ID = id_number("44030519750202002")
RELATIVE_ID = id_number("11010519491231002")


@dataclass
class World:
    client: httpx.AsyncClient
    seed: Seeder
    p: dict[str, Party]


async def _party(seed: Seeder, kind: str, name: str, roles: list[str],
                 region: str | None) -> Party:
    registry = seed.services.registry
    org = await registry.create_organisation(
        name, kind, region_code=region, size_class="small" if kind == "supplier" else None,
        now_ms=T0)
    user = await registry.create_user(org.id, f"{name}用户", roles, T0)
    token, _ = await registry.issue_token(user.id, label="test", now_ms=T0)
    return Party(org.id, user.id, token, name)


@pytest.fixture
async def world(app_client: httpx.AsyncClient, http_app: Starlette, seed: Seeder) -> World:
    await seed.set_clock(T0)
    services = http_app.state.services
    await services.registry.import_regions_csv(shipped_regions_text())
    await Catalog(services.sessions).import_csv(shipped_catalog_text())
    p = {
        "platform_admin": await _party(seed, "platform", "平台运营方", ["admin"], None),
        "guangdong_admin": await _party(seed, "platform", "广东省运维", ["admin"], "440000"),
        "shenzhen_admin": await _party(seed, "platform", "深圳市运维", ["admin"], "440300"),
        "guangzhou_supervisor": await _party(seed, "supervisor", "广州市财政局", ["supervisor"],
                                             "440100"),
        "supplier": await _party(seed, "supplier", "某公司", ["supplier"], "440106"),
        "expert_user": await _party(seed, "platform", "专家个人", ["expert"], None),
        "other_expert_user": await _party(seed, "platform", "专家个人2", ["expert"], None),
    }
    return World(app_client, seed, p)


def _body(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "张三", "id_number": EXPERT_ID, "region_code": "440106",
        "specialties": ["A0201"],
        "affiliations": [
            {"kind": "employment", "org_name": "某大学", "credit_code": CREDIT,
             "from": "2015-09-01", "until": None},
            {"kind": "directorship", "org_id": "org_abc", "from": "2019-01-01",
             "until": "2023-06-30"}],
        "relations": [{"kind": "relative", "relation": "配偶", "id_number": RELATIVE_ID},
                      {"kind": "organisation", "relation": "顾问", "org_id": "org_xyz"}]}
    body.update(over)
    return body


async def _register(w: World, who: str = "guangdong_admin", **over: object) -> httpx.Response:
    return await w.client.post("/api/experts", json=_body(**over), headers=w.p[who].headers)


async def test_registering_an_expert_keeps_no_id_number(world: World, http_app: Starlette) -> None:
    r = await _register(world)
    assert r.status_code == 201, r.text
    body = documented(r, "/api/experts")
    assert body["status"] == "active" and body["region_code"] == "440106"
    assert body["specialties"] == ["A0201"]
    assert [a["kind"] for a in body["affiliations"]] == ["employment", "directorship"]
    assert body["affiliations"][0]["until"] is None
    assert body["affiliations"][1]["until"] == "2023-06-30"
    assert body["relations"][0] == {"kind": "relative", "relation": "配偶", "org_id": None,
                                    "credit_code": None}
    for secret in (EXPERT_ID, RELATIVE_ID, person_id_hash(EXPERT_ID),
                   person_id_hash(RELATIVE_ID)):
        assert secret not in r.text
    async with http_app.state.services.sessions() as session:
        expert = await session.scalar(select(ExpertRow))
        relations = (await session.scalars(select(RelationRow))).all()
    assert expert is not None and expert.id_hash == person_id_hash(EXPERT_ID)
    stored = repr([vars(expert), *(vars(x) for x in relations)])
    assert EXPERT_ID not in stored and RELATIVE_ID not in stored
    assert person_id_hash(RELATIVE_ID) in stored

    again = await _register(world, id_number=EXPERT_ID.lower())
    assert again.status_code == 409 and error_code(again) == "expert_already_registered"
    documented(again, "/api/experts")


@pytest.mark.parametrize(("who", "over", "status", "code"), [
    ("shenzhen_admin", {}, 403, "region_out_of_scope"),
    ("guangzhou_supervisor", {}, 403, "role_required"),
    ("supplier", {}, 403, "role_required"),
    ("guangdong_admin", {"specialties": ["A99"]}, 404, "category_not_found"),
    ("guangdong_admin", {"id_number": EXPERT_ID[:17] + "0" if EXPERT_ID[17] != "0"
                         else EXPERT_ID[:17] + "1"}, 422, "invalid_id_number"),
    ("guangdong_admin", {"region_code": "44010"}, 422, "invalid_region"),
    ("guangdong_admin", {"affiliations": [{"kind": "employment", "org_id": "o",
                                           "from": "2020-01-02", "until": "2020-01-01"}]},
     422, "invalid_date_range"),
    ("guangdong_admin", {"affiliations": [{"kind": "employment", "from": "2020-01-02"}]},
     422, "missing_field"),
    ("guangdong_admin", {"affiliations": [{"kind": "boss", "org_id": "o",
                                           "from": "2020-01-02"}]}, 422, "invalid_field"),
    ("guangdong_admin", {"relations": [{"kind": "relative", "relation": "子女"}]},
     422, "invalid_id_number"),
    ("guangdong_admin", {"relations": [{"kind": "organisation", "relation": "x",
                                        "credit_code": "123"}]}, 422, "invalid_credit_code"),
    ("guangdong_admin", {"extra": 1}, 422, "unknown_field"),
    ("guangdong_admin", {"specialties": []}, 422, "invalid_field"),
])
async def test_registration_refusals(world: World, who: str, over: dict[str, object],
                                     status: int, code: str) -> None:
    r = await _register(world, who, **over)
    assert (r.status_code, error_code(r)) == (status, code), r.text
    documented(r, "/api/experts")


async def test_region_scoping(world: World) -> None:
    tianhe = (await _register(world)).json()["id"]
    nanshan = (await _register(world, id_number=OTHER_ID, region_code="440305")).json()["id"]
    expect = {"platform_admin": {tianhe, nanshan}, "guangdong_admin": {tianhe, nanshan},
              "shenzhen_admin": {nanshan}, "guangzhou_supervisor": {tianhe},
              "supplier": set(), "expert_user": set()}
    for who, seen in expect.items():
        listed = await world.client.get("/api/experts", headers=world.p[who].headers)
        assert listed.status_code == 200
        page = documented(listed, "/api/experts")
        assert {e["id"] for e in page["items"]} == seen, who
        assert page["total"] == len(seen)
        for expert_id in (tianhe, nanshan):
            one = await world.client.get(f"/api/experts/{expert_id}",
                                         headers=world.p[who].headers)
            documented(one, "/api/experts/{expert_id}")
            assert one.status_code == (200 if expert_id in seen else 404), who
    bad = await world.client.get("/api/experts?status=sleeping",
                                 headers=world.p["platform_admin"].headers)
    assert error_code(bad) == "invalid_query"
    active = await world.client.get("/api/experts?status=suspended",
                                    headers=world.p["platform_admin"].headers)
    assert active.json()["total"] == 0


async def test_the_status_machine_over_http(world: World) -> None:
    expert_id = (await _register(world)).json()["id"]
    path = f"/api/experts/{expert_id}/status"

    async def move(body: dict[str, object], who: str = "guangdong_admin") -> httpx.Response:
        r = await world.client.post(path, json=body, headers=world.p[who].headers)
        documented(r, "/api/experts/{expert_id}/status")
        return r

    r = await move({"status": "suspended"})
    assert (r.status_code, error_code(r)) == (422, "status_reason_required")
    r = await move({"status": "suspended", "reason": "考核"}, "guangzhou_supervisor")
    assert (r.status_code, error_code(r)) == (403, "role_required")
    r = await move({"status": "suspended", "reason": "考核"}, "shenzhen_admin")
    assert (r.status_code, error_code(r)) == (404, "expert_not_found")
    r = await move({"status": "active"})
    assert (r.status_code, error_code(r)) == (409, "invalid_status_change")
    r = await move({"status": "suspended", "reason": "年度考核不合格"})
    assert r.status_code == 200 and r.json()["status_reason"] == "年度考核不合格"
    r = await move({"status": "active"})
    assert r.status_code == 200 and r.json()["status"] == "active"
    r = await move({"status": "retired", "reason": "本人申请"})
    assert r.status_code == 200 and r.json()["status"] == "retired"
    r = await move({"status": "active"})
    assert (r.status_code, error_code(r)) == (409, "expert_retired")
    r = await move({"status": "asleep"})
    assert (r.status_code, error_code(r)) == (422, "invalid_field")


async def test_the_user_link_me_and_unavailability(world: World) -> None:
    expert_id = (await _register(world)).json()["id"]
    me = world.p["expert_user"].headers
    r = await world.client.get("/api/experts/me", headers=me)
    assert (r.status_code, error_code(r)) == (404, "expert_not_found")
    documented(r, "/api/experts/me")
    r = await world.client.get("/api/experts/me", headers=world.p["supplier"].headers)
    assert (r.status_code, error_code(r)) == (403, "role_required")

    link = f"/api/experts/{expert_id}/user"
    admin = world.p["guangdong_admin"].headers
    r = await world.client.put(link, json={"user_id": world.p["supplier"].user_id},
                               headers=admin)
    assert (r.status_code, error_code(r)) == (422, "expert_role_required")
    r = await world.client.put(link, json={"user_id": "usr_nobody"}, headers=admin)
    assert (r.status_code, error_code(r)) == (404, "user_not_found")
    r = await world.client.put(link, json={"user_id": world.p["expert_user"].user_id},
                               headers=admin)
    assert r.status_code == 200, r.text
    assert documented(r, "/api/experts/{expert_id}/user")["user_id"] == world.p[
        "expert_user"].user_id
    other = (await _register(world, id_number=OTHER_ID)).json()["id"]
    r = await world.client.put(f"/api/experts/{other}/user",
                               json={"user_id": world.p["expert_user"].user_id}, headers=admin)
    assert (r.status_code, error_code(r)) == (409, "user_already_linked")

    r = await world.client.get("/api/experts/me", headers=me)
    assert r.status_code == 200 and documented(r, "/api/experts/me")["id"] == expert_id
    r = await world.client.get(f"/api/experts/{expert_id}", headers=me)
    assert r.status_code == 200
    r = await world.client.get(f"/api/experts/{other}", headers=me)
    assert r.status_code == 404

    una = f"/api/experts/{expert_id}/unavailability"
    r = await world.client.put(una, json={"ranges": [
        {"from": "2026-12-20", "until": "2027-01-03"}, {"from": "2026-12-01",
                                                        "until": "2026-12-01"}]}, headers=me)
    assert r.status_code == 200, r.text
    assert documented(r, "/api/experts/{expert_id}/unavailability")["unavailable"] == [
        {"from": "2026-12-01", "until": "2026-12-01"},
        {"from": "2026-12-20", "until": "2027-01-03"}]
    r = await world.client.put(una, json={"ranges": [{"from": "2026-12-20",
                                                      "until": "2026-12-19"}]}, headers=me)
    assert (r.status_code, error_code(r)) == (422, "invalid_date_range")
    r = await world.client.put(f"/api/experts/{other}/unavailability",
                               json={"ranges": []}, headers=me)
    assert (r.status_code, error_code(r)) == (404, "expert_not_found")
    r = await world.client.put(una, json={}, headers=me)
    assert (r.status_code, error_code(r)) == (422, "missing_field")
    r = await world.client.put(link, json={"user_id": None}, headers=admin)
    assert r.status_code == 200 and r.json()["user_id"] is None
    r = await world.client.get("/api/experts/me", headers=me)
    assert r.status_code == 404


async def test_candidates_carry_every_fact(world: World, http_app: Starlette) -> None:
    service = http_app.state.services.experts
    tianhe = (await _register(world)).json()["id"]
    nanshan = (await _register(world, id_number=OTHER_ID, region_code="440305",
                               specialties=["A02", "C"], relations=[],
                               affiliations=[])).json()["id"]
    third = id_number("44010619900303003")
    works = (await _register(world, id_number=third, specialties=["A05"], relations=[],
                             affiliations=[])).json()["id"]
    day = date(2026, 12, 25)

    def ids(found: list[object]) -> list[str]:
        return sorted(c.expert_id for c in found)  # type: ignore[attr-defined]

    assert ids(await service.candidates(["A020101"], "44", day)) == sorted([tianhe, nanshan])
    assert ids(await service.candidates(["A020101"], "4401", day)) == [tianhe]
    assert ids(await service.candidates(["A02"], "44", day)) == [nanshan]
    assert ids(await service.candidates(["A0501", "C01"], "", day)) == sorted([works, nanshan])
    assert await service.candidates(["A020101"], "33", day) == []
    assert await service.candidates(["A020101"], "4'", day) == []

    await world.client.put(f"/api/experts/{tianhe}/unavailability", json={"ranges": [
        {"from": "2026-12-25", "until": "2026-12-26"}]},
        headers=world.p["guangdong_admin"].headers)
    assert ids(await service.candidates(["A020101"], "44", day)) == [nanshan]
    assert ids(await service.candidates(["A020101"], "44", date(2026, 12, 27))) == sorted(
        [tianhe, nanshan])
    await world.client.post(f"/api/experts/{nanshan}/status",
                            json={"status": "suspended", "reason": "x"},
                            headers=world.p["guangdong_admin"].headers)
    assert ids(await service.candidates(["A020101"], "44", date(2026, 12, 27))) == [tianhe]

    (facts,) = await service.candidates(["A020101"], "4401", date(2026, 12, 27))
    assert facts.id_hash == person_id_hash(EXPERT_ID)
    assert facts.specialties == ("A0201",)
    assert [(a.kind, a.org_id, a.credit_code, a.from_day, a.until_day)
            for a in facts.affiliations] == [
        (AffiliationKind.EMPLOYMENT, None, CREDIT, date(2015, 9, 1), None),
        (AffiliationKind.DIRECTORSHIP, "org_abc", None, date(2019, 1, 1), date(2023, 6, 30))]
    assert [(r.kind, r.relation, r.person_id_hash, r.org_id) for r in facts.relations] == [
        (RelationKind.RELATIVE, "配偶", person_id_hash(RELATIVE_ID), None),
        (RelationKind.ORGANISATION, "顾问", None, "org_xyz")]
    assert facts.unavailable == (DayRange(date(2026, 12, 25), date(2026, 12, 26)),)
    view = await service.expert_for_user(world.p["expert_user"].user_id)
    assert view is None
