"""The registry: organisations, users and roles, API tokens."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidroom.errors import ConflictError, NotFoundError, UnauthenticatedError, ValidationError
from market.registry import (
    ApiTokenRow,
    OrganisationRow,
    OrgKind,
    Principal,
    Registry,
    Role,
    UserRow,
)
from web.db import load_models

Sessions = async_sessionmaker[AsyncSession]

NOW = 1_767_225_600_000
# Unified social credit codes with their GB 32100 check characters (made up, not real firms).
CODE_A = "91110108MA01ABCD2H"
CODE_B = "91310000MA1FL8NH38"


@pytest.fixture
def registry(session_factory: Sessions) -> Registry:
    return Registry(session_factory)


async def supplier_org(registry: Registry, name: str = "北京某某科技有限公司") -> OrganisationRow:
    return await registry.create_organisation(name, "supplier", size_class="small", now_ms=NOW)


async def test_a_supplier_organisation_is_registered_with_its_size_class(
    registry: Registry,
) -> None:
    org = await registry.create_organisation(
        "北京某某科技有限公司",
        OrgKind.SUPPLIER,
        name_en="Beijing Something Tech",
        size_class="micro",
        credit_code=CODE_A.lower(),
        now_ms=NOW,
    )

    assert org.id.startswith("org_")
    stored = await registry.get_organisation(org.id)
    assert stored is not None
    assert (stored.name, stored.kind, stored.size_class) == (
        "北京某某科技有限公司",
        "supplier",
        "micro",
    )
    assert stored.credit_code == CODE_A
    assert await registry.get_organisation("org_missing") is None


async def test_a_supplier_without_a_size_class_is_refused(registry: Registry) -> None:
    for size in (None, "tiny"):
        with pytest.raises(ValidationError) as caught:
            await registry.create_organisation("供应商", "supplier", size_class=size, now_ms=NOW)
        assert caught.value.code == "invalid_size_class"


async def test_a_non_supplier_with_a_size_class_is_refused(registry: Registry) -> None:
    with pytest.raises(ValidationError) as caught:
        await registry.create_organisation(
            "某市财政局", "purchaser", size_class="large", now_ms=NOW
        )
    assert caught.value.code == "invalid_size_class"


async def test_an_unknown_organisation_kind_is_refused(registry: Registry) -> None:
    with pytest.raises(ValidationError) as caught:
        await registry.create_organisation("某机构", "bank", now_ms=NOW)
    assert caught.value.code == "invalid_org_kind"


async def test_an_empty_organisation_name_is_refused(registry: Registry) -> None:
    with pytest.raises(ValidationError) as caught:
        await registry.create_organisation("  ", "agency", now_ms=NOW)
    assert caught.value.code == "invalid_name"


async def test_credit_codes_are_checked_and_unique(registry: Registry) -> None:
    with pytest.raises(ValidationError) as caught:
        await registry.create_organisation("甲", "agency", credit_code="123", now_ms=NOW)
    assert caught.value.code == "invalid_credit_code"

    await registry.create_organisation("甲", "agency", credit_code=CODE_A, now_ms=NOW)
    await registry.create_organisation("乙", "agency", credit_code=CODE_B, now_ms=NOW)
    # Organisations without a code do not collide with each other.
    await registry.create_organisation("丙", "agency", now_ms=NOW)
    await registry.create_organisation("丁", "agency", now_ms=NOW)
    with pytest.raises(ConflictError) as conflict:
        await registry.create_organisation("戊", "purchaser", credit_code=CODE_A, now_ms=NOW)
    assert conflict.value.code == "credit_code_taken"


async def test_organisations_are_listed_in_order_and_by_kind(registry: Registry) -> None:
    platform = await registry.create_organisation("平台运营方", "platform", now_ms=NOW)
    supplier = await supplier_org(registry)
    bureau = await registry.create_organisation("某市财政局", "supervisor", now_ms=NOW + 1)

    # Registration time, then id for organisations registered in the same millisecond.
    assert [o.id for o in await registry.list_organisations()] == [
        *sorted([platform.id, supplier.id]),
        bureau.id,
    ]
    assert [o.id for o in await registry.list_organisations("supervisor")] == [bureau.id]
    assert [o.id for o in await registry.list_organisations(OrgKind.SUPPLIER)] == [supplier.id]


@pytest.mark.parametrize(
    ("kind", "role", "allowed"),
    [
        ("supplier", Role.SUPPLIER, True),
        ("purchaser", Role.SUPPLIER, False),
        ("purchaser", Role.PURCHASER, True),
        ("agency", Role.PURCHASER, False),
        ("agency", Role.AGENCY, True),
        ("supplier", Role.AGENCY, False),
        ("supervisor", Role.SUPERVISOR, True),
        ("purchaser", Role.SUPERVISOR, False),
        ("platform", Role.ADMIN, True),
        ("agency", Role.ADMIN, False),
        ("supplier", Role.EXPERT, True),
        ("platform", Role.EXPERT, True),
        ("supervisor", Role.EXPERT, True),
    ],
)
async def test_user_roles_must_fit_the_organisation_kind(
    registry: Registry, kind: str, role: Role, allowed: bool
) -> None:
    org = await registry.create_organisation(
        "某单位", kind, size_class="medium" if kind == "supplier" else None, now_ms=NOW
    )
    if allowed:
        user = await registry.create_user(org.id, "张三", [role], NOW)
        assert user.id.startswith("usr_")
        assert user.roles == frozenset({role})
    else:
        with pytest.raises(ValidationError) as caught:
            await registry.create_user(org.id, "张三", [role], NOW)
        assert caught.value.code == "role_not_allowed"


async def test_a_user_can_hold_several_roles(registry: Registry) -> None:
    org = await registry.create_organisation("某采购中心", "purchaser", now_ms=NOW)
    user = await registry.create_user(org.id, "李四", ["purchaser", Role.EXPERT], NOW)

    stored = await registry.get_user(user.id)
    assert stored is not None
    assert stored.roles == frozenset({Role.PURCHASER, Role.EXPERT})
    assert [u.id for u in await registry.list_users(org.id)] == [user.id]


async def test_a_user_needs_known_roles_and_an_existing_organisation(registry: Registry) -> None:
    org = await supplier_org(registry)
    for roles in ([], ["superuser"]):
        with pytest.raises(ValidationError) as caught:
            await registry.create_user(org.id, "王五", roles, NOW)
        assert caught.value.code == "invalid_role"
    with pytest.raises(NotFoundError):
        await registry.create_user("org_missing", "王五", [Role.EXPERT], NOW)


async def test_an_issued_token_authenticates_as_its_user(registry: Registry) -> None:
    org = await supplier_org(registry)
    user = await registry.create_user(org.id, "赵六", [Role.SUPPLIER], NOW)

    token, row = await registry.issue_token(user.id, label="竞价客户端", now_ms=NOW)
    principal = await registry.authenticate(token, NOW + 1)

    assert token.startswith("brt_") and len(token) > 40
    assert row.id.startswith("tok_") and row.user_id == user.id and row.label == "竞价客户端"
    assert principal == Principal(
        user_id=user.id,
        user_name="赵六",
        org_id=org.id,
        org_name="北京某某科技有限公司",
        org_kind=OrgKind.SUPPLIER,
        roles=frozenset({Role.SUPPLIER}),
    )
    assert principal.has_role(Role.SUPPLIER) and principal.has_role("supplier")
    assert not principal.has_role(Role.ADMIN)
    assert principal.has_any_role(Role.ADMIN, Role.SUPPLIER)


async def test_tokens_are_stored_only_as_hashes(
    registry: Registry, session_factory: Sessions
) -> None:
    org = await supplier_org(registry)
    user = await registry.create_user(org.id, "赵六", [Role.SUPPLIER], NOW)
    token, row = await registry.issue_token(user.id, now_ms=NOW)
    secret = token.removeprefix("brt_")

    dump: list[str] = []
    async with session_factory() as session:
        for table in load_models().sorted_tables:
            for record in (await session.execute(select(table))).all():
                dump.append(repr(tuple(record)))
    everything = "\n".join(dump)

    assert secret not in everything
    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert row.token_sha256 in everything


async def test_tokens_are_unique(registry: Registry) -> None:
    org = await supplier_org(registry)
    user = await registry.create_user(org.id, "赵六", [Role.SUPPLIER], NOW)
    tokens = {(await registry.issue_token(user.id, now_ms=NOW))[0] for _ in range(5)}
    assert len(tokens) == 5
    assert len(await registry.list_tokens(user.id)) == 5


async def test_an_unknown_or_malformed_token_is_refused(registry: Registry) -> None:
    org = await supplier_org(registry)
    user = await registry.create_user(org.id, "赵六", [Role.SUPPLIER], NOW)
    token, _ = await registry.issue_token(user.id, now_ms=NOW)

    for bad in ("", "brt_", "brt_nope", token[:-1], token + "x", token.removeprefix("brt_")):
        with pytest.raises(UnauthenticatedError) as caught:
            await registry.authenticate(bad, NOW)
        assert caught.value.code == "invalid_token"


async def test_a_revoked_token_is_refused(registry: Registry, session_factory: Sessions) -> None:
    org = await supplier_org(registry)
    user = await registry.create_user(org.id, "赵六", [Role.SUPPLIER], NOW)
    token, row = await registry.issue_token(user.id, now_ms=NOW)
    other, _ = await registry.issue_token(user.id, now_ms=NOW)

    await registry.revoke_token(row.id, NOW + 10)
    await registry.revoke_token(row.id, NOW + 20)  # idempotent: keeps the first time

    with pytest.raises(UnauthenticatedError):
        await registry.authenticate(token, NOW + 30)
    assert (await registry.authenticate(other, NOW + 30)).user_id == user.id
    async with session_factory() as session:
        stored = await session.get(ApiTokenRow, row.id)
    assert stored is not None and stored.revoked_at_ms == NOW + 10
    with pytest.raises(NotFoundError):
        await registry.revoke_token("tok_missing", NOW)


async def test_an_expired_token_is_refused(registry: Registry) -> None:
    org = await supplier_org(registry)
    user = await registry.create_user(org.id, "赵六", [Role.SUPPLIER], NOW)
    token, _ = await registry.issue_token(user.id, now_ms=NOW, expires_at_ms=NOW + 1000)

    assert (await registry.authenticate(token, NOW + 999)).user_id == user.id
    with pytest.raises(UnauthenticatedError):
        await registry.authenticate(token, NOW + 1000)


async def test_a_token_cannot_expire_in_the_past(registry: Registry) -> None:
    org = await supplier_org(registry)
    user = await registry.create_user(org.id, "赵六", [Role.SUPPLIER], NOW)
    with pytest.raises(ValidationError) as caught:
        await registry.issue_token(user.id, now_ms=NOW, expires_at_ms=NOW)
    assert caught.value.code == "invalid_expiry"
    with pytest.raises(NotFoundError):
        await registry.issue_token("usr_missing", now_ms=NOW)


async def test_a_disabled_users_tokens_are_refused(registry: Registry) -> None:
    org = await supplier_org(registry)
    user = await registry.create_user(org.id, "赵六", [Role.SUPPLIER], NOW)
    token, _ = await registry.issue_token(user.id, now_ms=NOW)

    await registry.set_user_disabled(user.id, True)

    with pytest.raises(UnauthenticatedError):
        await registry.authenticate(token, NOW + 1)
    with pytest.raises(ConflictError):
        await registry.issue_token(user.id, now_ms=NOW + 1)

    await registry.set_user_disabled(user.id, False)
    assert (await registry.authenticate(token, NOW + 2)).user_id == user.id
    stored = await registry.get_user(user.id)
    assert isinstance(stored, UserRow) and not stored.disabled
