"""Sealing and opening bids: CMS AuthEnvelopedData around a signed package.

Round trips, the exact envelope shape, tampering, wrong keys, weak or foreign formats,
signatures and certificates checked at the upload time, the backup recipient.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bidroom.errors import ValidationError
from bidroom.opening import der, envelope
from bidroom.opening.ca import IssuedPair, PlatformCA, TrustStore
from bidroom.opening.envelope import (
    decrypt_content,
    inspect_envelope,
    open_envelope,
    recipient_for,
    seal_bid,
    unwrap_content_key,
)
from bidroom.opening.package import build_package

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
UPLOAD = NOW + timedelta(minutes=5)
FORM: dict[str, Any] = {
    "total_price_fen": 98_765_400,
    "delivery_days": 45,
    "warranty_months": 36,
    "items": [{"name": "品牌型号", "value": "华为 X1"}],
}


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> PlatformCA:
    return PlatformCA.init(tmp_path_factory.mktemp("ca") / "ca", now=NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def supplier(ca: PlatformCA) -> IssuedPair:
    return ca.issue_dual("org_supplier1", "北京供应商一", now=NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def other(ca: PlatformCA) -> IssuedPair:
    return ca.issue_dual("org_supplier2", "上海供应商二", now=NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("package")
    path = folder / "package.zip"
    with path.open("wb") as out:
        build_package(FORM, {"商务文件.pdf": b"%PDF-1.7 " + os.urandom(50_000),
                             "技术参数.txt": "参数".encode() * 1000}, out)
    return path


@pytest.fixture
def sealed(tmp_path: Path, package: Path, supplier: IssuedPair) -> Path:
    out = tmp_path / "sealed.cms"
    seal_bid(package, out, signing_key=supplier.sign_key, signing_cert=supplier.sign_cert,
             recipients=[supplier.enc_cert], now=NOW)
    return out


def _content_key(path: Path, pair: IssuedPair) -> bytes:
    return unwrap_content_key(recipient_for(inspect_envelope(path), pair.enc_cert).encrypted_key,
                              pair.enc_key)


def _code(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ValidationError) as info:
        call(*args, **kwargs)
    return info.value.code


def _seal_raw(inner: bytes, recipients: list[x509.Certificate], out: Path) -> bytes:
    """An AuthEnvelopedData around arbitrary ``inner`` bytes (built with the same helpers
    as seal_bid); returns the content key."""
    key, nonce = os.urandom(32), os.urandom(12)
    encryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
    ciphertext = encryptor.update(inner) + encryptor.finalize()
    infos = [envelope._recipient_info(cert, key) for cert in recipients]
    prefix = envelope._envelope_prefix(infos, nonce, len(inner))
    out.write_bytes(prefix + ciphertext + der.octet_string(encryptor.tag))
    return key


def _signed_inner(content: bytes, pair: IssuedPair, *, digest: bytes | None = None) -> bytes:
    prefix, suffix = envelope._signed_data_parts(
        len(content), digest or hashlib.sha256(content).digest(), pair.sign_key,
        pair.sign_cert, [], NOW,
    )
    return prefix + content + suffix


# ------------------------------------------------------------------------------ round trip


def test_a_sealed_bid_opens_with_its_content_key_and_names_the_signer(
    tmp_path: Path, sealed: Path, package: Path, supplier: IssuedPair, ca: PlatformCA
) -> None:
    opened = open_envelope(sealed, _content_key(sealed, supplier), tmp_path / "out",
                           trust=ca.trust_store(), at=UPLOAD)
    assert opened.signer is not None
    assert (opened.signer.org_id, opened.signer.name) == ("org_supplier1", "北京供应商一")
    assert opened.signer_certificate == supplier.sign_cert
    assert opened.signing_time == NOW
    assert opened.form == FORM
    assert opened.documents == ["商务文件.pdf", "技术参数.txt"]
    assert opened.package_path.read_bytes() == package.read_bytes()
    assert opened.package_sha256 == hashlib.sha256(package.read_bytes()).hexdigest()
    assert opened.package_size == package.stat().st_size
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["package.zip"]


def test_seal_reports_the_sha256_and_size_of_the_sealed_file(
    tmp_path: Path, package: Path, supplier: IssuedPair
) -> None:
    out = tmp_path / "bid.cms"
    result = seal_bid(package, out, signing_key=supplier.sign_key,
                      signing_cert=supplier.sign_cert, recipients=[supplier.enc_cert], now=NOW)
    assert result.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert result.size == out.stat().st_size
    assert [p.name for p in tmp_path.iterdir()] == ["bid.cms"]  # no temporary left behind


def test_an_rsa_signing_certificate_works_too(
    tmp_path: Path, package: Path, ca: PlatformCA
) -> None:
    pair = ca.issue_dual("org_rsa", "RSA 供应商", now=NOW - timedelta(days=1),
                         signing_key_type="rsa-2048")
    out = tmp_path / "rsa.cms"
    seal_bid(package, out, signing_key=pair.sign_key, signing_cert=pair.sign_cert,
             recipients=[pair.enc_cert], now=NOW)
    opened = open_envelope(out, _content_key(out, pair), tmp_path / "o",
                           trust=ca.trust_store(), at=UPLOAD)
    assert opened.signer is not None and opened.signer.org_id == "org_rsa"


def test_the_envelope_is_der_auth_enveloped_data_with_aes_gcm_and_rsa_oaep_sha256(
    sealed: Path, supplier: IssuedPair
) -> None:
    data = sealed.read_bytes()
    top = der.parse_all(data)  # definite-length DER, nothing trailing
    oid, wrapper = der.children(top)
    assert der.decode_oid(oid) == "1.2.840.113549.1.9.16.1.23"
    (body,) = der.children(wrapper)
    version, recipients, content_info, mac = der.children(body)
    assert der.decode_integer(version) == 0
    (ktri,) = der.children(recipients)
    ri_version, rid, algorithm, encrypted_key = der.children(ktri)
    assert der.decode_integer(ri_version) == 0
    issuer, serial = der.children(rid)
    assert issuer.raw == supplier.enc_cert.issuer.public_bytes()
    assert der.decode_integer(serial) == supplier.enc_cert.serial_number
    # RFC 4055: id-RSAES-OAEP { hashFunc [0] sha256, maskGenFunc [1] mgf1(sha256) }
    sha256 = der.seq(der.oid("2.16.840.1.101.3.4.2.1"))
    assert algorithm.raw == der.seq(
        der.oid("1.2.840.113549.1.1.7"),
        der.seq(der.tlv(0xA0, sha256),
                der.tlv(0xA1, der.seq(der.oid("1.2.840.113549.1.1.8"), sha256))),
    )
    assert len(der.octets(encrypted_key)) == 256
    content_type, cea, _encrypted = der.children(content_info)
    assert der.decode_oid(content_type) == "1.2.840.113549.1.7.1"
    # RFC 5084: aes256-GCM { aes-nonce 12 bytes, aes-ICVlen 16 }
    cea_oid, params = der.children(cea)
    assert der.decode_oid(cea_oid) == "2.16.840.1.101.3.4.1.46"
    nonce, icv = der.children(params)
    assert len(der.octets(nonce)) == 12 and der.decode_integer(icv) == 16
    assert len(der.octets(mac)) == 16

    info = inspect_envelope(sealed)
    assert info.content_encryption == "aes-256-gcm"
    assert info.nonce == der.octets(nonce) and info.tag == der.octets(mac)
    assert [r.key_encryption_oid for r in info.recipients] == ["1.2.840.113549.1.1.7"]
    assert "CN=Bidroom Platform CA" in info.recipients[0].issuer_name
    ((offset, length),) = info.content_chunks
    assert offset + length + 18 == len(data)


def test_the_decrypted_content_is_a_cms_signed_data_content_info(
    tmp_path: Path, sealed: Path, supplier: IssuedPair
) -> None:
    out = tmp_path / "signed.der"
    size = decrypt_content(sealed, _content_key(sealed, supplier), out)
    inner = der.parse_all(out.read_bytes())
    assert size == out.stat().st_size
    assert der.decode_oid(der.children(inner)[0]) == "1.2.840.113549.1.7.2"


# ------------------------------------------------------------------ tampering and keys


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["ciphertext", "tag", "nonce"])
def test_a_tampered_envelope_is_refused_and_nothing_is_written(
    tmp_path: Path, sealed: Path, supplier: IssuedPair, where: str
) -> None:
    key = _content_key(sealed, supplier)
    info = inspect_envelope(sealed)
    data = sealed.read_bytes()
    offset = {
        "ciphertext": info.content_chunks[0][0] + info.content_chunks[0][1] // 2,
        "tag": len(data) - 1,
        "nonce": data.index(info.nonce),
    }[where]
    _flip(sealed, offset)
    out = tmp_path / "out"
    assert _code(open_envelope, sealed, key, out, trust=None, at=UPLOAD) == "bad_key_or_tampered"
    assert list(out.iterdir()) == []
    assert _code(decrypt_content, sealed, key, tmp_path / "x.der") == "bad_key_or_tampered"
    assert not (tmp_path / "x.der").exists()


def test_a_wrong_content_key_is_refused(tmp_path: Path, sealed: Path) -> None:
    for key in (os.urandom(32), b"\x00" * 32, os.urandom(16)):
        assert _code(open_envelope, sealed, key, tmp_path, trust=None, at=UPLOAD) == (
            "bad_key_or_tampered"
        )


def test_only_the_recipient_can_unwrap_the_content_key(
    sealed: Path, supplier: IssuedPair, other: IssuedPair
) -> None:
    info = inspect_envelope(sealed)
    assert _code(recipient_for, info, other.enc_cert) == "not_a_recipient"
    wrapped = recipient_for(info, supplier.enc_cert).encrypted_key
    assert _code(unwrap_content_key, wrapped, other.enc_key) == "bad_key_or_tampered"
    pem = supplier.enc_key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
    assert unwrap_content_key(wrapped, pem) == unwrap_content_key(wrapped, supplier.enc_key)


# ---------------------------------------------------------------- what is not a sealed bid


def test_plain_files_are_not_encrypted(tmp_path: Path, package: Path) -> None:
    pdf = tmp_path / "bid.pdf"
    pdf.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    for path in (package, pdf, empty):
        assert _code(inspect_envelope, path) == "not_encrypted", path


def test_a_signed_but_unencrypted_bid_is_not_encrypted(
    tmp_path: Path, supplier: IssuedPair
) -> None:
    signed = tmp_path / "signed.p7m"
    signed.write_bytes(_signed_inner(b"PK\x05\x06" + bytes(18), supplier))
    with pytest.raises(ValidationError) as info:
        inspect_envelope(signed)
    assert info.value.code == "not_encrypted" and "SignedData" in info.value.message


def test_a_truncated_or_padded_envelope_is_malformed(tmp_path: Path, sealed: Path) -> None:
    data = sealed.read_bytes()
    truncated = tmp_path / "truncated.cms"
    truncated.write_bytes(data[:-1])
    padded = tmp_path / "padded.cms"
    padded.write_bytes(data + b"\x00")
    cut_in_header = tmp_path / "cut.cms"
    cut_in_header.write_bytes(data[:200])
    for path in (truncated, padded, cut_in_header):
        assert _code(inspect_envelope, path) == "malformed_envelope", path.name


def _envelope_with(tmp_path: Path, recipient_infos: list[bytes], *,
                   algorithm: bytes | None = None, mac_length: int = 16) -> Path:
    """A well-formed AuthEnvelopedData with the given recipient infos and, optionally,
    another contentEncryptionAlgorithm (DER) and MAC length."""
    nonce, inner = os.urandom(12), b"hello"
    aes = der.seq(der.oid("2.16.840.1.101.3.4.1.46"),
                  der.seq(der.octet_string(nonce), der.integer(16)))
    content_info = der.seq(der.oid("1.2.840.113549.1.7.1"), algorithm or aes,
                           der.tlv(0x80, inner))
    body = der.seq(der.integer(0), der.set_of(recipient_infos), content_info,
                   der.octet_string(bytes(mac_length)))
    path = tmp_path / "crafted.cms"
    path.write_bytes(der.seq(der.oid("1.2.840.113549.1.9.16.1.23"), der.tlv(0xA0, body)))
    return path


def test_the_crafting_helper_makes_envelopes_inspect_accepts(
    tmp_path: Path, supplier: IssuedPair
) -> None:
    good = envelope._recipient_info(supplier.enc_cert, os.urandom(32))
    assert inspect_envelope(_envelope_with(tmp_path, [good])).content_length == 5


def test_pkcs1_v15_key_transport_is_refused_even_next_to_oaep(
    tmp_path: Path, supplier: IssuedPair, other: IssuedPair
) -> None:
    good = envelope._recipient_info(supplier.enc_cert, os.urandom(32))
    version, rid, _oaep, wrapped = der.children(
        der.parse_all(envelope._recipient_info(other.enc_cert, os.urandom(32)))
    )
    v15 = der.seq(der.oid("1.2.840.113549.1.1.1"), der.null())  # rsaEncryption
    weak = der.seq(version.raw, rid.raw, v15, wrapped.raw)
    for infos in ([weak], [good, weak]):
        path = _envelope_with(tmp_path, infos)
        assert _code(inspect_envelope, path) == "weak_key_transport"


def test_oaep_with_sha1_is_unsupported(tmp_path: Path, supplier: IssuedPair) -> None:
    version, rid, _oaep, wrapped = der.children(
        der.parse_all(envelope._recipient_info(supplier.enc_cert, os.urandom(32)))
    )
    sha1_oaep = der.seq(der.oid("1.2.840.113549.1.1.7"), der.seq())  # all defaults: SHA-1
    path = _envelope_with(tmp_path, [der.seq(version.raw, rid.raw, sha1_oaep, wrapped.raw)])
    assert _code(inspect_envelope, path) == "unsupported_algorithm"


def test_other_content_encryption_is_unsupported(tmp_path: Path, supplier: IssuedPair) -> None:
    good = envelope._recipient_info(supplier.enc_cert, os.urandom(32))
    nonce = der.octet_string(os.urandom(12))
    for algorithm in (
        der.seq(der.oid("2.16.840.1.101.3.4.1.6"), der.seq(nonce, der.integer(16))),  # AES-128
        der.seq(der.oid("2.16.840.1.101.3.4.1.42"), der.octet_string(bytes(16))),  # AES-CBC
        der.seq(der.oid("2.16.840.1.101.3.4.1.46"), der.seq(nonce)),  # ICV 12 by default
        der.seq(der.oid("2.16.840.1.101.3.4.1.46"),
                der.seq(der.octet_string(bytes(16)), der.integer(16))),  # 16-byte nonce
    ):
        path = _envelope_with(tmp_path, [good], algorithm=algorithm)
        assert _code(inspect_envelope, path) == "unsupported_algorithm"
    assert _code(inspect_envelope, _envelope_with(tmp_path, [good], mac_length=12)) == (
        "malformed_envelope"
    )


# ----------------------------------------------------------------------- signatures


def test_unsigned_content_is_refused(tmp_path: Path, supplier: IssuedPair) -> None:
    path = tmp_path / "unsigned.cms"
    key = _seal_raw(b"PK\x05\x06" + bytes(18), [supplier.enc_cert], path)
    assert _code(open_envelope, path, key, tmp_path / "o", trust=None, at=UPLOAD) == (
        "bad_signature"
    )
    assert not (tmp_path / "o" / "package.zip").exists()


def test_a_package_altered_after_signing_is_a_digest_mismatch(
    tmp_path: Path, package: Path, supplier: IssuedPair
) -> None:
    content = package.read_bytes()
    altered = content.replace(b"%PDF-1.7", b"%PDF-1.6")  # inside the stored document
    assert altered != content
    path = tmp_path / "altered.cms"
    inner = _signed_inner(altered, supplier, digest=hashlib.sha256(content).digest())
    key = _seal_raw(inner, [supplier.enc_cert], path)
    assert _code(open_envelope, path, key, tmp_path / "o", trust=None, at=UPLOAD) == (
        "digest_mismatch"
    )
    assert not (tmp_path / "o" / "package.zip").exists()


def test_a_broken_signature_is_refused(
    tmp_path: Path, package: Path, supplier: IssuedPair
) -> None:
    inner = bytearray(_signed_inner(package.read_bytes(), supplier))
    inner[-5] ^= 0x40  # inside the ECDSA signature at the very end
    path = tmp_path / "broken.cms"
    key = _seal_raw(bytes(inner), [supplier.enc_cert], path)
    assert _code(open_envelope, path, key, tmp_path / "o", trust=None, at=UPLOAD) == (
        "bad_signature"
    )


def test_a_bid_sealed_by_someone_else_to_the_supplier_names_the_real_signer(
    tmp_path: Path, package: Path, supplier: IssuedPair, other: IssuedPair, ca: PlatformCA
) -> None:
    # Anyone can seal to a supplier's public encryption certificate; the signature tells.
    out = tmp_path / "spoof.cms"
    seal_bid(package, out, signing_key=other.sign_key, signing_cert=other.sign_cert,
             recipients=[supplier.enc_cert], now=NOW)
    opened = open_envelope(out, _content_key(out, supplier), tmp_path / "o",
                           trust=ca.trust_store(), at=UPLOAD)
    assert opened.signer is not None and opened.signer.org_id == "org_supplier2"


def test_without_a_trust_store_the_signature_is_still_checked(
    tmp_path: Path, sealed: Path, supplier: IssuedPair
) -> None:
    opened = open_envelope(sealed, _content_key(sealed, supplier), tmp_path / "o", trust=None,
                           at=UPLOAD)
    assert opened.signer is None and opened.signer_certificate == supplier.sign_cert


def test_a_revoked_signing_certificate_is_refused_when_revoked_before_the_upload(
    tmp_path: Path, package: Path, ca: PlatformCA
) -> None:
    pair = ca.issue_dual("org_revoked", "吊销公司", now=NOW - timedelta(days=1))
    out = tmp_path / "bid.cms"
    seal_bid(package, out, signing_key=pair.sign_key, signing_cert=pair.sign_cert,
             recipients=[pair.enc_cert], now=NOW)
    key = _content_key(out, pair)
    ca.revoke(pair.sign_cert.serial_number, now=UPLOAD + timedelta(hours=1))
    trust = ca.trust_store()
    # Revoked after the upload: the bid was signed in time and stays valid.
    assert open_envelope(out, key, tmp_path / "a", trust=trust, at=UPLOAD).signer is not None
    # Judged at a time after the revocation: refused.
    assert _code(open_envelope, out, key, tmp_path / "b", trust=trust,
                 at=UPLOAD + timedelta(hours=2)) == "certificate_revoked"
    assert not (tmp_path / "b" / "package.zip").exists()


def test_a_signer_of_an_unknown_ca_or_an_expired_certificate_is_refused(
    tmp_path: Path, sealed: Path, supplier: IssuedPair, ca: PlatformCA
) -> None:
    key = _content_key(sealed, supplier)
    other_ca = PlatformCA.init(tmp_path / "other-ca", name="Other CA", now=NOW)
    assert _code(open_envelope, sealed, key, tmp_path / "a", trust=other_ca.trust_store(),
                 at=UPLOAD) == "unknown_ca"
    assert _code(open_envelope, sealed, key, tmp_path / "b", trust=TrustStore(),
                 at=UPLOAD) == "unknown_ca"
    assert _code(open_envelope, sealed, key, tmp_path / "c", trust=ca.trust_store(),
                 at=NOW + timedelta(days=400)) == "certificate_expired"


# --------------------------------------------------------------------------- sealing


def test_seal_refuses_the_wrong_certificates_and_keys(
    tmp_path: Path, package: Path, supplier: IssuedPair, other: IssuedPair
) -> None:
    out = tmp_path / "bid.cms"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"signing_cert": supplier.enc_cert}, "wrong_key_usage"),
        ({"recipients": [supplier.sign_cert]}, "wrong_key_usage"),
        ({"signing_key": other.sign_key}, "invalid_private_key"),
        ({"recipients": []}, "invalid_input"),
        ({"now": NOW.replace(tzinfo=None)}, "invalid_input"),
    ]
    for change, code in cases:
        kwargs: dict[str, Any] = {
            "signing_key": supplier.sign_key, "signing_cert": supplier.sign_cert,
            "recipients": [supplier.enc_cert], "now": NOW, **change,
        }
        assert _code(seal_bid, package, out, **kwargs) == code, change
    assert _code(seal_bid, tmp_path / "missing.zip", out, signing_key=supplier.sign_key,
                 signing_cert=supplier.sign_cert, recipients=[supplier.enc_cert],
                 now=NOW) == "invalid_package"
    assert list(tmp_path.iterdir()) == []


def test_each_recipient_can_open_and_duplicates_are_sealed_once(
    tmp_path: Path, package: Path, supplier: IssuedPair, other: IssuedPair
) -> None:
    out = tmp_path / "two.cms"
    seal_bid(package, out, signing_key=supplier.sign_key, signing_cert=supplier.sign_cert,
             recipients=[supplier.enc_cert, other.enc_cert, supplier.enc_cert], now=NOW)
    info = inspect_envelope(out)
    assert len(info.recipients) == 2
    keys = {_content_key(out, pair) for pair in (supplier, other)}
    assert len(keys) == 1


def test_a_package_built_in_memory_round_trips(
    tmp_path: Path, supplier: IssuedPair
) -> None:
    buffer = io.BytesIO()
    build_package(FORM, {"a.txt": b"a"}, buffer)
    path = tmp_path / "p.zip"
    path.write_bytes(buffer.getvalue())
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["opening-form.json", "documents/a.txt"]
    out = tmp_path / "s.cms"
    seal_bid(path, out, signing_key=supplier.sign_key, signing_cert=supplier.sign_cert,
             recipients=[supplier.enc_cert], now=NOW)
    assert open_envelope(out, _content_key(out, supplier), tmp_path / "o", trust=None,
                         at=UPLOAD).documents == ["a.txt"]
