"""The market's feed of the core (market.feed.store): each lot round's opening or auction, and
the registrations the feed saw as events.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

Written by hand to match the models. Time is BIGINT ms since the epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=64)


def upgrade() -> None:
    op.create_table(
        "feed_links",
        sa.Column("lot_id", ID, nullable=False),
        sa.Column("round", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("core_id", ID, nullable=False),
        sa.Column("published_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("settled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("lot_id", "round", name=op.f("pk_feed_links")),
        sa.UniqueConstraint("core_id", name=op.f("uq_feed_links_core_id")),
    )
    op.create_index("ix_feed_links_unsettled", "feed_links", ["settled", "lot_id"],
                    unique=False)
    op.create_table(
        "feed_registrations",
        sa.Column("lot_id", ID, nullable=False),
        sa.Column("supplier_org_id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("registered_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("invited_to", ID, nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("lot_id", "supplier_org_id",
                                name=op.f("pk_feed_registrations")),
    )


def downgrade() -> None:
    op.drop_table("feed_registrations")
    op.drop_index("ix_feed_links_unsettled", table_name="feed_links")
    op.drop_table("feed_links")
