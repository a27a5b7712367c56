"""The expert registry (评审专家库, market.experts.store): experts, their specialties,
affiliations (employment, directorship, control with days), declared relations and unavailable
days. ID numbers are hashes only (``experts.id_hash``, ``expert_relations.person_id_hash``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

Written by hand to match the models. Time is BIGINT ms since the epoch, days YYYY-MM-DD text.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=64)
DAY = sa.String(length=10)


def _child(name: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["expert_id"], ["experts.id"],
                                   name=op.f(f"fk_{name}_expert_id_experts"), ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "experts",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_reason", sa.String(length=500), nullable=True),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experts")),
        sa.UniqueConstraint("id_hash", name=op.f("uq_experts_id_hash")),
        sa.UniqueConstraint("user_id", name=op.f("uq_experts_user_id")),
    )
    op.create_index("ix_experts_region", "experts", ["region_code", "status"], unique=False)
    op.create_table(
        "expert_specialties",
        sa.Column("expert_id", ID, nullable=False),
        sa.Column("category_code", sa.String(length=20), nullable=False),
        _child("expert_specialties"),
        sa.PrimaryKeyConstraint("expert_id", "category_code", name=op.f("pk_expert_specialties")),
    )
    op.create_index("ix_expert_specialties_code", "expert_specialties", ["category_code"],
                    unique=False)
    op.create_table(
        "expert_affiliations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("expert_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("org_id", ID, nullable=True),
        sa.Column("credit_code", sa.String(length=18), nullable=True),
        sa.Column("org_name", sa.String(length=200), nullable=True),
        sa.Column("from_day", DAY, nullable=False),
        sa.Column("until_day", DAY, nullable=True),
        _child("expert_affiliations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expert_affiliations")),
    )
    op.create_index("ix_expert_affiliations_expert", "expert_affiliations", ["expert_id"],
                    unique=False)
    op.create_table(
        "expert_relations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("expert_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("relation", sa.String(length=100), nullable=False),
        sa.Column("person_id_hash", sa.String(length=64), nullable=True),
        sa.Column("org_id", ID, nullable=True),
        sa.Column("credit_code", sa.String(length=18), nullable=True),
        _child("expert_relations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expert_relations")),
    )
    op.create_index("ix_expert_relations_expert", "expert_relations", ["expert_id"],
                    unique=False)
    op.create_table(
        "expert_unavailability",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("expert_id", ID, nullable=False),
        sa.Column("from_day", DAY, nullable=False),
        sa.Column("until_day", DAY, nullable=False),
        _child("expert_unavailability"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expert_unavailability")),
    )
    op.create_index("ix_expert_unavailability_expert", "expert_unavailability", ["expert_id"],
                    unique=False)


def downgrade() -> None:
    for table in ("expert_unavailability", "expert_relations", "expert_affiliations",
                  "expert_specialties"):
        op.drop_table(table)
    op.drop_index("ix_experts_region", table_name="experts")
    op.drop_table("experts")
