"""The portal's identifier lookup (market.portal): ``announcements.reference``, the identifier
an announcement is found by (its project's id, upper case), and its index.

An identifier term of a search (``GD20260012345``: ASCII letters and digits with a digit) is an
equality on this index instead of a trigram search, whose posting lists such a term shares
with every other project number (docs/benchmarks.md B7). The announcements already there get
their project's id. ``ALTER TABLE … ADD COLUMN`` (not a batch copy of the table) on SQLite:
the FTS5 index of migration 0010 refers to the table's rowids and must keep them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("announcements", sa.Column("reference", sa.String(length=64), nullable=False,
                                             server_default=""))
    op.execute("UPDATE announcements SET reference = upper(project_id)")
    op.create_index("ix_announcements_reference", "announcements", ["reference"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_announcements_reference", table_name="announcements")
    op.drop_column("announcements", "reference")  # SQLite 3.35+: in place, the triggers kept
