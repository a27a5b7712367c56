"""Property-based fuzzing of the whole HTTP API from its own OpenAPI document (Schemathesis).

Every operation of ``/openapi.json`` is called with generated requests, as each role
(administrator, purchaser, agency, supervisor, invited supplier, backup-key official, expert,
and no token at all), against the real app in-process (embedded Redis and SQLite, test clock).
Each answer must be no 5xx (``not_a_server_error``), have a status the operation documents
(``status_code_conformance``), a body that matches the documented schema
(``response_schema_conformance``), and an error code the operation lists for that status.

Schemathesis' strings are valid UTF-8 only, so they never carried the lone surrogate that gave
500s: here every generated string may get one of ``HOSTILE`` (lone surrogates, C0/C1 control
characters, DEL, astral and other awkward code points) inserted, bodies may gain a key made of
them, and path parameters are often the ids of real objects, so the fuzzer gets past "not
found". Deterministic (``derandomize``) with a bounded number of examples per operation and
role, so it runs in the normal suite and in CI on the embedded defaults.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from bidroom.config import Settings
from bidroom.opening.ca import PlatformCA
from market.catalog import Catalog, shipped_catalog_text
from market.projects.store import AnnouncementRow
from tests.conftest import Party, Seeder
from tests.opening_kit import at, issue
from web.openapi import openapi_document
from web.services import Services

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
MIN = 60_000
# Per operation and role: 8 roles x 44 operations, about 4,000 requests (~80 s). A deeper run:
# BIDROOM_FUZZ_EXAMPLES=100 .venv/bin/python -m pytest tests/integration/test_http_fuzz.py
EXAMPLES = int(os.environ.get("BIDROOM_FUZZ_EXAMPLES", "12"))

# Code points no generator of valid UTF-8 produces, and others that break naive code.
SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]
CONTROLS = ["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x1f", "\x7f", "\x85", "\x9f",
            "\t", "\n", "\r"]
AWKWARD = ["\U0001f600", "\U00020000", "\U0010ffff", "\ufeff", "\ufffe", "\uffff", "\u202e",
           "\u2028", "\u0301", "\ufffd", "\u00b2", "\u0663", "\uff11"]  # (digits: ² ٣ １)
HOSTILE = SURROGATES + CONTROLS + AWKWARD
# A URL cannot carry a lone surrogate (it is bytes; bad UTF-8 is decoded to U+FFFD).
HOSTILE_IN_URL = CONTROLS + AWKWARD

ROLES = ["admin", "purchaser", "agency", "supervisor", "supplier", "official", "expert",
         "anonymous"]

DOCUMENT = openapi_document()
schema = schemathesis.openapi.from_dict(json.loads(json.dumps(DOCUMENT)))
schema.config.phases.update(phases=["examples", "fuzzing"])
schema.config.generation.update(max_examples=EXAMPLES, deterministic=True)


# ------------------------------------------------------------------ hostile strings


def _hostile(alphabet: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(alphabet)


def _spoilt(text: str, alphabet: list[str]) -> st.SearchStrategy[str]:
    """The text with one hostile character inserted, or replaced by a run of them."""
    inserted = st.tuples(st.integers(0, len(text)), _hostile(alphabet)).map(
        lambda pick: text[: pick[0]] + pick[1] + text[pick[0]:])
    run = st.lists(_hostile(alphabet), min_size=1, max_size=4).map("".join)
    return st.one_of(inserted, run)


def _mutated(value: Any, alphabet: list[str]) -> st.SearchStrategy[Any]:
    """Any string anywhere in the value may be spoilt; an object may gain a hostile key."""
    if isinstance(value, str):
        return st.one_of(st.just(value), _spoilt(value, alphabet))
    if isinstance(value, list):
        return st.tuples(*(_mutated(item, alphabet) for item in value)).map(list)
    if isinstance(value, dict):
        fixed = st.fixed_dictionaries({k: _mutated(v, alphabet) for k, v in value.items()})
        extra = st.one_of(st.just({}), st.builds(lambda k, v: {k: v},
                                                 _spoilt("k", alphabet), st.just("x")))
        return st.builds(lambda d, e: {**d, **e}, fixed, extra)
    return st.just(value)


def _sometimes_spoilt(value: Any, alphabet: list[str]) -> st.SearchStrategy[Any]:
    # Half the cases stay as Schemathesis made them, so valid requests still get deep.
    return st.one_of(st.just(value), _mutated(value, alphabet))


@schema.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    return _sometimes_spoilt(body, HOSTILE)


@schema.hook
def flatmap_query(context: Any, query: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    if query is None:
        return st.just(None)
    return _sometimes_spoilt(query, HOSTILE_IN_URL)


@dataclass
class Lab:
    """The app running in its own event-loop thread, seeded with one party per role and
    objects whose ids the fuzzer may use."""

    portal: BlockingPortal
    client: httpx.AsyncClient
    parties: dict[str, Party]
    ids: dict[str, list[str]] = field(default_factory=dict)

    def send(self, case: Any, role: str) -> httpx.Response:
        party = self.parties.get(role)
        headers = {"Authorization": f"Bearer {party.token}"} if party is not None else {}
        kwargs = case.as_transport_kwargs(base_url="http://test", headers=headers)
        request: dict[str, Any] = {
            "method": kwargs["method"], "url": kwargs["url"],
            "headers": {k: v for k, v in kwargs["headers"].items()
                        if k.lower() != "authorization" or party is not None},
            "params": kwargs.get("params"),
        }
        if "json" in kwargs:  # JSON escapes a lone surrogate; httpx would refuse to encode it
            request["content"] = json.dumps(kwargs["json"]).encode("ascii")
        elif "data" in kwargs:
            request["content"] = kwargs["data"]
        return self.portal.call(lambda: self.client.request(**request))


_PATH_IDS = {"auction_id": "auctions", "opening_id": "openings", "user_id": "users",
             "token_id": "tokens", "supplier_id": "suppliers", "objection_id": "objections",
             "project_id": "projects", "lot_id": "lots", "day": "days", "year": "years",
             "budget_project_id": "budget_projects", "plan_id": "plans",
             "document_id": "documents", "registration_id": "registrations",
             "announcement_id": "announcements", "expert_id": "experts"}
_LAB: list[Lab] = []


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Often the id of a real object (so the route gets past "not found"), else what
    Schemathesis made, maybe spoilt."""
    if path_parameters is None:
        return st.just(None)
    known = _LAB[0].ids if _LAB else {}
    choices: dict[str, st.SearchStrategy[Any]] = {}
    for name, value in path_parameters.items():
        real = known.get(_PATH_IDS.get(name, ""), [])
        generated = _sometimes_spoilt(value, HOSTILE_IN_URL)
        choices[name] = st.one_of(st.sampled_from(real), generated) if real else generated
    return st.fixed_dictionaries(choices)


# ------------------------------------------------------------------ the world


async def _seed(app: Any, data_dir: Path) -> tuple[dict[str, Party], dict[str, list[str]]]:
    services: Services = app.state.services
    seeder = Seeder(services)
    await seeder.set_clock(T0)
    parties = {
        "admin": await seeder.admin(),
        "purchaser": await seeder.purchaser(),
        "agency": await seeder.agency(),
        "supervisor": await seeder.supervisor(),
        "supplier": await seeder.supplier("某某科技有限公司"),
        "official": await seeder.party("supervisor", "某市公共资源交易中心"),
        "expert": await seeder.party("supervisor", "评审专家库", roles=("expert",)),
    }
    other = await seeder.supplier("另一家供应商")
    headers = {"Authorization": f"Bearer {parties['agency'].token}"}
    ca = PlatformCA.load(data_dir / "ca")
    official_keys = [issue(ca, parties[name].org_id, f"{name} official",
                           data_dir.parent / "outside" / name, now_ms=T0 - 60 * MIN)
                     for name in ("official", "supervisor", "purchaser")]
    ids: dict[str, list[str]] = {"suppliers": [parties["supplier"].org_id, other.org_id]}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        auction = await http.post("/api/auctions", headers=headers, json={
            "title": "计算机采购项目网上竞价", "purchaser_org_id": parties["purchaser"].org_id,
            "invited_supplier_ids": ids["suppliers"],
            "settings": {"ceiling_fen": 1_000_000, "start_ms": T0 + MIN,
                         "end_ms": T0 + 60 * MIN}})
        assert auction.status_code == 201, auction.text
        opening = await http.post("/api/openings", headers=headers, json={
            "title": "某市第一中学计算机采购", "purchaser_org_id": parties["purchaser"].org_id,
            "invited_supplier_ids": ids["suppliers"],
            "settings": {"deadline_ms": T0 + 30 * MIN},
            "backup": {"k": 2, "officials": [
                {"user_id": parties[name].user_id, "certificate_pem": keys.enc_cert_pem()}
                for name, keys in zip(("official", "supervisor", "purchaser"), official_keys,
                                      strict=True)]}})
        assert opening.status_code == 201, opening.text
        plain = await http.post("/api/openings", headers=headers, json={
            "title": "无备用密钥的开标", "purchaser_org_id": parties["purchaser"].org_id,
            "invited_supplier_ids": ids["suppliers"],
            "settings": {"deadline_ms": T0 + 30 * MIN}})
        assert plain.status_code == 201, plain.text
        project = await http.post("/api/projects", headers={
            "Authorization": f"Bearer {parties['purchaser'].token}"}, json={
            "title": "某市第一中学计算机采购", "method": "open_tender", "region_code": "440100",
            "lots": [{"title": "台式计算机", "category_code": "A02010105",
                      "budget_fen": 100_000_000, "ceiling_fen": 95_000_000}]})
        assert project.status_code == 201, project.text
        purchaser = {"Authorization": f"Bearer {parties['purchaser'].token}"}
        await Catalog(services.sessions).import_csv(shipped_catalog_text())
        budget = await http.post("/api/budget-projects", headers=purchaser, json={
            "code": "2026-001", "name": "教学设备", "fiscal_year": 2026, "region_code": "440100",
            "amount_fen": 500_000_000})
        assert budget.status_code == 201, budget.text
        plan = await http.post(f"/api/budget-projects/{budget.json()['id']}/plans",
                               headers=purchaser, json={"name": "计算机",
                                                        "category_code": "A020101",
                                                        "amount_fen": 300_000_000})
        assert plan.status_code == 201, plan.text
        admin = {"Authorization": f"Bearer {parties['admin'].token}"}
        expert = await http.post("/api/experts", headers=admin, json={
            "name": "张三", "id_number": "11010519491231002X", "region_code": "440100",
            "specialties": ["A0201"],
            "affiliations": [{"kind": "employment", "org_id": parties["supplier"].org_id,
                              "from": "2015-09-01"}]})
        assert expert.status_code == 201, expert.text
        linked = await http.put(f"/api/experts/{expert.json()['id']}/user", headers=admin,
                                json={"user_id": parties["expert"].user_id})
        assert linked.status_code == 200, linked.text
        tender = await http.post("/api/projects", headers=purchaser, json={
            "title": "某市第一中学打印机采购", "method": "open_tender", "region_code": "440100",
            "lots": [{"title": "打印机", "category_code": "A02010105",
                      "budget_fen": 100_000_000, "ceiling_fen": 95_000_000}]})
        assert tender.status_code == 201, tender.text
        tender_lot = tender.json()["lots"][0]["id"]
        document = await http.post(f"/api/lots/{tender_lot}/documents", headers=purchaser,
                                   params={"title": "招标文件", "filename": "招标文件.pdf"},
                                   content=b"%PDF-1.7 tender documents")
        assert document.status_code == 201, document.text
        published = await http.post(f"/api/lots/{tender_lot}/publish", headers=purchaser, json={
            "documents_from_ms": T0 + 60 * MIN, "documents_until_ms": T0 + 20 * 1440 * MIN,
            "deadline_ms": T0 + 30 * 1440 * MIN})
        assert published.status_code == 200, published.text
        registration = await http.post(f"/api/lots/{tender_lot}/registrations", headers={
            "Authorization": f"Bearer {parties['supplier'].token}"})
        assert registration.status_code == 201, registration.text
    async with services.sessions() as session, session.begin():  # one for the portal
        notice = AnnouncementRow(
            project_id=project.json()["id"], lot_id=None, kind="procurement",
            title="某市第一中学计算机采购 台式计算机", body="采购公告", region_code="440100",
            method="open_tender", category_code="A02010105", dates=[], published_at_ms=T0)
        session.add(notice)
        await session.flush()
        announcement_id = str(notice.id)
    tokens = await services.registry.list_tokens(parties["supplier"].user_id)
    ids.update({
        "auctions": [auction.json()["id"]],
        "openings": [opening.json()["id"], plain.json()["id"]],
        "users": [p.user_id for p in parties.values()],
        "tokens": [t.id for t in tokens],
        "objections": ["1", "0"],
        "projects": [project.json()["id"]],
        "lots": [lot["id"] for lot in project.json()["lots"]] + [tender_lot],
        "documents": [document.json()["id"]],
        "registrations": [registration.json()["id"]],
        "days": ["2026-10-01", "2027-01-01"],
        "years": ["2026", "2027"],
        "budget_projects": [budget.json()["id"]],
        "plans": [plan.json()["id"]],
        "announcements": [announcement_id, "0"],
        "experts": [expert.json()["id"]],
    })
    return parties, ids


@pytest.fixture(scope="module")
def lab(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    from web.app import create_app
    from web.db import upgrade_database

    base = tmp_path_factory.mktemp("fuzz")
    data_dir = base / "data"
    PlatformCA.init(data_dir / "ca", now=at(T0 - 24 * 60 * MIN))
    database_url = f"sqlite+aiosqlite:///{base / 'bidroom.db'}"
    app = create_app(Settings(data_dir=data_dir, redis_url=redis_url,
                              database_url=database_url, test_clock=True))
    with start_blocking_portal() as portal:
        portal.call(upgrade_database, database_url)
        with portal.wrap_async_context_manager(app.router.lifespan_context(app)):
            services = app.state.services
            client = portal.call(_client, app)
            try:
                parties, ids = portal.call(_seed, app, data_dir)
                _LAB.append(Lab(portal, client, parties, ids))
                yield _LAB[0]
            finally:
                _LAB.clear()
                portal.call(client.aclose)
                portal.call(_forget, services)


async def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def _forget(services: Services) -> None:
    """Take this module's auctions and openings out of the shared Redis' schedules."""
    for row in await services.auctions.list_auctions(limit=100_000):
        await services.redis.zrem("bidroom:schedule", row.id)
        await services.redis.delete(*services.executor.keys(row.id).all())
    openings = await services.openings.store.list_openings(everything=True)
    if openings:
        await services.redis.zrem(services.openings.schedule_key, *[r.id for r in openings])


# ------------------------------------------------------------------ the checks


def documented_error_code(response: httpx.Response, case: Any) -> None:
    """An error answer's ``code`` is one the operation lists for that status."""
    if response.status_code < 400:
        return
    declared = case.operation.definition.raw["responses"].get(str(response.status_code))
    if declared is None:
        return  # status_code_conformance reports it
    code = json.loads(response.content)["error"]["code"]
    assert f"`{code}`" in declared["description"], (
        f"{case.method} {case.path} answered {response.status_code} {code!r}, "
        f"which its documentation does not list ({declared['description']})")


CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.mark.parametrize("role", ROLES)
@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_no_input_gets_a_server_error_and_every_answer_is_documented(
    case: Any, role: str, lab: Lab
) -> None:
    response = lab.send(case, role)
    case.validate_response(response, checks=CHECKS)
    documented_error_code(response, case)
