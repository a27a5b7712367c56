"""The registry service: create organisations and users, issue and check API tokens.

``Registry.authenticate`` turns a bearer token into a ``Principal`` (who is calling, for which
organisation, with which roles); everything above it authorises against that. A token's
plaintext (``brt_…``) is returned once by ``issue_token`` and never stored: the table keeps its
SHA-256 only, so a database leak yields no usable credential.

Must not import: web.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import exc, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidroom.errors import (
    ConflictError,
    NotFoundError,
    UnauthenticatedError,
    ValidationError,
)
from bidroom.stores.sql import sql_errors
from market.registry.models import (
    ApiTokenRow,
    OrganisationRow,
    OrgKind,
    Role,
    SizeClass,
    UserRow,
    format_roles,
)

__all__ = [
    "ROLE_ORG_KINDS",
    "TOKEN_PREFIX",
    "Principal",
    "Registry",
    "hash_token",
    "new_id",
]

TOKEN_PREFIX: Final = "brt_"
_MAX_NAME = 200
_MAX_TOKEN_LEN = 256
# 统一社会信用代码: 18 characters from digits and upper-case letters without I, O, Z, S, V.
_CREDIT_CODE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}")

# Which kinds of organisation a user with a role may belong to (None: any kind).
ROLE_ORG_KINDS: Final[dict[Role, frozenset[OrgKind] | None]] = {
    Role.SUPPLIER: frozenset({OrgKind.SUPPLIER}),
    Role.PURCHASER: frozenset({OrgKind.PURCHASER}),
    Role.AGENCY: frozenset({OrgKind.AGENCY}),
    Role.SUPERVISOR: frozenset({OrgKind.SUPERVISOR}),
    Role.ADMIN: frozenset({OrgKind.PLATFORM}),
    Role.EXPERT: None,
}


def new_id(prefix: str) -> str:
    """A fresh random id such as ``org_3f2a…`` (128 bits)."""
    return f"{prefix}_{secrets.token_hex(16)}"


def hash_token(token: str) -> str:
    """The stored form of a token: the SHA-256 hex of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a user acting for an organisation."""

    user_id: str
    user_name: str
    org_id: str
    org_name: str
    org_kind: OrgKind
    roles: frozenset[Role]

    def has_role(self, role: Role | str) -> bool:
        return role in self.roles

    def has_any_role(self, *roles: Role | str) -> bool:
        return any(role in self.roles for role in roles)


def _invalid_token() -> UnauthenticatedError:
    # One message for every cause: the caller learns nothing about which tokens exist.
    return UnauthenticatedError(
        "the API token is invalid, expired or revoked", code="invalid_token"
    )


def _check_name(name: object, field: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME:
        raise ValidationError(
            f"{field} must be 1 to {_MAX_NAME} characters", code="invalid_name", field=field
        )
    return name.strip()


class Registry:
    """Organisations, users and tokens. Each method runs in its own short transaction."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    # ------------------------------------------------------------------ organisations

    async def create_organisation(
        self,
        name: str,
        kind: OrgKind | str,
        *,
        name_en: str = "",
        size_class: SizeClass | str | None = None,
        credit_code: str | None = None,
        now_ms: int,
    ) -> OrganisationRow:
        """Register an organisation. A supplier needs a size class (``invalid_size_class``);
        other kinds must have none. A credit code, if given, is 18 characters and unique
        (``invalid_credit_code``, ``credit_code_taken``)."""
        name = _check_name(name, "name")
        if not isinstance(name_en, str) or len(name_en) > _MAX_NAME:
            raise ValidationError("name_en is too long", code="invalid_name", field="name_en")
        try:
            org_kind = OrgKind(kind)
        except ValueError:
            raise ValidationError(
                f"unknown organisation kind {kind!r}", code="invalid_org_kind", kind=str(kind)
            ) from None
        size: SizeClass | None = None
        if org_kind is OrgKind.SUPPLIER:
            try:
                size = SizeClass(size_class) if size_class is not None else None
            except ValueError:
                size = None
            if size is None:
                raise ValidationError(
                    "a supplier needs a size class: large, medium, small or micro",
                    code="invalid_size_class",
                )
        elif size_class is not None:
            raise ValidationError(
                f"only suppliers have a size class, not a {org_kind}", code="invalid_size_class"
            )
        code: str | None = None
        if credit_code is not None:
            code = credit_code.strip().upper() if isinstance(credit_code, str) else ""
            if not _CREDIT_CODE.fullmatch(code):
                raise ValidationError(
                    "a unified social credit code is 18 digits or capital letters",
                    code="invalid_credit_code",
                )
        row = OrganisationRow(
            id=new_id("org"),
            name=name,
            name_en=name_en.strip(),
            kind=str(org_kind),
            size_class=None if size is None else str(size),
            credit_code=code,
            created_at_ms=now_ms,
        )
        with sql_errors("create organisation"):
            try:
                async with self._sessions() as session, session.begin():
                    session.add(row)
            except exc.IntegrityError as error:
                raise ConflictError(
                    "an organisation with this credit code exists", code="credit_code_taken"
                ) from error
        return row

    async def get_organisation(self, org_id: str) -> OrganisationRow | None:
        with sql_errors("get organisation"):
            async with self._sessions() as session:
                return await session.get(OrganisationRow, org_id)

    async def list_organisations(self, kind: OrgKind | str | None = None) -> list[OrganisationRow]:
        """Organisations in registration order, optionally of one kind."""
        stmt = select(OrganisationRow).order_by(OrganisationRow.created_at_ms, OrganisationRow.id)
        if kind is not None:
            stmt = stmt.where(OrganisationRow.kind == str(kind))
        with sql_errors("list organisations"):
            async with self._sessions() as session:
                return list((await session.scalars(stmt)).all())

    # ------------------------------------------------------------------ users

    async def create_user(
        self, org_id: str, name: str, roles: Iterable[Role | str], now_ms: int
    ) -> UserRow:
        """Register a user of an organisation with at least one role; each role must fit the
        organisation's kind (``role_not_allowed``), see ``ROLE_ORG_KINDS``."""
        name = _check_name(name, "name")
        wanted: set[Role] = set()
        for role in roles:
            try:
                wanted.add(Role(role))
            except ValueError:
                raise ValidationError(
                    f"unknown role {role!r}", code="invalid_role", role=str(role)
                ) from None
        if not wanted:
            raise ValidationError("a user needs at least one role", code="invalid_role")
        with sql_errors("create user"):
            async with self._sessions() as session, session.begin():
                org = await session.get(OrganisationRow, org_id)
                if org is None:
                    raise NotFoundError(
                        f"organisation {org_id} not found",
                        code="organisation_not_found",
                        org_id=org_id,
                    )
                kind = OrgKind(org.kind)
                for role in sorted(wanted):
                    allowed = ROLE_ORG_KINDS[role]
                    if allowed is not None and kind not in allowed:
                        raise ValidationError(
                            f"role {role} is not allowed in a {kind} organisation",
                            code="role_not_allowed",
                            role=str(role),
                            org_kind=str(kind),
                        )
                row = UserRow(
                    id=new_id("usr"),
                    org_id=org_id,
                    name=name,
                    roles_csv=format_roles(wanted),
                    created_at_ms=now_ms,
                    disabled=False,
                )
                session.add(row)
        return row

    async def get_user(self, user_id: str) -> UserRow | None:
        with sql_errors("get user"):
            async with self._sessions() as session:
                return await session.get(UserRow, user_id)

    async def list_users(self, org_id: str) -> list[UserRow]:
        stmt = (
            select(UserRow)
            .where(UserRow.org_id == org_id)
            .order_by(UserRow.created_at_ms, UserRow.id)
        )
        with sql_errors("list users"):
            async with self._sessions() as session:
                return list((await session.scalars(stmt)).all())

    async def set_user_disabled(self, user_id: str, disabled: bool) -> None:
        """Disable (or re-enable) a user: a disabled user's tokens stop authenticating."""
        with sql_errors("disable user"):
            async with self._sessions() as session, session.begin():
                user = await session.get(UserRow, user_id)
                if user is None:
                    raise _user_not_found(user_id)
                user.disabled = disabled

    # ------------------------------------------------------------------ tokens

    async def issue_token(
        self,
        user_id: str,
        *,
        label: str = "",
        now_ms: int,
        expires_at_ms: int | None = None,
    ) -> tuple[str, ApiTokenRow]:
        """A new API token for a user: ``(plaintext, row)``. The plaintext is shown once."""
        if not isinstance(label, str) or len(label) > _MAX_NAME:
            raise ValidationError("the label is too long", code="invalid_label")
        if expires_at_ms is not None and expires_at_ms <= now_ms:
            raise ValidationError("a token must expire in the future", code="invalid_expiry")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiTokenRow(
            id=new_id("tok"),
            user_id=user_id,
            token_sha256=hash_token(token),
            label=label,
            created_at_ms=now_ms,
            expires_at_ms=expires_at_ms,
            revoked_at_ms=None,
        )
        with sql_errors("issue token"):
            async with self._sessions() as session, session.begin():
                user = await session.get(UserRow, user_id)
                if user is None:
                    raise _user_not_found(user_id)
                if user.disabled:
                    raise ConflictError(f"user {user_id} is disabled", code="user_disabled")
                session.add(row)
        return token, row

    async def list_tokens(self, user_id: str) -> list[ApiTokenRow]:
        stmt = (
            select(ApiTokenRow)
            .where(ApiTokenRow.user_id == user_id)
            .order_by(ApiTokenRow.created_at_ms, ApiTokenRow.id)
        )
        with sql_errors("list tokens"):
            async with self._sessions() as session:
                return list((await session.scalars(stmt)).all())

    async def authenticate(self, token: str, now_ms: int) -> Principal:
        """The principal a bearer token stands for; ``UnauthenticatedError`` (``invalid_token``)
        when it is unknown, revoked, expired, or its user is disabled."""
        if (
            not isinstance(token, str)
            or not token.startswith(TOKEN_PREFIX)
            or len(token) > _MAX_TOKEN_LEN
        ):
            raise _invalid_token()
        digest = hash_token(token)
        stmt = (
            select(ApiTokenRow, UserRow, OrganisationRow)
            .join(UserRow, UserRow.id == ApiTokenRow.user_id)
            .join(OrganisationRow, OrganisationRow.id == UserRow.org_id)
            .where(ApiTokenRow.token_sha256 == digest)
        )
        with sql_errors("authenticate"):
            async with self._sessions() as session:
                found = (await session.execute(stmt)).first()
        if found is None:
            raise _invalid_token()
        token_row, user, org = found
        if not hmac.compare_digest(token_row.token_sha256.encode(), digest.encode()):
            raise _invalid_token()
        if token_row.revoked_at_ms is not None:
            raise _invalid_token()
        if token_row.expires_at_ms is not None and token_row.expires_at_ms <= now_ms:
            raise _invalid_token()
        if user.disabled:
            raise _invalid_token()
        return Principal(
            user_id=user.id,
            user_name=user.name,
            org_id=org.id,
            org_name=org.name,
            org_kind=OrgKind(org.kind),
            roles=user.roles,
        )

    async def revoke_token(self, token_id: str, now_ms: int) -> None:
        """Revoke a token (idempotent: a second revoke keeps the first time).
        Unknown id: ``NotFoundError`` (``token_not_found``)."""
        with sql_errors("revoke token"):
            async with self._sessions() as session, session.begin():
                if await session.get(ApiTokenRow, token_id) is None:
                    raise NotFoundError(
                        f"token {token_id} not found", code="token_not_found", token_id=token_id
                    )
                await session.execute(
                    update(ApiTokenRow)
                    .where(ApiTokenRow.id == token_id, ApiTokenRow.revoked_at_ms.is_(None))
                    .values(revoked_at_ms=now_ms)
                )


def _user_not_found(user_id: str) -> NotFoundError:
    return NotFoundError(f"user {user_id} not found", code="user_not_found", user_id=user_id)
