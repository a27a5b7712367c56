"""The calendar and project routes over HTTP (in-process app, embedded stores): statutory dates
with their articles, the administrator's days, and a lot from draft to a failed qualification
with every refusal naming its rule."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import pytest

from market.calendar import BEIJING

pytestmark = pytest.mark.asyncio

YUAN = 100


def at(day: date, hh: int = 9, mm: int = 30) -> int:
    return int(datetime.combine(day, time(hh, mm), tzinfo=BEIJING).timestamp() * 1000)


async def test_statutory_dates_are_public_and_name_their_article(app_client: Any) -> None:
    reply = await app_client.get("/api/calendar/dates",
                                 params={"period": "bid_deadline", "from": "2026-09-11"})
    assert reply.status_code == 200
    body = reply.json()
    assert body["day"] == "2026-10-08" and body["article"] == "GPL 35"
    assert [d["day"] for d in body["skipped"]] == [f"2026-10-0{i}" for i in range(1, 8)]
    periods = (await app_client.get("/api/calendar/periods")).json()["periods"]
    assert {"GPL 35", "O87 16", "O87 27", "EXP 14", "O74 45"} <= {p["article"] for p in periods}
    bad = await app_client.get("/api/calendar/dates", params={"period": "nope", "from": "x"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_day"
    unknown = await app_client.get("/api/calendar/dates",
                                   params={"period": "nope", "from": "2026-01-05"})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_period"
    year = (await app_client.get("/api/calendar/years/2026")).json()
    assert year["by_package"] and "2026-10-10" in {d["day"] for d in year["days"]}


async def test_only_an_administrator_enters_days_and_they_decide_an_unknown_year(
        app_client: Any, seed: Any) -> None:
    admin, purchaser = await seed.admin(), await seed.purchaser()
    url = "/api/calendar/days/2027-01-01"
    refused = await app_client.put(url, json={"working": False}, headers=purchaser.headers)
    assert refused.status_code == 403
    guess = (await app_client.get("/api/calendar/dates", params={
        "period": "contract_publication", "from": "2026-12-31"})).json()
    assert guess["day"] == "2027-01-04" and guess["provisional"] and "2027" in guess["warning"]
    entered = await app_client.put(url, json={"working": False, "name": "元旦"},
                                   headers=admin.headers)
    assert entered.status_code == 200 and entered.json()["source"] == "administrator"
    declared = await app_client.put("/api/calendar/years/2027", json={"complete": True},
                                    headers=admin.headers)
    assert declared.status_code == 200
    final = (await app_client.get("/api/calendar/dates", params={
        "period": "contract_publication", "from": "2026-12-31"})).json()
    assert final["day"] == "2027-01-05" and not final["provisional"] and final["warning"] is None
    wrong = await app_client.put(url, json={"working": "no"}, headers=admin.headers)
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "invalid_field"


async def test_a_lot_runs_from_draft_to_a_failed_qualification_with_each_rule_named(
        app_client: Any, seed: Any) -> None:
    purchaser, other = await seed.purchaser(), await seed.purchaser("另一所学校")
    await seed.set_clock(at(date(2026, 9, 11), 8))
    created = await app_client.post("/api/projects", headers=purchaser.headers, json={
        "title": "某市第一中学计算机采购", "method": "open_tender", "region_code": "440100",
        "lots": [{"title": "台式计算机", "category_code": "A02010105",
                  "budget_fen": 1_000_000 * YUAN, "ceiling_fen": 950_000 * YUAN,
                  "bond_fen": 20_000 * YUAN}]})
    assert created.status_code == 201, created.text
    lot_id = created.json()["lots"][0]["id"]
    plan = await app_client.get(f"/api/lots/{lot_id}/plan", headers=purchaser.headers,
                                params={"documents_from_ms": at(date(2026, 9, 11), 9)})
    assert {d["article"]: d["day"] for d in plan.json()["dates"]} == {
        "O87 16": "2026-09-18", "O87 18": "2026-09-17", "GPL 35": "2026-10-08"}

    publish = {"documents_from_ms": at(date(2026, 9, 11), 9),
               "documents_until_ms": at(date(2026, 9, 30), 17),
               "deadline_ms": at(date(2026, 10, 7))}
    early = await app_client.post(f"/api/lots/{lot_id}/publish", json=publish,
                                  headers=purchaser.headers)
    assert early.status_code == 422
    error = early.json()["error"]
    assert error["code"] == "deadline_too_early"
    assert error["details"]["article"] == "GPL 35"
    assert error["details"]["earliest_day"] == "2026-10-08"
    foreign = await app_client.post(f"/api/lots/{lot_id}/publish", headers=other.headers,
                                    json={**publish, "deadline_ms": at(date(2026, 10, 8))})
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "not_your_project"
    ok = await app_client.post(f"/api/lots/{lot_id}/publish", headers=purchaser.headers,
                               json={**publish, "deadline_ms": at(date(2026, 10, 8))})
    assert ok.status_code == 200, ok.text
    assert ok.json()["lot"]["status"] == "announced"
    project = (await app_client.get(f"/api/projects/{created.json()['id']}",
                                    headers=purchaser.headers)).json()
    assert [a["kind"] for a in project["announcements"]] == ["procurement"]
    assert {d["article"] for d in project["announcements"][0]["dates"]} >= {"GPL 35"}

    # O87 27: a bid-affecting correction on Wed 30 Sep needs 15 days: the deadline of 8 Oct
    # moves to Thu 15 Oct, same time of day
    await seed.set_clock(at(date(2026, 9, 30), 10))
    moved = await app_client.post(f"/api/lots/{lot_id}/corrections", headers=purchaser.headers,
                                  json={"affects_bids": True})
    assert moved.status_code == 200
    assert moved.json()["lot"]["deadline_ms"] == at(date(2026, 10, 15))
    again = await app_client.post(f"/api/lots/{lot_id}/publish", headers=purchaser.headers,
                                  json={**publish, "deadline_ms": at(date(2026, 10, 8))})
    assert again.status_code == 409 and again.json()["error"]["code"] == "wrong_status"
    listed = (await app_client.get("/api/projects", params={"region": "4401"},
                                   headers=purchaser.headers)).json()
    assert listed["total"] == 1
    assert (await app_client.get("/api/projects", params={"region": "11"},
                                 headers=purchaser.headers)).json()["total"] == 0
