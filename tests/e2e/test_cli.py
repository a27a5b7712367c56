"""The ``bidroom`` command end to end: real processes, real ports, real stores.

``serve`` comes up and answers health; on the embedded defaults its Redis outlives ``kill -9``
(so an acknowledged bid does too) and stops on a clean exit; ``admin bootstrap`` gives a
working admin token; ``verify`` (alias ``receipt verify``) accepts every kind of document signed
with the server's key and refuses a tampered one; ``demo`` seeds accounts and auctions that the
API then shows.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from bidroom.clock import beijing_time
from bidroom.opening.documents import record_digest
from bidroom.receipts import PlatformKey, make_bid_receipt, sign_document
from tests.e2e.server import (
    ServerFactory,
    ServerProcess,
    api_client,
    bootstrap_admin,
    run_cli,
    seed,
    set_clock,
)

BIDROOM = Path(sys.executable).with_name("bidroom")  # the console script of pyproject.toml
MINUTE = 60_000


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] not in "ZX"


def _redis_pid(server: ServerProcess) -> int:
    return int((server.data_dir / "redis" / "redis.pid").read_text().strip())


# ------------------------------------------------------------------------------- usage


def test_bidroom_help_names_every_command_in_both_languages() -> None:
    import subprocess

    done = subprocess.run([str(BIDROOM), "--help"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    for command in ("serve", "demo", "receipt", "platform-key", "db", "admin", "ca", "bid",
                    "backup", "restore"):
        assert command in done.stdout
    assert "反向竞价" in done.stdout and "reverse auctions" in done.stdout
    # The whole tool, not only auctions (issue #10 §6).
    for words in ("不见面开标", "sealed remote bid openings", "平台CA", "certificate requests",
                  "备份与恢复", "backup and restore"):
        assert words in done.stdout, words


async def test_a_bad_flag_value_is_refused_naming_the_flag() -> None:
    status, _, err = await run_cli("serve", "--port", "99999")
    assert status == 2
    assert "--port" in err and "99999" in err


async def test_a_bad_environment_variable_is_refused_naming_the_variable(
    tmp_path: Path,
) -> None:
    status, _, err = await run_cli("db", "upgrade", "--data-dir", str(tmp_path),
                                   env={"BIDROOM_WORKERS": "many"})
    assert status == 2
    assert "BIDROOM_WORKERS" in err


async def test_demo_refuses_to_delete_a_directory_that_is_not_a_demo(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("production data")
    status, _, err = await run_cli("demo", "--data-dir", str(tmp_path))
    assert status == 2
    assert "not a Bidroom demo directory" in err
    assert precious.read_text() == "production data"


# ------------------------------------------------------------------------------- serve


async def test_serve_comes_up_and_answers_health(server: ServerProcess) -> None:
    async with api_client(server) as http:
        reply = await http.get("/api/health")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}


async def test_serve_with_two_workers_answers_on_one_port(server_factory: ServerFactory) -> None:
    server = server_factory(workers=2)
    async with api_client(server) as http:
        for _ in range(10):
            assert (await http.get("/api/health")).status_code == 200


def test_the_embedded_redis_outlives_kill_9_and_stops_on_a_clean_exit(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(embedded_default=True)
    redis_pid = _redis_pid(server)
    assert _pid_alive(redis_pid)

    server.kill9()
    assert not server.running
    assert _pid_alive(redis_pid), "the embedded Redis must survive the server's kill -9"

    server.start()  # reuses the running Redis of the same data dir
    assert _redis_pid(server) == redis_pid

    assert server.terminate() == 0
    assert not _pid_alive(redis_pid), "a clean exit stops the embedded Redis"
    assert "embedded Redis stopped" in server.log_path.read_text(encoding="utf-8")


async def test_an_acknowledged_bid_survives_kill_9_of_the_server(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(embedded_default=True)
    now = 1_900_000_000_000
    await set_clock(server, now)
    accounts = await seed(server, await bootstrap_admin(server), suppliers=3)
    async with api_client(server, accounts.purchaser.token) as http:
        created = await http.post("/api/auctions", json={
            "title": "台式计算机 50 台",
            "title_en": "50 desktop computers",
            "invited_supplier_ids": accounts.supplier_ids,
            "settings": {"ceiling_fen": 25_000_000, "start_ms": now, "end_ms": now + 10 * MINUTE,
                         "step_kind": "amount", "step_value": 50_000},
        })
    assert created.status_code == 201, created.text
    auction_id = created.json()["id"]
    bid = {"bid_id": "b-1", "price_fen": 24_950_000}
    async with api_client(server, accounts.suppliers[0].token) as http:
        accepted = await http.post(f"/api/auctions/{auction_id}/bids", json=bid)
    assert accepted.status_code == 201, accepted.text
    receipt = accepted.json()["receipt"]

    server.kill9()
    await server.astart()

    async with api_client(server, accounts.suppliers[0].token) as http:
        again = await http.post(f"/api/auctions/{auction_id}/bids", json=bid)
    assert again.status_code == 200, again.text  # a repeat: the original bid stands
    assert again.json()["status"] == "duplicate"
    assert again.json()["receipt"] == receipt
    async with api_client(server, accounts.suppliers[1].token) as http:
        next_bid = await http.post(f"/api/auctions/{auction_id}/bids",
                                   json={"bid_id": "b-2", "price_fen": 24_900_000})
    assert next_bid.status_code == 201, next_bid.text
    assert next_bid.json()["receipt"]["seq"] == receipt["seq"] + 1


# ------------------------------------------------------------------------ admin bootstrap


async def test_admin_bootstrap_gives_a_token_that_works(server: ServerProcess) -> None:
    token = await bootstrap_admin(server)
    async with api_client(server, token) as http:
        me = await http.get("/api/me")
    assert me.status_code == 200, me.text
    assert me.json()["roles"] == ["admin"]
    assert me.json()["org_kind"] == "platform"

    second = await bootstrap_admin(server)  # a new token for the same admin
    assert second != token
    async with api_client(server, second) as http:
        assert (await http.get("/api/me")).json()["user_id"] == me.json()["user_id"]


async def test_seeded_parties_authenticate_with_their_roles(server: ServerProcess) -> None:
    accounts = await seed(server, await bootstrap_admin(server), suppliers=4)
    parties = [accounts.purchaser, accounts.agency, accounts.supervisor, *accounts.suppliers]
    assert [s.size_class for s in accounts.suppliers] == ["large", "medium", "small", "micro"]
    for party in parties:
        async with api_client(server, party.token) as http:
            me = (await http.get("/api/me")).json()
        assert me["org_id"] == party.org_id
        assert me["roles"] == [party.kind]


# --------------------------------------------------------------------------- receipts


def _receipt(server: ServerProcess, **changes: Any) -> dict[str, Any]:
    key = PlatformKey.from_pem((server.data_dir / "platform-key.pem").read_bytes())
    fields: dict[str, Any] = {
        "auction_id": "auc_cli", "supplier_id": "org_cli", "bid_id": "b-1",
        "price_fen": 24_950_000, "seq": 1, "server_time_ms": 1_900_000_000_123,
    }
    return make_bid_receipt(key, **{**fields, **changes})


async def test_receipt_verify_accepts_a_receipt_signed_with_the_server_key(
    server: ServerProcess, tmp_path: Path
) -> None:
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(_receipt(server), ensure_ascii=False), encoding="utf-8")

    status, out, err = await run_cli("receipt", "verify", str(path), "--server", server.base_url)
    assert status == 0, err
    assert out.startswith("有效 / valid") and "24950000 fen" in out

    status, pem, err = await run_cli("platform-key", "--data-dir", str(server.data_dir))
    assert status == 0, err
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    key_file = tmp_path / "platform.pub"
    key_file.write_text(pem, encoding="utf-8")
    status, out, err = await run_cli("receipt", "verify", str(path), "--public-key",
                                     str(key_file))
    assert status == 0, err
    assert "valid" in out

    # A whole bid response (as saved by curl -o) verifies by its "receipt" too.
    response = tmp_path / "bid.json"
    response.write_text(json.dumps({"status": "accepted", "receipt": _receipt(server)}))
    status, out, err = await run_cli("receipt", "verify", str(response), "--public-key",
                                     str(key_file))
    assert status == 0, err


async def test_receipt_verify_rejects_a_tampered_receipt(
    server: ServerProcess, tmp_path: Path
) -> None:
    receipt = _receipt(server)
    receipt["price_fen"] = 24_000_000  # a better price than the one accepted
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(receipt), encoding="utf-8")
    status, out, err = await run_cli("receipt", "verify", str(path), "--server", server.base_url)
    assert status == 1
    assert "valid" not in out
    assert "does not verify" in err

    other_key = tmp_path / "other.pub"
    other_key.write_text(PlatformKey.generate().public_key_pem(), encoding="utf-8")
    path.write_text(json.dumps(_receipt(server)), encoding="utf-8")
    status, _, err = await run_cli("receipt", "verify", str(path), "--public-key",
                                   str(other_key))
    assert status == 1
    assert "not by this public key" in err


def _signed_documents(server: ServerProcess) -> dict[str, dict[str, Any]]:
    """One document of every kind the server signs, signed with its key, shaped as it signs."""
    key = PlatformKey.from_pem((server.data_dir / "platform-key.pem").read_bytes())
    core = {"v": 1, "kind": "opening_record", "opening_id": "opn_cli", "title": "开标",
            "status": "revealed", "bids_at_deadline": 3, "revealed_at_ms": 1_900_000_000_123,
            "confirmed_at_ms": None, "opened": [{"order": 1, "supplier_id": "org_1"}],
            "not_opened": [], "objections": [], "log": {"seq": 9, "hash": "cd" * 32}}
    return {
        "bid_receipt": _receipt(server),
        "opening_bid_receipt": sign_document(key, {
            "v": 1, "kind": "opening_bid_receipt", "opening_id": "opn_cli",
            "supplier_id": "org_cli", "sha256": "ab" * 32, "size": 4096,
            "server_time_ms": 1_900_000_000_123, "seq": 3, "replaces": None}),
        "opening_record": sign_document(key, {**core, "sha256": record_digest(core)}),
    }


async def test_verify_checks_every_kind_the_server_signs_and_refuses_a_changed_byte(
    server: ServerProcess, tmp_path: Path
) -> None:
    status, pem, err = await run_cli("platform-key", "--data-dir", str(server.data_dir))
    assert status == 0, err
    key_file = tmp_path / "platform.pub"
    key_file.write_text(pem, encoding="utf-8")
    heading = {"bid_receipt": "出价回执 / bid receipt: auction auc_cli",
               "opening_bid_receipt": "投标文件回执 / sealed bid receipt: opening opn_cli",
               "opening_record": "开标记录 / opening record: opening opn_cli 「开标」"}
    for kind, doc in _signed_documents(server).items():
        path = tmp_path / f"{kind}.json"
        text = json.dumps(doc, ensure_ascii=False)
        path.write_text(text, encoding="utf-8")
        for command in (("verify",), ("receipt", "verify")):  # the alias is the same command
            status, out, err = await run_cli(*command, str(path), "--public-key",
                                             str(key_file))
            assert status == 0, (kind, command, err)
            assert out.startswith(f"有效 / valid: {heading[kind]}"), out
            assert out.count("\n") == 1 and "北京时间 / Beijing time (UTC+8)" in out
        status, out, err = await run_cli("verify", str(path), "--server", server.base_url)
        assert status == 0, err

        # One byte changed: the supplier id's first digit or letter after "org_"/"opn_".
        at = text.index('"opn_cli"' if kind != "bid_receipt" else '"auc_cli"') + 5
        path.write_text(text[:at] + "X" + text[at + 1:], encoding="utf-8")
        status, out, err = await run_cli("verify", str(path), "--public-key", str(key_file))
        assert status == 1, (kind, out)
        assert out == "" and "无效 / invalid: the signature does not verify" in err


async def test_verify_refuses_a_signed_document_of_an_unknown_kind(
    server: ServerProcess, tmp_path: Path
) -> None:
    key = PlatformKey.from_pem((server.data_dir / "platform-key.pem").read_bytes())
    path = tmp_path / "notice.json"
    path.write_text(json.dumps(sign_document(key, {"v": 1, "kind": "award_notice"})))
    status, out, err = await run_cli("verify", str(path), "--server", server.base_url)
    assert status == 1 and out == ""
    assert "does not know documents of kind 'award_notice'" in err


async def test_demo_opening_without_a_running_demo_fails_clearly(tmp_path: Path) -> None:
    status, out, err = await run_cli("demo-opening", "--data-dir", str(tmp_path))
    assert status == 1 and out == ""
    assert "no demo is running" in err


async def test_platform_key_without_a_key_file_fails_clearly(tmp_path: Path) -> None:
    status, out, err = await run_cli("platform-key", "--data-dir", str(tmp_path))
    assert status == 1
    assert out == ""
    assert "no platform key" in err


async def test_db_upgrade_migrates_an_empty_sqlite_data_dir(tmp_path: Path) -> None:
    status, out, err = await run_cli("db", "upgrade", "--data-dir", str(tmp_path))
    assert status == 0, err
    assert (tmp_path / "bidroom.db").exists()
    assert "revision" in out


# ------------------------------------------------------------------------------- demo


async def test_demo_serves_its_accounts_and_two_auctions(tmp_path: Path) -> None:
    demo = ServerProcess(tmp_path / "demo", subcommand=("demo", "--opening-deadline", "45"),
                         env={"TZ": "America/Los_Angeles"})
    try:
        await demo.astart()
        doc = json.loads((demo.data_dir / "demo-accounts.json").read_text(encoding="utf-8"))
        opening = json.loads((demo.data_dir / "demo-opening.json").read_text(encoding="utf-8"))
        assert doc["base_url"] == demo.base_url
        roles = [a["role"] for a in doc["accounts"]]
        assert roles.count("supplier") == 4
        assert {"admin", "purchaser", "agency", "supervisor"} <= set(roles)
        assert {a["size_class"] for a in doc["accounts"] if a["role"] == "supplier"} == {
            "large", "medium", "small", "micro"}
        by_role = {a["role"]: a for a in doc["accounts"]}

        async with api_client(demo, by_role["purchaser"]["token"]) as http:
            listed = await http.get("/api/auctions")
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        assert len(items) == 2
        live = next(i for i in items if i["title"] == "台式计算机 50 台")
        assert live["phase"] == "open"
        assert live["settings"]["ceiling_fen"] == 25_000_000
        assert live["end_ms"] - live["start_ms"] == 10 * MINUTE
        later = next(i for i in items if i["id"] != live["id"])
        assert later["phase"] == "scheduled"
        assert later["start_ms"] - live["start_ms"] == 60 * MINUTE

        # The printed example: supplier 1 bids, then verifies its receipt offline.
        async with api_client(demo, by_role["supplier"]["token"]) as http:
            bid = await http.post(f"/api/auctions/{live['id']}/bids",
                                  json={"bid_id": "demo-1", "price_fen": 24_950_000})
        assert bid.status_code == 201, bid.text
        saved = tmp_path / "bid.json"
        saved.write_text(bid.text, encoding="utf-8")
        status, out, err = await run_cli("verify", str(saved), "--server", demo.base_url)
        assert status == 0, err
        assert "bid demo-1" in out

        # A newcomer arriving after the opening's deadline restarts just the opening: a fresh
        # one in the running demo, the same accounts and tokens.
        status, out, err = await run_cli("demo-opening", "--data-dir", str(demo.data_dir),
                                         "--opening-deadline", "90")
        assert status == 0, err
        again = json.loads((demo.data_dir / "demo-opening.json").read_text(encoding="utf-8"))
        assert again["opening_id"] != opening["opening_id"]
        assert again["opening_id"] in out and "北京时间 / Beijing time (UTC+8)" in out
        async with api_client(demo, by_role["agency"]["token"]) as http:
            fresh = await http.get(f"/api/openings/{again['opening_id']}")
            first = await http.get(f"/api/openings/{opening['opening_id']}")
        assert fresh.status_code == 200 and first.status_code == 200, fresh.text
        assert fresh.json()["deadline_ms"] - opening["deadline_ms"] >= 45 * MINUTE
        assert fresh.json()["phase"] == "sign_in"  # sign-in is open until the deadline

        banner = demo.log_path.read_text(encoding="utf-8")
        # Times as the pages show them: Beijing time, labelled, whatever the machine's zone
        # (the demo runs here under TZ=America/Los_Angeles).
        assert "北京时间 / Beijing time (UTC+8)" in banner
        assert f"open now until {beijing_time(live['end_ms'])}" in banner
        assert f"deadline = opening: {beijing_time(opening['deadline_ms'])}" in banner
        assert opening["deadline_ms"] - live["start_ms"] >= 45 * MINUTE  # --opening-deadline
        assert f"{demo.base_url}/openapi.json" in banner
        assert by_role["purchaser"]["token"] in banner
        assert banner.index("Bidroom 演示 / demo") < banner.index("Uvicorn running")
    finally:
        demo.close()


async def test_serve_on_a_taken_port_exits_naming_the_port_before_starting_anything(
    tmp_path: Path,
) -> None:
    import socket

    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, out, err = await run_cli("serve", "--port", str(port), "--data-dir",
                                         str(tmp_path / "data"))
    finally:
        taken.close()
    assert status == 1, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err  # one line, no traceback
    assert f"port {port} is already in use" in lines[0]
    # Checked first: no Redis was started, nothing was migrated.
    assert not (tmp_path / "data" / "redis").exists()
    assert not (tmp_path / "data" / "bidroom.db").exists()
    assert "Redis" not in out


# ------------------------------------------------------------- certificates from CSRs


async def _register_supplier(data_dir: Path, name: str) -> str:
    """A supplier organisation registered in ``data_dir``'s database; its id."""
    from bidroom.stores.sql import make_engine, make_session_factory
    from market.registry import OrgKind, Registry

    status, _, err = await run_cli("db", "upgrade", "--data-dir", str(data_dir))
    assert status == 0, err
    engine = make_engine(f"sqlite+aiosqlite:///{data_dir / 'bidroom.db'}")
    try:
        org = await Registry(make_session_factory(engine)).create_organisation(
            name, OrgKind.SUPPLIER, size_class="small", now_ms=1_900_000_000_000)
    finally:
        await engine.dispose()
    return org.id


async def test_a_supplier_makes_its_keys_and_csrs_and_the_ca_signs_them(
    tmp_path: Path,
) -> None:
    from cryptography import x509

    from bidroom.opening.ca import TrustStore, certificate_usages, load_certificate
    from bidroom.opening.client import content_key_for, seal_bid_files
    from tests.opening_kit import form

    data = tmp_path / "var"
    org_id = await _register_supplier(data, "杭州之江办公设备经营部")
    status, _, err = await run_cli("ca", "init", "--data-dir", str(data))
    assert status == 0, err

    mine = tmp_path / "supplier"  # the supplier's own machine
    status, out, err = await run_cli("ca", "request", "--org-id", org_id, "--name",
                                     "之江（自填名称）", "--out", str(mine))
    assert status == 0, err
    assert sorted(p.name for p in mine.iterdir()) == [
        "enc-key.pem", "enc.csr", "sign-key.pem", "sign.csr"]
    assert (mine / "enc-key.pem").stat().st_mode & 0o077 == 0

    certs = tmp_path / "issued"
    status, out, err = await run_cli("ca", "sign-csr", str(mine / "sign.csr"),
                                     str(mine / "enc.csr"), "--org-id", org_id,
                                     "--data-dir", str(data), "--out", str(certs))
    assert status == 0, err
    assert sorted(p.name for p in certs.iterdir()) == ["enc-cert.pem", "sign-cert.pem"]
    assert "杭州之江办公设备经营部" in out and "serial" in out
    sign_cert = load_certificate((certs / "sign-cert.pem").read_bytes())
    enc_cert = load_certificate((certs / "enc-cert.pem").read_bytes())
    assert certificate_usages(sign_cert) == {"signing"}
    assert certificate_usages(enc_cert) == {"encryption"}
    cn = x509.oid.NameOID.COMMON_NAME
    assert sign_cert.subject.get_attributes_for_oid(cn)[0].value == "杭州之江办公设备经营部"
    trust = TrustStore([load_certificate((data / "ca" / "ca-cert.pem").read_bytes())])
    now = sign_cert.not_valid_before_utc + (sign_cert.not_valid_after_utc
                                            - sign_cert.not_valid_before_utc) / 2
    assert trust.verify(enc_cert, at=now, usage="encryption").org_id == org_id
    # The operator's side never had a supplier key.
    for path in data.rglob("*"):
        if path.is_file() and path.name not in ("ca-key.pem", "platform-key.pem"):
            assert b"PRIVATE KEY" not in path.read_bytes(), path

    # The pair works: seal with it, unwrap with the supplier's own key.
    sealed = tmp_path / "bid.cms"
    seal_bid_files(form=form(12_300_000), documents={"a.txt": b"x"},
                   sign_cert=certs / "sign-cert.pem", sign_key=mine / "sign-key.pem",
                   enc_cert=certs / "enc-cert.pem", out=sealed, now=now)
    key = content_key_for(sealed, (certs / "enc-cert.pem").read_bytes(),
                          (mine / "enc-key.pem").read_bytes())
    assert len(key) == 32

    # Signed once: the certificates are never overwritten.
    status, _, err = await run_cli("ca", "sign-csr", str(mine / "sign.csr"), "--org-id", org_id,
                                   "--data-dir", str(data), "--out", str(certs))
    assert status == 1 and "refusing to overwrite" in err


async def test_sign_csr_refuses_a_bad_signature_and_an_unknown_organisation(
    tmp_path: Path,
) -> None:
    data = tmp_path / "var"
    org_id = await _register_supplier(data, "杭州西溪数码设备有限公司")
    assert (await run_cli("ca", "init", "--data-dir", str(data)))[0] == 0
    mine = tmp_path / "supplier"
    assert (await run_cli("ca", "request", "--org-id", org_id, "--name", "西溪",
                          "--out", str(mine)))[0] == 0

    status, _, err = await run_cli("ca", "sign-csr", str(mine / "sign.csr"), "--org-id",
                                   "org_nobody", "--data-dir", str(data),
                                   "--out", str(tmp_path / "a"))
    assert status == 1
    assert "org_nobody" in err and "no such organisation is registered" in err
    assert not (tmp_path / "a").exists()

    from cryptography.hazmat.primitives import serialization

    from bidroom.opening.ca import load_csr

    der = bytearray(load_csr((mine / "sign.csr").read_bytes())
                    .public_bytes(serialization.Encoding.DER))
    der[-1] ^= 1
    broken = tmp_path / "broken.csr"
    broken.write_bytes(bytes(der))
    status, _, err = await run_cli("ca", "sign-csr", str(broken), "--org-id", org_id,
                                   "--data-dir", str(data), "--out", str(tmp_path / "b"))
    assert status == 1 and "signature does not verify" in err
    assert not (tmp_path / "b").exists()

    # A request made for one organisation is not signed for another registered one.
    other = await _register_supplier(data, "杭州钱江电脑科技有限公司")
    status, _, err = await run_cli("ca", "sign-csr", str(mine / "sign.csr"), "--org-id", other,
                                   "--data-dir", str(data), "--out", str(tmp_path / "c"))
    assert status == 1 and f"is for organisation {org_id}" in err


async def test_ca_issue_is_for_registered_organisations_only_and_says_it_is_for_demos(
    tmp_path: Path,
) -> None:
    data = tmp_path / "var"
    org_id = await _register_supplier(data, "杭州之江办公设备经营部")
    assert (await run_cli("ca", "init", "--data-dir", str(data)))[0] == 0
    status, _, err = await run_cli("ca", "issue", "--data-dir", str(data), "--org-id",
                                   "org_anything", "--name", "Anything", "--out",
                                   str(tmp_path / "x"))
    assert status == 1 and "no such organisation is registered" in err
    assert not (tmp_path / "x").exists()
    status, _, err = await run_cli("ca", "issue", "--data-dir", str(data), "--org-id", org_id,
                                   "--name", "另一个名字", "--out", str(tmp_path / "y"))
    assert status == 1 and "not the registered name" in err
    status, out, err = await run_cli("ca", "issue", "--data-dir", str(data), "--org-id", org_id,
                                     "--out", str(tmp_path / "z"))
    assert status == 0, err
    assert "demo" in out and len(list((tmp_path / "z").iterdir())) == 4

    status, help_text, _ = await run_cli("ca", "issue", "--help")
    assert status == 0 and "Demo and tests only" in help_text
    status, help_text, _ = await run_cli("ca", "--help")
    assert "sign-csr" in help_text and "request" in help_text
