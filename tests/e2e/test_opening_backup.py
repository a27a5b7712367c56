"""The backup key needs k officials, always (issue #10 §1).

The operator is played literally: after a fallback opening (k-1 officials' shares plus one more
submitted) it reads everything the server stores — every SQL table, the raw SQLite file, every
Redis key (strings, hashes, lists, sets, sorted sets, streams) and Redis' own files (AOF, RDB),
every file under DATA_DIR, every log line the server wrote — and tries to rebuild the backup key
from any share-like text found there plus the shares of any k-1 officials, to open the sealed
shares with every 32-byte value found (a content key that unwraps one gives the share), and to
open the ceremony's submissions with every 32-byte value taken as an X25519 key. It must fail at
every state: before the submissions, between them, after the rebuild, after 唱标, after the
confirmation and after the signed record was issued.

Also: k = 1 is refused as ``threshold_too_low``; the backup path opens only the bids ruled a
platform fault, never one revoked (撤销) or withdrawn by its supplier; and the ceremony over two
server processes, including the loss of the process that holds it (``ceremony_restarted``).
"""

from __future__ import annotations

import base64
import itertools
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import text

from bidroom.errors import BidroomError
from bidroom.opening.backup import LIVENESS_MS, open_from_ceremony
from bidroom.opening.ca import load_private_key
from bidroom.opening.custody import open_share
from bidroom.opening.shamir import BackupKey, rebuild_backup_key
from tests.conftest import REAL_DATABASE_URL, REAL_REDIS_URL, REDIS_CLUSTER
from tests.e2e.test_opening import (
    DEADLINE,
    T0,
    WINDOW_END,
    Hall,
    Official,
    backup_opening,
    candidate_keys,
    hall,
    make_engine_for,
    officials,
    outside,
    share_key,
    spki,
)
from tests.live import live_server
from tests.opening_kit import MIN, at

# The fixtures of tests/e2e/test_opening.py: a live server with five suppliers (``hall``) and
# the suppliers' and officials' own machines (``outside``).
__all__ = ["hall", "outside"]

_SHARE_TEXT = re.compile(rb"bidroom-share-\d{1,3}-\d{1,3}-of-\d{1,3}:[A-Za-z0-9_-]+")


# =============================================================================== the operator


async def _sql_tables(conn: Any) -> list[str]:
    if conn.dialect.name == "sqlite":
        rows = await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
    else:
        rows = await conn.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"))
    return [r[0] for r in rows.all()]


async def operator_reads_everything(hall: Hall, logs: str) -> tuple[list[bytes], set[Path]]:
    """Every byte the operator can read at rest: SQL (every table, and the database files),
    Redis (every key, and its AOF/RDB files), DATA_DIR, and the server's log lines."""
    blobs: list[bytes] = [logs.encode("utf-8", "surrogateescape")]
    seen_files: set[Path] = set()

    def read_tree(root: Path) -> None:
        if not root.exists():
            return
        paths = [root] if root.is_file() else list(root.rglob("*"))
        for path in paths:
            if (path.is_file() and path.resolve() not in seen_files
                    and path.stat().st_size < 50e6):
                seen_files.add(path.resolve())
                blobs.append(path.read_bytes())

    read_tree(hall.data_dir)  # the sealed bids, the CA, the platform key, opened bids, …
    engine_url = hall.live.services.engine.url
    if engine_url.get_backend_name() == "sqlite" and engine_url.database:
        database = Path(engine_url.database)
        for suffix in ("", "-wal", "-journal", "-shm"):  # free pages and the WAL included
            read_tree(database.with_name(database.name + suffix))
    async with make_engine_for(hall) as conn:
        for table in await _sql_tables(conn):
            for row in (await conn.execute(text(f'SELECT * FROM "{table}"'))).all():
                for value in row:
                    if value is not None:
                        blobs.append(value if isinstance(value, bytes) else str(value).encode())
    redis: Any = hall.live.services.redis
    async for key in redis.scan_iter(count=1000):
        blobs.append(key)
        kind = (await redis.type(key)).decode()
        if kind == "string":
            blobs.append(await redis.get(key))
        elif kind == "hash":
            blobs.extend(b for pair in (await redis.hgetall(key)).items() for b in pair)
        elif kind == "list":
            blobs.extend(await redis.lrange(key, 0, -1))
        elif kind == "set":
            blobs.extend(await redis.smembers(key))
        elif kind == "zset":
            blobs.extend(m for m, _ in await redis.zrange(key, 0, -1, withscores=True))
        elif kind == "stream":
            for _, fields in await redis.xrange(key):
                blobs.extend(b for pair in fields.items() for b in pair)
    try:  # Redis persists (AOF, RDB): its files, where this machine can read them
        directory = (await redis.config_get("dir")).get("dir")
    except Exception:  # a managed Redis may refuse CONFIG
        directory = None
    if directory:
        read_tree(Path(directory))
    return [b for b in blobs if b], seen_files


async def operator_attack(hall: Hall, opening_id: str, people: list[Official],
                          logs: str) -> list[str]:
    """What the operator, joined by any k-1 officials, gets: the ways it rebuilt the key
    (empty: none)."""
    blobs, files = await operator_reads_everything(hall, logs)
    # the embedded Redis' append-only file was read too (the tests' local Cluster keeps no
    # files: it runs with --appendonly no and no RDB)
    if not REAL_REDIS_URL and not REDIS_CLUSTER:
        assert any(f.name.startswith("appendonly") for f in files)
    if not REAL_DATABASE_URL:  # and the raw SQLite file, free pages included
        assert any(f.suffix == ".db" for f in files)
    _, secrets = candidate_keys(blobs)
    found: set[str] = set()
    for blob in blobs:
        found.update(m.group(0).decode() for m in _SHARE_TEXT.finditer(blob))
    store = hall.live.services.openings.store
    rows = await store.shares(opening_id)
    for row in rows:  # a content key at rest opens its official's sealed share
        for secret in secrets:
            try:
                found.add(open_share(row.sealed, secret))
            except BidroomError:
                pass
        if row.ceremony_sealed and row.ceremony_id:  # a ceremony key at rest opens a submission
            for secret in secrets:
                try:
                    found.add(open_from_ceremony(
                        row.ceremony_sealed, X25519PrivateKey.from_private_bytes(secret),
                        opening_id=opening_id, ceremony_id=row.ceremony_id,
                        official=row.official_user_id))
                except (BidroomError, ValueError):
                    pass
    opening = await store.get(opening_id)
    assert opening is not None and opening.backup_certificate_pem
    target = spki(x509.load_pem_x509_certificate(opening.backup_certificate_pem.encode()))
    # The officials' own shares, as each would hand its share to the operator.
    own: dict[str, str] = {}
    for official in people:
        key = base64.b64decode(await share_key(hall, opening_id, official))
        row = await store.share(opening_id, official.user_id)
        assert row is not None
        own[official.user_id] = open_share(row.sealed, key)
    k = 2
    rebuilt: list[str] = []
    for colluders in itertools.combinations(sorted(own), k - 1):
        pool = sorted(found | {own[c] for c in colluders})
        for chosen in itertools.combinations(pool, k):
            try:
                key = rebuild_backup_key(list(chosen))
            except BidroomError:
                continue
            if spki(key) == target:
                rebuilt.append(f"colluders {colluders} + {len(found)} found share(s)")
    assert len(own) == 3 and len(secrets) > 10  # the attack really ran on real material
    return rebuilt


async def test_the_operator_and_k_minus_1_officials_never_rebuild_the_backup_key(
    hall: Hall, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    opening_id, people = await backup_opening(hall)  # k = 2 of 3
    for name, price in (("s1", 10_000_000), ("s2", 11_000_000), ("s3", 12_000_000)):
        await hall.bid(opening_id, name, price, backup=True)
    await hall.clock(DEADLINE)
    await hall.post(f"/api/openings/{opening_id}/sign-in", "s1")
    await hall.until_logged(opening_id, "bids_closed")
    assert (await hall.decrypt(opening_id, "s1")).status_code == 200
    fault = await hall.post(
        f"/api/openings/{opening_id}/bids/{hall.acc('s3').org_id}/platform-fault", "agency",
        {"reason": "平台存储故障 / platform storage fault"})
    assert fault.status_code == 200, fault.text
    await hall.clock(WINDOW_END)
    await hall.until_logged(opening_id, "window_ended")  # s2 is revoked (撤销)

    async def attack(moment: str) -> None:
        assert await operator_attack(hall, opening_id, people, caplog.text) == [], moment

    await attack("before any share is submitted")
    first = await hall.post(f"/api/openings/{opening_id}/backup/shares", "agency",
                            {"content_key_b64": await share_key(hall, opening_id, people[0])})
    assert first.status_code == 200, first.text
    assert (first.json()["state"], first.json()["submitted"]) == ("collecting", 1)
    await attack("with k-1 shares submitted")
    second = await hall.post(f"/api/openings/{opening_id}/backup/shares", "purchaser",
                             {"content_key_b64": await share_key(hall, opening_id, people[1])})
    assert second.status_code == 200, second.text
    assert second.json()["state"] == "rebuilt"
    assert second.json()["opened_by_backup"] == [hall.acc("s3").org_id]
    await attack("after the rebuild")
    assert (await hall.post(f"/api/openings/{opening_id}/reveal", "agency")).status_code == 200
    await attack("after 唱标")
    await hall.clock(WINDOW_END + 16 * MIN)
    assert (await hall.post(f"/api/openings/{opening_id}/confirm", "agency")).status_code == 200
    await attack("after the confirmation")
    record = await hall.http.get(f"/api/openings/{opening_id}/record", headers=hall.auth("s1"))
    assert record.status_code == 200 and record.json()["kind"] == "opening_record"
    await attack("after the record was signed")
    # The revoked bid (撤销) stayed sealed: nothing of it was opened by anyone.
    assert not (hall.data_dir / "openings" / opening_id / "opened"
                / hall.acc("s2").org_id).exists()
    assert {e["supplier_id"]: e["status"] for e in record.json()["not_opened"]} == {
        hall.acc("s2").org_id: "revoked"}


# =============================================================================== k = 1


async def test_one_official_alone_may_not_hold_the_backup_key(hall: Hall) -> None:
    people = await officials(hall)
    body = {"title": "某市采购", "invited_supplier_ids": [hall.acc("s1").org_id],
            "purchaser_org_id": hall.acc("purchaser").org_id,
            "settings": {"deadline_ms": DEADLINE},
            "backup": {"k": 1, "officials": [
                {"user_id": o.user_id, "certificate_pem": o.keys.enc_cert_pem()}
                for o in people]}}
    for k in (1, 0, -1):
        body["backup"]["k"] = k  # type: ignore[index]
        response = await hall.http.post("/api/openings", json=body, headers=hall.auth("agency"))
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "threshold_too_low"
    # A certificate shared by k officials is still its own refusal.
    body["backup"] = {"k": 2, "officials": [
        {"user_id": people[0].user_id, "certificate_pem": people[0].keys.enc_cert_pem()},
        {"user_id": people[0].user_id, "certificate_pem": people[0].keys.enc_cert_pem()}]}
    shared = await hall.http.post("/api/openings", json=body, headers=hall.auth("agency"))
    assert shared.json()["error"]["code"] == "officials_share_a_key"
    spec = (await hall.http.get("/openapi.json")).json()
    create = spec["paths"]["/api/openings"]["post"]
    assert "threshold_too_low" in create["description"]


# =============================================================================== what it opens


async def test_the_backup_path_opens_only_platform_faults_never_revoked_or_withdrawn_bids(
    hall: Hall,
) -> None:
    opening_id, people = await backup_opening(hall)
    for name, price in (("s1", 10_000_000), ("s2", 11_000_000), ("s3", 12_000_000),
                        ("s4", 13_000_000), ("s5", 14_000_000)):
        await hall.bid(opening_id, name, price, backup=True)
    withdrawn = await hall.http.delete(f"/api/openings/{opening_id}/bid",
                                       headers=hall.auth("s4"))  # 撤回 by its supplier
    assert withdrawn.status_code == 200, withdrawn.text
    await hall.clock(DEADLINE)
    await hall.until_logged(opening_id, "bids_closed")
    for name in ("s3", "s5"):
        fault = await hall.post(
            f"/api/openings/{opening_id}/bids/{hall.acc(name).org_id}/platform-fault",
            "agency", {"reason": "平台故障 / platform fault"})
        assert fault.status_code == 200, fault.text
    await hall.clock(WINDOW_END)
    await hall.until_logged(opening_id, "window_ended")  # s1, s2: revoked (撤销)

    services = hall.live.services
    state = await services.openings.state(opening_id)
    assert {s: state.bids[s].status.value for s in state.bidders} == {
        hall.acc("s1").org_id: "revoked", hall.acc("s2").org_id: "revoked",
        hall.acc("s3").org_id: "withdrawn", hall.acc("s5").org_id: "withdrawn"}
    for official in people[:2]:
        response = await hall.post(f"/api/openings/{opening_id}/backup/shares", official.name,
                                   {"content_key_b64": await share_key(hall, opening_id,
                                                                       official)})
        assert response.status_code == 200, response.text
    assert sorted(response.json()["opened_by_backup"]) == sorted(
        [hall.acc("s3").org_id, hall.acc("s5").org_id])
    opened_dir = hall.data_dir / "openings" / opening_id / "opened"
    assert sorted(p.name for p in opened_dir.iterdir()) == sorted(
        [hall.acc("s3").org_id, hall.acc("s5").org_id])
    log = (await hall.http.get(f"/api/openings/{opening_id}/log",
                               headers=hall.auth("supervisor"))).json()["items"]
    decrypted = [e for e in log if e["kind"] == "bid_decrypted"]
    assert sorted(e["event"]["supplier_id"] for e in decrypted) == sorted(
        [hall.acc("s3").org_id, hall.acc("s5").org_id])


async def test_a_revoked_bid_is_refused_before_the_backup_key_decrypts_anything(
    hall: Hall,
) -> None:
    """The one step that opens a bid with the rebuilt key checks the rules first: asked for a
    revoked bid it decrypts nothing, not even into a scratch directory."""
    services = hall.live.services
    opening_id = await hall.create(suppliers=3)
    for name in ("s1", "s2", "s3"):
        await hall.bid(opening_id, name, 9_000_000)
    await hall.clock(WINDOW_END)
    await hall.until_logged(opening_id, "window_ended")
    state = await services.openings.state(opening_id)
    revoked = hall.acc("s1").org_id
    assert state.bids[revoked].status.value == "revoked"
    stand_in = BackupKey.generate(hall.ca, now=at(T0))  # any key: the rules come first
    key = load_private_key(stand_in.private_key_pem)
    assert isinstance(key, rsa.RSAPrivateKey)

    opened = await services.backup.open_with_backup(opening_id, revoked, key,
                                                    stand_in.certificate)

    assert opened is False
    assert not services.openings.files.opened_dir(opening_id, revoked).exists()
    log = await services.openings.store.log(opening_id)
    assert log[-1].kind == "noted" and log[-1].data["what"] == "backup_open_refused"
    assert log[-1].data["details"]["reason"] == "not_withdrawn_for_fault"


# =============================================================================== two processes


async def test_the_ceremony_spans_processes_and_says_so_when_its_holder_is_lost(
    hall: Hall,
) -> None:
    opening_id, people = await backup_opening(hall)
    for name, price in (("s1", 10_000_000), ("s2", 11_000_000), ("s3", 12_000_000)):
        await hall.bid(opening_id, name, price, backup=True)
    await hall.clock(DEADLINE)
    await hall.until_logged(opening_id, "bids_closed")
    await hall.post(f"/api/openings/{opening_id}/bids/{hall.acc('s3').org_id}/platform-fault",
                    "agency", {"reason": "平台故障 / platform fault"})
    await hall.clock(WINDOW_END)
    await hall.until_logged(opening_id, "window_ended")
    b = hall.live.services
    path = f"/api/openings/{opening_id}/backup/shares"

    # Process A takes the first share and so holds the ceremony; then A is gone.
    async with live_server(b.settings) as a:
        response = await hall.http.post(
            f"{a.base_url}{path}", headers=hall.auth("agency"),
            json={"content_key_b64": await share_key(hall, opening_id, people[0])})
        assert response.status_code == 200, response.text
        assert (response.json()["state"], response.json()["submitted"]) == ("collecting", 1)
        ceremony_id = response.json()["ceremony_id"]
        assert a.services.backup.holds(opening_id) == ceremony_id
        assert b.backup.holds(opening_id) is None
        # The holder is alive only while it refreshes its key: a killed holder expires.
        ttl = await b.redis.pttl(b.backup.liveness_key(opening_id))
        assert 0 < ttl <= LIVENESS_MS
    status = (await hall.http.get(f"/api/openings/{opening_id}/backup",
                                  headers=hall.auth("supervisor"))).json()
    assert status["state"] == "ceremony_restarted"
    assert status["resubmit"] == [people[0].user_id] and status["submitted"] == 0

    # The next share (on B) restarts the ceremony, in the log, naming the voided submission.
    response = await hall.post(path, "purchaser",
                               {"content_key_b64": await share_key(hall, opening_id, people[1])})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["state"], body["submitted"], body["resubmit"]) == (
        "ceremony_restarted", 1, [people[0].user_id])
    assert body["ceremony_id"] != ceremony_id and body["ceremony_restarts"] == 1
    log = (await hall.http.get(f"/api/openings/{opening_id}/log",
                               headers=hall.auth("supervisor"))).json()["items"]
    restart = [e for e in log if e["kind"] == "backup_ceremony_started"][-1]["event"]
    assert restart["replaces"] == ceremony_id and restart["discarded"] == [people[0].user_id]

    # A second process C takes the k-th share; B, the holder, rebuilds; C answers with it.
    async with live_server(b.settings) as c:
        response = await hall.http.post(
            f"{c.base_url}{path}", headers=hall.auth("agency"),
            json={"content_key_b64": await share_key(hall, opening_id, people[0])})
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "rebuilt"
        assert response.json()["opened_by_backup"] == [hall.acc("s3").org_id]
    log = (await hall.http.get(f"/api/openings/{opening_id}/log",
                               headers=hall.auth("supervisor"))).json()["items"]
    kinds = [e["kind"] for e in log]
    assert kinds[-3:] == ["backup_rebuilt", "bid_decrypted", "backup_ceremony_closed"]
    assert b.backup.holds(opening_id) is None
    assert await b.redis.get(b.backup.liveness_key(opening_id)) is None
