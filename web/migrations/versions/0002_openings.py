"""Sealed-bid openings (不见面开标): openings, invitations, uploads, the hash-chained opening log,
objections and the sealed shares of the backup opening key (bidroom.opening.store).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Reviewed by hand from autogenerate. Time is BIGINT ms since the epoch. As in 0001, the core's
tables carry organisation and user ids without foreign keys to the market's registry.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=64)
HASH = sa.String(length=64)


def _opening_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["opening_id"],
        ["openings.id"],
        name=op.f(f"fk_{table}_opening_id_openings"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "openings",
        sa.Column("id", ID, nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("title_en", sa.String(), server_default="", nullable=False),
        sa.Column("purchaser_org_id", ID, nullable=False),
        sa.Column("agency_org_id", ID, nullable=True),
        sa.Column("created_by_user_id", ID, nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", HASH, nullable=False),
        sa.Column("deadline_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("concluded_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("backup_certificate_pem", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_openings")),
    )
    op.create_index(op.f("ix_openings_agency_org_id"), "openings", ["agency_org_id"])
    op.create_index(op.f("ix_openings_purchaser_org_id"), "openings", ["purchaser_org_id"])
    op.create_index("ix_openings_status_deadline_ms", "openings", ["status", "deadline_ms"])

    op.create_table(
        "opening_invitations",
        sa.Column("opening_id", ID, nullable=False),
        sa.Column("supplier_org_id", ID, nullable=False),
        sa.Column("invited_at_ms", sa.BigInteger(), nullable=False),
        _opening_fk("opening_invitations"),
        sa.PrimaryKeyConstraint(
            "opening_id", "supplier_org_id", name=op.f("pk_opening_invitations")
        ),
    )
    op.create_index(
        op.f("ix_opening_invitations_supplier_org_id"), "opening_invitations",
        ["supplier_org_id"],
    )

    op.create_table(
        "opening_bids",
        # SQLite auto-increments only an INTEGER PRIMARY KEY.
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("opening_id", ID, nullable=False),
        sa.Column("supplier_org_id", ID, nullable=False),
        sa.Column("sha256", HASH, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("storage_path", sa.String(), nullable=False),
        sa.Column("receipt", sa.JSON(), nullable=False),
        sa.Column("uploaded_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        _opening_fk("opening_bids"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opening_bids")),
    )
    op.create_index(
        "ix_opening_bids_opening_id_supplier", "opening_bids", ["opening_id", "supplier_org_id"]
    )

    op.create_table(
        "opening_log",
        sa.Column("opening_id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor", ID, nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", HASH, nullable=False),
        sa.Column("hash", HASH, nullable=False),
        _opening_fk("opening_log"),
        sa.PrimaryKeyConstraint("opening_id", "seq", name=op.f("pk_opening_log")),
    )

    op.create_table(
        "opening_objections",
        sa.Column("opening_id", ID, nullable=False),
        sa.Column("objection_id", sa.Integer(), nullable=False),
        sa.Column("supplier_org_id", ID, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("raised_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_by", ID, nullable=True),
        sa.Column("answered_at_ms", sa.BigInteger(), nullable=True),
        _opening_fk("opening_objections"),
        sa.PrimaryKeyConstraint(
            "opening_id", "objection_id", name=op.f("pk_opening_objections")
        ),
    )

    op.create_table(
        "opening_backup_shares",
        sa.Column("opening_id", ID, nullable=False),
        sa.Column("official_user_id", ID, nullable=False),
        sa.Column("certificate_fingerprint", HASH, nullable=False),
        sa.Column("sealed", sa.JSON(), nullable=False),
        sa.Column("share", sa.Text(), nullable=True),
        sa.Column("submitted_at_ms", sa.BigInteger(), nullable=True),
        _opening_fk("opening_backup_shares"),
        sa.PrimaryKeyConstraint(
            "opening_id", "official_user_id", name=op.f("pk_opening_backup_shares")
        ),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes; children before parents.
    for table in (
        "opening_backup_shares",
        "opening_objections",
        "opening_log",
        "opening_bids",
        "opening_invitations",
        "openings",
    ):
        op.drop_table(table)
