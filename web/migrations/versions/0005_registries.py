"""The registries (五库, issue #11 item 1): the region tree, organisations' region, budget unit
code and level, the persons an organisation registers (name + ID-number hash), and the
procurement category catalogue (market.registry.models, market.catalog.models).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

Written by hand to match the models. New organisation columns are nullable: rows registered
before the region tree have no region (only the platform-wide administrator sees them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=64)


def upgrade() -> None:
    op.create_table(
        "regions",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("name_en", sa.String(), server_default="", nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_regions")),
    )
    with op.batch_alter_table("organisations") as batch:
        batch.add_column(sa.Column("region_code", sa.String(length=6), nullable=True))
        batch.add_column(sa.Column("budget_unit_code", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("level", sa.String(length=8), nullable=True))
    op.create_index(op.f("ix_organisations_region_code"), "organisations", ["region_code"])
    op.create_table(
        "organisation_persons",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"],
            name=op.f("fk_organisation_persons_org_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisation_persons")),
    )
    op.create_index(
        op.f("ix_organisation_persons_org_id"), "organisation_persons", ["org_id"]
    )
    op.create_index("ix_organisation_persons_id_hash", "organisation_persons", ["id_hash"])
    op.create_table(
        "procurement_categories",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("name_en", sa.String(), server_default="", nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("parent_code", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_procurement_categories")),
    )
    op.create_index(
        op.f("ix_procurement_categories_parent_code"), "procurement_categories", ["parent_code"]
    )


def downgrade() -> None:
    op.drop_table("procurement_categories")
    op.drop_table("organisation_persons")
    op.drop_index(op.f("ix_organisations_region_code"), table_name="organisations")
    with op.batch_alter_table("organisations") as batch:
        batch.drop_column("level")
        batch.drop_column("budget_unit_code")
        batch.drop_column("region_code")
    op.drop_table("regions")
