"""Budget projects, procurement plans, intentions and the purchases drawn on plans, in SQL.

``planned_fen`` on a budget project and ``committed_fen`` on a plan are running totals kept in
the same transaction as the rows they sum, each with SQLAlchemy's version counter: of two
concurrent plans (or projects) that both fit alone, the second to commit fails instead of
both being written over the limit.

Must not import: web.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bidroom.stores.sql import Base

__all__ = ["BudgetProjectRow", "IntentionRow", "PlanPurchaseRow", "PlanRow"]

_ID = 64


class BudgetProjectRow(Base):
    """预算项目: a purchasing unit's budget line for one fiscal year."""

    __tablename__ = "budget_projects"
    __table_args__ = (
        UniqueConstraint("purchaser_org_id", "fiscal_year", "code"),
        Index("ix_budget_projects_region", "region_code", "fiscal_year"),
    )

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    purchaser_org_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    region_code: Mapped[str] = mapped_column(String(6), nullable=False)
    code: Mapped[str] = mapped_column(String(40), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    fiscal_year: Mapped[int] = mapped_column(Integer, nullable=False)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    planned_fen: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    created_by: Mapped[str] = mapped_column(String(_ID), nullable=False)
    created_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it once)


class PlanRow(Base):
    """采购计划: part of a budget project, for one category."""

    __tablename__ = "procurement_plans"
    __table_args__ = (Index("ix_procurement_plans_budget", "budget_project_id"),)

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    budget_project_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("budget_projects.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    category_code: Mapped[str] = mapped_column(String(20), nullable=False)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    committed_fen: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    created_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class IntentionRow(Base):
    """采购意向 (财库〔2020〕10号): published for a plan ahead of its purchase."""

    __tablename__ = "procurement_intentions"
    __table_args__ = (Index("ix_procurement_intentions_plan", "plan_id", "published_at_ms"),)

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    plan_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("procurement_plans.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    requirement_summary: Mapped[str] = mapped_column(Text, nullable=False)
    budget_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    expected_month: Mapped[str] = mapped_column(String(7), nullable=False)  # YYYY-MM
    published_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    published_by: Mapped[str] = mapped_column(String(_ID), nullable=False)


class PlanPurchaseRow(Base):
    """One lot of a project drawn on a plan, as splitting detection reads it (Reg 28): its
    current method, amount, category and whether another method was approved (GPL 27)."""

    __tablename__ = "plan_purchases"
    __table_args__ = (Index("ix_plan_purchases_plan", "plan_id"),)

    lot_id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    plan_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("procurement_plans.id", ondelete="CASCADE"), nullable=False)
    project_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    category_code: Mapped[str] = mapped_column(String(20), nullable=False)
    method: Mapped[str] = mapped_column(String(40), nullable=False)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    approved: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    terminated: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
