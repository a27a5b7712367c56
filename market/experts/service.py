"""The expert registry's use cases, one transaction each: register an expert, change their
status, declare their unavailable days, link the registry user who signs in as them; read one,
list them, find the expert of a user, and the ``candidates`` a panel is drawn from with every
fact a conflict check (回避, EXP 16; Reg 9) needs.

Who may do what: an administrator registers and manages the experts of its region and below
(``market.registry.rules.viewer_scope``; the platform's administrator everywhere); a
supervisor of a region reads them; the expert (the linked user, role ``expert``) reads their
own record and declares their own unavailability. An expert out of sight answers exactly as a
missing one (``expert_not_found``).

ID numbers (the expert's, a relative's) are hashed at once (``person_id_hash``) and never
stored. Events (the outbox, aggregate ``expert:<id>``): ``expert.registered``,
``expert.status_changed``, ``expert.user_linked`` — none carries a hash.

Must not import: web.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from bidroom.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from bidroom.stores.sql import sql_errors
from market.catalog.models import CategoryRow
from market.catalog.rules import valid_category_code
from market.events.outbox import emit
from market.experts.rules import (
    AffiliationKind,
    DayRange,
    ExpertStatus,
    RelationKind,
    available_on,
    check_transition,
    covers,
    parse_day,
    parse_range,
)
from market.experts.store import (
    AffiliationRow,
    ExpertRow,
    RelationRow,
    SpecialtyRow,
    UnavailabilityRow,
)
from market.registry import Principal, Role, UserRow, normalise_credit_code
from market.registry.rules import (
    IdNumberProblem,
    normalise_id_number,
    person_id_hash,
    region_bounds,
    region_level,
)

__all__ = ["Affiliation", "AffiliationInput", "Candidate", "ExpertService", "ExpertView",
           "Relation", "RelationInput"]

MAX_SPECIALTIES: Final = 20
MAX_ENTRIES: Final = 50  # affiliations, relations, unavailable ranges: each


@dataclass(frozen=True, slots=True)
class AffiliationInput:
    """An employment, directorship or control to declare: an organisation by its registry id,
    its credit code, or both (a name alone for one not registered, with a credit code)."""

    kind: str
    from_day: str
    until_day: str | None = None
    org_id: str | None = None
    credit_code: str | None = None
    org_name: str | None = None


@dataclass(frozen=True, slots=True)
class RelationInput:
    """A relation to declare: ``relative`` of a person (their ``id_number``, hashed at once:
    e.g. the spouse of a supplier's legal representative) or ``organisation`` (a named
    relation to an organisation by id or credit code)."""

    kind: str
    relation: str
    id_number: str | None = None
    resident: bool = True
    org_id: str | None = None
    credit_code: str | None = None


@dataclass(frozen=True, slots=True)
class Affiliation:
    kind: AffiliationKind
    org_id: str | None
    credit_code: str | None
    org_name: str | None
    from_day: date
    until_day: date | None  # None: current


@dataclass(frozen=True, slots=True)
class Relation:
    kind: RelationKind
    relation: str
    person_id_hash: str | None
    org_id: str | None
    credit_code: str | None


@dataclass(frozen=True, slots=True)
class Candidate:
    """An expert as a conflict check and a draw read them: everything declared, with dates."""

    expert_id: str
    name: str
    region_code: str
    id_hash: str
    user_id: str | None
    specialties: tuple[str, ...]
    affiliations: tuple[Affiliation, ...]
    relations: tuple[Relation, ...]
    unavailable: tuple[DayRange, ...]


@dataclass(frozen=True, slots=True)
class ExpertView:
    expert: ExpertRow
    facts: Candidate


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError(f"{field}: {message}", code="invalid_field", field=field)


def _text(value: object, field: str, limit: int = 200) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > limit:
        raise _invalid(field, f"1–{limit} 个字符 / 1 to {limit} characters")
    return text


def _not_found() -> NotFoundError:
    return NotFoundError("没有这位专家 / no such expert", code="expert_not_found")


def _id_hash(raw: object, resident: bool, field: str) -> str:
    number = (normalise_id_number(raw, resident=resident) if isinstance(raw, str)
              else IdNumberProblem("shape"))
    if isinstance(number, IdNumberProblem):
        raise ValidationError(f"{field} is not a valid identity document number",
                              code="invalid_id_number", field=field)
    return person_id_hash(number, resident=resident)


def _org_ref(org_id: object, credit_code: object, field: str) -> tuple[str | None, str | None]:
    oid = org_id.strip() if isinstance(org_id, str) and org_id.strip() else None
    if oid is not None and len(oid) > 64:
        raise _invalid(f"{field}.org_id", "at most 64 characters")
    code = normalise_credit_code(credit_code) if credit_code is not None else None
    if oid is None and code is None:
        raise ValidationError(f"{field}: an org_id or a credit_code", code="missing_field",
                              field=f"{field}.org_id")
    return oid, code


def _range(start: object, end: object, field: str) -> DayRange:
    r = parse_range(start, end)
    if r is None:
        raise ValidationError(f"{field}: YYYY-MM-DD days, the end not before the start",
                              code="invalid_date_range", field=field)
    return r


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _affiliation_rows(items: Sequence[AffiliationInput]) -> list[AffiliationRow]:
    if len(items) > MAX_ENTRIES:
        raise _invalid("affiliations", f"at most {MAX_ENTRIES}")
    rows = []
    for i, item in enumerate(items):
        field = f"affiliations[{i}]"
        if item.kind not in set(AffiliationKind):
            raise _invalid(f"{field}.kind", "employment, directorship or control")
        oid, code = _org_ref(item.org_id, item.credit_code, field)
        r = _range(item.from_day, item.until_day, field)
        name = None if item.org_name is None else _text(item.org_name, f"{field}.org_name")
        rows.append(AffiliationRow(kind=item.kind, org_id=oid, credit_code=code, org_name=name,
                                   from_day=r.start.isoformat(), until_day=_iso(r.end)))
    return rows


def _relation_rows(items: Sequence[RelationInput]) -> list[RelationRow]:
    if len(items) > MAX_ENTRIES:
        raise _invalid("relations", f"at most {MAX_ENTRIES}")
    rows = []
    for i, item in enumerate(items):
        field = f"relations[{i}]"
        relation = _text(item.relation, f"{field}.relation", 100)
        if item.kind == RelationKind.RELATIVE:
            rows.append(RelationRow(kind=item.kind, relation=relation,
                                    person_id_hash=_id_hash(item.id_number, item.resident,
                                                            f"{field}.id_number")))
        elif item.kind == RelationKind.ORGANISATION:
            oid, code = _org_ref(item.org_id, item.credit_code, field)
            rows.append(RelationRow(kind=item.kind, relation=relation, org_id=oid,
                                    credit_code=code))
        else:
            raise _invalid(f"{field}.kind", "relative or organisation")
    return rows


def _facts(row: ExpertRow, specialties: Sequence[SpecialtyRow],
           affiliations: Sequence[AffiliationRow], relations: Sequence[RelationRow],
           unavailable: Sequence[UnavailabilityRow]) -> Candidate:
    def day(text: str | None) -> date | None:
        return None if text is None else parse_day(text)

    return Candidate(
        expert_id=row.id, name=row.name, region_code=row.region_code, id_hash=row.id_hash,
        user_id=row.user_id,
        specialties=tuple(sorted(s.category_code for s in specialties)),
        affiliations=tuple(
            Affiliation(AffiliationKind(a.kind), a.org_id, a.credit_code, a.org_name,
                        date.fromisoformat(a.from_day), day(a.until_day))
            for a in sorted(affiliations, key=lambda a: (a.from_day, a.id or 0))),
        relations=tuple(
            Relation(RelationKind(r.kind), r.relation, r.person_id_hash, r.org_id, r.credit_code)
            for r in sorted(relations, key=lambda r: r.id or 0)),
        unavailable=tuple(
            DayRange(date.fromisoformat(u.from_day), date.fromisoformat(u.until_day))
            for u in sorted(unavailable, key=lambda u: u.from_day)),
    )


async def _load(session: AsyncSession, rows: Sequence[ExpertRow]) -> list[Candidate]:
    ids = [r.id for r in rows]
    if not ids:
        return []
    spec: dict[str, list[SpecialtyRow]] = {i: [] for i in ids}
    aff: dict[str, list[AffiliationRow]] = {i: [] for i in ids}
    rel: dict[str, list[RelationRow]] = {i: [] for i in ids}
    una: dict[str, list[UnavailabilityRow]] = {i: [] for i in ids}
    for s in await session.scalars(select(SpecialtyRow).where(SpecialtyRow.expert_id.in_(ids))):
        spec[s.expert_id].append(s)
    for a in await session.scalars(select(AffiliationRow).where(
            AffiliationRow.expert_id.in_(ids))):
        aff[a.expert_id].append(a)
    for r in await session.scalars(select(RelationRow).where(RelationRow.expert_id.in_(ids))):
        rel[r.expert_id].append(r)
    for u in await session.scalars(select(UnavailabilityRow).where(
            UnavailabilityRow.expert_id.in_(ids))):
        una[u.expert_id].append(u)
    return [_facts(r, spec[r.id], aff[r.id], rel[r.id], una[r.id]) for r in rows]


def _admin_in_scope(principal: Principal, region: str) -> None:
    scope = principal.scope
    if Role.ADMIN not in principal.roles or scope is None:
        raise ForbiddenError("只有管理员管理专家库 / only an administrator manages the experts",
                             code="role_required")
    if not scope.sees(region):
        raise ForbiddenError("专家不在本区划 / the expert is outside the caller's region",
                             code="region_out_of_scope", region_code=region)


class ExpertService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *,
                 now_ms: Callable[[], Awaitable[int]]) -> None:
        self._sessions = sessions
        self._now_ms = now_ms

    async def register(self, principal: Principal, *, name: str, id_number: str,
                       region_code: str, specialties: Sequence[str], resident: bool = True,
                       affiliations: Sequence[AffiliationInput] = (),
                       relations: Sequence[RelationInput] = ()) -> ExpertView:
        """An expert of a region within the administrator's; active at once. Refused:
        ``role_required``, ``region_out_of_scope``, ``invalid_region``, ``invalid_id_number``,
        ``category_not_found``, ``expert_already_registered`` (the same ID number)."""
        if not isinstance(region_code, str) or region_level(region_code) is None:
            raise ValidationError("行政区划代码为6位数字 / a region code is six digits",
                                  code="invalid_region", field="region_code")
        _admin_in_scope(principal, region_code)
        title = _text(name, "name")
        id_hash = _id_hash(id_number, resident, "id_number")
        codes = sorted({c.strip().upper() for c in specialties if isinstance(c, str)})
        if not codes or len(codes) > MAX_SPECIALTIES or len(codes) != len(specialties):
            raise _invalid("specialties", f"1–{MAX_SPECIALTIES} distinct category codes")
        aff_rows = _affiliation_rows(affiliations)
        rel_rows = _relation_rows(relations)
        now = await self._now_ms()
        row = ExpertRow(id=f"E{uuid.uuid4().hex[:15]}", name=title, id_hash=id_hash,
                        region_code=region_code, status=ExpertStatus.ACTIVE.value,
                        status_reason=None, user_id=None, created_by=principal.user_id,
                        created_at_ms=now, updated_at_ms=now)
        try:
            with sql_errors("register an expert"):
                async with self._sessions.begin() as session:
                    for code in codes:
                        if not valid_category_code(code) or await session.get(CategoryRow,
                                                                              code) is None:
                            raise NotFoundError(f"category {code} not found",
                                                code="category_not_found", category=code)
                    taken = await session.scalar(select(ExpertRow.id).where(
                        ExpertRow.id_hash == id_hash))
                    if taken is not None:
                        raise _already_registered()
                    session.add(row)
                    await session.flush()
                    spec_rows = [SpecialtyRow(expert_id=row.id, category_code=c) for c in codes]
                    for a in aff_rows:
                        a.expert_id = row.id
                    for r in rel_rows:
                        r.expert_id = row.id
                    session.add_all([*spec_rows, *aff_rows, *rel_rows])
                    emit(session, "expert.registered", f"expert:{row.id}",
                         {"region_code": region_code, "specialties": codes}, at_ms=now)
                    await session.flush()
                    facts = _facts(row, spec_rows, aff_rows, rel_rows, [])
        except ConflictError as exc:  # a concurrent registration of the same person
            if exc.code == "integrity_conflict":
                raise _already_registered() from exc
            raise
        return ExpertView(row, facts)

    async def _visible(self, session: AsyncSession, principal: Principal,
                       expert_id: str) -> ExpertRow:
        row = await session.get(ExpertRow, expert_id) if isinstance(expert_id, str) else None
        if row is None:
            raise _not_found()
        scope = principal.scope
        if row.user_id == principal.user_id and Role.EXPERT in principal.roles:
            return row
        if scope is None or not scope.sees(row.region_code):
            raise _not_found()
        return row

    async def _view(self, session: AsyncSession, row: ExpertRow) -> ExpertView:
        return ExpertView(row, (await _load(session, [row]))[0])

    async def get(self, principal: Principal, expert_id: str) -> ExpertView:
        with sql_errors("read an expert"):
            async with self._sessions() as session:
                row = await self._visible(session, principal, expert_id)
                return await self._view(session, row)

    async def update_status(self, principal: Principal, expert_id: str, status: str,
                            reason: str | None = None) -> ExpertView:
        """Move an expert along ``rules.TRANSITIONS``: ``expert_retired``,
        ``invalid_status_change`` (409), ``status_reason_required`` (422); ``invalid_field``
        for an unknown status."""
        if status not in set(ExpertStatus):
            raise _invalid("status", "active, suspended or retired")
        target = ExpertStatus(status)
        note = None if reason is None else _text(reason, "reason", 500)
        now = await self._now_ms()
        try:
            with sql_errors("change an expert's status"):
                async with self._sessions.begin() as session:
                    row = await self._visible(session, principal, expert_id)
                    _admin_in_scope(principal, row.region_code)
                    refusal = check_transition(ExpertStatus(row.status), target, note)
                    if refusal is not None and refusal.reason == "status_reason_required":
                        raise ValidationError(refusal.message, code=refusal.reason,
                                              field="reason")
                    if refusal is not None:
                        raise ConflictError(refusal.message, code=refusal.reason,
                                            status=row.status, target=status)
                    previous = row.status
                    row.status, row.status_reason, row.updated_at_ms = target.value, note, now
                    emit(session, "expert.status_changed", f"expert:{row.id}",
                         {"from": previous, "to": target.value}, at_ms=now)
                    await session.flush()
                    return await self._view(session, row)
        except StaleDataError as exc:
            raise _concurrent() from exc

    async def set_unavailability(self, principal: Principal, expert_id: str,
                                 ranges: Sequence[tuple[str, str]]) -> ExpertView:
        """Replace the expert's unavailable day ranges (both ends included): by the expert
        or an administrator of their region. ``invalid_date_range``."""
        if len(ranges) > MAX_ENTRIES:
            raise _invalid("ranges", f"at most {MAX_ENTRIES}")
        parsed = [_range(a, b, f"ranges[{i}]") for i, (a, b) in enumerate(ranges)]
        now = await self._now_ms()
        try:
            with sql_errors("set an expert's unavailability"):
                async with self._sessions.begin() as session:
                    row = await self._visible(session, principal, expert_id)
                    if row.user_id != principal.user_id:
                        _admin_in_scope(principal, row.region_code)
                    old = await session.scalars(select(UnavailabilityRow).where(
                        UnavailabilityRow.expert_id == row.id))
                    for u in old:
                        await session.delete(u)
                    session.add_all(UnavailabilityRow(expert_id=row.id,
                                                      from_day=r.start.isoformat(),
                                                      until_day=_iso(r.end) or r.start.isoformat())
                                    for r in parsed)
                    row.updated_at_ms = now
                    await session.flush()
                    return await self._view(session, row)
        except StaleDataError as exc:
            raise _concurrent() from exc

    async def link_user(self, principal: Principal, expert_id: str,
                        user_id: str | None) -> ExpertView:
        """Link the registry user (role ``expert``) who signs in as the expert, or unlink
        (None). ``user_not_found``, ``expert_role_required``, ``user_already_linked``."""
        now = await self._now_ms()
        try:
            with sql_errors("link an expert's user"):
                async with self._sessions.begin() as session:
                    row = await self._visible(session, principal, expert_id)
                    _admin_in_scope(principal, row.region_code)
                    if user_id is not None:
                        user = await session.get(UserRow, user_id)
                        if user is None:
                            raise NotFoundError("没有这个用户 / no such user",
                                                code="user_not_found")
                        if Role.EXPERT not in user.roles:
                            raise ValidationError("该用户没有专家角色 / the user lacks the "
                                                  "expert role", code="expert_role_required",
                                                  field="user_id")
                        other = await session.scalar(select(ExpertRow.id).where(
                            ExpertRow.user_id == user_id, ExpertRow.id != row.id))
                        if other is not None:
                            raise _already_linked()
                    row.user_id, row.updated_at_ms = user_id, now
                    emit(session, "expert.user_linked", f"expert:{row.id}",
                         {"user_id": user_id}, at_ms=now)
                    await session.flush()
                    return await self._view(session, row)
        except StaleDataError as exc:
            raise _concurrent() from exc
        except ConflictError as exc:  # a concurrent link of the same user to another expert
            if exc.code == "integrity_conflict":
                raise _already_linked() from exc
            raise

    async def list_experts(self, principal: Principal, *, status: str | None = None,
                   limit: int = 100, offset: int = 0) -> tuple[list[ExpertView], int]:
        """The experts of the caller's region and below (an administrator or a supervisor);
        nobody else sees the list (an empty page)."""
        scope = principal.scope
        if scope is None or (not scope.platform_wide and scope.region is None):
            return [], 0
        where: list[ColumnElement[bool]] = [ExpertRow.id.is_not(None)]
        if not scope.platform_wide and scope.region is not None:
            low, high = region_bounds(scope.region)
            where = [ExpertRow.region_code.between(low, high)]
        if status is not None:
            where.append(ExpertRow.status == status)
        with sql_errors("list experts"):
            async with self._sessions() as session:
                total = await session.scalar(select(func.count()).select_from(ExpertRow)
                                             .where(*where))
                rows = (await session.scalars(select(ExpertRow).where(*where).order_by(
                    ExpertRow.created_at_ms.desc(), ExpertRow.id).limit(limit)
                    .offset(offset))).all()
                facts = await _load(session, rows)
        return [ExpertView(r, f) for r, f in zip(rows, facts, strict=True)], int(total or 0)

    async def expert_for_user(self, user_id: str) -> ExpertView | None:
        """The expert a registry user signs in as, or None."""
        with sql_errors("find a user's expert"):
            async with self._sessions() as session:
                row = await session.scalar(select(ExpertRow).where(ExpertRow.user_id == user_id))
                return None if row is None else await self._view(session, row)

    async def candidates(self, specialties: Sequence[str], region_prefix: str,
                         on_day: date) -> list[Candidate]:
        """The active experts whose region code starts with ``region_prefix``, with a
        specialty covering one of ``specialties`` (``rules.covers``) and available on
        ``on_day``: the pool a draw (Reg 39; O87 48; EXP 14) picks from, with every fact
        the conflict check (EXP 16; Reg 9) reads. Ordered by id (a draw randomises)."""
        wanted = [c.strip().upper() for c in specialties]
        prefix = region_prefix if region_prefix.isascii() and region_prefix.isdigit() else ""
        if not wanted or len(region_prefix) > 6 or prefix != region_prefix:
            return []
        with sql_errors("list candidate experts"):
            async with self._sessions() as session:
                rows = (await session.scalars(select(ExpertRow).where(
                    ExpertRow.status == ExpertStatus.ACTIVE.value,
                    ExpertRow.region_code.like(f"{prefix}%")).order_by(ExpertRow.id))).all()
                facts = await _load(session, rows)
        return [f for f in facts
                if any(covers(s, w) for s in f.specialties for w in wanted)
                and available_on(f.unavailable, on_day)]


def _already_registered() -> ConflictError:
    return ConflictError("该证件号码的专家已登记 / an expert with this ID number is registered",
                         code="expert_already_registered")


def _already_linked() -> ConflictError:
    return ConflictError("该用户已关联其他专家 / the user is linked to another expert",
                         code="user_already_linked")


def _concurrent() -> ConflictError:
    return ConflictError("专家记录刚被他人修改，请重试 / the expert changed meanwhile: try again",
                         code="concurrent_change")
