"""The platform CA, dual certificates, revocation, the trust store and CA login."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from bidroom.errors import ConflictError, NotFoundError, ValidationError
from bidroom.opening.ca import (
    IssuedPair,
    PlatformCA,
    TrustStore,
    certificate_usages,
    load_certificate,
    load_private_key,
    make_challenge,
    verify_login_signature,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ORG, NAME = "org_北京供应商", "北京某某科技有限公司"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> PlatformCA:
    return PlatformCA.init(tmp_path_factory.mktemp("ca") / "ca", now=NOW)


@pytest.fixture(scope="module")
def pair(ca: PlatformCA) -> IssuedPair:
    return ca.issue_dual(ORG, NAME, now=NOW)


def _code(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return exc.value.code


# ------------------------------------------------------------------------------ the CA


def test_init_writes_a_self_signed_ten_year_root_with_a_private_key_file(tmp_path: Path) -> None:
    ca = PlatformCA.init(tmp_path / "ca", now=NOW, key_type="rsa-3072")
    cert = ca.certificate
    assert cert.issuer == cert.subject
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "Bidroom Platform CA 平台CA"
    )
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc - NOW >= timedelta(days=3649)
    assert stat.S_IMODE((tmp_path / "ca" / "ca-key.pem").stat().st_mode) == 0o600
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    assert (tmp_path / "ca" / "crl.pem").is_file()
    loaded = PlatformCA.load(tmp_path / "ca")
    assert loaded.certificate == cert


def test_init_never_overwrites_an_existing_ca(ca: PlatformCA) -> None:
    before = (ca.directory / "ca-key.pem").read_bytes()
    with pytest.raises(ConflictError) as info:
        PlatformCA.init(ca.directory, now=NOW)
    assert info.value.code == "ca_exists"
    assert (ca.directory / "ca-key.pem").read_bytes() == before


def test_loading_a_missing_ca_says_to_run_ca_init(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as info:
        PlatformCA.load(tmp_path)
    assert info.value.code == "no_ca" and "ca init" in info.value.message


def test_a_dual_pair_has_a_signing_and_an_encryption_certificate(pair: IssuedPair) -> None:
    assert certificate_usages(pair.sign_cert) == {"signing"}
    assert certificate_usages(pair.enc_cert) == {"encryption"}
    sign_usage = pair.sign_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert sign_usage.digital_signature and sign_usage.content_commitment
    assert isinstance(pair.sign_key, ec.EllipticCurvePrivateKey)
    assert isinstance(pair.enc_key, rsa.RSAPrivateKey) and pair.enc_key.key_size == 2048
    for cert in (pair.sign_cert, pair.enc_cert):
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == NAME
        ou = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        assert ou[0].value == ORG
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert cert.not_valid_after_utc - NOW <= timedelta(days=365)


def test_the_pair_is_written_as_four_files_with_private_keys_0600(
    pair: IssuedPair, tmp_path: Path
) -> None:
    paths = pair.write(tmp_path / "supplier")
    assert [p.name for p in paths] == ["sign-cert.pem", "sign-key.pem", "enc-cert.pem",
                                       "enc-key.pem"]
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o600 if path.name.endswith("key.pem") else 0o644)
    assert load_certificate(paths[0].read_bytes()) == pair.sign_cert
    key = load_private_key(paths[3].read_bytes())
    assert isinstance(key, rsa.RSAPrivateKey)
    with pytest.raises(ConflictError):
        pair.write(tmp_path / "supplier")


def test_the_ca_keeps_only_certificates(ca: PlatformCA, pair: IssuedPair) -> None:
    for path in ca.directory.rglob("*"):
        if path.is_file() and path.name != "ca-key.pem":
            assert b"PRIVATE KEY" not in path.read_bytes(), path


def test_an_rsa_signing_key_can_be_chosen(ca: PlatformCA) -> None:
    rsa_pair = ca.issue_dual("org_rsa", "RSA 供应商", now=NOW, signing_key_type="rsa-2048")
    assert isinstance(rsa_pair.sign_key, rsa.RSAPrivateKey)


def test_bad_subjects_and_validity_are_refused(ca: PlatformCA) -> None:
    with pytest.raises(ValidationError):
        ca.issue_dual("", NAME, now=NOW)
    with pytest.raises(ValidationError):
        ca.issue_dual(ORG, NAME, now=NOW, valid_days=0)
    with pytest.raises(ValidationError):
        ca.issue_dual(ORG, NAME, now=NOW.replace(tzinfo=None))


# ------------------------------------------------------------------------- trust store


def test_a_supplier_certificate_verifies_and_names_the_organisation(
    ca: PlatformCA, pair: IssuedPair
) -> None:
    identity = ca.trust_store().verify(pair.sign_cert, at=NOW + timedelta(days=1),
                                       usage="signing")
    assert identity.org_id == ORG and identity.name == NAME
    assert identity.serial == pair.sign_cert.serial_number
    assert identity.fingerprint == pair.sign_cert.fingerprint(hashes.SHA256()).hex()
    assert ca.trust_store().verify(pair.enc_cert, at=NOW, usage="encryption").org_id == ORG


def test_using_the_wrong_certificate_of_the_pair_is_refused(
    ca: PlatformCA, pair: IssuedPair
) -> None:
    trust = ca.trust_store()
    with pytest.raises(ValidationError) as info:
        trust.verify(pair.enc_cert, at=NOW, usage="signing")
    assert _code(info) == "wrong_key_usage"
    with pytest.raises(ValidationError) as info:
        trust.verify(pair.sign_cert, at=NOW, usage="encryption")
    assert _code(info) == "wrong_key_usage"


def test_a_certificate_of_another_ca_is_unknown(pair: IssuedPair, tmp_path: Path) -> None:
    other = PlatformCA.init(tmp_path / "other", name="Other CA", now=NOW)
    with pytest.raises(ValidationError) as info:
        other.trust_store().verify(pair.sign_cert, at=NOW, usage="signing")
    assert _code(info) == "unknown_ca"
    with pytest.raises(ValidationError) as info:
        TrustStore().verify(pair.sign_cert, at=NOW, usage="signing")
    assert _code(info) == "unknown_ca"


def test_a_forged_certificate_naming_the_platform_ca_is_refused(
    ca: PlatformCA, tmp_path: Path
) -> None:
    impostor = PlatformCA.init(tmp_path / "impostor", now=NOW)  # same default name, other key
    assert impostor.certificate.subject == ca.certificate.subject
    forged = impostor.issue_dual(ORG, NAME, now=NOW)
    with pytest.raises(ValidationError) as info:
        ca.trust_store().verify(forged.sign_cert, at=NOW, usage="signing")
    assert _code(info) == "bad_certificate"


def test_an_expired_or_not_yet_valid_certificate_is_refused(ca: PlatformCA) -> None:
    short = ca.issue_dual("org_short", "短期", now=NOW, valid_days=1)
    trust = ca.trust_store()
    trust.verify(short.sign_cert, at=NOW + timedelta(hours=23), usage="signing")
    for at in (NOW + timedelta(days=2), NOW - timedelta(days=1)):
        with pytest.raises(ValidationError) as info:
            trust.verify(short.sign_cert, at=at, usage="signing")
        assert _code(info) == "certificate_expired"


def test_revocation_counts_from_its_date_on(ca: PlatformCA) -> None:
    victim = ca.issue_dual("org_lost", "丢失密钥公司", now=NOW)
    revoked_on = NOW + timedelta(days=10)
    crl = ca.revoke(victim.sign_cert.serial_number, now=revoked_on,
                    reason=x509.ReasonFlags.key_compromise)
    entry = crl.get_revoked_certificate_by_serial_number(victim.sign_cert.serial_number)
    assert entry is not None and entry.revocation_date_utc == revoked_on
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
    trust = ca.trust_store()
    # A bid signed before the revocation stays valid; after it, refused.
    trust.verify(victim.sign_cert, at=revoked_on - timedelta(seconds=1), usage="signing")
    with pytest.raises(ValidationError) as info:
        trust.verify(victim.sign_cert, at=revoked_on, usage="signing")
    assert _code(info) == "certificate_revoked"
    assert info.value.details["reason"] == "keyCompromise"
    # The encryption certificate of the pair is not revoked.
    trust.verify(victim.enc_cert, at=revoked_on + timedelta(days=1), usage="encryption")
    with pytest.raises(ConflictError):
        ca.revoke(victim.sign_cert.serial_number, now=revoked_on)
    with pytest.raises(NotFoundError):
        ca.revoke(12345, now=revoked_on)


def test_list_issued_reports_usage_validity_and_revocation(tmp_path: Path) -> None:
    ca = PlatformCA.init(tmp_path / "ca", now=NOW)
    first = ca.issue_dual("org_a", "甲公司", now=NOW)
    ca.issue_dual("org_b", "乙公司", now=NOW + timedelta(minutes=1))
    ca.revoke(first.enc_cert.serial_number, now=NOW + timedelta(days=1))
    records = ca.list_issued()
    assert [(r.org_id, r.usage) for r in records] == [
        ("org_a", "encryption"), ("org_a", "signing"),
        ("org_b", "encryption"), ("org_b", "signing"),
    ]
    revoked = [r for r in records if r.revoked_at is not None]
    assert [r.serial for r in revoked] == [first.enc_cert.serial_number]
    assert revoked[0].revoked_at == NOW + timedelta(days=1)
    number = ca.crl().extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number == 2  # the empty CRL at init, then one revocation
    fresh = ca.crl(now=NOW + timedelta(days=2))
    assert fresh.last_update_utc == NOW + timedelta(days=2) and len(list(fresh)) == 1


def _external_hierarchy() -> tuple[x509.Certificate, x509.Certificate, ec.EllipticCurvePrivateKey,
                                   x509.Certificate]:
    """A licensed CA's root → intermediate → supplier signing certificate."""

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def ku(*, sign: bool, ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=sign, content_commitment=sign, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
            encipher_only=False, decipher_only=False,
        )

    root_key = ec.generate_private_key(ec.SECP384R1())
    inter_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    inter_ski = x509.SubjectKeyIdentifier.from_public_key(inter_key.public_key())
    start, end = NOW - timedelta(days=1), NOW + timedelta(days=3000)
    root = (
        x509.CertificateBuilder().subject_name(name("Licensed Root CA")).issuer_name(
            name("Licensed Root CA")).public_key(root_key.public_key())
        .serial_number(1).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(ku(sign=False, ca=True), critical=True)
        .add_extension(root_ski, critical=False)
        .sign(root_key, hashes.SHA384())
    )
    inter = (
        x509.CertificateBuilder().subject_name(name("Licensed Issuing CA")).issuer_name(
            root.subject).public_key(inter_key.public_key())
        .serial_number(2).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ku(sign=False, ca=True), critical=True)
        .add_extension(inter_ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
                       critical=False)
        .sign(root_key, hashes.SHA384())
    )
    leaf = (
        x509.CertificateBuilder().subject_name(x509.Name([
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "91110000MA01"),
            x509.NameAttribute(NameOID.COMMON_NAME, "外地供应商"),
        ])).issuer_name(inter.subject).public_key(leaf_key.public_key())
        .serial_number(3).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(ku(sign=True, ca=False), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(inter_ski),
                       critical=False)
        .sign(inter_key, hashes.SHA256())
    )
    return root, inter, inter_key, leaf


def test_an_imported_licensed_ca_verifies_through_its_intermediate_and_crl() -> None:
    root, inter, inter_key, leaf = _external_hierarchy()
    trust = TrustStore()
    trust.import_root(root.public_bytes(serialization.Encoding.PEM))
    identity = trust.verify(leaf, at=NOW, usage="signing", intermediates=[inter])
    assert identity.org_id == "91110000MA01" and identity.name == "外地供应商"
    with pytest.raises(ValidationError) as info:  # the intermediate is needed to chain
        trust.verify(leaf, at=NOW, usage="signing")
    assert _code(info) == "unknown_ca"
    crl = (
        x509.CertificateRevocationListBuilder().issuer_name(inter.subject)
        .last_update(NOW).next_update(NOW + timedelta(days=7))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(3).revocation_date(
                NOW + timedelta(hours=1)).build())
        .sign(inter_key, hashes.SHA256())
    )
    trust.add_crl(crl.public_bytes(serialization.Encoding.DER))
    trust.verify(leaf, at=NOW, usage="signing", intermediates=[inter])
    with pytest.raises(ValidationError) as info:
        trust.verify(leaf, at=NOW + timedelta(hours=2), usage="signing", intermediates=[inter])
    assert _code(info) == "certificate_revoked"


def test_only_self_signed_ca_certificates_can_be_roots(pair: IssuedPair) -> None:
    with pytest.raises(ValidationError) as info:
        TrustStore().import_root(pair.sign_cert.public_bytes(serialization.Encoding.PEM))
    assert _code(info) == "bad_certificate"
    with pytest.raises(ValidationError) as info:
        TrustStore().import_root(b"-----BEGIN CERTIFICATE-----\nnonsense\n")
    assert _code(info) == "bad_certificate"


def test_a_crl_not_signed_by_its_ca_is_refused(ca: PlatformCA, tmp_path: Path) -> None:
    impostor = PlatformCA.init(tmp_path / "impostor", now=NOW)
    with pytest.raises(ValidationError) as info:
        ca.trust_store().add_crl(impostor.crl())
    assert _code(info) == "bad_certificate"


# ------------------------------------------------------------------------------- login


def test_a_challenge_is_random_base64url() -> None:
    first, second = make_challenge(), make_challenge()
    assert first != second and len(first) == 43
    assert set(first) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_login_accepts_ecdsa_signatures_in_der_and_webcrypto_raw_form(
    ca: PlatformCA, pair: IssuedPair
) -> None:
    challenge = make_challenge().encode()
    assert isinstance(pair.sign_key, ec.EllipticCurvePrivateKey)
    der_signature = pair.sign_key.sign(challenge, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der_signature)
    raw_signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    cert_pem = pair.sign_cert.public_bytes(serialization.Encoding.PEM)
    for signature in (der_signature, raw_signature):
        identity = verify_login_signature(challenge, signature, cert_pem, ca.trust_store(), NOW)
        assert identity.org_id == ORG
    with pytest.raises(ValidationError) as info:
        verify_login_signature(challenge + b"x", raw_signature, cert_pem, ca.trust_store(), NOW)
    assert _code(info) == "bad_signature"


def test_login_accepts_rsa_pkcs1_and_pss_signatures(ca: PlatformCA) -> None:
    rsa_pair = ca.issue_dual("org_rsa_login", "RSA 登录", now=NOW, signing_key_type="rsa-2048")
    key = rsa_pair.sign_key
    assert isinstance(key, rsa.RSAPrivateKey)
    challenge = make_challenge().encode()
    cert_der = rsa_pair.sign_cert.public_bytes(serialization.Encoding.DER)
    for scheme in (
        padding.PKCS1v15(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
    ):
        signature = key.sign(challenge, scheme, hashes.SHA256())
        identity = verify_login_signature(challenge, signature, cert_der, ca.trust_store(), NOW)
        assert identity.org_id == "org_rsa_login"


def test_login_with_the_encryption_certificate_or_a_revoked_one_is_refused(
    ca: PlatformCA,
) -> None:
    victim = ca.issue_dual("org_login_revoked", "登录吊销", now=NOW)
    assert isinstance(victim.sign_key, ec.EllipticCurvePrivateKey)
    challenge = b"challenge"
    signature = victim.sign_key.sign(challenge, ec.ECDSA(hashes.SHA256()))
    enc_pem = victim.enc_cert.public_bytes(serialization.Encoding.PEM)
    with pytest.raises(ValidationError) as info:
        verify_login_signature(challenge, signature, enc_pem, ca.trust_store(), NOW)
    assert _code(info) == "wrong_key_usage"
    ca.revoke(victim.sign_cert.serial_number, now=NOW)
    sign_pem = victim.sign_cert.public_bytes(serialization.Encoding.PEM)
    with pytest.raises(ValidationError) as info:
        verify_login_signature(challenge, signature, sign_pem, ca.trust_store(), NOW)
    assert _code(info) == "certificate_revoked"


# ------------------------------------------------------------- certificate requests (CSR)


def _csr_pair(org_id: str = ORG) -> tuple[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey,
                                          x509.CertificateSigningRequest,
                                          x509.CertificateSigningRequest]:
    from bidroom.opening.ca import make_csr

    sign_key = ec.generate_private_key(ec.SECP256R1())
    enc_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (sign_key, enc_key,
            make_csr(sign_key, org_id=org_id, name=NAME, usage="signing"),
            make_csr(enc_key, org_id=org_id, name=NAME, usage="encryption"))


def test_the_ca_signs_the_suppliers_own_csrs_into_a_dual_pair_it_never_held_keys_of(
    ca: PlatformCA,
) -> None:
    sign_key, enc_key, sign_csr, enc_csr = _csr_pair()
    sign_cert = ca.sign_csr(sign_csr, org_id=ORG, name=NAME, now=NOW)
    enc_cert = ca.sign_csr(enc_csr, org_id=ORG, name=NAME, now=NOW)
    assert certificate_usages(sign_cert) == {"signing"}
    assert certificate_usages(enc_cert) == {"encryption"}
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    assert sign_cert.public_key().public_bytes(der, spki) == (
        sign_key.public_key().public_bytes(der, spki))
    assert enc_cert.public_key().public_bytes(der, spki) == (
        enc_key.public_key().public_bytes(der, spki))
    trust = ca.trust_store()
    assert trust.verify(sign_cert, at=NOW, usage="signing").org_id == ORG
    assert trust.verify(enc_cert, at=NOW, usage="encryption").name == NAME
    # The CA's directory holds the certificates, never a supplier key.
    for path in ca.directory.rglob("*"):
        if path.is_file() and path.name != "ca-key.pem":
            assert b"PRIVATE KEY" not in path.read_bytes(), path


def test_the_certificate_names_the_registered_organisation_not_the_csrs_subject(
    ca: PlatformCA,
) -> None:
    from bidroom.opening.ca import make_csr

    key = ec.generate_private_key(ec.SECP256R1())
    csr = make_csr(key, org_id=ORG, name="A name the supplier typed", usage="signing")
    cert = ca.sign_csr(csr, org_id=ORG, name=NAME, now=NOW)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == NAME


def test_a_csr_with_a_bad_signature_is_refused(ca: PlatformCA) -> None:
    from bidroom.opening.ca import load_csr

    _, _, sign_csr, _ = _csr_pair()
    der = bytearray(sign_csr.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte of the signature
    with pytest.raises(ValidationError) as bad:
        ca.sign_csr(load_csr(bytes(der)), org_id=ORG, name=NAME, now=NOW)
    assert _code(bad) == "bad_csr_signature"
    # The subject changed after signing (another organisation's id): the same refusal.
    other = bytes(sign_csr.public_bytes(serialization.Encoding.DER))
    forged = other.replace("北京供应商".encode(), "上海供应商".encode())
    assert forged != other
    with pytest.raises(ValidationError) as bad:
        ca.sign_csr(load_csr(forged), org_id=ORG, name=NAME, now=NOW)
    assert _code(bad) == "bad_csr_signature"


def test_a_csr_for_another_organisation_or_without_usage_or_with_a_weak_key_is_refused(
    ca: PlatformCA,
) -> None:
    from bidroom.opening.ca import load_csr

    _, _, sign_csr, enc_csr = _csr_pair(org_id="org_other")
    with pytest.raises(ValidationError) as bad:
        ca.sign_csr(sign_csr, org_id=ORG, name=NAME, now=NOW)
    assert _code(bad) == "csr_subject_mismatch"
    with pytest.raises(ValidationError) as bad:
        ca.sign_csr(enc_csr, org_id="org_other", name=NAME, now=NOW, usage="signing")
    assert _code(bad) == "invalid_csr"  # asks for encryption

    key = ec.generate_private_key(ec.SECP256R1())
    bare = (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
            .sign(key, hashes.SHA256()))
    with pytest.raises(ValidationError) as bad:
        ca.sign_csr(bare, org_id=ORG, name=NAME, now=NOW)
    assert _code(bad) == "invalid_csr"
    assert certificate_usages(ca.sign_csr(bare, org_id=ORG, name=NAME, now=NOW,
                                          usage="signing")) == {"signing"}
    with pytest.raises(ValidationError) as bad:  # an EC key cannot be an encryption key
        ca.sign_csr(bare, org_id=ORG, name=NAME, now=NOW, usage="encryption")
    assert _code(bad) == "invalid_csr"
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    weak_csr = (x509.CertificateSigningRequestBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
                .sign(weak, hashes.SHA256()))
    with pytest.raises(ValidationError) as bad:
        ca.sign_csr(weak_csr, org_id=ORG, name=NAME, now=NOW, usage="signing")
    assert _code(bad) == "invalid_csr"
    with pytest.raises(ValidationError) as bad:
        load_csr(b"-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n")
    assert _code(bad) == "invalid_csr"
