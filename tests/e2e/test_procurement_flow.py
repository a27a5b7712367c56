"""A procurement project from plan to qualification through the API (issue #11, "Done when"),
on a real ``bidroom serve`` process and its stores, the server's test clock (2026's real
calendar), and one kill -9 of the server in the middle of the event flow.

Budget project → plan → intention; 30 days later a project drawing on the plan, two sealed
lots; tender documents; publication (a too-early deadline refused first, with its article);
four suppliers register with bonds (transfer and e-guarantee) and download the documents (each
download recorded with its address and device fingerprint); the server is killed after the
publication while registrations are still being handled (the last one certainly: the test
holds the outbox relay's lease, as another process would, whose consumer then reads the
events and dies without acknowledging them) and started again on the same data;
the feed creates each lot's opening and invites every registered supplier exactly once; three
suppliers seal and upload bids with their CA certificates to lot 1, two to lot 2; at the
deadline lot 1 moves to bidding and lot 2 fails (O87 41) with its failure announcement, then is
re-tendered; lot 1's bidders decrypt, 唱标, the record is confirmed, the lot is opened with the
唱标 prices readable, and the purchaser's review qualifies it.

Nothing sleeps to let time pass: the test sets the server's clock; bounded polling waits only
for the asynchronous event flow (outbox → Redis Stream → the feed's consumer and reconciler).
A consumer killed with a delivered, unacknowledged entry leaves it pending until the group's
``claim_idle_ms`` (30 s of Redis time) lets the next consumer claim it, so the waits for
invitations are bounded by a minute.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from bidroom.opening.ca import PlatformCA
from bidroom.stores.sql import make_engine
from market.calendar import BEIJING
from market.events import EVENTS_STREAM, HandledEventRow, OutboxRow, Relay, decode_entry
from market.feed import FEED_GROUP, FEED_KINDS, core_id_for
from tests.e2e.server import (
    ServerFactory,
    ServerProcess,
    api_client,
    bootstrap_admin,
    get_clock,
    run_cli,
    set_clock,
)
from tests.opening_kit import MIN, Keys, at, form, issue

YUAN = 100
FP = {f"s{i}": f"fp{i}-" + "a1b2c3d4e5f6a7b8c9d0" for i in range(1, 5)}
EVENT_WAIT_S = 60.0  # a pending entry of a killed consumer is claimed after 30 s idle


def bj(day: date, hh: int = 9, mm: int = 0) -> int:
    """An instant given in Beijing time, in ms since the epoch (UTC inside)."""
    return int(datetime.combine(day, time(hh, mm), tzinfo=BEIJING).timestamp() * 1000)


INTENTION_AT = bj(date(2026, 8, 3), 10)        # Mon 3 Aug 2026
PUBLISH_AT = bj(date(2026, 9, 7), 9)           # Mon 7 Sep: 35 days later (财库〔2020〕10号: ≥ 30)
DOCUMENTS_UNTIL = bj(date(2026, 9, 14), 17)    # ≥ 5 working days (O87 18)
DEADLINE = bj(date(2026, 9, 28), 9, 30)        # GPL 35: 20 days end Sun 27 Sep, rolls to Mon 28
TOO_EARLY = bj(date(2026, 9, 25), 9, 30)
RETENDER_DEADLINE = bj(date(2026, 10, 19), 9, 30)  # from 28 Sep: 20 days end Sun 18 Oct, rolls


async def until(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Poll (bounded) until ``check`` gives something truthy: the event flow is asynchronous."""
    try:
        async with asyncio.timeout(EVENT_WAIT_S):
            while True:
                found = await check()
                if found:
                    return found
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"the server never got there: {what}") from None


async def _equal(value: Awaitable[Any], expected: Any) -> bool:
    return bool(await value == expected)


def ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, f"{reply.request.method} {reply.request.url}: " \
                                        f"{reply.status_code} {reply.text}"
    return reply.json()


class Flow:
    """The parties (one user and token each) and an HTTP client on the running server."""

    def __init__(self, server: ServerProcess, http: httpx.AsyncClient,
                 tokens: dict[str, str], orgs: dict[str, str]) -> None:
        self.server = server
        self.http = http
        self.tokens = tokens
        self.orgs = orgs

    def auth(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}

    async def get(self, path: str, who: str, **kw: Any) -> httpx.Response:
        return await self.http.get(path, headers=self.auth(who), **kw)

    async def post(self, path: str, who: str, body: Any = None, **kw: Any) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self.auth(who), **kw)

    async def lot(self, project_id: str, lot_id: str) -> dict[str, Any]:
        project = ok(await self.get(f"/api/projects/{project_id}", "purchaser"))
        found: dict[str, Any] = next(lot for lot in project["lots"] if lot["id"] == lot_id)
        return found

    async def lot_in(self, project_id: str, lot_id: str, status: str) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            lot = await self.lot(project_id, lot_id)
            return lot if lot["status"] == status else None
        found: dict[str, Any] = await until(check, f"lot {lot_id} {status}")
        return found

    async def invited(self, opening_id: str) -> list[str]:
        """Who the opening invites, sorted, as its supervisor reads it ([] until it exists)."""
        reply = await self.get(f"/api/openings/{opening_id}", "supervisor")
        if reply.status_code == 404:
            return []
        return sorted(ok(reply)["invited_supplier_ids"])

    async def log(self, opening_id: str) -> dict[str, Any]:
        found: dict[str, Any] = ok(await self.get(f"/api/openings/{opening_id}/log",
                                                  "supervisor"))
        return found


async def _made(flow: Flow, openings: dict[str, str]) -> bool:
    for opening_id in openings.values():
        if (await flow.get(f"/api/openings/{opening_id}", "supervisor")).status_code != 200:
            return False
    return True


async def _hold_relay_lease(server: ServerProcess, hold: bool) -> None:
    """Take (or drop) the outbox relay's lease in Redis as another process would: the key
    and the rule are ``market.events.relay.Relay``'s (one process relays at a time)."""
    from bidroom.stores.redis import connect_redis

    client = connect_redis(server.redis_url)
    try:
        key = f"{EVENTS_STREAM}:relay-lease"
        if hold:
            await client.set(key, b"another-process", px=120_000)
        else:
            await client.delete(key)
    finally:
        await client.aclose()


async def _deliver_to_a_consumer_that_dies(server: ServerProcess) -> set[tuple[str, str]]:
    """Relay the outbox (``market.events.Relay``, one pass) and read the new entries as a
    member of the feed's group (what ``Consumer.poll`` does before handling), then stop
    without handling or acknowledging them: a consumer killed after delivery. The
    registrations delivered, as (lot, supplier)."""
    from bidroom.stores.redis import connect_redis

    engine = make_engine(server.database_url)
    client = connect_redis(server.redis_url)
    try:
        clock = await get_clock(server)
        assert clock is not None

        async def now_ms() -> int:
            return clock

        await Relay(async_sessionmaker(engine, expire_on_commit=False), client,
                    now_ms=now_ms).relay_once()
        reply: Any = await client.xreadgroup(FEED_GROUP, f"{FEED_GROUP}-killed",
                                             {EVENTS_STREAM: ">"}, count=100)
    finally:
        await client.aclose()
        await engine.dispose()
    events = [decode_entry(fields) for _, entries in reply or [] for _, fields in entries]
    return {(str(e.payload["lot_id"]), str(e.payload["supplier_org_id"])) for e in events
            if e.kind == "tendering.supplier_registered"}


async def _unrelayed_registrations(server: ServerProcess) -> set[tuple[str, str]]:
    """(lot, supplier) of the registrations whose event is still in the outbox, not on the
    stream."""
    engine = make_engine(server.database_url)
    try:
        async with engine.connect() as connection:
            payloads = (await connection.scalars(
                select(OutboxRow.payload)
                .where(OutboxRow.kind == "tendering.supplier_registered",
                       OutboxRow.relayed_at_ms.is_(None)))).all()
    finally:
        await engine.dispose()
    return {(str(p["lot_id"]), str(p["supplier_org_id"])) for p in payloads}


async def _everything_handled(server: ServerProcess) -> bool:
    """Every event is on the stream and acknowledged by the feed's group, and the feed
    handled each event of its kinds exactly once (the unique key forbids twice)."""
    from bidroom.stores.redis import connect_redis

    engine = make_engine(server.database_url)
    try:
        async with engine.connect() as connection:
            unrelayed = await connection.scalar(
                select(func.count()).select_from(OutboxRow)
                .where(OutboxRow.relayed_at_ms.is_(None)))
            feed_events = set((await connection.scalars(
                select(OutboxRow.event_id).where(OutboxRow.kind.in_(FEED_KINDS)))).all())
            handled = list((await connection.scalars(
                select(HandledEventRow.event_id)
                .where(HandledEventRow.consumer_group == FEED_GROUP))).all())
    finally:
        await engine.dispose()
    client = connect_redis(server.redis_url)
    try:
        pending = (await client.xpending(EVENTS_STREAM, FEED_GROUP))["pending"]
    finally:
        await client.aclose()
    return unrelayed == 0 and pending == 0 and sorted(handled) == sorted(feed_events)


async def _org(http: httpx.AsyncClient, kind: str, name: str, region: str,
               **extra: Any) -> tuple[str, str]:
    org = ok(await http.post("/api/organisations", json={
        "kind": kind, "name": name, "name_en": name, "region_code": region, **extra}), 201)
    user = ok(await http.post("/api/users", json={
        "org_id": org["id"], "name": f"{name} 经办人", "roles": [kind]}), 201)
    token = ok(await http.post(f"/api/users/{user['id']}/tokens", json={"label": "e2e"}), 201)
    return org["id"], token["token"]


async def _setup(server: ServerProcess) -> Flow:
    db = [] if server.given_database_url is None else ["--database-url",
                                                       server.given_database_url]
    for what in ("regions", "catalog"):  # the shipped subsets of the registries
        status, out, err = await run_cli(what, "import", "--data-dir", str(server.data_dir), *db)
        assert status == 0, f"{what} import: {out}\n{err}"
    tokens: dict[str, str] = {}
    orgs: dict[str, str] = {}
    async with api_client(server, await bootstrap_admin(server)) as admin:
        for who, kind, name, region in (
                ("purchaser", "purchaser", "广州市天河区第一中学", "440106"),
                ("supervisor", "supervisor", "广州市财政局", "440100"),
                ("s1", "supplier", "广州甲科技有限公司", "440106"),
                ("s2", "supplier", "深圳乙电子有限公司", "440305"),
                ("s3", "supplier", "广州丙信息有限公司", "440100"),
                ("s4", "supplier", "杭州丁设备有限公司", "330106")):
            extra = {"size_class": "small"} if kind == "supplier" else {}
            orgs[who], tokens[who] = await _org(admin, kind, name, region, **extra)
    return Flow(server, httpx.AsyncClient(base_url=server.base_url, timeout=30), tokens, orgs)


async def test_a_project_runs_from_plan_to_qualification_and_survives_a_killed_server(
        server_factory: ServerFactory, tmp_path: Path) -> None:
    server = server_factory(start=False)
    # The platform CA, before the server starts (``bidroom ca init`` does the same).
    ca = PlatformCA.init(server.data_dir / "ca", now=at(INTENTION_AT - 24 * 60 * MIN))
    await server.astart()
    await set_clock(server, INTENTION_AT)
    flow = await _setup(server)
    outside = tmp_path / "the-suppliers-machines"  # never inside the server's data dir
    keys: dict[str, Keys] = {
        s: issue(ca, flow.orgs[s], f"供应商{s}", outside / s, now_ms=INTENTION_AT)
        for s in ("s1", "s2", "s3", "s4")}
    try:
        await _run(flow, keys, outside)
    finally:
        await flow.http.aclose()


async def _run(flow: Flow, keys: dict[str, Keys], outside: Path) -> None:
    server = flow.server
    # --- the budget project, its plan and the procurement intention (Mon 3 Aug 2026)
    budget = ok(await flow.post("/api/budget-projects", "purchaser", {
        "code": "440106-2026-009", "name": "2026年教学设备购置", "fiscal_year": 2026,
        "amount_fen": 3_000_000 * YUAN}), 201)
    plan = ok(await flow.post(f"/api/budget-projects/{budget['id']}/plans", "purchaser", {
        "name": "计算机采购", "category_code": "A020101", "amount_fen": 2_000_000 * YUAN}), 201)
    intention = ok(await flow.post(f"/api/plans/{plan['id']}/intentions", "purchaser", {
        "name": "天河一中计算机采购", "requirement_summary": "台式计算机120台、便携式计算机40台",
        "budget_fen": 1_500_000 * YUAN, "expected_month": "2026-09"}), 201)
    assert intention["published_at_ms"] == INTENTION_AT

    # --- 35 days later: the project drawing on the plan, two sealed lots
    await set_clock(server, PUBLISH_AT)
    project = ok(await flow.post("/api/projects", "purchaser", {
        "title": "天河一中计算机采购", "title_en": "Tianhe No. 1 Middle School computers",
        "method": "open_tender", "region_code": "440106", "plan_id": plan["id"],
        "lots": [{"title": "台式计算机", "category_code": "A02010105",
                  "budget_fen": 1_000_000 * YUAN, "ceiling_fen": 950_000 * YUAN,
                  "bond_fen": 20_000 * YUAN},
                 {"title": "便携式计算机", "category_code": "A02010105",
                  "budget_fen": 500_000 * YUAN, "ceiling_fen": 480_000 * YUAN}]}), 201)
    project_id = project["id"]
    lot1, lot2 = (lot["id"] for lot in project["lots"])
    assert [lot["bid_mode"] for lot in project["lots"]] == ["sealed", "sealed"]
    assert ok(await flow.get(f"/api/plans/{plan['id']}", "purchaser"))["committed_fen"] == (
        1_500_000 * YUAN)

    # --- tender documents, with their SHA-256
    documents: dict[str, tuple[str, bytes]] = {}
    for lot_id, title in ((lot1, "台式计算机"), (lot2, "便携式计算机")):
        content = f"第一章 招标公告\n{title} 招标文件\n".encode() * 500
        doc = ok(await flow.http.post(
            f"/api/lots/{lot_id}/documents", params={"title": "招标文件",
                                                     "filename": "招标文件.pdf"},
            content=content, headers=flow.auth("purchaser", **{"Content-Type":
                                                                "application/pdf"})), 201)
        assert doc["versions"][0]["sha256"] == hashlib.sha256(content).hexdigest()
        documents[lot_id] = (doc["id"], content)

    # --- publication: the statutory dates are checked first
    earliest = ok(await flow.http.get("/api/calendar/dates", params={
        "period": "bid_deadline", "from": "2026-09-07"}))
    assert (earliest["day"], earliest["article"]) == ("2026-09-28", "GPL 35")
    early = await flow.post(f"/api/lots/{lot1}/publish", "purchaser", {
        "documents_from_ms": PUBLISH_AT, "documents_until_ms": DOCUMENTS_UNTIL,
        "deadline_ms": TOO_EARLY})
    assert early.status_code == 422, early.text
    error = early.json()["error"]
    assert error["code"] == "deadline_too_early"
    assert (error["details"]["article"], error["details"]["earliest_day"]) == (
        "GPL 35", "2026-09-28")
    assert (await flow.lot(project_id, lot1))["status"] == "draft"  # nothing half-written
    for lot_id in (lot1, lot2):
        published = ok(await flow.post(f"/api/lots/{lot_id}/publish", "purchaser", {
            "documents_from_ms": PUBLISH_AT, "documents_until_ms": DOCUMENTS_UNTIL,
            "deadline_ms": DEADLINE}))
        assert published["lot"]["status"] == "announced"
    announcements = ok(await flow.get(f"/api/projects/{project_id}", "purchaser")
                       )["announcements"]
    assert sorted((a["lot_id"], a["kind"]) for a in announcements) == sorted(
        [(lot1, "procurement"), (lot2, "procurement")])
    shown = {d["period"]: (d["day"], d["article"]) for d in announcements[0]["dates"]}
    assert shown["bid_deadline"] == ("2026-09-28", "GPL 35"), shown  # shown with its article

    # --- registration (报名) with bonds; the server is killed while they are being handled
    bond = 20_000 * YUAN
    bonds: dict[str, dict[str, Any]] = {
        "s1": {"method": "transfer", "amount_fen": bond, "reference": "TX2026090700001",
               "payer_account": "6222021001123456789"},
        "s2": {"method": "guarantee", "guarantee_number": "BH2026090700017",
               "guarantee_issuer": "中国银行广州分行"},
        "s3": {"method": "transfer", "amount_fen": bond, "reference": "TX2026090700002",
               "payer_account": "6222021001987654321"},
        "s4": {"method": "guarantee", "guarantee_number": "BH2026090700018",
               "guarantee_issuer": "中国建设银行杭州分行"},
    }

    async def register_round(supplier: str, lot_id: str, round_: int) -> None:
        body = {"bond": bonds[supplier]} if lot_id == lot1 else None
        reg = ok(await flow.post(f"/api/lots/{lot_id}/registrations", supplier, body), 201)
        assert reg["status"] == "registered" and reg["round"] == round_

    async def register(supplier: str, lot_id: str) -> None:
        await register_round(supplier, lot_id, 1)

    openings = {lot1: core_id_for("opening", lot1, 1), lot2: core_id_for("opening", lot2, 1)}
    await until(lambda: _made(flow, openings),
                "the feed handled the publications (both openings exist)")
    await register("s1", lot1)  # the kill may catch it anywhere in the flow: timing decides
    # From here the relay of "another process" holds the lease, so the next registrations
    # stay in the outbox: at the kill they are certainly not handled yet.
    await _hold_relay_lease(server, True)
    await register("s2", lot1)
    await register("s1", lot2)
    server.kill9()  # mid-flow: the relay and the feed's consumer die with it
    # A relay pass that began before the lease was taken may still have moved s2's; none
    # began after it, so the last registration is certainly unhandled at the kill.
    assert (lot2, flow.orgs["s1"]) in await _unrelayed_registrations(server)
    # The other process relays them and its consumer of the feed's group reads them, then it
    # dies too: they are delivered, never handled nor acknowledged, pending on a dead consumer.
    await _hold_relay_lease(server, False)
    delivered = await _deliver_to_a_consumer_that_dies(server)
    assert (lot2, flow.orgs["s1"]) in delivered
    await server.astart()  # same data dir, same stores
    await register("s3", lot1)
    await register("s4", lot1)
    await register("s2", lot2)

    # --- the feed made each lot's opening and invited every registered supplier, once
    expected = {lot1: {flow.orgs[s] for s in ("s1", "s2", "s3", "s4")},
                lot2: {flow.orgs[s] for s in ("s1", "s2")}}
    for lot_id, opening_id in openings.items():
        async def all_invited(opening_id: str = opening_id, lot_id: str = lot_id) -> bool:
            return set(await flow.invited(opening_id)) == expected[lot_id]
        await until(all_invited, f"every registered supplier invited to {opening_id}")
    for supplier in ("s1", "s2", "s3", "s4"):  # the supplier finds and reads its opening
        listed = ok(await flow.get("/api/openings", supplier))["items"]
        mine = {item["id"]: item for item in listed}
        assert openings[lot1] in mine
        assert mine[openings[lot1]]["title"] == "天河一中计算机采购 台式计算机"
        assert mine[openings[lot1]]["deadline_ms"] == DEADLINE
        view = ok(await flow.get(f"/api/openings/{openings[lot1]}", supplier))
        assert view["certificates"]["encryption_certificate_pem"].strip() == (
            keys[supplier].enc_cert_pem().strip())
    assert openings[lot2] not in {i["id"] for i in ok(await flow.get("/api/openings", "s4")
                                                      )["items"]}
    # the purchaser finds its lots' openings in its list, titled with the project and the lot
    managed = {i["id"]: i["title"] for i in ok(await flow.get("/api/openings", "purchaser")
                                               )["items"]}
    assert {managed.get(openings[lot1]), managed.get(openings[lot2])} == {
        "天河一中计算机采购 台式计算机", "天河一中计算机采购 便携式计算机"}
    registrations = ok(await flow.get(f"/api/lots/{lot1}/registrations", "purchaser"))["items"]
    assert {(r["supplier_org_id"], r["bond"]["method"]) for r in registrations} == {
        (flow.orgs[s], bonds[s]["method"]) for s in bonds}

    # --- the registered suppliers download the documents: recorded with address and device
    doc1, content1 = documents[lot1]
    for supplier in ("s1", "s2", "s3", "s4"):
        got = await flow.http.get(f"/api/documents/{doc1}/content", headers=flow.auth(
            supplier, **{"X-Device-Fingerprint": FP[supplier]}))
        assert got.status_code == 200, got.text
        assert got.content == content1
        assert got.headers["X-Content-SHA256"] == hashlib.sha256(content1).hexdigest()
    downloads = ok(await flow.get(f"/api/lots/{lot1}/downloads", "purchaser"))["items"]
    assert sorted((d["org_id"], d["client_ip"], d["device_fingerprint"], d["sha256"])
                  for d in downloads) == sorted(
        (flow.orgs[s], "127.0.0.1", FP[s], hashlib.sha256(content1).hexdigest())
        for s in ("s1", "s2", "s3", "s4"))
    assert all(d["at_ms"] == PUBLISH_AT for d in downloads)

    # --- sealed bids, on the suppliers' own machines, to their own certificates
    await set_clock(server, PUBLISH_AT + 2 * 24 * 60 * MIN)
    prices = {lot1: {"s1": 930_000 * YUAN, "s2": 915_500 * YUAN, "s3": 941_000 * YUAN},
              lot2: {"s1": 470_000 * YUAN, "s2": 465_000 * YUAN}}
    for lot_id, offers in prices.items():
        for supplier, price in offers.items():
            sealed = outside / f"{supplier}-{uuid.uuid4().hex[:6]}.cms"
            keys[supplier].seal(sealed, form(price), now_ms=PUBLISH_AT + 2 * 24 * 60 * MIN)
            receipt = ok(await flow.http.put(f"/api/openings/{openings[lot_id]}/bid",
                                             content=sealed.read_bytes(),
                                             headers=flow.auth(supplier)), 201)["receipt"]
            assert receipt["sha256"] == hashlib.sha256(sealed.read_bytes()).hexdigest()

    # --- sign-in, then the deadline: lot 1 moves to bidding, lot 2 fails (O87 41)
    await set_clock(server, DEADLINE - 20 * MIN)
    for supplier in prices[lot1]:
        ok(await flow.post(f"/api/openings/{openings[lot1]}/sign-in", supplier))
    await set_clock(server, DEADLINE)
    bidding = await flow.lot_in(project_id, lot1, "bidding")
    assert set(bidding["bidders"]) == {flow.orgs[s] for s in prices[lot1]}
    failed = await flow.lot_in(project_id, lot2, "failed")
    assert failed["ended_reason"] == "too_few_bids"
    failure = [a for a in ok(await flow.get(f"/api/projects/{project_id}", "supervisor")
                             )["announcements"] if a["lot_id"] == lot2 and a["kind"] == "failure"]
    assert len(failure) == 1 and "O87 41" in failure[0]["body"], failure
    retendered = ok(await flow.post(f"/api/lots/{lot2}/retender", "purchaser",
                                    {"method": "open_tender"}))["lot"]
    assert (retendered["status"], retendered["rounds"]) == ("draft", 2)
    # its second round is published again (O87 43): a new opening, and round 1's registrations
    # do not carry over (a supplier registers anew)
    ok(await flow.post(f"/api/lots/{lot2}/publish", "purchaser", {
        "documents_from_ms": DEADLINE, "documents_until_ms": bj(date(2026, 10, 12), 17),
        "deadline_ms": RETENDER_DEADLINE}))
    second = core_id_for("opening", lot2, 2)
    assert second != openings[lot2]

    async def second_made() -> bool:
        return (await flow.get(f"/api/openings/{second}", "supervisor")).status_code == 200
    await until(second_made, "the re-tendered round's opening")
    assert await flow.invited(second) == []
    await register_round("s3", lot2, 2)
    await register_round("s1", lot2, 2)  # registered in round 1 too: registers again
    await until(lambda: _equal(flow.invited(second), sorted([flow.orgs["s3"], flow.orgs["s1"]])),
                "the new round's registrations invited")

    # --- decryption by each bidder, 唱标, the record confirmed
    opening1 = openings[lot1]
    await set_clock(server, DEADLINE + 5 * MIN)
    for supplier in prices[lot1]:
        wrapped = ok(await flow.get(f"/api/openings/{opening1}/bid/encrypted-key", supplier))
        content_key = keys[supplier].unwrap(wrapped["encrypted_key_b64"])
        decrypted = ok(await flow.post(f"/api/openings/{opening1}/decrypt", supplier,
                                       {"content_key_b64": content_key}))
        assert decrypted["status"] == "decrypted"
    await set_clock(server, DEADLINE + 10 * MIN)
    ok(await flow.post(f"/api/openings/{opening1}/reveal", "purchaser"))
    await set_clock(server, DEADLINE + 10 * MIN + 15 * MIN)
    ok(await flow.post(f"/api/openings/{opening1}/confirm", "purchaser"))

    # --- the feed's reconciliation opens the lot; the 唱标 prices are read from the record
    opened = await flow.lot_in(project_id, lot1, "opened")
    assert set(opened["bidders"]) == {flow.orgs[s] for s in prices[lot1]}
    record = ok(await flow.get(f"/api/openings/{opening1}/record", "purchaser"))
    assert record["status"] == "confirmed"
    assert {e["supplier_id"]: e["form"]["total_price_fen"] for e in record["opened"]} == {
        flow.orgs[s]: p for s, p in prices[lot1].items()}

    # --- qualification (O87 44): three passes, the lot is qualified
    qualified = ok(await flow.post(f"/api/lots/{lot1}/qualification", "purchaser", {
        "results": [{"supplier_id": flow.orgs[s], "passed": True} for s in prices[lot1]]}))
    assert qualified["lot"]["status"] == "qualified"
    assert {q["supplier_id"] for q in qualified["lot"]["qualification"] if q["passed"]} == {
        flow.orgs[s] for s in prices[lot1]}

    # --- nothing lost or done twice across the kill: every event relayed, acknowledged and
    # handled once; one invitation per supplier; the chains verify
    await until(lambda: _everything_handled(server), "every event handled once")
    for lot_id, opening_id in openings.items():
        log = await flow.log(opening_id)
        assert log["chain_ok"] is True
        # invited at the opening's creation (registrations the feed saw first) or after it
        invitations = Counter(supplier for entry in log["items"] if entry["kind"] == "created"
                              for supplier in entry["event"]["invited"])
        invitations.update(entry["event"]["supplier_id"] for entry in log["items"]
                           if entry["kind"] == "bidder_invited")
        assert invitations == Counter(expected[lot_id]), (lot_id, log["items"])
