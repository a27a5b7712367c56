"""The statutory calendar's administrator days and years (market.calendar.store), the domain
events' outbox and handled-event log (market.events.outbox), and procurement projects, their
lots and announcements (market.projects.store).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

Written by hand to match the models. Time is BIGINT ms since the epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=64)
# SQLite auto-increments only an INTEGER PRIMARY KEY.
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "calendar_days",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("working", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("entered_by", ID, nullable=False),
        sa.Column("entered_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_calendar_days")),
    )
    op.create_table(
        "calendar_years",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("entered_by", ID, nullable=False),
        sa.Column("entered_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_calendar_years")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("event_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("aggregate", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("relayed_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    op.create_index("ix_outbox_unrelayed", "outbox", ["relayed_at_ms", "id"], unique=False)
    op.create_table(
        "handled_events",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("consumer_group", sa.String(length=100), nullable=False),
        sa.Column("event_id", ID, nullable=False),
        sa.Column("handled_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handled_events")),
        sa.UniqueConstraint("consumer_group", "event_id",
                            name=op.f("uq_handled_events_consumer_group")),
    )


    op.create_table(
        "projects",
        sa.Column("id", ID, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("purchaser_org_id", ID, nullable=False),
        sa.Column("agency_org_id", ID, nullable=True),
        sa.Column("budget_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
    )
    op.create_index("ix_projects_region", "projects", ["region_code", "created_at_ms"],
                    unique=False)
    op.create_table(
        "lots",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("category_code", sa.String(length=20), nullable=False),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("budget_fen", sa.BigInteger(), nullable=False),
        sa.Column("ceiling_fen", sa.BigInteger(), nullable=False),
        sa.Column("bond_fen", sa.BigInteger(), nullable=False),
        sa.Column("bid_mode", sa.String(length=20), nullable=False),
        sa.Column("evaluation", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("documents_from_ms", sa.BigInteger(), nullable=True),
        sa.Column("documents_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("deadline_ms", sa.BigInteger(), nullable=True),
        sa.Column("announced_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("bidders", sa.JSON(), nullable=False),
        sa.Column("qualified", sa.JSON(), nullable=False),
        sa.Column("rounds", sa.Integer(), nullable=False),
        sa.Column("ended_reason", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_lots_project_id_projects"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lots")),
    )
    op.create_index("ix_lots_project", "lots", ["project_id", "number"], unique=False)
    op.create_table(
        "announcements",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("lot_id", ID, nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("category_code", sa.String(length=20), nullable=False),
        sa.Column("dates", sa.JSON(), nullable=False),
        sa.Column("published_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcements")),
    )
    op.create_index("ix_announcements_published", "announcements",
                    ["region_code", "published_at_ms"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_announcements_published", table_name="announcements")
    op.drop_table("announcements")
    op.drop_index("ix_lots_project", table_name="lots")
    op.drop_table("lots")
    op.drop_index("ix_projects_region", table_name="projects")
    op.drop_table("projects")
    op.drop_table("handled_events")
    op.drop_index("ix_outbox_unrelayed", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("calendar_years")
    op.drop_table("calendar_days")
