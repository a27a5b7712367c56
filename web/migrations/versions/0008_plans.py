"""Budget projects, procurement plans, procurement intentions and the purchases drawn on plans
(market.plans.store); a project's optional plan (projects.plan_id).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

Written by hand to match the models. Money is BIGINT fen, time BIGINT ms since the epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=64)


def upgrade() -> None:
    op.create_table(
        "budget_projects",
        sa.Column("id", ID, nullable=False),
        sa.Column("purchaser_org_id", ID, nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("planned_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_projects")),
        sa.UniqueConstraint("purchaser_org_id", "fiscal_year", "code",
                            name=op.f("uq_budget_projects_purchaser_org_id")),
    )
    op.create_index("ix_budget_projects_region", "budget_projects",
                    ["region_code", "fiscal_year"], unique=False)
    op.create_table(
        "procurement_plans",
        sa.Column("id", ID, nullable=False),
        sa.Column("budget_project_id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category_code", sa.String(length=20), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("committed_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["budget_project_id"], ["budget_projects.id"],
                                name=op.f("fk_procurement_plans_budget_project_id_budget_projects"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_procurement_plans")),
    )
    op.create_index("ix_procurement_plans_budget", "procurement_plans", ["budget_project_id"],
                    unique=False)
    op.create_table(
        "procurement_intentions",
        sa.Column("id", ID, nullable=False),
        sa.Column("plan_id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("requirement_summary", sa.Text(), nullable=False),
        sa.Column("budget_fen", sa.BigInteger(), nullable=False),
        sa.Column("expected_month", sa.String(length=7), nullable=False),
        sa.Column("published_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("published_by", ID, nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["procurement_plans.id"],
                                name=op.f("fk_procurement_intentions_plan_id_procurement_plans"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_procurement_intentions")),
    )
    op.create_index("ix_procurement_intentions_plan", "procurement_intentions",
                    ["plan_id", "published_at_ms"], unique=False)
    op.create_table(
        "plan_purchases",
        sa.Column("lot_id", ID, nullable=False),
        sa.Column("plan_id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("category_code", sa.String(length=20), nullable=False),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("terminated", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["procurement_plans.id"],
                                name=op.f("fk_plan_purchases_plan_id_procurement_plans"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("lot_id", name=op.f("pk_plan_purchases")),
    )
    op.create_index("ix_plan_purchases_plan", "plan_purchases", ["plan_id"], unique=False)
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("plan_id", ID, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("plan_id")
    op.drop_index("ix_plan_purchases_plan", table_name="plan_purchases")
    op.drop_table("plan_purchases")
    op.drop_index("ix_procurement_intentions_plan", table_name="procurement_intentions")
    op.drop_table("procurement_intentions")
    op.drop_index("ix_procurement_plans_budget", table_name="procurement_plans")
    op.drop_table("procurement_plans")
    op.drop_index("ix_budget_projects_region", table_name="budget_projects")
    op.drop_table("budget_projects")
