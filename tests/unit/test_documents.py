"""One verifier for every document the platform signs (``bidroom.documents``): each kind
verifies offline against the platform key or a certificate of it, any changed byte of any kind
fails, an unknown kind or version is refused with its own code, and no module signs a kind the
registry does not know."""

from __future__ import annotations

import ast
import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from bidroom.documents import (
    registered_kinds,
    verify_document_file,
    verify_signed_document,
)
from bidroom.errors import ValidationError
from bidroom.opening.documents import record_digest
from bidroom.receipts import PlatformKey, make_bid_receipt, sign_document

ROOT = Path(__file__).resolve().parents[2]
T = 1_900_000_000_123  # 2030-03-18 01:46:40.123 in Beijing


@pytest.fixture(scope="module")
def key() -> PlatformKey:
    return PlatformKey.generate()


def bid_receipt(key: PlatformKey) -> dict[str, Any]:
    return make_bid_receipt(key, auction_id="auc_01", supplier_id="org_北京", bid_id="b-7",
                            price_fen=1_234_500, seq=2, server_time_ms=T)


def opening_bid_receipt(key: PlatformKey) -> dict[str, Any]:
    # The shape web/api/openings.py signs at an upload.
    return sign_document(key, {
        "v": 1, "kind": "opening_bid_receipt", "opening_id": "opn_5d0c", "supplier_id": "org_9a",
        "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "size": 1_048_576, "server_time_ms": T, "seq": 7, "replaces": None,
    })


def record_core(**extra: Any) -> dict[str, Any]:
    return {
        "v": 1, "kind": "opening_record", "opening_id": "opn_5d0c",
        "title": "西湖区中小学多媒体教室设备采购项目", "title_en": "Multimedia classrooms",
        "status": "confirmed", "deadline_ms": T, "revealed_at_ms": T + 60_000,
        "confirmed_at_ms": T + 420_000, "bids_at_deadline": 3,
        "opened": [{"order": 1, "supplier_id": "org_1", "form": {"total_price_fen": 23_880_000}},
                   {"order": 2, "supplier_id": "org_2", "form": {"total_price_fen": 24_150_000}}],
        "not_opened": [{"supplier_id": "org_3", "status": "revoked", "status_zh": "撤销"}],
        "objections": [], "deemed_accepted": [], "log": {"seq": 41, "hash": "ab" * 32},
        **extra,
    }


def opening_record(key: PlatformKey, **extra: Any) -> dict[str, Any]:
    core = record_core(**extra)
    return sign_document(key, {**core, "sha256": record_digest(core)})


MAKERS = {"bid_receipt": bid_receipt, "opening_bid_receipt": opening_bid_receipt,
          "opening_record": opening_record}


def refused(doc: Any, public_key: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        verify_signed_document(doc, public_key)
    return info.value


# ------------------------------------------------------------------------ every kind verifies


def test_every_kind_the_platform_signs_is_registered() -> None:
    assert set(registered_kinds()) == set(MAKERS)


@pytest.mark.parametrize(("kind", "expected"), [
    ("bid_receipt", "出价回执 / bid receipt: auction auc_01, supplier org_北京, bid b-7, "
     "1234500 fen (¥12,345.00), seq 2 (the auction's sequence), server time 2030-03-18 01:46:40 "
     "北京时间 / Beijing time (UTC+8), key "),
    ("opening_bid_receipt", "投标文件回执 / sealed bid receipt: opening opn_5d0c, supplier "
     "org_9a, envelope sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, "
     "1048576 bytes, seq 7, server time 2030-03-18 01:46:40 北京时间 / Beijing time (UTC+8), "
     "first upload, key "),
    ("opening_record", "开标记录 / opening record: opening opn_5d0c "
     "「西湖区中小学多媒体教室设备采购项目」, status confirmed, "
     "bids at the deadline 3, opened 2, not opened 1, objections 0, read "
     "out 2030-03-18 01:47:40 北京时间 / Beijing time (UTC+8), confirmed 2030-03-18 01:53:40 "
     "北京时间 / Beijing time (UTC+8), log entry 41, sha256 "),
])
def test_each_kind_verifies_and_says_in_one_line_what_it_says(
    key: PlatformKey, kind: str, expected: str
) -> None:
    doc = MAKERS[kind](key)
    verified = verify_signed_document(doc, key.public_key_pem())
    assert verified.kind.kind == kind
    assert verified.document == doc
    summary = verified.summary()
    assert summary.startswith(expected)
    assert summary.endswith(f"key {key.key_id}")
    assert "\n" not in summary


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_each_kind_verifies_from_a_file_and_from_the_answer_that_carries_it(
    tmp_path: Path, key: PlatformKey, kind: str
) -> None:
    doc = MAKERS[kind](key)
    public = tmp_path / "platform.pub"
    public.write_text(key.public_key_pem())
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    assert verify_document_file(path, public).document == doc
    path.write_text(json.dumps({"status": "submitted", "receipt": doc}), encoding="utf-8")
    assert verify_document_file(path, public).document == doc


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_a_single_changed_byte_anywhere_in_any_kind_fails(
    tmp_path: Path, key: PlatformKey, kind: str
) -> None:
    """Every byte of the file as the platform serves it (compact JSON), changed in turn: no
    variant verifies (it is no longer JSON, no longer UTF-8, or its signature fails)."""
    doc = MAKERS[kind](key)
    original = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    public = tmp_path / "platform.pub"
    public.write_text(key.public_key_pem())
    path = tmp_path / "doc.json"
    codes: set[str] = set()
    for i in range(len(original)):
        tampered = bytearray(original)
        tampered[i] ^= 0x01 if tampered[i] != 0x5F else 0x02  # never the same byte
        path.write_bytes(bytes(tampered))
        with pytest.raises(ValidationError) as info:
            verify_document_file(path, public)
        codes.add(info.value.code)
    assert "bad_signature" in codes
    assert codes <= {"bad_signature", "invalid_document", "unreadable_file", "unknown_kind"}


def test_a_signature_spelled_with_other_padding_bits_is_refused(key: PlatformKey) -> None:
    """base64url of 64 bytes ends in a character with two unused bits: a second spelling of
    the same signature is a changed byte and must fail like any other."""
    doc = bid_receipt(key)
    last = doc["signature"][-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = alphabet.index(last)
    twin = alphabet[index ^ 1]  # the same 2 significant bits, another unused bit
    decoded = base64.urlsafe_b64decode(doc["signature"][:-1] + twin + "==")
    assert decoded == base64.urlsafe_b64decode(doc["signature"] + "==")
    assert refused({**doc, "signature": doc["signature"][:-1] + twin},
                   key.public_key_pem()).code == "bad_signature"


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_each_kind_signed_by_another_key_is_refused(key: PlatformKey, kind: str) -> None:
    doc = MAKERS[kind](PlatformKey.generate())
    assert refused(doc, key.public_key_pem()).code == "bad_signature"


# ----------------------------------------------------------------- the kind decides, not us


def test_an_unknown_kind_is_refused_with_its_own_message(key: PlatformKey) -> None:
    doc = sign_document(key, {"v": 1, "kind": "award_notice", "auction_id": "auc_01"})
    error = refused(doc, key.public_key_pem())
    assert error.code == "unknown_kind"
    assert "'award_notice'" in error.message and "bid_receipt" in error.message


def test_an_unknown_version_of_a_known_kind_is_refused(key: PlatformKey) -> None:
    doc = sign_document(key, {**record_core(), "v": 2, "sha256": "00"})
    assert refused(doc, key.public_key_pem()).code == "unknown_version"


@pytest.mark.parametrize("doc", [[1, 2], "text", {"kind": "bid_receipt"},
                                 {"v": True, "kind": "bid_receipt"}, {"v": 1, "kind": 7}])
def test_a_document_without_a_kind_and_version_is_not_a_signed_document(
    key: PlatformKey, doc: Any
) -> None:
    assert refused(doc, key.public_key_pem()).code == "invalid_document"


def test_a_bid_receipt_with_a_retyped_field_is_refused_even_if_signed(key: PlatformKey) -> None:
    doc = sign_document(key, {"v": 1, "kind": "bid_receipt", "auction_id": "auc_01",
                              "supplier_id": "org_1", "bid_id": "b", "price_fen": "100",
                              "seq": 1, "server_time_ms": T})
    error = refused(doc, key.public_key_pem())
    assert error.code == "invalid_document" and "price_fen" in error.message


def test_a_record_whose_digest_does_not_match_its_fields_is_refused(key: PlatformKey) -> None:
    core = record_core()
    doc = sign_document(key, {**core, "sha256": record_digest({**core, "status": "revealed"})})
    assert refused(doc, key.public_key_pem()).code == "bad_digest"


def test_a_record_with_fields_added_later_verifies_by_its_canonical_form(
    key: PlatformKey
) -> None:
    """The record grows (a bid bond consequence, an exclusion's reason): the verifier checks
    the digest and signature over whatever fields it carries, listing none of them."""
    opened = [{"order": 1, "supplier_id": "org_1", "bond": "refunded", "bond_zh": "退还"}]
    doc = opening_record(key, opened=opened, faults=[{"supplier_id": "org_3",
                                                      "reason": "平台故障"}])
    assert verify_signed_document(doc, key.public_key_pem()).document == doc
    changed = json.loads(json.dumps(doc))
    changed["faults"][0]["reason"] = "投标人原因"
    assert refused(changed, key.public_key_pem()).code == "bad_signature"


# ------------------------------------------------------------------ a certificate of the key


def _certificate(public_key: Any, signer: Any) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bidroom platform signing key")])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(public_key).serial_number(1).not_valid_before(now)
               .not_valid_after(now + dt.timedelta(days=3650)))
    algorithm = None if isinstance(signer, Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, algorithm)


def test_a_certificate_of_the_platform_key_verifies_pem_or_der(
    tmp_path: Path, key: PlatformKey
) -> None:
    private = Ed25519PrivateKey.generate()
    platform = PlatformKey(private)
    certificate = _certificate(private.public_key(), private)
    doc = tmp_path / "record.json"
    doc.write_text(json.dumps(opening_record(platform)), encoding="utf-8")
    pem, der = serialization.Encoding.PEM, serialization.Encoding.DER
    for suffix, encoding in (("pem", pem), ("der", der)):
        path = tmp_path / f"platform.{suffix}"
        path.write_bytes(certificate.public_bytes(encoding))
        assert verify_document_file(doc, path).kind.kind == "opening_record"
    other = tmp_path / "other.pem"
    other.write_bytes(_certificate(key.public_key(), private)
                      .public_bytes(serialization.Encoding.PEM))
    with pytest.raises(ValidationError) as info:
        verify_document_file(doc, other)
    assert info.value.code == "bad_signature"


def test_a_certificate_of_another_algorithm_is_not_a_platform_key(
    tmp_path: Path, key: PlatformKey
) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "rsa.pem"
    path.write_bytes(_certificate(rsa_key.public_key(), rsa_key)
                     .public_bytes(serialization.Encoding.PEM))
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps(bid_receipt(key)), encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        verify_document_file(doc, path)
    assert info.value.code == "invalid_public_key"


# ------------------------------------------------------------ nothing signed goes unregistered


def _signed_kinds_in_source() -> dict[str, str]:
    """``"kind": "<literal>"`` in every module that signs documents: kind -> module."""
    found: dict[str, str] = {}
    for package in ("bidroom", "market", "web"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if "sign_document(" not in text or path.name == "receipts.py":
                continue
            for node in ast.walk(ast.parse(text)):
                # a kind named by a constant (RECORD_KIND: Final = "opening_record")
                if (isinstance(node, ast.AnnAssign | ast.Assign)
                        and isinstance(node.value, ast.Constant)
                        and isinstance(node.value.value, str)
                        and any(isinstance(t, ast.Name) and t.id.endswith("KIND") for t in (
                            node.targets if isinstance(node, ast.Assign) else [node.target]))):
                    found[node.value.value] = str(path.relative_to(ROOT))
                if not isinstance(node, ast.Dict):
                    continue
                for k, v in zip(node.keys, node.values, strict=True):
                    if (isinstance(k, ast.Constant) and k.value == "kind"
                            and isinstance(v, ast.Constant) and isinstance(v.value, str)):
                        found[v.value] = str(path.relative_to(ROOT))
    return found


def test_no_module_signs_a_kind_the_verifier_does_not_know() -> None:
    signed = _signed_kinds_in_source()
    assert {"opening_bid_receipt", "opening_record"} <= set(signed)  # the scan sees them
    unknown = {kind: where for kind, where in signed.items() if kind not in registered_kinds()}
    assert unknown == {}, "register these kinds in bidroom.documents (KIND_MODULES)"
