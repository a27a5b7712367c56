"""Platform key and signed bid receipts: round trip, tampering, wrong keys, key files."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import stat
import textwrap
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

import bidroom.receipts
from bidroom.errors import ValidationError
from bidroom.receipts import (
    PlatformKey,
    canonical_json,
    make_bid_receipt,
    sign_document,
    verify_document,
    verify_receipt_file,
)

BID = {
    "auction_id": "auc_01",
    "supplier_id": "org_北京供应商",
    "bid_id": "bid-7f3a",
    "price_fen": 1_234_500,
    "seq": 17,
    "server_time_ms": 1_767_225_600_123,
}


@pytest.fixture(scope="module")
def key() -> PlatformKey:
    return PlatformKey.generate()


@pytest.fixture
def receipt(key: PlatformKey) -> dict[str, Any]:
    return make_bid_receipt(key, **BID)  # type: ignore[arg-type]


def _refused(doc: dict[str, Any], public_key_pem: str) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        verify_document(doc, public_key_pem)
    return info.value


def test_a_receipt_has_the_documented_fields_and_verifies(
    key: PlatformKey, receipt: dict[str, Any]
) -> None:
    assert set(receipt) == {
        "v",
        "kind",
        "auction_id",
        "supplier_id",
        "bid_id",
        "price_fen",
        "seq",
        "server_time_ms",
        "key_id",
        "signature",
    }
    assert receipt["v"] == 1 and receipt["kind"] == "bid_receipt"
    assert receipt["price_fen"] == 1_234_500 and type(receipt["price_fen"]) is int
    assert receipt["key_id"] == key.key_id
    assert "=" not in receipt["signature"]
    assert len(base64.urlsafe_b64decode(receipt["signature"] + "==")) == 64
    verify_document(receipt, key.public_key_pem())


def test_the_key_id_is_the_start_of_the_sha256_of_the_raw_public_key(key: PlatformKey) -> None:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key.key_id == hashlib.sha256(raw).hexdigest()[:16]
    assert len(key.key_id) == 16


def test_the_signature_covers_the_canonical_json_of_every_other_field(
    key: PlatformKey, receipt: dict[str, Any]
) -> None:
    unsigned = {k: v for k, v in receipt.items() if k != "signature"}
    expected = json.dumps(
        unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert canonical_json(unsigned) == expected
    assert "北京".encode() in expected  # not \\u-escaped
    signature = base64.urlsafe_b64decode(receipt["signature"] + "==")
    key.public_key().verify(signature, expected)  # raises if not


def test_a_receipt_survives_a_json_round_trip(key: PlatformKey, receipt: dict[str, Any]) -> None:
    again = json.loads(json.dumps(receipt, indent=2, ensure_ascii=True))
    verify_document(again, key.public_key_pem())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("v", 2),
        ("kind", "sealed_bid_receipt"),
        ("auction_id", "auc_02"),
        ("supplier_id", "org_other"),
        ("bid_id", "bid-7f3b"),
        ("price_fen", 1_234_499),
        ("price_fen", 1_234_500.0),
        ("price_fen", "1234500"),
        ("seq", 16),
        ("server_time_ms", 1_767_225_600_124),
    ],
)
def test_every_tampered_field_is_refused(
    key: PlatformKey, receipt: dict[str, Any], field: str, value: object
) -> None:
    tampered = copy.deepcopy(receipt)
    tampered[field] = value
    assert _refused(tampered, key.public_key_pem()).code == "bad_signature"


@pytest.mark.parametrize("field", ["v", "kind", "auction_id", "price_fen", "seq"])
def test_a_removed_field_is_refused(key: PlatformKey, receipt: dict[str, Any], field: str) -> None:
    del receipt[field]
    assert _refused(receipt, key.public_key_pem()).code == "bad_signature"


def test_an_added_field_is_refused(key: PlatformKey, receipt: dict[str, Any]) -> None:
    receipt["note"] = "lowest"
    assert _refused(receipt, key.public_key_pem()).code == "bad_signature"


@pytest.mark.parametrize(
    "signature",
    [None, "", "!!not base64!!", "QUJD", "QUJD=", 12345],
    ids=["missing", "empty", "not-base64", "too-short", "padded", "not-a-string"],
)
def test_a_missing_or_malformed_signature_is_refused(
    key: PlatformKey, receipt: dict[str, Any], signature: object
) -> None:
    if signature is None:
        del receipt["signature"]
    else:
        receipt["signature"] = signature
    assert _refused(receipt, key.public_key_pem()).code == "bad_signature"


def test_a_flipped_signature_bit_is_refused(key: PlatformKey, receipt: dict[str, Any]) -> None:
    raw = bytearray(base64.urlsafe_b64decode(receipt["signature"] + "=="))
    raw[10] ^= 0x01
    receipt["signature"] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert _refused(receipt, key.public_key_pem()).code == "bad_signature"


def test_another_platform_key_is_refused(receipt: dict[str, Any]) -> None:
    other = PlatformKey.generate()
    error = _refused(receipt, other.public_key_pem())
    assert error.code == "bad_signature"
    assert receipt["key_id"] in error.message


def test_a_receipt_re_signed_by_another_key_under_the_right_key_id_is_refused(
    key: PlatformKey, receipt: dict[str, Any]
) -> None:
    forger = PlatformKey.generate()
    unsigned = {k: v for k, v in receipt.items() if k != "signature"}  # keeps key.key_id
    forged = dict(
        unsigned,
        signature=base64.urlsafe_b64encode(forger.sign(canonical_json(unsigned)))
        .rstrip(b"=")
        .decode(),
    )
    assert _refused(forged, key.public_key_pem()).code == "bad_signature"


def test_a_public_key_that_is_not_ed25519_pem_is_refused(receipt: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        verify_document(receipt, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    assert info.value.code == "invalid_public_key"


def test_re_issuing_the_receipt_of_the_same_bid_gives_identical_bytes(key: PlatformKey) -> None:
    first = make_bid_receipt(key, **BID)  # type: ignore[arg-type]
    second = make_bid_receipt(key, **BID)  # type: ignore[arg-type]
    assert canonical_json(first) == canonical_json(second)
    assert first["signature"] == second["signature"]
    reloaded = PlatformKey.from_pem(key.private_key_pem())
    assert make_bid_receipt(reloaded, **BID) == first  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price_fen", 12.5),
        ("price_fen", 0),
        ("price_fen", True),
        ("seq", -1),
        ("seq", 1.0),
        ("server_time_ms", "now"),
        ("bid_id", ""),
        ("auction_id", 5),
    ],
)
def test_a_receipt_is_not_issued_for_ill_typed_fields(
    key: PlatformKey, field: str, value: object
) -> None:
    with pytest.raises(ValidationError):
        make_bid_receipt(key, **{**BID, field: value})  # type: ignore[arg-type]


def test_sign_document_signs_any_json_document_and_refuses_a_signed_one(key: PlatformKey) -> None:
    doc = {"kind": "opening_record", "bids": [{"org": "org_1", "fen": 100}], "sealed": True}
    signed = sign_document(key, doc)
    assert "signature" not in doc  # the input is not modified
    verify_document(signed, key.public_key_pem())
    with pytest.raises(ValidationError):
        sign_document(key, signed)
    with pytest.raises(ValidationError):
        sign_document(key, {"price": float("nan")})
    signed["bids"][0]["fen"] = 99
    assert _refused(signed, key.public_key_pem()).code == "bad_signature"


def test_load_or_create_writes_a_0600_pkcs8_key_and_never_overwrites_it(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "nested" / "platform.key"
    old_umask = os.umask(0o022)
    try:
        created = PlatformKey.load_or_create(path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind

    loaded = PlatformKey.load_or_create(path)
    assert loaded.key_id == created.key_id
    assert path.read_bytes() == pem


def test_load_or_create_loads_an_existing_key_instead_of_replacing_it(tmp_path: Path) -> None:
    existing = PlatformKey.generate()
    path = tmp_path / "platform.key"
    path.write_bytes(existing.private_key_pem())
    assert PlatformKey.load_or_create(path).key_id == existing.key_id
    assert path.read_bytes() == existing.private_key_pem()


def test_load_or_create_refuses_a_file_that_is_not_a_key(tmp_path: Path) -> None:
    path = tmp_path / "platform.key"
    path.write_text("garbage")
    with pytest.raises(ValidationError) as info:
        PlatformKey.load_or_create(path)
    assert info.value.code == "invalid_private_key"
    assert path.read_text() == "garbage"


def _write_files(tmp_path: Path, key: PlatformKey, receipt: dict[str, Any]) -> tuple[Path, Path]:
    receipt_path = tmp_path / "RECEIPT.json"
    receipt_path.write_text(json.dumps(receipt, ensure_ascii=False, indent=2), encoding="utf-8")
    public_path = tmp_path / "platform.pub"
    public_path.write_text(key.public_key_pem())
    return receipt_path, public_path


def test_verify_receipt_file_returns_the_verified_receipt(
    tmp_path: Path, key: PlatformKey, receipt: dict[str, Any]
) -> None:
    receipt_path, public_path = _write_files(tmp_path, key, receipt)
    assert verify_receipt_file(receipt_path, public_path) == receipt


def test_verify_receipt_file_refuses_an_edited_file(
    tmp_path: Path, key: PlatformKey, receipt: dict[str, Any]
) -> None:
    receipt_path, public_path = _write_files(tmp_path, key, receipt)
    receipt_path.write_text(receipt_path.read_text().replace("1234500", "1234000"))
    with pytest.raises(ValidationError) as info:
        verify_receipt_file(receipt_path, public_path)
    assert info.value.code == "bad_signature"


@pytest.mark.parametrize(
    ("content", "code"),
    [("{not json", "invalid_receipt"), ("[1, 2]", "invalid_receipt"), (None, "unreadable_file")],
)
def test_verify_receipt_file_explains_unusable_input(
    tmp_path: Path, key: PlatformKey, content: str | None, code: str
) -> None:
    receipt_path = tmp_path / "RECEIPT.json"
    if content is not None:
        receipt_path.write_text(content)
    public_path = tmp_path / "platform.pub"
    public_path.write_text(key.public_key_pem())
    with pytest.raises(ValidationError) as info:
        verify_receipt_file(receipt_path, public_path)
    assert info.value.code == code


def test_verify_receipt_file_refuses_a_signed_document_that_is_not_a_bid_receipt(
    tmp_path: Path, key: PlatformKey
) -> None:
    other = sign_document(key, {"v": 1, "kind": "opening_record", "auction_id": "auc_01"})
    receipt_path, public_path = _write_files(tmp_path, key, other)
    with pytest.raises(ValidationError) as info:
        verify_receipt_file(receipt_path, public_path)
    assert info.value.code == "invalid_receipt"


def test_the_offline_verification_snippet_in_the_module_doc_works(
    tmp_path: Path,
    key: PlatformKey,
    receipt: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = bidroom.receipts.__doc__ or ""
    start = doc.index("import base64, hashlib, json")
    end = doc.index("Any Ed25519 implementation")
    snippet = textwrap.dedent("        " + doc[start:end])
    _write_files(tmp_path, key, receipt)
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "receipts-doc-snippet", "exec"), {})
    assert "valid: 1234500 fen at seq 17" in capsys.readouterr().out

    tampered = dict(receipt, seq=18)
    _write_files(tmp_path, key, tampered)
    with pytest.raises(InvalidSignature):
        exec(compile(snippet, "receipts-doc-snippet", "exec"), {})
