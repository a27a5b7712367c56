"""The opening's certificate use cases without HTTP (``bidroom.opening.certificates``,
``market.identity``), against real SQL and Redis: what a supplier's bids are sealed to, the
envelope check of an upload, registering a supplier's own certificates, CA login.

The HTTP routes that map to them are tested in tests/e2e/test_opening.py; here are the rules
the routes' tests do not reach (no certificate at all, the credit code, a supplier without an
active user). Time is the fixed instant ``T0``; nothing sleeps.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidroom.errors import ForbiddenError, UnauthenticatedError, ValidationError
from bidroom.opening.ca import PlatformCA, VerifiedIdentity
from bidroom.opening.certificates import (
    LoginChallenges,
    SupplierCertificates,
    certificate_pem,
    organisation_names,
)
from bidroom.opening.runner import CA_DIR, server_trust_store
from bidroom.opening.store import OpeningStore
from bidroom.stores.redis import RedisClient
from market.identity import CA_TOKEN_TTL_MS, certificate_names, login_supplier
from market.registry import OrgKind, Registry, Role
from tests.opening_kit import MIN, Keys, at, form, issue

T0 = 1_900_000_000_000
CREDIT_CODE = "91110000600037341L"


@pytest.fixture
def ca(tmp_path: Path) -> PlatformCA:
    return PlatformCA.init(tmp_path / CA_DIR, now=at(T0 - 24 * 60 * MIN))


@pytest.fixture
def certificates(tmp_path: Path, ca: PlatformCA,
                 session_factory: async_sessionmaker[AsyncSession]) -> SupplierCertificates:
    return SupplierCertificates(OpeningStore(session_factory), tmp_path / CA_DIR,
                                lambda: server_trust_store(tmp_path))


@pytest.fixture
def registry(session_factory: async_sessionmaker[AsyncSession]) -> Registry:
    return Registry(session_factory)


def test_the_names_of_an_organisation_are_its_id_and_credit_code_in_upper_case() -> None:
    assert organisation_names("org_ab", f" {CREDIT_CODE.lower()} ") == {"ORG_AB", CREDIT_CODE}
    assert organisation_names("org_ab", None) == {"ORG_AB"}


async def test_an_upload_by_a_supplier_without_an_encryption_certificate_is_refused(
        tmp_path: Path, ca: PlatformCA, certificates: SupplierCertificates) -> None:
    sealer = issue(ca, "org_s1", "供应商1", tmp_path / "s1", now_ms=T0 - MIN)
    sealed = tmp_path / "bid.cms"
    sealer.seal(sealed, form(1_000_000), now_ms=T0)

    certificates.check_envelope(sealed, "org_s1", T0)  # its own: accepted
    with pytest.raises(ValidationError) as refused:
        certificates.check_envelope(sealed, "org_nobody", T0)
    assert refused.value.code == "no_encryption_certificate"
    other = issue(ca, "org_s2", "供应商2", tmp_path / "s2", now_ms=T0 - MIN)
    with pytest.raises(ValidationError) as refused:
        certificates.check_envelope(sealed, other.org_id, T0)
    assert refused.value.code == "not_a_recipient"


async def test_a_registration_naming_the_credit_code_wins_over_the_platform_certificate(
        tmp_path: Path, ca: PlatformCA, certificates: SupplierCertificates,
        registry: Registry) -> None:
    org = await registry.create_organisation("某某科技有限公司", OrgKind.SUPPLIER,
                                             size_class="small", credit_code=CREDIT_CODE,
                                             now_ms=T0)
    platform = issue(ca, org.id, "某某科技", tmp_path / "platform", now_ms=T0 - 2 * MIN)
    assert await certificates.seal_to(org.id, T0) == platform.enc_cert_pem()
    assert (await certificates.in_force(org.id, T0))["source"] == "platform"

    # Its own pair names it by the unified social credit code (OU), not by the platform's id.
    own = issue(ca, CREDIT_CODE, "某某科技", tmp_path / "own", now_ms=T0 - MIN)
    names = await certificate_names(registry, org.id)
    registered = await certificates.register(
        org.id, names, {"signing_certificate_pem": own.sign_cert_pem(),
                        "encryption_certificate_pem": own.enc_cert_pem()},
        user_id="usr_x", now_ms=T0)
    assert registered["source"] == "registered"
    assert registered["encryption"]["pem"] == certificate_pem(own.certificate("enc"))
    assert await certificates.in_force(org.id, T0 + 1) == {**registered,
                                                           "registered_at_ms": T0}
    assert await certificates.seal_to(org.id, T0) == own.enc_cert_pem()
    # Both stay usable to find the recipient of a bid: registered first, then platform.
    registered_pems = await certificates.registered_encryption(org.id)
    assert certificates.encryption_certificates(org.id, T0, registered=registered_pems) == [
        own.certificate("enc"), platform.certificate("enc")]


async def test_a_registration_must_name_the_organisation(
        tmp_path: Path, ca: PlatformCA, certificates: SupplierCertificates,
        registry: Registry) -> None:
    org = await registry.create_organisation("某某科技有限公司", OrgKind.SUPPLIER,
                                             size_class="small", now_ms=T0)
    stranger = issue(ca, "org_someone_else", "别人", tmp_path / "x", now_ms=T0 - MIN)
    fields = {"signing_certificate_pem": stranger.sign_cert_pem(),
              "encryption_certificate_pem": stranger.enc_cert_pem()}
    with pytest.raises(ValidationError) as refused:
        await certificates.register(org.id, await certificate_names(registry, org.id), fields,
                                    user_id="usr_x", now_ms=T0)
    assert (refused.value.code, refused.value.details["field"]) == (
        "certificate_not_yours", "signing_certificate_pem")
    with pytest.raises(ValidationError) as refused:
        await certificates.register(org.id, {org.id.upper()},
                                    {"signing_certificate_pem": " "}, user_id="usr_x",
                                    now_ms=T0)
    assert (refused.value.code, refused.value.details["field"]) == (
        "missing_field", "signing_certificate_pem")
    assert (await certificates.in_force(org.id, T0))["source"] == "none"


async def test_a_login_challenge_answers_once(tmp_path: Path, ca: PlatformCA,
                                              redis_client: RedisClient) -> None:
    keys: Keys = issue(ca, "org_s1", "供应商1", tmp_path / "s1", now_ms=T0 - MIN)
    challenges = LoginChallenges(redis_client, lambda: server_trust_store(tmp_path),
                                 prefix=f"test{uuid.uuid4().hex[:8]}")
    issued = await challenges.issue(T0)
    assert issued.expires_at_ms == T0 + 120_000
    signature = keys.sign_challenge(issued.challenge)

    identity = await challenges.verify(issued.challenge, signature, keys.sign_cert_pem(), T0)
    assert identity.org_id == "org_s1"
    with pytest.raises(UnauthenticatedError) as refused:
        await challenges.verify(issued.challenge, signature, keys.sign_cert_pem(), T0)
    assert refused.value.code == "invalid_challenge"

    again = await challenges.issue(T0)
    with pytest.raises(UnauthenticatedError) as refused:
        await challenges.verify(again.challenge, "not base64!", keys.sign_cert_pem(), T0)
    assert refused.value.code == "bad_signature"
    third = await challenges.issue(T0)
    with pytest.raises(UnauthenticatedError) as refused:  # the encryption certificate
        await challenges.verify(third.challenge, keys.sign_challenge(third.challenge),
                                keys.enc_cert_pem(), T0)
    assert refused.value.code == "wrong_key_usage"


async def test_ca_login_needs_a_registered_supplier_with_an_active_supplier_user(
        registry: Registry) -> None:
    def naming(org_id: str | None) -> VerifiedIdentity:
        return VerifiedIdentity(org_id=org_id, name="某某科技", serial=0xABC, fingerprint="f")

    for org_id in (None, "org_unknown"):
        with pytest.raises(UnauthenticatedError) as refused:
            await login_supplier(registry, naming(org_id), T0)
        assert refused.value.code == "unknown_organisation"
    purchaser = await registry.create_organisation("某市第一中学", OrgKind.PURCHASER, now_ms=T0)
    with pytest.raises(UnauthenticatedError) as refused:
        await login_supplier(registry, naming(purchaser.id), T0)
    assert refused.value.code == "unknown_organisation"

    supplier = await registry.create_organisation("某某科技有限公司", OrgKind.SUPPLIER,
                                                  size_class="small", now_ms=T0)
    with pytest.raises(ForbiddenError) as forbidden:
        await login_supplier(registry, naming(supplier.id), T0)
    assert forbidden.value.code == "no_supplier_user"
    disabled = await registry.create_user(supplier.id, "离职员工", [Role.SUPPLIER], T0)
    await registry.set_user_disabled(disabled.id, True)
    with pytest.raises(ForbiddenError):
        await login_supplier(registry, naming(supplier.id), T0)

    user = await registry.create_user(supplier.id, "投标专员", [Role.SUPPLIER], T0)
    login = await login_supplier(registry, naming(supplier.id), T0)
    assert (login.user.id, login.org.id) == (user.id, supplier.id)
    assert login.expires_at_ms == T0 + CA_TOKEN_TTL_MS
    principal = await registry.authenticate(login.token, T0 + CA_TOKEN_TTL_MS - 1)
    assert principal.user_id == user.id
    with pytest.raises(UnauthenticatedError):
        await registry.authenticate(login.token, T0 + CA_TOKEN_TTL_MS)
