"""Tender documents, their versions and downloads, suppliers' registrations and bid bonds
(market.tendering.store, issue #11 item 6).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

Written by hand to match the models. Time is BIGINT ms since the epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=64)
# SQLite auto-increments only an INTEGER PRIMARY KEY.
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tender_documents",
        sa.Column("id", ID, nullable=False),
        sa.Column("lot_id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tender_documents")),
    )
    op.create_index("ix_tender_documents_lot", "tender_documents", ["lot_id", "created_at_ms"],
                    unique=False)
    op.create_table(
        "tender_document_versions",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("document_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("storage_path", sa.String(length=300), nullable=False),
        sa.Column("lot_status", sa.String(length=20), nullable=False),
        sa.Column("uploaded_by", ID, nullable=False),
        sa.Column("uploaded_by_org", ID, nullable=False),
        sa.Column("uploaded_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["tender_documents.id"], ondelete="CASCADE",
            name=op.f("fk_tender_document_versions_document_id_tender_documents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tender_document_versions")),
        sa.UniqueConstraint("document_id", "version",
                            name=op.f("uq_tender_document_versions_document_id")),
    )
    op.create_table(
        "tender_downloads",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("lot_id", ID, nullable=False),
        sa.Column("document_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("org_kind", sa.String(length=16), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("client_ip", sa.String(length=45), nullable=False),
        sa.Column("peer_ip", sa.String(length=45), nullable=False),
        sa.Column("device_fingerprint", sa.String(length=128), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tender_downloads")),
    )
    op.create_index("ix_tender_downloads_lot", "tender_downloads", ["lot_id", "at_ms"],
                    unique=False)
    op.create_index("ix_tender_downloads_ip", "tender_downloads", ["lot_id", "client_ip"],
                    unique=False)
    op.create_index("ix_tender_downloads_device", "tender_downloads",
                    ["lot_id", "device_fingerprint"], unique=False)
    op.create_table(
        "tender_registrations",
        sa.Column("id", ID, nullable=False),
        sa.Column("lot_id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("supplier_org_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("registered_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("withdrawn_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("bond_fen", sa.BigInteger(), nullable=False),
        sa.Column("bond_method", sa.String(length=20), nullable=False),
        sa.Column("bond_reference", sa.String(length=64), nullable=False),
        sa.Column("payer_account", sa.String(length=34), nullable=False),
        sa.Column("guarantee_number", sa.String(length=64), nullable=False),
        sa.Column("guarantee_issuer", sa.String(length=100), nullable=False),
        sa.Column("refund_basis", sa.String(length=20), nullable=True),
        sa.Column("refund_due_day", sa.String(length=10), nullable=True),
        sa.Column("refund_rule", sa.JSON(), nullable=True),
        sa.Column("refunded_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("refund_reference", sa.String(length=64), nullable=True),
        sa.Column("refunded_by", ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tender_registrations")),
        sa.UniqueConstraint("lot_id", "round", "supplier_org_id",
                            name=op.f("uq_tender_registrations_lot_id")),
    )
    op.create_index("ix_tender_registrations_supplier", "tender_registrations",
                    ["supplier_org_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tender_registrations_supplier", table_name="tender_registrations")
    op.drop_table("tender_registrations")
    op.drop_index("ix_tender_downloads_device", table_name="tender_downloads")
    op.drop_index("ix_tender_downloads_ip", table_name="tender_downloads")
    op.drop_index("ix_tender_downloads_lot", table_name="tender_downloads")
    op.drop_table("tender_downloads")
    op.drop_table("tender_document_versions")
    op.drop_index("ix_tender_documents_lot", table_name="tender_documents")
    op.drop_table("tender_documents")
