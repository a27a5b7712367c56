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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from sqlalchemy import ColumnElement, exc, false, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from bidroom.errors import (
    ConflictError,
    NotFoundError,
    UnauthenticatedError,
    ValidationError,
)
from bidroom.stores.sql import sql_errors
from market.registry.models import (
    ApiTokenRow,
    OrganisationPersonRow,
    OrganisationRow,
    OrgKind,
    RegionRow,
    Role,
    SizeClass,
    UserRow,
    format_roles,
)
from market.registry.rules import (
    IdNumberProblem,
    PersonFact,
    PersonRole,
    Reg18Relation,
    RegionEntry,
    RegionLevel,
    RegionScope,
    RegionsProblem,
    check_credit_code,
    normalise_id_number,
    parse_regions_csv,
    person_id_hash,
    reg18_relation,
    region_ancestors,
    region_bounds,
    region_level,
    region_parent,
    viewer_scope,
)

__all__ = [
    "ROLE_ORG_KINDS",
    "TOKEN_PREFIX",
    "OrganisationDetail",
    "PersonInput",
    "Principal",
    "RegionDetail",
    "Registry",
    "hash_token",
    "new_id",
    "normalise_credit_code",
    "shipped_regions_text",
]

TOKEN_PREFIX: Final = "brt_"
_MAX_NAME = 200
_MAX_TOKEN_LEN = 256
_BUDGET_UNIT_CODE = re.compile(r"[0-9A-Za-z\-]{1,32}")
_MAX_PERSONS = 50

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
    # The organisation's region (行政区划 code), None when it has none.
    region_code: str | None = None

    @property
    def scope(self) -> RegionScope | None:
        """What this caller sees of the registries by region (``rules.viewer_scope``)."""
        return viewer_scope(
            admin=Role.ADMIN in self.roles,
            supervisor=Role.SUPERVISOR in self.roles,
            platform_org=self.org_kind is OrgKind.PLATFORM,
            org_region=self.region_code,
        )

    def has_role(self, role: Role | str) -> bool:
        return role in self.roles

    def has_any_role(self, *roles: Role | str) -> bool:
        return any(role in self.roles for role in roles)


def _invalid_token() -> UnauthenticatedError:
    # One message for every cause: the caller learns nothing about which tokens exist.
    return UnauthenticatedError(
        "the API token is invalid, expired or revoked", code="invalid_token"
    )


@dataclass(frozen=True, slots=True)
class PersonInput:
    """A person to register for an organisation. ``id_number`` is hashed at once and never
    stored; ``resident`` says it is a 居民身份证号码 (checked with its check character)."""

    role: PersonRole | str
    name: str
    id_number: str
    resident: bool = True


@dataclass(frozen=True, slots=True)
class OrganisationDetail:
    organisation: OrganisationRow
    persons: list[OrganisationPersonRow]


@dataclass(frozen=True, slots=True)
class RegionDetail:
    region: RegionRow
    ancestors: list[RegionRow]
    children: list[RegionRow]


def shipped_regions_text() -> str:
    """The subset of the region tree shipped in the package (market/registry/data/regions.csv)."""
    return resources.files("market.registry").joinpath("data/regions.csv").read_text("utf-8")


def normalise_credit_code(credit_code: object) -> str:
    """A credit code upper-cased and stripped, checked (GB 32100): ``invalid_credit_code``
    names the problem, and for a wrong 18th character the check character expected."""
    code = credit_code.strip().upper() if isinstance(credit_code, str) else ""
    problem = check_credit_code(code)
    if problem is None:
        return code
    if problem.expected is not None:
        raise ValidationError(
            f"统一社会信用代码校验位错误，应为 {problem.expected} / the check character of the "
            f"unified social credit code should be {problem.expected}, not {code[17]}",
            code="invalid_credit_code", expected_check_character=problem.expected,
        )
    raise ValidationError(
        "统一社会信用代码应为 18 位数字或大写字母（不含 I、O、S、V、Z），第 3–8 位为行政区划代码 / "
        "a unified social credit code is 18 digits or capital letters (no I, O, S, V, Z) "
        "with the region code in characters 3 to 8",
        code="invalid_credit_code",
    )


def _person_rows(persons: Sequence[PersonInput], org_id: str, now_ms: int) -> list[
        OrganisationPersonRow]:
    if len(persons) > _MAX_PERSONS:
        raise ValidationError(f"at most {_MAX_PERSONS} persons", code="invalid_person",
                              field="persons")
    rows = []
    for index, person in enumerate(persons):
        field = f"persons[{index}]"
        try:
            role = PersonRole(person.role)
        except ValueError:
            raise ValidationError(
                f"{field}.role must be one of {', '.join(r.value for r in PersonRole)}",
                code="invalid_person", field=f"{field}.role",
            ) from None
        name = _check_name(person.name, f"{field}.name")
        normalised = (
            normalise_id_number(person.id_number, resident=person.resident)
            if isinstance(person.id_number, str) else IdNumberProblem("shape")
        )
        if isinstance(normalised, IdNumberProblem):
            # The message never repeats the number.
            raise ValidationError(
                f"{field}.id_number is not a valid identity document number"
                + (f" (the check character should be {normalised.expected})"
                   if normalised.expected else ""),
                code="invalid_id_number", field=f"{field}.id_number",
            )
        rows.append(OrganisationPersonRow(
            id=new_id("per"), org_id=org_id, role=str(role), name=name,
            id_hash=person_id_hash(normalised, resident=person.resident), created_at_ms=now_ms,
            position=index,
        ))
    return rows


def _within(column: InstrumentedAttribute[Any], scope: str) -> ColumnElement[bool]:
    low, high = region_bounds(scope)
    return column.between(low, high)


def _region_filter(scope: RegionScope, within: str | None) -> list[ColumnElement[bool]]:
    """SQL conditions equivalent to ``scope.sees(region) and region inside within``
    (``rules.region_bounds``: the range is ``region_contains`` for stored codes)."""
    conditions: list[ColumnElement[bool]] = []
    if not scope.platform_wide:
        if scope.region is None:
            return [false()]
        conditions.append(_within(OrganisationRow.region_code, scope.region))
    if within is not None:
        conditions.append(_within(OrganisationRow.region_code, within))
    return conditions


def _like_pattern(text: str) -> str:
    """``%text%`` for LIKE with backslash as the escape character."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


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
        region_code: str | None = None,
        level: RegionLevel | str | None = None,
        budget_unit_code: str | None = None,
        persons: Sequence[PersonInput] = (),
        now_ms: int,
    ) -> OrganisationRow:
        """Register an organisation (one transaction: the organisation and its persons, or
        nothing). A supplier needs a size class (``invalid_size_class``); other kinds must
        have none. A credit code, if given, passes the GB 32100 check (``invalid_credit_code``)
        and is unique (``credit_code_taken``). A region, if given, is in the region tree
        (``invalid_region``, ``region_not_found``). Only a purchasing unit has a budget unit
        code (unique in its region: ``budget_unit_code_taken``) and a level, which defaults to
        its region's level and cannot be below it (``invalid_level``). Persons:
        ``invalid_person``, ``invalid_id_number``."""
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
        code = None if credit_code is None else normalise_credit_code(credit_code)
        region_lvl: RegionLevel | None = None
        if region_code is not None:
            region_lvl = region_level(region_code) if isinstance(region_code, str) else None
            if region_lvl is None:
                raise ValidationError(
                    f"{region_code!r} is not a six-digit 行政区划 code (province XX0000, city "
                    "XXXX00, county XXXXXX)", code="invalid_region", field="region_code",
                )
        unit_level: RegionLevel | None = None
        budget: str | None = None
        if org_kind is OrgKind.PURCHASER:
            if level is not None:
                try:
                    unit_level = RegionLevel(level)
                except ValueError:
                    raise ValidationError("level is province, city or county",
                                          code="invalid_level", field="level") from None
            unit_level = unit_level or region_lvl
            order = list(RegionLevel)
            if unit_level is not None and region_lvl is not None and (
                order.index(unit_level) > order.index(region_lvl)
            ):
                raise ValidationError(
                    f"a {unit_level}-level unit cannot belong to the {region_lvl} {region_code}",
                    code="invalid_level", field="level",
                )
            if budget_unit_code is not None:
                if not isinstance(budget_unit_code, str) or not _BUDGET_UNIT_CODE.fullmatch(
                        budget_unit_code.strip()):
                    raise ValidationError(
                        "预算单位编码 is 1 to 32 digits, letters or hyphens",
                        code="invalid_budget_unit_code", field="budget_unit_code",
                    )
                budget = budget_unit_code.strip()
        elif level is not None or budget_unit_code is not None:
            raise ValidationError(
                f"only purchasing units have a level and a budget unit code, not a {org_kind}",
                code="invalid_level" if level is not None else "invalid_budget_unit_code",
            )
        row = OrganisationRow(
            id=new_id("org"),
            name=name,
            name_en=name_en.strip(),
            kind=str(org_kind),
            size_class=None if size is None else str(size),
            credit_code=code,
            created_at_ms=now_ms,
            region_code=region_code,
            level=None if unit_level is None else str(unit_level),
            budget_unit_code=budget,
        )
        person_rows = _person_rows(persons, row.id, now_ms)
        with sql_errors("create organisation"):
            try:
                async with self._sessions() as session, session.begin():
                    if region_code is not None and await session.get(
                            RegionRow, region_code) is None:
                        raise NotFoundError(
                            f"region {region_code} is not in the region tree",
                            code="region_not_found", region_code=region_code,
                        )
                    if budget is not None and (await session.scalars(
                        select(OrganisationRow.id).where(
                            OrganisationRow.budget_unit_code == budget,
                            OrganisationRow.region_code == region_code,
                        )
                    )).first() is not None:
                        raise ConflictError(
                            f"budget unit code {budget} is taken in region {region_code}",
                            code="budget_unit_code_taken",
                        )
                    session.add(row)
                    await session.flush()
                    session.add_all(person_rows)
            except exc.IntegrityError as error:
                raise ConflictError(
                    "an organisation with this credit code exists", code="credit_code_taken"
                ) from error
        return row

    async def get_organisation(self, org_id: str) -> OrganisationRow | None:
        with sql_errors("get organisation"):
            async with self._sessions() as session:
                return await session.get(OrganisationRow, org_id)

    async def get_organisation_detail(self, org_id: str) -> OrganisationDetail | None:
        """An organisation with its registered persons (in registration order)."""
        with sql_errors("get organisation"):
            async with self._sessions() as session:
                org = await session.get(OrganisationRow, org_id)
                if org is None:
                    return None
                persons = list((await session.scalars(
                    select(OrganisationPersonRow)
                    .where(OrganisationPersonRow.org_id == org_id)
                    .order_by(OrganisationPersonRow.created_at_ms, OrganisationPersonRow.position,
                              OrganisationPersonRow.id)
                )).all())
        return OrganisationDetail(org, persons)

    async def list_organisations(
        self,
        kind: OrgKind | str | None = None,
        *,
        scope: RegionScope | None = None,
        within: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[OrganisationRow]:
        """Organisations in registration order, optionally of one kind; with ``scope``, only
        those the scope sees (``rules.may_see``), and with ``within``, only those in that
        region's subtree; ``limit``/``offset`` page in SQL (a province holds 200,000)."""
        stmt = select(OrganisationRow).order_by(OrganisationRow.created_at_ms, OrganisationRow.id)
        if kind is not None:
            stmt = stmt.where(OrganisationRow.kind == str(kind))
        if scope is not None or within is not None:
            stmt = stmt.where(*_region_filter(scope or RegionScope(True, None), within))
        if limit is not None:
            stmt = stmt.offset(offset).limit(limit)
        with sql_errors("list organisations"):
            async with self._sessions() as session:
                return list((await session.scalars(stmt)).all())

    async def reg18_relation(self, org_a: str, org_b: str) -> Reg18Relation | None:
        """Whether two organisations are related under Reg 18 (``rules.reg18_relation``), by
        the persons they registered."""
        stmt = select(OrganisationPersonRow).where(
            OrganisationPersonRow.org_id.in_((org_a, org_b)))
        with sql_errors("read persons"):
            async with self._sessions() as session:
                rows = list((await session.scalars(stmt)).all())

        def facts(org_id: str) -> list[PersonFact]:
            return [PersonFact(PersonRole(r.role), r.id_hash) for r in rows if r.org_id == org_id]

        return reg18_relation(facts(org_a), facts(org_b))

    # ------------------------------------------------------------------ regions

    async def import_regions(self, entries: Sequence[RegionEntry]) -> tuple[int, int]:
        """Add or rename regions, one transaction: ``(created, updated)``. A region whose
        parent (derived from its code) is neither in the list nor in the tree is refused
        (``region_parent_missing``) and nothing is written."""
        codes = {e.code for e in entries}
        for entry in entries:
            if region_level(entry.code) is None:
                raise ValidationError(f"{entry.code!r} is not a six-digit 行政区划 code",
                                      code="invalid_region", region_code=entry.code)
            _check_name(entry.name, "name")
        created = updated = 0
        with sql_errors("import regions"):
            async with self._sessions() as session, session.begin():
                parents = {region_parent(e.code) for e in entries} - codes - {None}
                known_parents = set((await session.scalars(
                    select(RegionRow.code).where(RegionRow.code.in_(parents))
                )).all()) if parents else set()
                known = {r.code: r for r in (await session.scalars(
                    select(RegionRow).where(RegionRow.code.in_(codes)))).all()}
                for entry in entries:
                    parent = region_parent(entry.code)
                    if parent is not None and parent not in codes and parent not in known_parents:
                        raise ValidationError(
                            f"the parent {parent} of {entry.code} is not in the region tree",
                            code="region_parent_missing", region_code=entry.code, parent=parent,
                        )
                    row = known.get(entry.code)
                    name = entry.name.strip()
                    if row is None:
                        level = region_level(entry.code)
                        assert level is not None
                        session.add(RegionRow(code=entry.code, name=name,
                                              name_en=(entry.name_en or "").strip(),
                                              level=str(level)))
                        created += 1
                        continue
                    name_en = row.name_en if entry.name_en is None else entry.name_en.strip()
                    if (row.name, row.name_en) != (name, name_en):
                        row.name, row.name_en = name, name_en
                        updated += 1
        return created, updated

    async def import_regions_csv(self, text: str) -> tuple[int, int]:
        """``import_regions`` from a file in the import format (``invalid_regions_file``)."""
        parsed = parse_regions_csv(text)
        if isinstance(parsed, RegionsProblem):
            raise ValidationError(f"line {parsed.line}: {parsed.reason}",
                                  code="invalid_regions_file", line=parsed.line)
        return await self.import_regions(parsed)

    async def get_region(self, code: str) -> RegionDetail | None:
        """A region with its ancestors (province first) and children (by code)."""
        if region_level(code) is None:
            return None
        chain = region_ancestors(code)
        with sql_errors("get region"):
            async with self._sessions() as session:
                row = await session.get(RegionRow, code)
                if row is None:
                    return None
                ancestors = list((await session.scalars(
                    select(RegionRow).where(RegionRow.code.in_(chain)).order_by(RegionRow.code)
                )).all()) if chain else []
                children = await self._children(session, code)
        return RegionDetail(row, ancestors, children)

    async def list_regions(
        self, parent: str | None = None, query: str | None = None
    ) -> list[RegionRow]:
        """The children of ``parent`` (None: the provinces), or with ``query``, every region
        whose name or code contains it; by code."""
        with sql_errors("list regions"):
            async with self._sessions() as session:
                if query is not None:
                    pattern = _like_pattern(query)
                    stmt = select(RegionRow).where(or_(
                        RegionRow.name.like(pattern, escape="\\"),
                        RegionRow.name_en.ilike(pattern, escape="\\"),
                        RegionRow.code.like(pattern, escape="\\"),
                    ))
                    if parent is not None:
                        stmt = stmt.where(_within(RegionRow.code, parent))
                    return list((await session.scalars(stmt.order_by(RegionRow.code))).all())
                if parent is None:
                    return list((await session.scalars(
                        select(RegionRow).where(RegionRow.level == str(RegionLevel.PROVINCE))
                        .order_by(RegionRow.code))).all())
                return await self._children(session, parent)

    @staticmethod
    async def _children(session: AsyncSession, code: str) -> list[RegionRow]:
        level = region_level(code)
        if level is None or level is RegionLevel.COUNTY:
            return []
        below = RegionLevel.CITY if level is RegionLevel.PROVINCE else RegionLevel.COUNTY
        stmt = select(RegionRow).where(
            _within(RegionRow.code, code), RegionRow.level == str(below),
        )
        return list((await session.scalars(stmt.order_by(RegionRow.code))).all())

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

    async def get_token(self, token_id: str) -> ApiTokenRow | None:
        with sql_errors("get token"):
            async with self._sessions() as session:
                return await session.get(ApiTokenRow, token_id)

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
            region_code=org.region_code,
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
