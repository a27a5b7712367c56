"""The backup key's shares are never stored in the clear (issue #10 §1).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

``opening_backup_shares.share`` held a submitted share in plaintext until the rebuild: with the
database and one official's share, an operator could rebuild the backup key. It is dropped; a
submitted share is now kept only sealed to the ceremony's key (``ceremony_sealed`` for
``ceremony_id``), whose private half lives in one server process's memory
(``bidroom.opening.backup``). A ceremony under way at the upgrade is void: its officials submit
again (their sealed shares and unwrapped keys still work).

The plaintext is overwritten before the column is dropped. SQLite's free pages and PostgreSQL's
dead row versions may still hold the old bytes until ``VACUUM`` (docs/opening.md §6).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=64)


def upgrade() -> None:
    op.execute("UPDATE opening_backup_shares SET share = NULL, submitted_at_ms = NULL")
    with op.batch_alter_table("opening_backup_shares") as batch:
        batch.drop_column("share")
        batch.add_column(sa.Column("ceremony_id", ID, nullable=True))
        batch.add_column(sa.Column("ceremony_sealed", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("opening_backup_shares") as batch:
        batch.drop_column("ceremony_sealed")
        batch.drop_column("ceremony_id")
        batch.add_column(sa.Column("share", sa.Text(), nullable=True))
