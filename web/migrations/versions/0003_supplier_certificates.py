"""Suppliers' registered certificates (certificates from a licensed CA whose root the platform
imported; bidroom.opening.store.SupplierCertificateRow).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Written by hand to match the model. Time is BIGINT ms since the epoch; organisation and user
ids carry no foreign keys to the market's registry (as in 0001 and 0002).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=64)
HASH = sa.String(length=64)


def upgrade() -> None:
    op.create_table(
        "supplier_certificates",
        # SQLite auto-increments only an INTEGER PRIMARY KEY.
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("signing_certificate_pem", sa.Text(), nullable=False),
        sa.Column("encryption_certificate_pem", sa.Text(), nullable=False),
        sa.Column("signing_fingerprint", HASH, nullable=False),
        sa.Column("encryption_fingerprint", HASH, nullable=False),
        sa.Column("registered_by_user_id", ID, nullable=False),
        sa.Column("registered_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplier_certificates")),
    )
    op.create_index(
        op.f("ix_supplier_certificates_org_id"), "supplier_certificates", ["org_id"]
    )


def downgrade() -> None:
    op.drop_table("supplier_certificates")
