"""Tender documents, downloads as evidence, registration (报名) and bid bonds over HTTP
(in-process app, embedded stores, test clock): every refusal answers its stable code."""

from __future__ import annotations

import hashlib
import os
from datetime import date, datetime, time
from typing import Any

import pytest
from sqlalchemy import select

from market.calendar import BEIJING
from market.events import OutboxRow
from market.registry import shipped_regions_text
from tests.conftest import Party, Seeder

pytestmark = pytest.mark.asyncio

YUAN = 100
FP = "d1b2c3e4f5a6b7c8d9e0f1a2b3c4d5e6"


def at(day: date, hh: int = 9, mm: int = 30) -> int:
    return int(datetime.combine(day, time(hh, mm), tzinfo=BEIJING).timestamp() * 1000)


def code(reply: Any) -> str:
    return str(reply.json()["error"]["code"])


async def regional(seed: Seeder, kind: str, name: str, region: str) -> Party:
    services = seed.services
    org = await services.registry.create_organisation(name, kind, region_code=region,
                                                      now_ms=seed.clock_ms or 0)
    roles = ("admin",) if kind == "platform" else (kind,)
    user = await services.registry.create_user(org.id, f"{name}用户", roles, seed.clock_ms or 0)
    token, _ = await services.registry.issue_token(user.id, label="t", now_ms=seed.clock_ms or 0)
    return Party(org.id, user.id, token, name)


async def project(client: Any, purchaser: Party) -> tuple[str, str, str]:
    created = await client.post("/api/projects", headers=purchaser.headers, json={
        "title": "某市第一中学计算机采购", "method": "open_tender", "region_code": "440100",
        "lots": [{"title": "台式计算机", "category_code": "A02010105",
                  "budget_fen": 1_000_000 * YUAN, "ceiling_fen": 950_000 * YUAN,
                  "bond_fen": 20_000 * YUAN},
                 {"title": "打印机", "category_code": "A02010105",
                  "budget_fen": 100_000 * YUAN, "ceiling_fen": 90_000 * YUAN}]})
    assert created.status_code == 201, created.text
    body = created.json()
    return body["id"], body["lots"][0]["id"], body["lots"][1]["id"]


PUBLISH = {"documents_from_ms": at(date(2026, 9, 11), 9),
           "documents_until_ms": at(date(2026, 9, 30), 17),
           "deadline_ms": at(date(2026, 10, 8))}


async def test_documents_downloads_registration_and_bonds(app_client: Any, seed: Any) -> None:
    await seed.set_clock(at(date(2026, 9, 11), 8))
    await seed.services.registry.import_regions_csv(shipped_regions_text())
    purchaser, other = await seed.purchaser(), await seed.purchaser("另一所学校")
    a, b, c, d = [await seed.supplier(n) for n in ("甲公司", "乙公司", "丙公司", "丁公司")]
    gd = await regional(seed, "supervisor", "广东省财政厅", "440000")
    zj = await regional(seed, "supervisor", "浙江省财政厅", "330000")
    project_id, lot, lot2 = await project(app_client, purchaser)

    # documents: the purchaser uploads in draft; the SHA-256 is the bytes'
    content = "第一章 招标公告\n".encode() * 1000
    url = f"/api/lots/{lot}/documents"
    params = {"title": "招标文件", "filename": "招标文件.pdf"}
    up = await app_client.post(url, params=params, content=content,
                               headers={**purchaser.headers, "Content-Type": "application/pdf"})
    assert up.status_code == 201, up.text
    doc = up.json()
    assert doc["versions"][0]["sha256"] == hashlib.sha256(content).hexdigest()
    assert doc["versions"][0]["content_type"] == "application/pdf"
    doc_id = doc["id"]
    foreign = await app_client.post(url, params=params, content=b"x", headers=other.headers)
    assert foreign.status_code == 403 and code(foreign) == "not_your_project"
    empty = await app_client.post(url, params=params, content=b"", headers=purchaser.headers)
    assert empty.status_code == 422 and code(empty) == "empty_upload"
    untitled = await app_client.post(url, params={"filename": "a.pdf"}, content=b"x",
                                     headers=purchaser.headers)
    assert untitled.status_code == 422 and code(untitled) == "missing_field"
    pathy = await app_client.post(url, params={**params, "filename": "../etc/passwd"},
                                  content=b"x", headers=purchaser.headers)
    assert pathy.status_code == 422 and code(pathy) == "invalid_filename"
    seed.services.tendering.max_document_bytes = 10
    big = await app_client.post(url, params=params, content=b"x" * 11,
                                headers=purchaser.headers)
    seed.services.tendering.max_document_bytes = 100 * 1024 * 1024
    assert big.status_code == 422 and code(big) == "document_too_large"
    missing = await app_client.post("/api/lots/nope/documents", params=params, content=b"x",
                                    headers=purchaser.headers)
    assert missing.status_code == 404 and code(missing) == "lot_not_found"

    # a supplier sees no document before they are issued
    unissued = await app_client.get(f"/api/lots/{lot}/documents", headers=d.headers)
    assert unissued.status_code == 200 and unissued.json()["items"] == []
    assert len((await app_client.get(f"/api/lots/{lot}/documents", headers=purchaser.headers)
                ).json()["items"]) == 1

    # registration before publication: the lot takes none
    early = await app_client.post(f"/api/lots/{lot}/registrations", headers=a.headers)
    assert early.status_code == 409 and code(early) == "registration_not_open"
    published = await app_client.post(f"/api/lots/{lot}/publish", headers=purchaser.headers,
                                      json=PUBLISH)
    assert published.status_code == 200, published.text

    # a download before registering, then the bond's rules
    get = f"/api/documents/{doc_id}/content"
    unregistered = await app_client.get(get, headers=a.headers)
    assert unregistered.status_code == 403 and code(unregistered) == "not_registered"
    reg = f"/api/lots/{lot}/registrations"
    no_bond = await app_client.post(reg, headers=a.headers)
    assert no_bond.status_code == 422 and code(no_bond) == "bond_required"
    assert no_bond.json()["error"]["details"]["article"] == "Reg 33"
    transfer = {"method": "transfer", "amount_fen": 20_000 * YUAN, "reference": "TX2026091100001",
                "payer_account": "6222021001123456789"}
    wrong = await app_client.post(reg, headers=a.headers,
                                  json={"bond": {**transfer, "amount_fen": 19_999 * YUAN}})
    assert wrong.status_code == 422 and code(wrong) == "bond_amount_mismatch"
    bad = await app_client.post(reg, headers=a.headers,
                                json={"bond": {**transfer, "payer_account": "12"}})
    assert bad.status_code == 422 and code(bad) == "invalid_bond"
    not_supplier = await app_client.post(reg, headers=purchaser.headers,
                                         json={"bond": transfer})
    assert not_supplier.status_code == 403 and code(not_supplier) == "suppliers_only"
    ok = await app_client.post(reg, headers=a.headers, json={"bond": transfer})
    assert ok.status_code == 201, ok.text
    assert ok.json()["bond"]["method"] == "transfer" and ok.json()["round"] == 1
    twice = await app_client.post(reg, headers=a.headers, json={"bond": transfer})
    assert twice.status_code == 409 and code(twice) == "already_registered"
    reused = await app_client.post(reg, headers=d.headers, json={"bond": transfer})
    assert reused.status_code == 409 and code(reused) == "bond_reference_used"
    guarantee = {"method": "guarantee", "guarantee_number": "BH2026091100017",
                 "guarantee_issuer": "中国银行广州分行"}
    reg_b = await app_client.post(reg, headers=b.headers, json={"bond": guarantee})
    assert reg_b.status_code == 201, reg_b.text
    reg_c = await app_client.post(reg, headers=c.headers, json={"bond": {
        **guarantee, "guarantee_number": "BH2026091100018"}})
    assert reg_c.status_code == 201

    # downloads: not before the documents are issued (O87 18), then recorded as evidence
    not_yet = await app_client.get(get, headers=a.headers)
    assert not_yet.status_code == 409 and code(not_yet) == "documents_not_issued"
    await seed.set_clock(at(date(2026, 9, 11), 9, 30))
    bad_fp = await app_client.get(get, headers={**a.headers, "X-Device-Fingerprint": "too short!"})
    assert bad_fp.status_code == 422 and code(bad_fp) == "invalid_fingerprint"
    got = await app_client.get(get, headers={**a.headers, "X-Device-Fingerprint": FP,
                                             "X-Forwarded-For": "203.0.113.9",
                                             "User-Agent": "Mozilla/5.0 test"})
    assert got.status_code == 200 and got.content == content
    assert got.headers["x-content-sha256"] == hashlib.sha256(content).hexdigest()
    assert got.headers["content-type"].startswith("application/pdf")
    # a clarified version: the current one is served, the first still on request
    v2 = b"second version"
    added = await app_client.post(f"/api/documents/{doc_id}/versions",
                                  params={"filename": "招标文件-澄清.pdf"}, content=v2,
                                  headers=purchaser.headers)
    assert added.status_code == 201 and added.json()["current_version"] == 2
    assert (await app_client.get(get, headers={**b.headers, "X-Device-Fingerprint": FP}
                                 )).content == v2
    first = await app_client.get(get, params={"version": "1"}, headers=c.headers)
    assert first.content == content
    nine = await app_client.get(get, params={"version": "9"}, headers=c.headers)
    assert nine.status_code == 404 and code(nine) == "version_not_found"
    gone = await app_client.get("/api/documents/doc_none/content", headers=c.headers)
    assert gone.status_code == 404 and code(gone) == "document_not_found"

    listed = await app_client.get(f"/api/lots/{lot}/downloads", headers=purchaser.headers)
    assert listed.status_code == 200 and listed.json()["total"] == 3
    rows = listed.json()["items"]
    # no trusted proxy: the address is the TCP peer's, never the client's X-Forwarded-For
    assert rows[0]["client_ip"] == rows[0]["peer_ip"] == "127.0.0.1"
    assert [r["device_fingerprint"] for r in rows] == [FP, FP, None]  # a and b: same device
    assert [r["org_id"] for r in rows] == [a.org_id, b.org_id, c.org_id]
    assert [r["version"] for r in rows] == [1, 2, 1]
    assert rows[1]["sha256"] == hashlib.sha256(v2).hexdigest()
    assert (await app_client.get(f"/api/lots/{lot}/downloads",
                                 headers=gd.headers)).status_code == 200
    for outsider in (zj, a, other):
        denied = await app_client.get(f"/api/lots/{lot}/downloads", headers=outsider.headers)
        assert denied.status_code == 403 and code(denied) == "not_your_project"
    docs = await app_client.get(f"/api/lots/{lot}/documents", headers=d.headers)
    assert docs.status_code == 200 and len(docs.json()["items"][0]["versions"]) == 2
    assert code(await app_client.get(f"/api/lots/{lot}/documents",
                                     headers=other.headers)) == "not_your_project"

    # registrations: a supplier sees its own, the managers and the region's supervisor all
    mine = (await app_client.get(reg, headers=a.headers)).json()["items"]
    assert [r["supplier_org_id"] for r in mine] == [a.org_id]
    assert len((await app_client.get(reg, headers=gd.headers)).json()["items"]) == 3
    assert code(await app_client.get(reg, headers=zj.headers)) == "not_your_project"

    # withdrawal before the deadline; the bond is due back in 5 working days (O87 38)
    b_id = reg_b.json()["id"]
    steal = await app_client.delete(f"/api/registrations/{b_id}", headers=a.headers)
    assert steal.status_code == 403 and code(steal) == "not_your_registration"
    await seed.set_clock(at(date(2026, 9, 28), 10))
    withdrawn = await app_client.delete(f"/api/registrations/{b_id}", headers=b.headers)
    assert withdrawn.status_code == 200
    refund = withdrawn.json()["refund"]
    # Mon 28 Sep + 5 working days over the National Day week: the 调休 Saturday 10 Oct
    assert refund["basis"] == "withdrawal" and refund["due_day"] == "2026-10-10"
    assert refund["rule"]["article"] == "Reg 33"
    again = await app_client.delete(f"/api/registrations/{b_id}", headers=b.headers)
    assert again.status_code == 409 and code(again) == "registration_withdrawn"
    back = await app_client.post(reg, headers=b.headers, json={"bond": guarantee})
    assert back.status_code == 409 and code(back) == "registration_withdrawn"
    nobody = await app_client.delete("/api/registrations/reg_none", headers=b.headers)
    assert nobody.status_code == 404 and code(nobody) == "registration_not_found"

    # after the deadline: no registration, no withdrawal
    await seed.set_clock(at(date(2026, 10, 8), 10))
    late = await app_client.post(reg, headers=d.headers, json={"bond": {
        **transfer, "reference": "TX2"}})
    assert late.status_code == 409 and code(late) == "deadline_passed"
    a_id, c_id = ok.json()["id"], reg_c.json()["id"]
    stay = await app_client.delete(f"/api/registrations/{a_id}", headers=a.headers)
    assert stay.status_code == 409 and code(stay) == "deadline_passed"

    # refunds: losers from the award notice, the winner from the signing (Reg 33; O87 38)
    due = f"/api/lots/{lot}/bond-refund-due"
    both = await app_client.post(due, headers=purchaser.headers, json={
        "notice_ms": at(date(2026, 10, 20)), "signing_ms": at(date(2026, 10, 22))})
    assert both.status_code == 422 and code(both) == "invalid_field"
    unsigned = await app_client.post(due, headers=purchaser.headers,
                                     json={"signing_ms": at(date(2026, 10, 22))})
    assert unsigned.status_code == 422 and code(unsigned) == "missing_field"
    losers = await app_client.post(due, headers=purchaser.headers, json={
        "notice_ms": at(date(2026, 10, 20)), "winner_org_id": a.org_id})
    assert losers.status_code == 200
    assert [(r["supplier_org_id"], r["refund"]["due_day"], r["refund"]["basis"])
            for r in losers.json()["items"]] == [(c.org_id, "2026-10-27", "award_notice")]
    winner = await app_client.post(due, headers=purchaser.headers, json={
        "signing_ms": at(date(2026, 10, 30)), "winner_org_id": a.org_id})
    assert [(r["supplier_org_id"], r["refund"]["due_day"]) for r in winner.json()["items"]] == [
        (a.org_id, "2026-11-06")]
    assert code(await app_client.post(due, headers=a.headers, json={
        "notice_ms": at(date(2026, 10, 20))})) == "not_your_project"
    paid = f"/api/registrations/{c_id}/bond-refund"
    assert code(await app_client.post(paid, headers=c.headers,
                                      json={"reference": "RF1"})) == "not_your_project"
    refunded = await app_client.post(paid, headers=purchaser.headers, json={"reference": "RF1"})
    assert refunded.status_code == 200 and refunded.json()["refund"]["refunded_at_ms"] is not None
    twice_paid = await app_client.post(paid, headers=purchaser.headers, json={"reference": "RF2"})
    assert twice_paid.status_code == 409 and code(twice_paid) == "bond_already_refunded"

    # a lot without a bond
    reg2 = f"/api/lots/{lot2}/registrations"
    await seed.set_clock(at(date(2026, 9, 11), 8))
    assert (await app_client.post(f"/api/lots/{lot2}/publish", headers=purchaser.headers,
                                  json=PUBLISH)).status_code == 200
    unasked = await app_client.post(reg2, headers=a.headers, json={"bond": transfer})
    assert unasked.status_code == 422 and code(unasked) == "bond_not_required"
    plain = await app_client.post(reg2, headers=a.headers)
    assert plain.status_code == 201 and plain.json()["bond"]["method"] == "none"
    nothing = await app_client.post(f"/api/registrations/{plain.json()['id']}/bond-refund",
                                    headers=purchaser.headers, json={"reference": "RF3"})
    assert nothing.status_code == 409 and code(nothing) == "no_bond"
    # an ended lot's documents do not change
    assert (await app_client.post(f"/api/lots/{lot2}/terminate", headers=purchaser.headers,
                                  json={"reason": "需求取消"})).status_code == 200
    closed = await app_client.post(f"/api/lots/{lot2}/documents", params=params, content=b"x",
                                   headers=purchaser.headers)
    assert closed.status_code == 409 and code(closed) == "documents_closed"

    # the events, written with the changes: the core's feeder reads supplier_registered
    async with seed.services.sessions() as session:
        events = (await session.scalars(select(OutboxRow).where(
            OutboxRow.kind.startswith("tendering.")).order_by(OutboxRow.id))).all()
    kinds = [e.kind for e in events]
    assert kinds.count("tendering.supplier_registered") == 4
    assert kinds.count("tendering.document_published") == 2
    assert kinds.count("tendering.document_downloaded") == 3
    assert kinds.count("tendering.registration_withdrawn") == 1
    assert kinds.count("tendering.bond_refunded") == 1
    registered = next(e for e in events if e.kind == "tendering.supplier_registered")
    assert registered.payload == {"lot_id": lot, "project_id": project_id,
                                  "supplier_org_id": a.org_id,
                                  "at_ms": at(date(2026, 9, 11), 8)}
    assert sorted(await seed.services.tendering.registered_suppliers(lot)) == sorted(
        [a.org_id, c.org_id])


async def test_a_changed_file_is_never_served(app_client: Any, seed: Any) -> None:
    await seed.set_clock(at(date(2026, 9, 11), 8))
    purchaser = await seed.purchaser()
    _, lot, _ = await project(app_client, purchaser)
    up = await app_client.post(f"/api/lots/{lot}/documents", content=b"original",
                               params={"title": "招标文件", "filename": "a.pdf"},
                               headers=purchaser.headers)
    path = seed.services.tendering.files.path(
        f"tendering/{lot}/{up.json()['versions'][0]['sha256']}.bin")
    os.chmod(path, 0o640)
    path.write_bytes(b"tampered")
    served = await app_client.get(f"/api/documents/{up.json()['id']}/content",
                                  headers=purchaser.headers)
    assert served.status_code == 409 and code(served) == "document_corrupted"
    listed = await app_client.get(f"/api/lots/{lot}/downloads", headers=purchaser.headers)
    assert listed.json()["total"] == 0  # nothing served, nothing recorded


async def test_behind_a_trusted_proxy_the_forwarded_client_is_recorded_and_scoping_holds(
        app_client: Any, seed: Any) -> None:
    await seed.set_clock(at(date(2026, 9, 11), 8))
    await seed.services.registry.import_regions_csv(shipped_regions_text())
    purchaser, a = await seed.purchaser(), await seed.supplier("甲公司")
    gd_admin = await regional(seed, "platform", "广东省平台", "440000")
    zj_admin = await regional(seed, "platform", "浙江省平台", "330000")
    _, lot, _ = await project(app_client, purchaser)
    params = {"title": "招标文件", "filename": "a.pdf"}
    refused = await app_client.post(f"/api/lots/{lot}/documents", params=params, content=b"x",
                                    headers=zj_admin.headers)
    assert refused.status_code == 403 and code(refused) == "not_your_project"
    up = await app_client.post(f"/api/lots/{lot}/documents", params=params, content=b"x",
                               headers=gd_admin.headers)
    assert up.status_code == 201
    assert (await app_client.post(f"/api/lots/{lot}/publish", headers=purchaser.headers,
                                  json=PUBLISH)).status_code == 200
    assert (await app_client.post(f"/api/lots/{lot}/registrations", headers=a.headers, json={
        "bond": {"method": "guarantee", "guarantee_number": "BH1",
                 "guarantee_issuer": "中国银行"}})).status_code == 201
    await seed.set_clock(at(date(2026, 9, 12), 10))
    services = seed.services
    services.settings = services.settings.replace(trusted_proxies="127.0.0.0/8")
    got = await app_client.get(f"/api/documents/{up.json()['id']}/content", headers={
        **a.headers, "X-Forwarded-For": "6.6.6.6, 198.51.100.7, 127.0.0.9"})
    assert got.status_code == 200
    rows = (await app_client.get(f"/api/lots/{lot}/downloads",
                                 headers=gd_admin.headers)).json()["items"]
    assert [(r["client_ip"], r["peer_ip"]) for r in rows] == [("198.51.100.7", "127.0.0.1")]
    assert code(await app_client.get(f"/api/lots/{lot}/downloads",
                                     headers=zj_admin.headers)) == "not_your_project"


async def test_an_interrupted_upload_is_refused_and_leaves_nothing(http_app: Any,
                                                                   seed: Any) -> None:
    await seed.set_clock(at(date(2026, 9, 11), 8))
    purchaser = await seed.purchaser()
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app),
                                 base_url="http://test") as client:
        _, lot, _ = await project(client, purchaser)
    messages = [{"type": "http.request", "body": b"first part", "more_body": True},
                {"type": "http.disconnect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": f"/api/lots/{lot}/documents",
             "raw_path": f"/api/lots/{lot}/documents".encode(),
             "query_string": b"title=t&filename=a.pdf", "root_path": "",
             "headers": [(b"host", b"test"),
                         (b"authorization", f"Bearer {purchaser.token}".encode())],
             "client": ("127.0.0.1", 5000), "server": ("test", 80),
             "state": dict(http_app.state._state)}
    await http_app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert start["status"] == 422 and b"upload_incomplete" in body
    files = seed.services.tendering.files.data_dir / "tendering" / lot
    assert not [p for p in files.rglob("*") if p.is_file()]
