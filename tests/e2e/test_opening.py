"""Sealed remote bid opening (不见面开标, issue #3) end to end: a real server (uvicorn in this
process, real sockets), real Redis and SQL, suppliers sealing real CMS envelopes with their own
certificates on "their own machines" (folders outside the server's data dir), the live hall on
the WebSocket. Time is the test clock; nothing sleeps to wait for time (bounded polling waits
only for the server to act on a clock it has been given)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import text

from bidroom.config import Settings
from bidroom.errors import BidroomError
from bidroom.opening.ca import PlatformCA
from bidroom.opening.client import unwrap_for_submission
from bidroom.opening.custody import open_share
from bidroom.opening.envelope import decrypt_content, inspect_envelope, unwrap_content_key
from bidroom.opening.shamir import rebuild_backup_key
from bidroom.receipts import canonical_json, verify_document
from bidroom.stores.sql import make_engine
from tests.live import Client, LiveServer, live_server
from tests.opening_kit import MIN, Keys, at, form, issue

T0 = 1_900_000_000_000
DEADLINE = T0 + 60 * MIN
SIGN_IN = DEADLINE - 30 * MIN
WINDOW_END = DEADLINE + 30 * MIN


# =============================================================================== fixtures


@dataclass
class Hall:
    """A running server with five invited suppliers, each holding its own certificates."""

    live: LiveServer
    http: httpx.AsyncClient
    data_dir: Path
    ca: PlatformCA
    keys: dict[str, Keys]
    outside: Path
    sealed: dict[str, Path] = field(default_factory=dict)

    def acc(self, name: str) -> Any:
        return self.live.accounts[name]

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.acc(name).token}"}

    async def clock(self, ms: int) -> None:
        await self.live.set_clock(ms)

    async def create(self, *, suppliers: int = 5, backup: dict[str, Any] | None = None,
                     **settings: Any) -> str:
        body: dict[str, Any] = {
            "title": f"某市第一中学计算机采购 {uuid.uuid4().hex[:4]}",
            "title_en": "No. 1 Middle School computers",
            "purchaser_org_id": self.acc("purchaser").org_id,
            "invited_supplier_ids": [self.acc(f"s{i}").org_id for i in range(1, suppliers + 1)],
            "settings": {"deadline_ms": DEADLINE, **settings},
        }
        if backup is not None:
            body["backup"] = backup
        response = await self.http.post("/api/openings", json=body, headers=self.auth("agency"))
        assert response.status_code == 201, response.text
        opening_id: str = response.json()["id"]
        return opening_id

    async def seal(self, opening_id: str, name: str, price: int, *,
                   backup: bool = False, keys: Keys | None = None) -> Path:
        """The supplier seals on its own machine, to the certificates the opening names."""
        view = (await self.http.get(f"/api/openings/{opening_id}", headers=self.auth(name))).json()
        own = keys or self.keys[name]
        assert view["certificates"]["encryption_certificate_pem"].strip() == (
            self.keys[name].enc_cert_pem().strip())
        backup_cert = None
        if backup:
            backup_cert = own.directory / "backup-cert.pem"
            backup_cert.write_text(view["certificates"]["backup_certificate_pem"])
        out = self.outside / f"{name}-{uuid.uuid4().hex[:6]}.cms"
        own.seal(out, form(price), backup_cert=backup_cert, now_ms=T0)
        self.sealed[name] = out
        return out

    async def upload(self, opening_id: str, name: str, path: Path) -> httpx.Response:
        return await self.http.put(f"/api/openings/{opening_id}/bid", content=_read(path),
                                   headers=self.auth(name))

    async def bid(self, opening_id: str, name: str, price: int, **kw: Any) -> dict[str, Any]:
        response = await self.upload(opening_id, name, await self.seal(opening_id, name, price,
                                                                       **kw))
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def post(self, path: str, name: str, body: Any = None) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self.auth(name))

    async def decrypt(self, opening_id: str, name: str) -> httpx.Response:
        """Fetch the wrapped key, unwrap it locally, submit the content key."""
        key = await self.http.get(f"/api/openings/{opening_id}/bid/encrypted-key",
                                  headers=self.auth(name))
        assert key.status_code == 200, key.text
        content_key = self.keys[name].unwrap(key.json()["encrypted_key_b64"])
        return await self.post(f"/api/openings/{opening_id}/decrypt", name,
                               {"content_key_b64": content_key})

    async def view(self, opening_id: str, name: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/openings/{opening_id}", headers=self.auth(name))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def until_logged(self, opening_id: str, kind: str) -> list[str]:
        """Wait (bounded) until the server's own scheduler has logged ``kind``: it acts on
        the clock the test gave it; the test never sleeps to let time pass."""
        async with asyncio.timeout(10):
            while True:
                log = (await self.http.get(f"/api/openings/{opening_id}/log",
                                           headers=self.auth("agency"))).json()
                kinds = [e["kind"] for e in log["items"]]
                if kind in kinds:
                    return kinds
                await asyncio.sleep(0.02)


def _read(path: Path) -> bytes:
    return path.read_bytes()


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The suppliers' and officials' own machines: never inside the server's data dir."""
    return tmp_path_factory.mktemp("outside-the-server")


@pytest.fixture
async def hall(tmp_path: Path, redis_url: str, migrated_database_url: str,
               outside: Path) -> AsyncIterator[Hall]:
    data_dir = tmp_path / "data"
    ca = PlatformCA.init(data_dir / "ca", now=at(T0 - 24 * 60 * MIN))
    settings = Settings(data_dir=data_dir, redis_url=redis_url,
                        database_url=migrated_database_url, test_clock=True)
    async with live_server(settings) as live:
        await live.set_clock(T0)
        await live.seed(suppliers=5)
        machines = outside / uuid.uuid4().hex[:8]
        keys = {f"s{i}": issue(ca, live.accounts[f"s{i}"].org_id, f"供应商{i}",
                               machines / f"s{i}", now_ms=T0 - 60 * MIN) for i in range(1, 6)}
        async with httpx.AsyncClient(base_url=live.base_url, timeout=60) as http:
            yield Hall(live, http, data_dir, ca, keys, machines)
            await live.services.redis.zrem(live.services.openings.schedule_key,
                                           *[r.id for r in await live.services.openings
                                             .store.list_openings(everything=True)] or ["-"])


def kinds(messages: list[dict[str, Any]]) -> list[str]:
    return [m["event"]["kind"] for m in messages if m["type"] == "opening_event"]


async def next_event(client: Client, kind: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return await client.recv_until(
        lambda m: m["type"] == "opening_event" and m["event"]["kind"] == kind)


# =============================================================================== the session


async def test_five_bidders_three_decrypt_one_never_does_one_platform_fault_and_the_record_shows_three(  # noqa: E501
    hall: Hall,
) -> None:
    opening_id = await hall.create()
    prices = {"s1": 98_000_000, "s2": 97_500_000, "s3": 99_100_000, "s4": 96_000_000,
              "s5": 95_000_000}

    async with (
        Client.connect(hall.live.ws_url, hall.acc("agency").token, wire="json") as agency,
        Client.connect(hall.live.ws_url, hall.acc("s1").token) as s1,
    ):
        joined = await agency.request("join_opening", opening_id=opening_id)
        assert joined["type"] == "opening_joined"
        await s1.request("join_opening", opening_id=opening_id)

        # --- before the deadline: sealed uploads with signed receipts
        platform_key = (await hall.http.get("/api/platform-key")).json()["public_key_pem"]
        for name, price in prices.items():
            uploaded = await hall.bid(opening_id, name, price)
            receipt = uploaded["receipt"]
            verify_document(receipt, platform_key)
            assert receipt["sha256"] == hashlib.sha256(hall.sealed[name].read_bytes()).hexdigest()
            assert receipt["server_time_ms"] == T0
        supplier_view = await hall.view(opening_id, "s2")
        assert supplier_view["hall"]["bidders"] == [] and supplier_view["hall"]["bids"] is None
        assert "invited_supplier_ids" not in supplier_view
        assert (await hall.view(opening_id, "agency"))["hall"]["bids"] == 5

        # --- sign-in; s4 never shows up
        await hall.clock(SIGN_IN)
        for name in ("s1", "s2", "s3", "s5"):
            response = await hall.post(f"/api/openings/{opening_id}/sign-in", name)
            assert response.status_code == 200, response.text

        # --- the deadline: the opening starts by itself
        await hall.clock(DEADLINE)
        closed, _ = await next_event(agency, "bids_closed")
        assert sorted(b["name"] for b in closed["event"]["bidders"]) == sorted(
            hall.acc(f"s{i}").name for i in range(1, 6))
        await next_event(s1, "bids_closed")

        # --- decryption: s1..s3 by their owners; s5 fails, then a platform fault (撤回)
        await hall.clock(DEADLINE + 5 * MIN)
        for name in ("s1", "s2", "s3"):
            response = await hall.decrypt(opening_id, name)
            assert response.status_code == 200, response.text
        wrong = await hall.post(f"/api/openings/{opening_id}/decrypt", "s5",
                                {"content_key_b64": base64.b64encode(os.urandom(32)).decode()})
        assert wrong.status_code == 422
        assert wrong.json()["error"]["code"] == "bad_key_or_tampered"
        assert wrong.json()["error"]["details"]["attempts"] == 1
        for blank in ({}, {"reason": "   "}, {"reason": "x" * 2001}):
            unreasoned = await hall.post(
                f"/api/openings/{opening_id}/bids/{hall.acc('s5').org_id}/platform-fault",
                "agency", blank)
            # a fault ruling must state its reason (1..2000 characters): nothing is recorded
            assert (unreasoned.status_code, unreasoned.json()["error"]["code"]) == (
                409, "reason_required"), unreasoned.text
        fault = await hall.post(
            f"/api/openings/{opening_id}/bids/{hall.acc('s5').org_id}/platform-fault", "agency",
            {"reason": "CA 服务中断，供应商5无法解密 / the CA service was down"})
        assert fault.status_code == 200, fault.text
        early = await hall.post(f"/api/openings/{opening_id}/reveal", "agency")
        assert early.status_code == 409
        assert early.json()["error"]["code"] == "decryption_in_progress"

        # Nothing of any bid's content has reached anyone yet, over HTTP or the hall.
        seen_so_far = json.dumps([await hall.view(opening_id, n) for n in ("s1", "agency")],
                                 ensure_ascii=False)
        _, hall_messages = await next_event(agency, "platform_fault")
        seen_so_far += json.dumps(hall_messages, ensure_ascii=False)
        for price in prices.values():
            assert str(price) not in seen_so_far

        # --- the window ends: s4 is revoked (撤销, its own fault)
        await hall.clock(WINDOW_END)
        revoked, _ = await next_event(agency, "bid_revoked")
        assert revoked["event"]["supplier_id"] == hall.acc("s4").org_id
        assert revoked["event"]["status_zh"] == "撤销"

        # --- 唱标: the same record to everyone at once
        await hall.clock(WINDOW_END + MIN)
        response = await hall.post(f"/api/openings/{opening_id}/reveal", "agency")
        assert response.status_code == 200, response.text
        to_agency, _ = await next_event(agency, "record_revealed")
        to_s1, _ = await next_event(s1, "record_revealed")
        assert to_agency["event"] == to_s1["event"]
        record = to_agency["event"]["record"]
        opened = {e["supplier_id"]: e["form"]["total_price_fen"] for e in record["opened"]}
        assert opened == {hall.acc(n).org_id: prices[n] for n in ("s1", "s2", "s3")}
        assert {e["supplier_id"]: e["status_zh"] for e in record["not_opened"]} == {
            hall.acc("s4").org_id: "撤销", hall.acc("s5").org_id: "撤回"}
        assert {e["supplier_id"]: e["reason"] for e in record["not_opened"]} == {
            hall.acc("s4").org_id: "revoked_by_bidder",
            hall.acc("s5").org_id: "withdrawn_platform_fault"}

        # --- objections, answered live
        raised = await hall.post(f"/api/openings/{opening_id}/objections", "s2",
                                 {"text": "供应商3的交货期有疑义"})
        assert raised.status_code == 201, raised.text
        await next_event(s1, "objection_raised")
        objection_id = raised.json()["objection_id"]
        answered = await hall.post(
            f"/api/openings/{opening_id}/objections/{objection_id}/answer", "agency",
            {"text": "经核对，符合招标文件要求"})
        assert answered.status_code == 200, answered.text
        await next_event(s1, "objection_answered")
        too_early = await hall.post(f"/api/openings/{opening_id}/confirm", "agency")
        assert too_early.json()["error"]["code"] == "objection_window_open"

        # --- confirmation; the absent bidder is deemed to accept (O87 42)
        await hall.clock(WINDOW_END + MIN + 15 * MIN)
        confirmed = await hall.post(f"/api/openings/{opening_id}/confirm", "agency")
        assert confirmed.status_code == 200, confirmed.text
        event, _ = await next_event(s1, "record_confirmed")
        assert [d["supplier_id"] for d in event["event"]["deemed_accepted"]] == [
            hall.acc("s4").org_id]

    # --- the signed record, its printable page and the hash-chained log
    doc = (await hall.http.get(f"/api/openings/{opening_id}/record",
                               headers=hall.auth("s3"))).json()
    verify_document(doc, platform_key)
    core = {k: v for k, v in doc.items() if k not in ("sha256", "key_id", "signature")}
    assert doc["sha256"] == hashlib.sha256(canonical_json(core)).hexdigest()
    assert doc["status"] == "confirmed"
    assert sorted(e["name"] for e in doc["opened"]) == sorted(
        hall.acc(n).name for n in ("s1", "s2", "s3"))
    page = await hall.http.get(f"/api/openings/{opening_id}/record.html",
                               headers=hall.auth("supervisor"))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "开标记录" in page.text and doc["sha256"] in page.text
    assert "¥980,000.00" in page.text and hall.acc("s5").name in page.text
    # 撤销 and 撤回 differ in the bid bond, and the agency's stated reason is in the record;
    # the page says so in words, never in codes.
    outcome = {e["supplier_id"]: (e["status"], e["bond"], (e["ruling"] or {}).get("reason"))
               for e in doc["not_opened"]}
    assert outcome == {
        hall.acc("s4").org_id: ("revoked", "may_be_kept", None),
        hall.acc("s5").org_id: ("withdrawn", "returned",
                                "CA 服务中断，供应商5无法解密 / the CA service was down")}
    assert {e["bond"] for e in doc["opened"]} == {"ordinary"}
    assert doc["platform_fault"] == []
    assert "投标保证金可不予退还" in page.text and "投标保证金予以退还" in page.text
    assert "CA 服务中断，供应商5无法解密" in page.text
    for code in ("revoked_by_bidder", "withdrawn_platform_fault", "may_be_kept"):
        assert code not in page.text
    log = (await hall.http.get(f"/api/openings/{opening_id}/log",
                               headers=hall.auth("supervisor"))).json()
    assert log["chain_ok"] is True
    assert doc["log"]["hash"] in [e["hash"] for e in log["items"]]
    assert [e["kind"] for e in log["items"]].count("bid_decrypted") == 3
    assert (await hall.view(opening_id, "s1"))["phase"] == "concluded"


async def test_a_rejoining_watcher_gets_exactly_the_hall_events_it_missed(hall: Hall) -> None:
    opening_id = await hall.create()
    async with Client.connect(hall.live.ws_url, hall.acc("supervisor").token) as watcher:
        first = await watcher.request("join_opening", opening_id=opening_id)
        seq = first["seq"]
        left = await watcher.request("leave_opening", opening_id=opening_id)
        assert left["type"] == "opening_left"
        assert hall.live.services.hall.connection_count() == 0
    for name in ("s1", "s2", "s3"):
        await hall.bid(opening_id, name, 1_000_000)

    async with Client.connect(hall.live.ws_url, hall.acc("supervisor").token) as watcher:
        rid = await watcher.send("join_opening", opening_id=opening_id, last_seq=seq)
        reply, before = await watcher.recv_until(lambda m: m.get("re") == rid)

    assert [m["type"] for m in before] == ["opening_event"] * 3 + ["opening_caught_up"]
    assert [m["seq"] for m in before[:3]] == [seq + 1, seq + 2, seq + 3]
    assert all(m["event"] == {"seq": m["seq"], "kind": "bid_activity", "at_ms": T0,
                              "bids": i} for i, m in enumerate(before[:3], start=1))
    assert reply["type"] == "opening_joined" and reply["seq"] == seq + 3


async def test_only_parties_join_the_hall(hall: Hall) -> None:
    opening_id = await hall.create(suppliers=3)

    async with Client.connect(hall.live.ws_url, hall.acc("s5").token) as stranger:
        reply = await stranger.request("join_opening", opening_id=opening_id)
        missing = await stranger.request("join_opening", opening_id="opn_nothing")

    assert (reply["type"], reply["code"]) == ("error", "not_invited")
    assert (missing["type"], missing["code"]) == ("error", "opening_not_found")


# =============================================================================== refusals


async def test_an_upload_one_millisecond_after_the_deadline_is_refused(hall: Hall) -> None:
    opening_id = await hall.create()
    sealed = await hall.seal(opening_id, "s1", 1_000_000)
    late = await hall.seal(opening_id, "s2", 1_000_000)

    await hall.clock(DEADLINE - 1)
    in_time = await hall.upload(opening_id, "s1", sealed)
    await hall.clock(DEADLINE + 1)
    too_late = await hall.upload(opening_id, "s2", late)

    assert in_time.status_code == 201
    assert in_time.json()["receipt"]["server_time_ms"] == DEADLINE - 1
    assert too_late.status_code == 409
    assert too_late.json()["error"]["code"] == "deadline_passed"
    withdraw = await hall.http.delete(f"/api/openings/{opening_id}/bid", headers=hall.auth("s1"))
    assert withdraw.json()["error"]["code"] == "deadline_passed"


async def test_a_bid_may_be_replaced_and_withdrawn_until_the_deadline(hall: Hall) -> None:
    opening_id = await hall.create()
    first = await hall.bid(opening_id, "s1", 1_000_000)
    again = await hall.upload(opening_id, "s1", hall.sealed["s1"])
    second = await hall.bid(opening_id, "s1", 900_000)
    withdrawn = await hall.http.delete(f"/api/openings/{opening_id}/bid",
                                       headers=hall.auth("s1"))
    receipts = (await hall.http.get(f"/api/openings/{opening_id}/receipts",
                                    headers=hall.auth("s1"))).json()["items"]

    assert again.status_code == 200 and again.json()["status"] == "unchanged"
    assert second["status"] == "replaced"
    assert second["receipt"]["replaces"] == first["sha256"]
    assert withdrawn.status_code == 200
    assert [(r["status"], r["current"]) for r in receipts] == [("replaced", False),
                                                               ("withdrawn", False)]
    agency = await hall.http.get(f"/api/openings/{opening_id}/receipts",
                                 headers=hall.auth("agency"))
    assert agency.json()["error"]["code"] == "decryption_not_open"  # secret until the deadline
    log = await hall.http.get(f"/api/openings/{opening_id}/log", headers=hall.auth("agency"))
    assert log.json()["error"]["code"] == "decryption_not_open"
    supervised = await hall.http.get(f"/api/openings/{opening_id}/log",
                                     headers=hall.auth("supervisor"))
    assert [e["kind"] for e in supervised.json()["items"]] == [
        "created", "bid_submitted", "bid_replaced", "bid_withdrawn"]


async def test_unencrypted_and_malformed_uploads_are_refused_with_a_clear_reason(
    hall: Hall,
) -> None:
    opening_id = await hall.create()
    sealed = await hall.seal(opening_id, "s1", 1_000_000)
    data = sealed.read_bytes()

    async def put(body: bytes) -> tuple[int, str]:
        response = await hall.http.put(f"/api/openings/{opening_id}/bid", content=body,
                                       headers=hall.auth("s1"))
        return response.status_code, response.json()["error"]["code"]

    assert await put(b"PK\x03\x04 a plain zip, not sealed") == (422, "not_encrypted")
    assert await put(data[: len(data) // 2]) == (422, "malformed_envelope")
    assert await put(b"") == (422, "empty_upload")
    foreign = await hall.seal(opening_id, "s2", 1_000_000)  # sealed to s2's certificate
    assert await put(foreign.read_bytes()) == (422, "not_a_recipient")
    leftovers = list((hall.data_dir / "openings" / opening_id).rglob("*.cms"))
    assert leftovers == []


async def test_tampered_ciphertext_is_refused_at_decryption(hall: Hall) -> None:
    opening_id = await hall.create()
    for name in ("s1", "s2", "s3"):
        await hall.bid(opening_id, name, 1_000_000)
    tampered = hall.outside / "tampered.cms"
    data = bytearray(hall.sealed["s1"].read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the encrypted content: still well formed
    tampered.write_bytes(bytes(data))
    assert (await hall.upload(opening_id, "s1", tampered)).status_code == 201
    await hall.clock(DEADLINE)
    for name in ("s1", "s2"):
        await hall.post(f"/api/openings/{opening_id}/sign-in", name)
    await hall.until_logged(opening_id, "bids_closed")

    refused = await hall.decrypt(opening_id, "s1")
    # The platform's own copy changed on disk: refused before use, not blamed on the bidder.
    stored = next(p for p in (hall.data_dir / "openings" / opening_id).glob("*.cms")
                  if p.name.startswith(hashlib.sha256(hall.sealed["s2"].read_bytes())
                                       .hexdigest()))
    stored.chmod(0o640)
    corrupt = bytearray(stored.read_bytes())
    corrupt[-100] ^= 0x01
    stored.write_bytes(bytes(corrupt))
    corrupted = await hall.decrypt(opening_id, "s2")

    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "bad_key_or_tampered"
    assert corrupted.status_code == 422
    assert corrupted.json()["error"]["code"] == "ciphertext_corrupted"


async def test_a_bid_signed_with_a_revoked_certificate_is_refused(hall: Hall) -> None:
    opening_id = await hall.create()
    for name in ("s1", "s2", "s3"):
        await hall.bid(opening_id, name, 1_000_000)
    revoked = hall.keys["s2"]
    serial = revoked.certificate("sign").serial_number
    hall.ca.revoke(serial, now=at(T0 - 1))  # revoked before the upload was made
    await hall.clock(DEADLINE)
    await hall.post(f"/api/openings/{opening_id}/sign-in", "s2")
    await hall.until_logged(opening_id, "bids_closed")

    response = await hall.decrypt(opening_id, "s2")
    login = await ca_login(hall, revoked)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "certificate_revoked"
    assert (login.status_code, login.json()["error"]["code"]) == (401, "certificate_revoked")


async def test_an_upload_sealed_to_a_revoked_encryption_certificate_is_refused(
    hall: Hall,
) -> None:
    opening_id = await hall.create()
    sealed = await hall.seal(opening_id, "s1", 1_000_000)
    hall.ca.revoke(hall.keys["s1"].certificate("enc").serial_number, now=at(T0 - 1))

    response = await hall.upload(opening_id, "s1", sealed)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "certificate_revoked"


async def test_a_certificate_from_an_unknown_ca_is_refused(hall: Hall, tmp_path: Path) -> None:
    opening_id = await hall.create()
    rogue = PlatformCA.init(tmp_path / "rogue-ca", name="Rogue CA", now=at(T0 - 60 * MIN))
    s1 = hall.keys["s1"]
    foreign = issue(rogue, hall.acc("s1").org_id, "供应商1", hall.outside / "rogue-s1",
                    now_ms=T0 - MIN)
    # Signed with the rogue certificate, sealed to s1's real encryption certificate.
    mixed = Keys(s1.org_id, hall.outside / "mixed-s1")
    mixed.directory.mkdir()
    for name, source in (("sign-cert.pem", foreign.sign_cert), ("sign-key.pem", foreign.sign_key),
                         ("enc-cert.pem", s1.enc_cert), ("enc-key.pem", s1.enc_key)):
        (mixed.directory / name).write_bytes(source.read_bytes())
    assert (await hall.upload(opening_id, "s1", await hall.seal(opening_id, "s1", 1_000_000,
                                                                 keys=mixed))).status_code == 201
    for name in ("s2", "s3"):
        await hall.bid(opening_id, name, 1_000_000)
    await hall.clock(DEADLINE)
    await hall.post(f"/api/openings/{opening_id}/sign-in", "s1")
    await hall.until_logged(opening_id, "bids_closed")

    response = await hall.decrypt(opening_id, "s1")
    login = await ca_login(hall, foreign)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_ca"
    assert (login.status_code, login.json()["error"]["code"]) == (401, "unknown_ca")


async def register(hall: Hall, name: str, keys: Keys) -> httpx.Response:
    return await hall.http.put("/api/certificates/me", headers=hall.auth(name), json={
        "signing_certificate_pem": keys.sign_cert_pem(),
        "encryption_certificate_pem": keys.enc_cert_pem()})


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    from web.cli import main

    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


async def test_a_supplier_with_certificates_from_an_imported_licensed_ca_bids_and_decrypts(
    hall: Hall, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    licensed = PlatformCA.init(tmp_path / "licensed-ca", name="某持牌CA Licensed CA",
                               now=at(T0 - 24 * 60 * MIN))
    org_id = hall.acc("s1").org_id
    external = issue(licensed, org_id, "供应商1", hall.outside / "licensed-s1", now_ms=T0 - MIN)
    others = issue(licensed, hall.acc("s2").org_id, "供应商2", hall.outside / "licensed-s2",
                   now_ms=T0 - MIN)
    revoked = issue(licensed, org_id, "供应商1", hall.outside / "licensed-s1-old",
                    now_ms=T0 - MIN)
    licensed.revoke(revoked.certificate("sign").serial_number, now=at(T0 - 1))

    before_import = await register(hall, "s1", external)
    root = tmp_path / "licensed-root.pem"
    root.write_bytes((licensed.directory / "ca-cert.pem").read_bytes())
    imported = cli(capsys, "ca", "import-root", root, "--data-dir", hall.data_dir,
                   "--crl", licensed.directory / "crl.pem")
    not_a_ca = cli(capsys, "ca", "import-root", external.sign_cert, "--data-dir", hall.data_dir)
    listed = cli(capsys, "ca", "list", "--data-dir", hall.data_dir)
    not_yours = await register(hall, "s1", others)
    revoked_refused = await register(hall, "s1", revoked)
    registered = await register(hall, "s1", external)
    current = await hall.http.get("/api/certificates/me", headers=hall.auth("s1"))
    platform = await hall.http.get("/api/certificates/me", headers=hall.auth("s2"))
    by_agency = await register(hall, "agency", external)

    assert (before_import.status_code, before_import.json()["error"]["code"]) == (
        422, "unknown_ca")
    assert imported[0] == 0, imported[2]
    assert not_a_ca[0] == 1 and "CA" in not_a_ca[2]
    assert listed[0] == 0 and "Licensed CA" in listed[1]
    assert (not_yours.status_code, not_yours.json()["error"]["code"]) == (
        422, "certificate_not_yours")
    assert revoked_refused.json()["error"]["code"] == "certificate_revoked"
    assert registered.status_code == 200, registered.text
    assert current.json()["source"] == "registered"
    assert current.json()["encryption"]["pem"].strip() == external.enc_cert_pem().strip()
    assert platform.json()["source"] == "platform" and platform.json()["signing"] is None
    assert by_agency.status_code == 403

    # The registered certificates win over those the platform CA issued to s1.
    hall.keys["s1"] = external
    opening_id = await hall.create()
    for name in ("s1", "s2", "s3"):
        await hall.bid(opening_id, name, 1_000_000)
    await hall.clock(DEADLINE)
    await hall.post(f"/api/openings/{opening_id}/sign-in", "s1")
    await hall.until_logged(opening_id, "bids_closed")

    response = await hall.decrypt(opening_id, "s1")

    assert response.status_code == 200, response.text


async def test_fewer_than_three_bids_at_the_deadline_means_no_opening(hall: Hall) -> None:
    opening_id = await hall.create()
    for name in ("s1", "s2"):
        await hall.bid(opening_id, name, 1_000_000)

    await hall.clock(DEADLINE)
    await hall.until_logged(opening_id, "opening_failed")
    view = await hall.view(opening_id, "s1")
    sign_in = await hall.post(f"/api/openings/{opening_id}/sign-in", "s1")

    assert view["phase"] == "failed" and view["hall"]["failed"] is True
    assert view["hall"]["failure_reason"] == "too_few_bids"
    assert sign_in.json()["error"]["code"] == "opening_failed"
    reveal = await hall.post(f"/api/openings/{opening_id}/reveal", "agency")
    assert reveal.json()["error"]["code"] == "opening_failed"


# =============================================================================== CA login


async def ca_login(hall: Hall, keys: Keys, *, challenge: str | None = None) -> httpx.Response:
    if challenge is None:
        challenge = (await hall.http.post("/api/auth/ca/challenge")).json()["challenge"]
    return await hall.http.post("/api/auth/ca/login", json={
        "challenge": challenge, "signature_b64": keys.sign_challenge(challenge),
        "certificate_pem": keys.sign_cert_pem()})


async def test_a_supplier_logs_in_with_its_signing_certificate(hall: Hall) -> None:
    challenge = (await hall.http.post("/api/auth/ca/challenge")).json()["challenge"]

    response = await ca_login(hall, hall.keys["s3"], challenge=challenge)
    replay = await ca_login(hall, hall.keys["s3"], challenge=challenge)
    other = (await hall.http.post("/api/auth/ca/challenge")).json()["challenge"]
    forged = await hall.http.post("/api/auth/ca/login", json={
        "challenge": other, "signature_b64": hall.keys["s2"].sign_challenge(other),
        "certificate_pem": hall.keys["s3"].sign_cert_pem()})
    wrong_usage = await hall.http.post("/api/auth/ca/login", json={
        "challenge": (await hall.http.post("/api/auth/ca/challenge")).json()["challenge"],
        "signature_b64": "AAAA", "certificate_pem": hall.keys["s3"].enc_cert_pem()})

    assert response.status_code == 200, response.text
    token = response.json()["token"]
    me = await hall.http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["org_id"] == hall.acc("s3").org_id
    assert response.json()["expires_at_ms"] == T0 + 2 * 3600 * 1000
    assert (replay.status_code, replay.json()["error"]["code"]) == (401, "invalid_challenge")
    assert (forged.status_code, forged.json()["error"]["code"]) == (401, "bad_signature")
    assert (wrong_usage.status_code, wrong_usage.json()["error"]["code"]) == (
        401, "wrong_key_usage")


# =============================================================================== the backup key


@dataclass
class Official:
    name: str
    user_id: str
    keys: Keys


async def officials(hall: Hall) -> list[Official]:
    out = []
    for name in ("agency", "purchaser", "supervisor"):
        acc = hall.acc(name)
        keys = issue(hall.ca, acc.org_id, f"{name} official", hall.outside / f"official-{name}",
                     now_ms=T0 - 60 * MIN)
        out.append(Official(name, acc.user_id, keys))
    return out


async def backup_opening(hall: Hall) -> tuple[str, list[Official]]:
    people = await officials(hall)
    opening_id = await hall.create(backup={"k": 2, "officials": [
        {"user_id": o.user_id, "certificate_pem": o.keys.enc_cert_pem()} for o in people]})
    return opening_id, people


async def share_key(hall: Hall, opening_id: str, official: Official) -> str:
    sealed = await hall.http.get(f"/api/openings/{opening_id}/backup/share",
                                 headers=hall.auth(official.name))
    assert sealed.status_code == 200, sealed.text
    return unwrap_for_submission(sealed.json()["encrypted_key_b64"],
                                 official.keys.enc_key.read_bytes())


async def test_the_backup_key_needs_k_shares_after_the_window_and_opens_only_a_platform_fault(
    hall: Hall,
) -> None:
    opening_id, people = await backup_opening(hall)
    not_to_backup = await hall.upload(opening_id, "s1", await hall.seal(opening_id, "s1", 7))
    assert not_to_backup.json()["error"]["code"] == "not_sealed_to_backup"
    for name, price in (("s1", 10_000_000), ("s2", 11_000_000), ("s3", 12_000_000)):
        await hall.bid(opening_id, name, price, backup=True)
    await hall.clock(DEADLINE)
    for name in ("s1", "s2"):
        await hall.post(f"/api/openings/{opening_id}/sign-in", name)
    await hall.until_logged(opening_id, "bids_closed")
    for name in ("s1", "s2"):
        assert (await hall.decrypt(opening_id, name)).status_code == 200
    await hall.post(f"/api/openings/{opening_id}/bids/{hall.acc('s3').org_id}/platform-fault",
                    "agency", {"reason": "平台存储故障 / platform storage fault"})

    # Not before the window ends: no single insider, not even k of them, can open early.
    early = await hall.post(f"/api/openings/{opening_id}/backup/shares", "agency",
                            {"content_key_b64": await share_key(hall, opening_id, people[0])})
    assert (early.status_code, early.json()["error"]["code"]) == (409, "window_open")

    await hall.clock(WINDOW_END)
    await hall.until_logged(opening_id, "window_ended")
    # k-1 shares: nothing is rebuilt, the bid stays withdrawn.
    one = await hall.post(f"/api/openings/{opening_id}/backup/shares", "agency",
                          {"content_key_b64": await share_key(hall, opening_id, people[0])})
    assert one.status_code == 200, one.text
    assert (one.json()["submitted"], one.json()["rebuilt"]) == (1, False)
    stranger = await hall.post(f"/api/openings/{opening_id}/backup/shares", "s1",
                               {"content_key_b64": base64.b64encode(bytes(32)).decode()})
    assert stranger.json()["error"]["code"] == "not_an_official"
    # The k-th share rebuilds the key once; it opens the platform-fault bid, then is gone.
    two = await hall.post(f"/api/openings/{opening_id}/backup/shares", "supervisor",
                          {"content_key_b64": await share_key(hall, opening_id, people[2])})
    assert two.status_code == 200, two.text
    assert two.json()["rebuilt"] is True
    assert two.json()["opened_by_backup"] == [hall.acc("s3").org_id]

    reveal = (await hall.post(f"/api/openings/{opening_id}/reveal", "agency")).json()
    opened = {e["supplier_id"]: (e["form"]["total_price_fen"], e["by_backup"])
              for e in reveal["record"]["opened"]}
    assert opened == {hall.acc("s1").org_id: (10_000_000, False),
                      hall.acc("s2").org_id: (11_000_000, False),
                      hall.acc("s3").org_id: (12_000_000, True)}
    log = (await hall.http.get(f"/api/openings/{opening_id}/log",
                               headers=hall.auth("supervisor"))).json()
    assert [e["kind"] for e in log["items"]].count("share_submitted") == 2
    assert "backup_rebuilt" in [e["kind"] for e in log["items"]]
    assert "backup_ceremony_closed" in [e["kind"] for e in log["items"]]
    # The submissions (sealed to the ceremony's key) are erased after use.
    async with make_engine_for(hall) as conn:
        held = (await conn.execute(text(
            "SELECT count(*) FROM opening_backup_shares WHERE ceremony_sealed IS NOT NULL"
        ))).scalar()
    assert held == 0


async def test_k_minus_one_shares_do_not_rebuild_the_backup_key_and_k_do(hall: Hall) -> None:
    opening_id, people = await backup_opening(hall)
    sealed = (await hall.http.get(f"/api/openings/{opening_id}/backup/share",
                                  headers=hall.auth("agency"))).json()
    assert sealed["k"] == 2 and sealed["n"] == 3
    shares = []
    for official in people:
        key = base64.b64decode(await share_key(hall, opening_id, official))
        row = await hall.live.services.openings.store.share(opening_id, official.user_id)
        assert row is not None
        shares.append(open_share(row.sealed, key))

    with pytest.raises(BidroomError):
        rebuild_backup_key(shares[:1])
    rebuilt = rebuild_backup_key(shares[1:])
    opening = await hall.live.services.openings.store.get(opening_id)
    assert opening is not None and opening.backup_certificate_pem is not None
    certificate = x509.load_pem_x509_certificate(opening.backup_certificate_pem.encode())
    assert spki(rebuilt) == spki(certificate)


def spki(holder: Any) -> bytes:
    """The public key (DER SubjectPublicKeyInfo) of a private key or a certificate."""
    public_key = holder.public_key()
    der: bytes = public_key.public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


class make_engine_for:
    def __init__(self, hall: Hall) -> None:
        self.engine = make_engine(str(hall.live.services.engine.url.render_as_string(
            hide_password=False)))

    async def __aenter__(self) -> Any:
        self.conn = await self.engine.connect()
        return self.conn

    async def __aexit__(self, *exc: object) -> None:
        await self.conn.close()
        await self.engine.dispose()


# =============================================================================== nobody reads early


async def everything_the_server_holds(hall: Hall) -> list[bytes]:
    """Every file in the data dir, every value in the database and in Redis."""
    blobs: list[bytes] = []
    for path in hall.data_dir.rglob("*"):
        if path.is_file() and not path.name.endswith(".cms") and path.stat().st_size < 50e6:
            blobs.append(path.read_bytes())
    async with make_engine_for(hall) as conn:
        tables = [
            "openings", "opening_bids", "opening_log", "opening_backup_shares",
            "opening_invitations", "opening_objections", "organisations", "users",
            "api_tokens", "auctions", "audit_log",
        ]
        for table in tables:
            for row in (await conn.execute(text(f"SELECT * FROM {table}"))).all():
                for value in row:
                    if value is None:
                        continue
                    blobs.append(value if isinstance(value, bytes) else (
                        json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list)
                        else str(value)).encode())
    redis: Any = hall.live.services.redis
    async for key in redis.scan_iter(count=1000):
        blobs.append(key)
        kind = (await redis.type(key)).decode()
        if kind == "string":
            blobs.append(await redis.get(key))
        elif kind == "hash":
            blobs.extend(b for pair in (await redis.hgetall(key)).items() for b in pair)
        elif kind in ("list",):
            blobs.extend(await redis.lrange(key, 0, -1))
        elif kind in ("set",):
            blobs.extend(await redis.smembers(key))
        elif kind == "zset":
            blobs.extend(m for m, _ in await redis.zrange(key, 0, -1, withscores=True))
        elif kind == "stream":
            for _, fields in await redis.xrange(key):
                blobs.extend(b for pair in fields.items() for b in pair)
    return blobs


_PEM_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----.+?-----END [A-Z ]*PRIVATE KEY-----",
                      re.S)
_B64 = re.compile(rb"[A-Za-z0-9+/_-]{43,44}=?")
_HEX = re.compile(rb"\b[0-9a-fA-F]{64}\b")


def candidate_keys(blobs: list[bytes]) -> tuple[list[Any], set[bytes]]:
    """Every private key (PEM) and every 32-byte value (raw, base64, hex) in the blobs."""
    private: list[Any] = []
    secrets: set[bytes] = set()
    for blob in blobs:
        if blob is None:
            continue
        for match in _PEM_KEY.finditer(blob):
            pem = match.group(0).replace(b"\\n", b"\n")
            private.append(serialization.load_pem_private_key(pem, password=None))
        if len(blob) == 32:
            secrets.add(blob)
        for match in _B64.finditer(blob):
            token = match.group(0)
            try:
                value = base64.urlsafe_b64decode(token.replace(b"+", b"-").replace(b"/", b"_")
                                                 + b"=" * (-len(token) % 4))
            except ValueError:
                continue
            if len(value) == 32:
                secrets.add(value)
        for match in _HEX.finditer(blob):
            secrets.add(bytes.fromhex(match.group(0).decode()))
    return private, secrets


async def test_nothing_the_server_holds_decrypts_a_bid_before_its_owner_acts(
    hall: Hall,
) -> None:
    opening_id, _ = await backup_opening(hall)
    for name in ("s1", "s2", "s3"):
        await hall.bid(opening_id, name, 55_500_000, backup=True)
    await hall.clock(DEADLINE)
    await hall.until_logged(opening_id, "bids_closed")  # even after the deadline

    blobs = await everything_the_server_holds(hall)
    private, secrets = candidate_keys(blobs)
    stored = sorted((hall.data_dir / "openings" / opening_id).glob("*.cms"))

    assert len(stored) == 3
    assert any(isinstance(k, rsa.RSAPrivateKey) is False for k in private)  # the CA key
    assert len(secrets) > 10  # digests, hashes, tokens: all tried
    assert not any(b"bidroom-share-" in blob for blob in blobs if blob)  # no plain share
    # The private keys that would open a bid exist nowhere on the server.
    row = await hall.live.services.openings.store.get(opening_id)
    assert row is not None and row.backup_certificate_pem
    targets = [x509.load_pem_x509_certificate(row.backup_certificate_pem.encode())]
    targets += [hall.keys[n].certificate("enc") for n in ("s1", "s2", "s3")]
    target_keys = {spki(t) for t in targets}
    for key in private:
        assert spki(key) not in target_keys
    # And every key it does hold fails on every recipient of every bid.
    scratch = hall.outside / f"attempt-{uuid.uuid4().hex[:6]}"
    for path in stored:
        info = inspect_envelope(path)
        assert len(info.recipients) == 2  # the owner's certificate and the backup's
        for recipient in info.recipients:
            for key in private:
                if isinstance(key, rsa.RSAPrivateKey):
                    with pytest.raises(BidroomError):
                        unwrap_content_key(recipient.encrypted_key, key)
        for secret in secrets:
            with pytest.raises(BidroomError):
                decrypt_content(path, secret, scratch)
    assert not scratch.exists() or not any(scratch.iterdir())
    # Nothing reached the hall or the HTTP views either.
    view = json.dumps(await hall.view(opening_id, "agency"), ensure_ascii=False)
    assert "55500000" not in view


# =============================================================================== big bids


async def test_a_200_mib_bid_uploads_with_bounded_server_memory(hall: Hall) -> None:
    opening_id = await hall.create()
    document = hall.outside / "drawings.pdf"  # "already compressed": stored, not deflated
    with document.open("wb") as out:
        for _ in range(200):
            out.write(os.urandom(1 << 20))
    sealed = hall.outside / "big.cms"
    result = hall.keys["s1"].seal(sealed, form(88_800_000),
                                  documents={"drawings.pdf": document}, now_ms=T0)
    assert result.size > 200 * (1 << 20)

    async def body() -> AsyncIterator[bytes]:
        with sealed.open("rb") as source:
            while chunk := source.read(1 << 20):
                yield chunk

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        response = await hall.http.put(f"/api/openings/{opening_id}/bid", content=body(),
                                       headers=hall.auth("s1"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 201, response.text
    assert response.json()["receipt"]["sha256"] == result.sha256
    assert response.json()["size"] == result.size
    # The whole process (this client and the server in it) never held more than a few MiB.
    assert peak < 24 * (1 << 20), f"peak {peak / (1 << 20):.1f} MiB"
    stored = hall.data_dir / "openings" / opening_id / f"{result.sha256}.cms"
    assert stored.stat().st_size == result.size
