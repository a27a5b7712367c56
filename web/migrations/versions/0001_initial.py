"""Initial schema: the core's auction tables and audit log, the market's registry.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Reviewed by hand from autogenerate. Money is BIGINT fen, time BIGINT ms since the epoch. The
core's tables carry organisation ids without foreign keys to ``organisations`` on purpose: the
core does not depend on the market's registry.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=64)


def upgrade() -> None:
    # ---- core (bidroom.stores.sql)
    op.create_table(
        "auctions",
        sa.Column("id", ID, nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("title_en", sa.String(), server_default="", nullable=False),
        sa.Column("purchaser_org_id", ID, nullable=False),
        sa.Column("agency_org_id", ID, nullable=True),
        sa.Column("created_by_user_id", ID, nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=False),
        sa.Column("closed_at_ms", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "status IN ('scheduled', 'open', 'closed', 'failed')",
            name=op.f("ck_auctions_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auctions")),
    )
    op.create_index(op.f("ix_auctions_purchaser_org_id"), "auctions", ["purchaser_org_id"])
    op.create_index(op.f("ix_auctions_agency_org_id"), "auctions", ["agency_org_id"])
    op.create_index("ix_auctions_status_end_ms", "auctions", ["status", "end_ms"])

    op.create_table(
        "auction_invitations",
        sa.Column("auction_id", ID, nullable=False),
        sa.Column("supplier_org_id", ID, nullable=False),
        sa.Column("invited_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["auction_id"],
            ["auctions.id"],
            name=op.f("fk_auction_invitations_auction_id_auctions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "auction_id", "supplier_org_id", name=op.f("pk_auction_invitations")
        ),
    )
    op.create_index(
        op.f("ix_auction_invitations_supplier_org_id"),
        "auction_invitations",
        ["supplier_org_id"],
    )

    op.create_table(
        "auction_results",
        sa.Column("auction_id", ID, nullable=False),
        sa.Column("failed", sa.Boolean(), nullable=False),
        sa.Column("failure_reason", sa.String(length=64), nullable=True),
        sa.Column("winner_org_id", ID, nullable=True),
        sa.Column("winning_fen", sa.BigInteger(), nullable=True),
        sa.Column("ceiling_fen", sa.BigInteger(), nullable=False),
        sa.Column("savings_fen", sa.BigInteger(), nullable=True),
        sa.Column("savings_bp", sa.Integer(), nullable=True),
        sa.Column("valid_bidders", sa.Integer(), nullable=False),
        sa.Column("ranking", sa.JSON(), nullable=False),
        sa.Column("closed_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("final_end_ms", sa.BigInteger(), nullable=False),
        sa.Column("extensions", sa.Integer(), nullable=False),
        sa.Column("result_sha256", sa.String(length=64), nullable=False),
        sa.Column("persisted_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["auction_id"],
            ["auctions.id"],
            name=op.f("fk_auction_results_auction_id_auctions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("auction_id", name=op.f("pk_auction_results")),
    )

    op.create_table(
        "auction_bids",
        sa.Column("auction_id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("supplier_org_id", ID, nullable=False),
        sa.Column("alias", sa.Integer(), nullable=False),
        sa.Column("bid_id", sa.String(length=128), nullable=False),
        sa.Column("price_fen", sa.BigInteger(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["auction_id"],
            ["auctions.id"],
            name=op.f("fk_auction_bids_auction_id_auctions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("auction_id", "seq", name=op.f("pk_auction_bids")),
    )

    op.create_table(
        "audit_log",
        # SQLite auto-increments only an INTEGER PRIMARY KEY.
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor_user_id", ID, nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_subject_id", "audit_log", ["subject", "id"])

    # ---- market registry (market.registry.models)
    op.create_table(
        "organisations",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("name_en", sa.String(), server_default="", nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("size_class", sa.String(length=8), nullable=True),
        sa.Column("credit_code", sa.String(length=18), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('purchaser', 'agency', 'supplier', 'platform', 'supervisor')",
            name=op.f("ck_organisations_kind"),
        ),
        sa.CheckConstraint(
            "(kind = 'supplier' AND size_class IS NOT NULL"
            " AND size_class IN ('large', 'medium', 'small', 'micro'))"
            " OR (kind <> 'supplier' AND size_class IS NULL)",
            name=op.f("ck_organisations_size_class"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("credit_code", name=op.f("uq_organisations_credit_code")),
    )
    op.create_index(op.f("ix_organisations_kind"), "organisations", ["kind"])

    op.create_table(
        "users",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("roles", sa.String(length=200), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_users_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_index(op.f("ix_users_org_id"), "users", ["org_id"])

    op.create_table(
        "api_tokens",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(), server_default="", nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
    )
    op.create_index(op.f("ix_api_tokens_token_sha256"), "api_tokens", ["token_sha256"], unique=True)
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"])


def downgrade() -> None:
    # Dropping a table drops its indexes; children before parents.
    for table in (
        "api_tokens",
        "users",
        "organisations",
        "audit_log",
        "auction_bids",
        "auction_results",
        "auction_invitations",
        "auctions",
    ):
        op.drop_table(table)
