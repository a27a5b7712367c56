"""Sealed bids against the outside world: the system ``openssl`` (3.x) opens what we seal and
we open what it seals; a 200 MiB bid is sealed and opened in bounded memory; the ``bidroom ca``
and ``bidroom bid`` commands work end to end.

Without an ``openssl`` binary the interop tests skip, unless BIDROOM_REQUIRE_REAL_SERVERS=1
(CI), where they fail.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from bidroom.errors import ValidationError
from bidroom.opening.ca import IssuedPair, PlatformCA
from bidroom.opening.client import encrypted_key_b64_for, unwrap_for_submission
from bidroom.opening.envelope import (
    decrypt_content,
    inspect_envelope,
    open_envelope,
    recipient_for,
    seal_bid,
    unwrap_content_key,
)
from bidroom.opening.package import build_package

NOW = datetime.now(UTC).replace(microsecond=0)  # openssl verifies at the real time
FORM: dict[str, Any] = {
    "total_price_fen": 45_600_000,
    "delivery_days": 20,
    "warranty_months": 12,
    "items": [{"name": "品牌", "value": "国产"}],
}


@pytest.fixture(scope="module")
def openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        message = "the openssl command is not installed"
        if os.environ.get("BIDROOM_REQUIRE_REAL_SERVERS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> PlatformCA:
    return PlatformCA.init(tmp_path_factory.mktemp("ca") / "ca", now=NOW - timedelta(hours=1))


@pytest.fixture(scope="module", params=["ec-p256", "rsa-2048"])
def supplier(
    request: pytest.FixtureRequest, ca: PlatformCA, tmp_path_factory: pytest.TempPathFactory
) -> tuple[IssuedPair, Path]:
    pair = ca.issue_dual(f"org_{request.param.replace('-', '')}", "互通测试供应商",
                         now=NOW - timedelta(hours=1), signing_key_type=request.param)
    folder = tmp_path_factory.mktemp("supplier")
    pair.write(folder)
    return pair, folder


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("package") / "package.zip"
    with path.open("wb") as out:
        build_package(FORM, {"投标函.pdf": b"%PDF-1.7 " + os.urandom(300_000),
                             "清单.csv": "名称,数量\n服务器,2\n".encode()}, out)
    return path


def _run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run([str(a) for a in args], capture_output=True, timeout=120, cwd=cwd,
                          check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done


def _openssl_encrypt(openssl: str, source: Path, out: Path, enc_cert: Path,
                     *extra: str) -> None:
    # -keyopt applies to the -recip before it
    _run(openssl, "cms", "-encrypt", "-binary", "-in", source, "-outform", "DER", "-out", out,
         "-recip", enc_cert, *extra)


OAEP = ("-aes-256-gcm", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256")


# ------------------------------------------------------------------- openssl opens ours


def test_openssl_decrypts_our_envelope_and_verifies_the_inner_signature(
    openssl: str, tmp_path: Path, package: Path, ca: PlatformCA,
    supplier: tuple[IssuedPair, Path],
) -> None:
    pair, folder = supplier
    sealed = tmp_path / "sealed.der"
    seal_bid(package, sealed, signing_key=pair.sign_key, signing_cert=pair.sign_cert,
             recipients=[pair.enc_cert], now=NOW)
    _run(openssl, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", sealed,
         "-recip", folder / "enc-cert.pem", "-inkey", folder / "enc-key.pem",
         "-out", tmp_path / "signed.der")
    _run(openssl, "cms", "-verify", "-inform", "DER", "-in", tmp_path / "signed.der",
         "-CAfile", ca.directory / "ca-cert.pem", "-binary", "-out", tmp_path / "package.zip")
    assert (tmp_path / "package.zip").read_bytes() == package.read_bytes()


def test_openssl_refuses_our_envelope_once_tampered(
    openssl: str, tmp_path: Path, package: Path, supplier: tuple[IssuedPair, Path]
) -> None:
    pair, folder = supplier
    sealed = tmp_path / "sealed.der"
    seal_bid(package, sealed, signing_key=pair.sign_key, signing_cert=pair.sign_cert,
             recipients=[pair.enc_cert], now=NOW)
    data = bytearray(sealed.read_bytes())
    data[len(data) // 2] ^= 1
    sealed.write_bytes(bytes(data))
    done = subprocess.run([openssl, "cms", "-decrypt", "-binary", "-inform", "DER", "-in",
                           str(sealed), "-recip", str(folder / "enc-cert.pem"), "-inkey",
                           str(folder / "enc-key.pem"), "-out", str(tmp_path / "x")],
                          capture_output=True, timeout=60, check=False)
    assert done.returncode != 0


# ------------------------------------------------------------------- we open openssl's


@pytest.mark.parametrize("stream", [False, True], ids=["der", "ber-stream"])
def test_we_decrypt_arbitrary_content_openssl_sealed_with_gcm_and_oaep(
    openssl: str, tmp_path: Path, supplier: tuple[IssuedPair, Path], stream: bool
) -> None:
    pair, folder = supplier
    source = tmp_path / "anything.bin"
    source.write_bytes(os.urandom(70_000))
    sealed = tmp_path / "openssl.der"
    _openssl_encrypt(openssl, source, sealed, folder / "enc-cert.pem", *OAEP,
                     *(["-stream"] if stream else []))
    info = inspect_envelope(sealed)
    assert info.content_encryption == "aes-256-gcm"
    assert len(info.content_chunks) == (18 if stream else 1)  # 4096-byte BER segments
    wrapped = recipient_for(info, pair.enc_cert).encrypted_key
    key = unwrap_content_key(wrapped, pair.enc_key)
    assert decrypt_content(sealed, key, tmp_path / "plain.bin") == 70_000
    assert (tmp_path / "plain.bin").read_bytes() == source.read_bytes()


def test_a_recipient_named_by_subject_key_identifier_is_found(
    openssl: str, tmp_path: Path, supplier: tuple[IssuedPair, Path]
) -> None:
    pair, folder = supplier
    source = tmp_path / "a.bin"
    source.write_bytes(b"keyid")
    sealed = tmp_path / "keyid.der"
    _openssl_encrypt(openssl, source, sealed, folder / "enc-cert.pem", *OAEP, "-keyid")
    recipient = recipient_for(inspect_envelope(sealed), pair.enc_cert)
    assert recipient.issuer_der is None and recipient.subject_key_identifier
    key = unwrap_content_key(recipient.encrypted_key, pair.enc_key)
    decrypt_content(sealed, key, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == b"keyid"


@pytest.mark.parametrize("stream", [False, True], ids=["der", "ber-stream"])
def test_an_openssl_sign_then_encrypt_pipeline_opens_with_open_envelope(
    openssl: str, tmp_path: Path, package: Path, ca: PlatformCA,
    supplier: tuple[IssuedPair, Path], stream: bool,
) -> None:
    pair, folder = supplier
    streaming = ["-stream"] if stream else []
    signed = tmp_path / "signed.der"
    _run(openssl, "cms", "-sign", "-binary", "-nodetach", *streaming, "-in", package,
         "-signer", folder / "sign-cert.pem", "-inkey", folder / "sign-key.pem",
         "-md", "sha256", "-outform", "DER", "-out", signed)
    sealed = tmp_path / "sealed.der"
    _openssl_encrypt(openssl, signed, sealed, folder / "enc-cert.pem", *OAEP, *streaming)
    key_b64 = unwrap_for_submission(
        encrypted_key_b64_for(sealed, pair.enc_cert),
        pair.enc_key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()),
    )
    opened = open_envelope(sealed, base64.b64decode(key_b64), tmp_path / "out",
                           trust=ca.trust_store(), at=NOW + timedelta(minutes=1))
    assert opened.signer is not None and opened.signer.name == "互通测试供应商"
    assert opened.form == FORM
    assert opened.package_path.read_bytes() == package.read_bytes()
    assert opened.signing_time is not None


def test_an_openssl_rsa_pss_signature_verifies(
    openssl: str, tmp_path: Path, package: Path, ca: PlatformCA
) -> None:
    pair = ca.issue_dual("org_pss", "PSS 供应商", now=NOW - timedelta(hours=1),
                         signing_key_type="rsa-2048")
    folder = tmp_path / "supplier"
    pair.write(folder)
    signed = tmp_path / "signed.der"
    _run(openssl, "cms", "-sign", "-binary", "-nodetach", "-in", package,
         "-signer", folder / "sign-cert.pem", "-inkey", folder / "sign-key.pem",
         "-keyopt", "rsa_padding_mode:pss", "-outform", "DER", "-out", signed)
    sealed = tmp_path / "sealed.der"
    _openssl_encrypt(openssl, signed, sealed, folder / "enc-cert.pem", *OAEP)
    key = unwrap_content_key(recipient_for(inspect_envelope(sealed), pair.enc_cert)
                             .encrypted_key, pair.enc_key)
    opened = open_envelope(sealed, key, tmp_path / "out", trust=ca.trust_store(), at=NOW)
    assert opened.signer is not None


@pytest.mark.parametrize(
    ("options", "code"),
    [
        (("-aes-256-cbc", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"),
         "unsupported_algorithm"),  # EnvelopedData, no integrity
        (("-aes-256-cbc",), "unsupported_algorithm"),
        (("-aes-256-gcm",), "weak_key_transport"),  # default PKCS#1 v1.5 key transport
        (("-aes-256-gcm", "-keyopt", "rsa_padding_mode:oaep"), "unsupported_algorithm"),  # SHA-1
        (("-aes-128-gcm", *OAEP[1:]), "unsupported_algorithm"),
    ],
)
def test_weak_or_foreign_openssl_envelopes_are_refused(
    openssl: str, tmp_path: Path, supplier: tuple[IssuedPair, Path], options: tuple[str, ...],
    code: str,
) -> None:
    _, folder = supplier
    source = tmp_path / "in.bin"
    source.write_bytes(b"secret bid")
    sealed = tmp_path / "sealed.der"
    _openssl_encrypt(openssl, source, sealed, folder / "enc-cert.pem", *options)
    with pytest.raises(ValidationError) as info:
        inspect_envelope(sealed)
    assert info.value.code == code


def test_an_openssl_signed_but_unencrypted_bid_is_not_encrypted(
    openssl: str, tmp_path: Path, package: Path, supplier: tuple[IssuedPair, Path]
) -> None:
    _, folder = supplier
    signed = tmp_path / "signed.der"
    _run(openssl, "cms", "-sign", "-binary", "-nodetach", "-in", package, "-signer",
         folder / "sign-cert.pem", "-inkey", folder / "sign-key.pem", "-outform", "DER",
         "-out", signed)
    with pytest.raises(ValidationError) as info:
        inspect_envelope(signed)
    assert info.value.code == "not_encrypted"


# ----------------------------------------------------------------------- 200 MiB, bounded

_BIG_SCRIPT = textwrap.dedent(
    """
    import json, os, resource, sys, time, tracemalloc
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    from bidroom.opening.ca import PlatformCA
    from bidroom.opening.envelope import (inspect_envelope, open_envelope, recipient_for,
                                          seal_bid, unwrap_content_key)
    from bidroom.opening.package import build_package

    folder = Path(sys.argv[1])
    size_mib = int(sys.argv[2])
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    ca = PlatformCA.init(folder / "ca", now=now - timedelta(days=1))
    pair = ca.issue_dual("org_big", "大文件供应商", now=now - timedelta(days=1))
    document = folder / "drawings.pdf"
    block = os.urandom(1 << 20)
    with document.open("wb") as out:
        for _ in range(size_mib):
            out.write(block)
    del block
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.monotonic()
    package = folder / "package.zip"
    with package.open("wb") as out:
        build_package({"total_price_fen": 1, "delivery_days": 1, "warranty_months": 0,
                       "items": []}, {"drawings.pdf": document}, out)
    document.unlink()
    built = time.monotonic()
    sealed = folder / "sealed.cms"
    result = seal_bid(package, sealed, signing_key=pair.sign_key, signing_cert=pair.sign_cert,
                      recipients=[pair.enc_cert], now=now)
    package.unlink()
    sealed_at = time.monotonic()
    info = inspect_envelope(sealed)
    key = unwrap_content_key(recipient_for(info, pair.enc_cert).encrypted_key, pair.enc_key)
    opened = open_envelope(sealed, key, folder / "out", trust=ca.trust_store(), at=now)
    opened_at = time.monotonic()
    peak = tracemalloc.get_traced_memory()[1]
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "sealed_size": result.size, "package_size": opened.package_size,
        "documents": opened.documents, "signer": opened.signer.org_id,
        "build_s": built - started, "seal_s": sealed_at - built, "open_s": opened_at - sealed_at,
        "traced_peak": peak, "rss_growth": (rss_after - rss_before) * 1024,
    }))
    """
)


def test_a_200_mib_bid_is_sealed_and_opened_in_bounded_memory(tmp_path: Path) -> None:
    size = 200 << 20
    script = tmp_path / "big.py"
    script.write_text(_BIG_SCRIPT, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), str(tmp_path), "200"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    print(report)
    assert report["package_size"] > size and report["sealed_size"] > size
    assert report["documents"] == ["drawings.pdf"] and report["signer"] == "org_big"
    # Python allocations and the process's resident set both stay far below the bid's size.
    assert report["traced_peak"] < 16 << 20, report
    assert report["rss_growth"] < 64 << 20, report
    assert report["seal_s"] + report["open_s"] < 30, report


# ------------------------------------------------------------------------------------ CLI


def _cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    from web.cli import main

    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _register(data_dir: Path, name: str) -> str:
    """A supplier registered in ``data_dir``'s SQLite database (migrated first); its id."""
    import asyncio

    from bidroom.stores.sql import make_engine, make_session_factory
    from market.registry import OrgKind, Registry
    from web.db import upgrade_database_sync

    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite+aiosqlite:///{data_dir / 'bidroom.db'}"
    upgrade_database_sync(url)

    async def create() -> str:
        engine = make_engine(url)
        try:
            org = await Registry(make_session_factory(engine)).create_organisation(
                name, OrgKind.SUPPLIER, size_class="small", now_ms=1_900_000_000_000)
            return str(org.id)
        finally:
            await engine.dispose()

    return asyncio.run(create())


def test_the_cli_issues_seals_unwraps_and_opens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "var"
    status, out, err = _cli(capsys, "ca", "init", "--data-dir", data)
    assert status == 0, err
    assert (data / "ca" / "ca-cert.pem").is_file()
    assert _cli(capsys, "ca", "init", "--data-dir", data)[0] == 1  # never overwrites

    supplier = tmp_path / "supplier"
    org_cli = _register(data, "命令行供应商")  # `ca issue` takes registered organisations only
    status, out, err = _cli(capsys, "ca", "issue", "--data-dir", data, "--org-id", org_cli,
                            "--name", "命令行供应商", "--out", supplier)
    assert status == 0, err
    assert sorted(p.name for p in supplier.iterdir()) == [
        "enc-cert.pem", "enc-key.pem", "sign-cert.pem", "sign-key.pem"]

    form = tmp_path / "form.json"
    form.write_text(json.dumps(FORM, ensure_ascii=False), encoding="utf-8")
    document = tmp_path / "技术方案.pdf"
    document.write_bytes(b"%PDF-1.7 technical")
    sealed = tmp_path / "sealed.cms"
    status, out, err = _cli(capsys, "bid", "seal", "--form", form, "--document", document,
                            "--sign-cert", supplier / "sign-cert.pem",
                            "--sign-key", supplier / "sign-key.pem",
                            "--enc-cert", supplier / "enc-cert.pem", "--out", sealed)
    assert status == 0, err
    assert out.split() == ["sha256", hashlib.sha256(sealed.read_bytes()).hexdigest()]

    status, out, err = _cli(capsys, "bid", "unwrap-key", "--envelope", sealed,
                            "--enc-cert", supplier / "enc-cert.pem",
                            "--enc-key", supplier / "enc-key.pem")
    assert status == 0, err
    key_hex = out.strip()
    assert len(bytes.fromhex(key_hex)) == 32

    status, out, err = _cli(capsys, "bid", "open", "--envelope", sealed, "--key-hex", key_hex,
                            "--out", tmp_path / "opened",
                            "--ca-cert", data / "ca" / "ca-cert.pem",
                            "--crl", data / "ca" / "crl.pem")
    assert status == 0, err
    assert f"命令行供应商 ({org_cli})" in out and "45600000 fen" in out and "技术方案.pdf" in out
    # A time a person reads: Beijing time, labelled, whatever the machine's zone.
    assert re.search(r"签名时间 / signing time: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
                     r"北京时间 / Beijing time \(UTC\+8\)", out), out

    status, out, err = _cli(capsys, "ca", "list", "--data-dir", data, "--json")
    records = json.loads(out)
    signing = next(r for r in records if r["usage"] == "signing")
    assert {r["org_id"] for r in records} == {org_cli} and len(records) == 2
    status, out, err = _cli(capsys, "ca", "revoke", signing["serial"], "--data-dir", data,
                            "--reason", "keyCompromise")
    assert status == 0, err
    status, out, err = _cli(capsys, "bid", "open", "--envelope", sealed, "--key-hex", key_hex,
                            "--out", tmp_path / "again",
                            "--ca-cert", data / "ca" / "ca-cert.pem",
                            "--crl", data / "ca" / "crl.pem")
    assert status == 1 and "revoked" in err

    status, out, err = _cli(capsys, "bid", "open", "--envelope", form, "--key-hex", key_hex,
                            "--out", tmp_path / "plain")
    assert status == 1 and "not an encrypted bid" in err
    status, out, err = _cli(capsys, "bid", "unwrap-key", "--envelope", sealed,
                            "--enc-cert", supplier / "sign-cert.pem",
                            "--enc-key", supplier / "enc-key.pem")
    assert status == 1 and "not sealed to certificate" in err
