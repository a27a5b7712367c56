"""Alembic migrations of the project's SQL schema (core + market). Run them with
``web.db.upgrade_database`` or ``alembic -c web/migrations/alembic.ini upgrade head``."""
