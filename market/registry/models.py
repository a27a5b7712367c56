"""Registry tables: organisations, their users (with roles) and users' API tokens; the region
tree (``regions``) and the persons a supplier registers (``organisation_persons``).

An organisation is a purchaser (采购人), an agency (采购代理机构), a supplier (供应商, with its
enterprise size class for the SME policy), the platform operator, or a supervisor (监督部门,
e.g. a finance bureau). Tokens are stored as the SHA-256 of the plaintext only. Every
organisation may belong to a region (six-digit 行政区划 code); a purchasing unit also has its
budget unit code (预算单位编码) and level. Persons are stored by name and ID-number hash only
(``market.registry.rules.person_id_hash``), never the ID number.

Must not import: web.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from bidroom.stores.sql import Base

__all__ = [
    "ApiTokenRow",
    "OrgKind",
    "OrganisationPersonRow",
    "OrganisationRow",
    "RegionRow",
    "Role",
    "SizeClass",
    "UserRow",
    "format_roles",
    "parse_roles",
]

_ID_LEN = 64


class OrgKind(StrEnum):
    PURCHASER = "purchaser"
    AGENCY = "agency"
    SUPPLIER = "supplier"
    PLATFORM = "platform"
    SUPERVISOR = "supervisor"


class SizeClass(StrEnum):
    """Enterprise size (企业划型): large, medium, small, micro."""

    LARGE = "large"
    MEDIUM = "medium"
    SMALL = "small"
    MICRO = "micro"


class Role(StrEnum):
    SUPPLIER = "supplier"
    PURCHASER = "purchaser"
    AGENCY = "agency"
    EXPERT = "expert"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


def _in(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


def parse_roles(stored: str) -> frozenset[Role]:
    """Roles from their stored form, a comma-separated string."""
    return frozenset(Role(part) for part in stored.split(",") if part)


def format_roles(roles: frozenset[Role] | set[Role]) -> str:
    """The stored form of roles: sorted, comma-separated."""
    return ",".join(sorted(str(role) for role in roles))


class OrganisationRow(Base):
    __tablename__ = "organisations"
    __table_args__ = (
        CheckConstraint(_in("kind", OrgKind), name="kind"),
        CheckConstraint(
            f"(kind = 'supplier' AND size_class IS NOT NULL AND {_in('size_class', SizeClass)})"
            " OR (kind <> 'supplier' AND size_class IS NULL)",
            name="size_class",
        ),
    )

    id: Mapped[str] = mapped_column(String(_ID_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String)
    name_en: Mapped[str] = mapped_column(String, default="", server_default="")
    kind: Mapped[str] = mapped_column(String(16), index=True)
    size_class: Mapped[str | None] = mapped_column(String(8))
    # 统一社会信用代码; NULLs do not collide in a unique constraint (SQLite and PostgreSQL).
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    # 行政区划 code of the region the organisation belongs to (rules.region_level); NULL for
    # rows registered before the region tree (visible to the platform-wide admin only).
    region_code: Mapped[str | None] = mapped_column(String(6), index=True)
    # Purchasing units: 预算单位编码 and level (province / city / county, rules.RegionLevel).
    budget_unit_code: Mapped[str | None] = mapped_column(String(32))
    level: Mapped[str | None] = mapped_column(String(8))

    def __repr__(self) -> str:
        return f"OrganisationRow(id={self.id!r}, kind={self.kind!r}, name={self.name!r})"


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(_ID_LEN), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(_ID_LEN), ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String)
    # Stored comma-separated (see ``roles``); small, fixed vocabulary.
    roles_csv: Mapped[str] = mapped_column("roles", String(200))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    @property
    def roles(self) -> frozenset[Role]:
        return parse_roles(self.roles_csv or "")

    @roles.setter
    def roles(self, value: frozenset[Role] | set[Role]) -> None:
        self.roles_csv = format_roles(value)

    def __repr__(self) -> str:
        return f"UserRow(id={self.id!r}, org_id={self.org_id!r}, roles={self.roles_csv!r})"


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(_ID_LEN), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(_ID_LEN), ForeignKey("users.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    label: Mapped[str] = mapped_column(String, default="", server_default="")
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at_ms: Mapped[int | None] = mapped_column(BigInteger)

    def __repr__(self) -> str:
        # Never the hash: it is a credential's fingerprint.
        return f"ApiTokenRow(id={self.id!r}, user_id={self.user_id!r}, label={self.label!r})"


class RegionRow(Base):
    """A node of the region tree: a six-digit 行政区划 code and its names. The parent is derived
    from the code (``rules.region_parent``), never stored."""

    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String)
    name_en: Mapped[str] = mapped_column(String, default="", server_default="")
    level: Mapped[str] = mapped_column(String(8))

    def __repr__(self) -> str:
        return f"RegionRow(code={self.code!r}, name={self.name!r})"


class OrganisationPersonRow(Base):
    """A person registered for an organisation (legal representative, person in charge,
    controlling person, manager: ``rules.PersonRole``): the name and the SHA-256 of the
    normalised ID number only. The hash is indexed so a rule finds the same person elsewhere."""

    __tablename__ = "organisation_persons"
    __table_args__ = (Index("ix_organisation_persons_id_hash", "id_hash"),)

    id: Mapped[str] = mapped_column(String(_ID_LEN), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(_ID_LEN), ForeignKey("organisations.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String)
    id_hash: Mapped[str] = mapped_column(String(64))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    # Order within the registration that listed the persons (ids are random).
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def __repr__(self) -> str:
        # Never the hash: it identifies a person.
        return f"OrganisationPersonRow(org_id={self.org_id!r}, role={self.role!r})"
