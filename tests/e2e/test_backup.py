"""``bidroom backup`` / ``bidroom restore`` end to end (issue #10 §6).

A running demo server (an open auction in Redis, an opening with three sealed bids, the CA) is
backed up while it serves, stopped, and restored into a fresh directory. From the restored
directory alone — plus the supplier's own encryption key, which never was in the archive — a
sealed bid is opened, and a server started on it takes the next bid of the live auction.
"""

from __future__ import annotations

import io
import json
import sqlite3
import stat
import tarfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from bidroom.opening.ca import (
    TrustStore,
    generate_key,
    load_certificate,
    load_private_key,
    private_key_pem,
)
from bidroom.opening.client import content_key_for
from bidroom.opening.envelope import open_envelope
from bidroom.opening.store import sha256_file
from bidroom.stores.embedded import EmbeddedRedis
from tests.e2e.server import ServerProcess, api_client, run_cli
from tests.opening_kit import at

PRICE_OF_SUPPLIER_1 = 23_880_000  # web/demo_opening.py _PRICES[0]


def _private_key_forms(path: Path) -> list[bytes]:
    """A private key file as PEM and as DER (PKCS#8 and, for RSA, its raw integers)."""
    pem = path.read_bytes()
    key = load_private_key(pem)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return [pem, der, der[-200:]]


async def test_a_backup_restored_into_a_fresh_directory_opens_a_sealed_bid(
    tmp_path: Path,
) -> None:
    demo = ServerProcess(tmp_path / "demo", subcommand=("demo",))
    archive = tmp_path / "backup.tar.gz"
    try:
        await demo.astart()
        accounts = json.loads((demo.data_dir / "demo-accounts.json").read_text("utf-8"))
        status, out, err = await run_cli("backup", "--data-dir", str(demo.data_dir),
                                         "--out", str(archive))  # while it serves
        assert status == 0, err
        assert "3 sealed bids" in out
        # The server's own Redis was used, and left running.
        async with api_client(demo) as http:
            assert (await http.get("/api/health")).status_code == 200
        assert EmbeddedRedis(demo.data_dir / "redis").running()
    finally:
        demo.close()
    suppliers = demo.data_dir / "suppliers"  # "the suppliers' own machines" in the demo
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600

    # Nothing in the archive opens a sealed bid: no supplier's key, in any form.
    secrets = [form for path in sorted(suppliers.glob("*/*-key.pem"))
               for form in _private_key_forms(path)]
    assert len(secrets) == 4 * 2 * 3
    with tarfile.open(archive, "r:gz") as tar:
        names = tar.getnames()
        for member in tar.getmembers():
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            for secret in secrets:
                assert secret not in data, f"{member.name} holds a supplier's private key"
            if member.name not in ("data/ca/ca-key.pem", "data/platform-key.pem"):
                assert b"PRIVATE KEY" not in data, member.name
    assert "data/ca/ca-key.pem" in names and "data/ca/ca-cert.pem" in names
    assert sum(1 for n in names if n.startswith("data/openings/") and n.endswith(".cms")) == 3
    assert not any("suppliers" in n for n in names)

    restored = tmp_path / "restored"
    status, out, err = await run_cli("restore", str(archive), "--data-dir", str(restored))
    assert status == 0, err
    assert "3 sealed bids" in out
    # A second restore into the same place is refused: a restore never overwrites.
    status, _, err = await run_cli("restore", str(archive), "--data-dir", str(restored))
    assert status == 1 and "fresh data dir" in err

    # Open supplier 1's sealed bid from the restored directory, with the supplier's own key.
    supplier_1 = next(a for a in accounts["accounts"] if a["role"] == "supplier")
    with sqlite3.connect(restored / "bidroom.db") as db:
        relative, sha256 = db.execute(
            "SELECT storage_path, sha256 FROM opening_bids WHERE supplier_org_id = ? "
            "AND current", (supplier_1["org_id"],)).fetchone()
    sealed = restored / relative
    assert sha256_file(sealed) == sha256
    keys = suppliers / "1"
    content_key = content_key_for(sealed, (keys / "enc-cert.pem").read_bytes(),
                                  (keys / "enc-key.pem").read_bytes())
    root = load_certificate((restored / "ca" / "ca-cert.pem").read_bytes())
    opened = open_envelope(sealed, content_key, tmp_path / "opened", trust=TrustStore([root]),
                           at=at(accounts["server_time_ms"]))
    assert opened.form["total_price_fen"] == PRICE_OF_SUPPLIER_1
    assert opened.signer is not None and opened.signer.org_id == supplier_1["org_id"]

    # A server on the restored directory has the live auction's room (Redis) and its accounts.
    server = ServerProcess(restored)
    try:
        await server.astart()
        live = accounts["auctions"][0]
        async with api_client(server, supplier_1["token"]) as http:
            bid = await http.post(f"/api/auctions/{live['id']}/bids",
                                  json={"bid_id": "after-restore",
                                        "price_fen": live["ceiling_fen"] - 50_000})
        assert bid.status_code == 201, bid.text
    finally:
        server.close()


async def test_keys_left_in_the_ca_folders_stay_out_and_a_tampered_archive_is_refused(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    status, _, err = await run_cli("db", "upgrade", "--data-dir", str(data))
    assert status == 0, err
    assert (await run_cli("ca", "init", "--data-dir", str(data)))[0] == 0
    # A supplier's key written where it does not belong (`ca issue --out DATA_DIR/ca/issued`).
    stray = private_key_pem(generate_key("rsa-2048"))
    (data / "ca" / "issued" / "enc-key.pem").write_bytes(stray)
    (data / "ca" / "roots").mkdir()
    (data / "ca" / "roots" / "supplier.pem").write_bytes(stray)
    archive = tmp_path / "b.tar.gz"
    status, _, err = await run_cli("backup", "--data-dir", str(data), "--out", str(archive))
    assert status == 0, err
    with tarfile.open(archive, "r:gz") as tar:
        names = tar.getnames()
        assert "data/ca/ca-key.pem" in names
        for member in tar.getmembers():
            assert stray not in tar.extractfile(member).read(), member.name  # type: ignore[union-attr]
    # No server ran: the backup started the embedded Redis for the copy and stopped it again.
    assert not EmbeddedRedis(data / "redis").running()
    status, _, err = await run_cli("backup", "--data-dir", str(data), "--out", str(archive))
    assert status == 1 and "exists" in err  # never overwrites
    # Rewrite the archive with one byte of the database changed.
    tampered = tmp_path / "t.tar.gz"
    with tarfile.open(archive, "r:gz") as src, tarfile.open(tampered, "w:gz") as dst:
        for member in src.getmembers():
            body = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "sql/bidroom.db":
                body = body[:-1] + bytes([body[-1] ^ 1])
            dst.addfile(member, io.BytesIO(body))
    status, _, err = await run_cli("restore", str(tampered), "--data-dir", str(tmp_path / "r"))
    assert status == 1
    assert "sql/bidroom.db does not match its SHA-256" in err
    assert not (tmp_path / "r" / "bidroom.db").exists()
