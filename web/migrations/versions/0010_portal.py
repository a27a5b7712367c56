"""The public portal's search (market.portal): full-text structures over the announcements'
title and body, per dialect, and the index of the portal's order.

- SQLite: the FTS5 table ``announcements_fts`` (tokenizer ``trigram``: substrings of 3+
  characters, so Chinese needs no word segmentation), external content on ``announcements``,
  filled from the rows already there and kept in sync by three triggers.
- PostgreSQL: the ``pg_trgm`` extension (a trusted extension since PostgreSQL 13: the database
  owner may create it) and a GIN trigram index on ``lower(title || ' ' || body)``, which
  ``LIKE`` on that expression uses (market.portal.store).
- Both: ``ix_announcements_order`` on ``(published_at_ms, id)``, the portal's order.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_UP = (
    "CREATE VIRTUAL TABLE announcements_fts USING fts5("
    "title, body, content='announcements', content_rowid='id', tokenize='trigram')",
    "INSERT INTO announcements_fts(announcements_fts) VALUES ('rebuild')",
    "CREATE TRIGGER announcements_fts_insert AFTER INSERT ON announcements BEGIN "
    "INSERT INTO announcements_fts(rowid, title, body) VALUES (new.id, new.title, new.body); "
    "END",
    "CREATE TRIGGER announcements_fts_delete AFTER DELETE ON announcements BEGIN "
    "INSERT INTO announcements_fts(announcements_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); END",
    "CREATE TRIGGER announcements_fts_update AFTER UPDATE OF title, body ON announcements BEGIN "
    "INSERT INTO announcements_fts(announcements_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); "
    "INSERT INTO announcements_fts(rowid, title, body) VALUES (new.id, new.title, new.body); "
    "END",
)
_SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS announcements_fts_update",
    "DROP TRIGGER IF EXISTS announcements_fts_delete",
    "DROP TRIGGER IF EXISTS announcements_fts_insert",
    "DROP TABLE IF EXISTS announcements_fts",
)
_POSTGRES_UP = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_announcements_text_trgm ON announcements "
    "USING gin (lower(title || ' ' || body) gin_trgm_ops)",
)
_POSTGRES_DOWN = ("DROP INDEX IF EXISTS ix_announcements_text_trgm",)


def upgrade() -> None:
    op.create_index("ix_announcements_order", "announcements", ["published_at_ms", "id"],
                    unique=False)
    dialect = op.get_bind().dialect.name
    for statement in _SQLITE_UP if dialect == "sqlite" else _POSTGRES_UP:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in _SQLITE_DOWN if dialect == "sqlite" else _POSTGRES_DOWN:
        op.execute(statement)
    op.drop_index("ix_announcements_order", table_name="announcements")
