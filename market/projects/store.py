"""Projects, lots and announcements in SQL (storage records; ``market.projects.rules`` holds
the domain values they are converted to at the edge).

Must not import: web.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bidroom.stores.sql import Base
from market.projects.rules import (
    BidMode,
    EvaluationMethod,
    LotState,
    LotStatus,
    Method,
    Qualification,
)

__all__ = ["AnnouncementRow", "LotRow", "ProjectRow", "lot_state", "store_lot_state"]

_ID = 64


class ProjectRow(Base):
    __tablename__ = "projects"
    __table_args__ = (Index("ix_projects_region", "region_code", "created_at_ms"),)

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    title_en: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    method: Mapped[str] = mapped_column(String(40), nullable=False)
    region_code: Mapped[str] = mapped_column(String(6), nullable=False)
    purchaser_org_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    agency_org_id: Mapped[str | None] = mapped_column(String(_ID))
    #: The procurement plan the project draws on (market.plans), if any.
    plan_id: Mapped[str | None] = mapped_column(String(_ID))
    budget_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_by: Mapped[str] = mapped_column(String(_ID), nullable=False)
    created_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)


class LotRow(Base):
    __tablename__ = "lots"
    __table_args__ = (Index("ix_lots_project", "project_id", "number"),)

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    category_code: Mapped[str] = mapped_column(String(20), nullable=False)
    method: Mapped[str] = mapped_column(String(40), nullable=False)
    budget_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    ceiling_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    bond_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    bid_mode: Mapped[str] = mapped_column(String(20), nullable=False)
    evaluation: Mapped[str] = mapped_column(String(20), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    documents_from_ms: Mapped[int | None] = mapped_column(BigInteger)
    documents_until_ms: Mapped[int | None] = mapped_column(BigInteger)
    deadline_ms: Mapped[int | None] = mapped_column(BigInteger)
    announced_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    bidders: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    qualified: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    rounds: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    ended_reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    #: SQLAlchemy's version counter: of two concurrent commands on one lot, the second to
    #: commit fails (StaleDataError) instead of overwriting the first.
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it once)


class AnnouncementRow(Base):
    """A published announcement (公告): procurement, correction, result or termination, with
    its statutory dates (each with its article) as computed when it was published."""

    __tablename__ = "announcements"
    __table_args__ = (Index("ix_announcements_published", "region_code", "published_at_ms"),
                      # the portal's order (market.portal; migration 0009)
                      Index("ix_announcements_order", "published_at_ms", "id"),
                      # the portal's identifier lookup (market.portal; migration 0011)
                      Index("ix_announcements_reference", "reference"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                    primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    lot_id: Mapped[str | None] = mapped_column(String(_ID))
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    region_code: Mapped[str] = mapped_column(String(6), nullable=False)
    method: Mapped[str] = mapped_column(String(40), nullable=False)
    category_code: Mapped[str] = mapped_column(String(20), nullable=False)
    dates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    published_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: The identifier the announcement is found by (the project's id, upper case:
    #: ``market.portal.rules.reference_key``); the portal looks an identifier term up here.
    reference: Mapped[str] = mapped_column(String(_ID), nullable=False, default="",
                                           server_default="")


def lot_state(row: LotRow) -> LotState:
    return LotState(
        lot_id=row.id, method=Method(row.method), budget_fen=row.budget_fen,
        ceiling_fen=row.ceiling_fen, bid_mode=BidMode(row.bid_mode),
        evaluation=EvaluationMethod(row.evaluation), status=LotStatus(row.status),
        bond_fen=row.bond_fen, documents_from_ms=row.documents_from_ms,
        documents_until_ms=row.documents_until_ms, deadline_ms=row.deadline_ms,
        announced_at_ms=row.announced_at_ms, bidders=tuple(row.bidders),
        qualified=tuple(Qualification(q["supplier_id"], bool(q["passed"]), q.get("reason", ""))
                        for q in row.qualified),
        rounds=row.rounds, ended_reason=row.ended_reason,
    )


def store_lot_state(row: LotRow, state: LotState) -> None:
    """Write a decided state onto its row (the caller's transaction commits it)."""
    row.method = str(state.method)
    row.status = str(state.status)
    row.documents_from_ms = state.documents_from_ms
    row.documents_until_ms = state.documents_until_ms
    row.deadline_ms = state.deadline_ms
    row.announced_at_ms = state.announced_at_ms
    row.bidders = list(state.bidders)
    row.qualified = [{"supplier_id": q.supplier_id, "passed": q.passed, "reason": q.reason}
                     for q in state.qualified]
    row.rounds = state.rounds
    row.ended_reason = state.ended_reason
