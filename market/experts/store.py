"""The expert registry's tables (评审专家库). ``experts.id_hash`` is
``market.registry.rules.person_id_hash`` of the expert's ID number; the number itself is
never stored, nor a relative's. Days are ``YYYY-MM-DD`` text (``market.experts.rules``).

Must not import: web.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bidroom.stores.sql import Base

__all__ = ["AffiliationRow", "ExpertRow", "RelationRow", "SpecialtyRow", "UnavailabilityRow"]

_ID = 64
_DAY = 10


class ExpertRow(Base):
    """评审专家: one person, at most one registry user (role ``expert``) signing in as them."""

    __tablename__ = "experts"
    __table_args__ = (Index("ix_experts_region", "region_code", "status"),)

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    id_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    region_code: Mapped[str] = mapped_column(String(6), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    status_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(_ID), nullable=True, unique=True)
    created_by: Mapped[str] = mapped_column(String(_ID), nullable=False)
    created_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it once)


class SpecialtyRow(Base):
    """One catalogue category an expert reviews (it and the categories below it)."""

    __tablename__ = "expert_specialties"
    __table_args__ = (Index("ix_expert_specialties_code", "category_code"),)

    expert_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("experts.id", ondelete="CASCADE"), primary_key=True)
    category_code: Mapped[str] = mapped_column(String(20), primary_key=True)


class AffiliationRow(Base):
    """An employment, directorship or control of an organisation, with its days (EXP 16)."""

    __tablename__ = "expert_affiliations"
    __table_args__ = (Index("ix_expert_affiliations_expert", "expert_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    expert_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("experts.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    org_id: Mapped[str | None] = mapped_column(String(_ID), nullable=True)
    credit_code: Mapped[str | None] = mapped_column(String(18), nullable=True)
    org_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    from_day: Mapped[str] = mapped_column(String(_DAY), nullable=False)
    until_day: Mapped[str | None] = mapped_column(String(_DAY), nullable=True)


class RelationRow(Base):
    """A declared relation: kin of a person (their ID hash) or a named relation to an org."""

    __tablename__ = "expert_relations"
    __table_args__ = (Index("ix_expert_relations_expert", "expert_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    expert_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("experts.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    relation: Mapped[str] = mapped_column(String(100), nullable=False)
    person_id_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    org_id: Mapped[str | None] = mapped_column(String(_ID), nullable=True)
    credit_code: Mapped[str | None] = mapped_column(String(18), nullable=True)


class UnavailabilityRow(Base):
    """Days an expert cannot be drawn (both ends included)."""

    __tablename__ = "expert_unavailability"
    __table_args__ = (Index("ix_expert_unavailability_expert", "expert_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    expert_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("experts.id", ondelete="CASCADE"), nullable=False)
    from_day: Mapped[str] = mapped_column(String(_DAY), nullable=False)
    until_day: Mapped[str] = mapped_column(String(_DAY), nullable=False)
