"""Alembic environment: migrates the project's metadata (``web.db.load_models``).

Online, with ``config.attributes["connection"]`` set (``web.db.upgrade_database`` does this, on
an async engine's connection via ``run_sync``) it migrates on that connection. Otherwise (the
``alembic`` CLI) it makes its own async engine from, in order: ``attributes["database_url"]``,
``-x url=…``, ``$BIDROOM_DATABASE_URL``, ``sqlalchemy.url`` in the ini.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from bidroom.stores.sql import make_engine, normalize_database_url
from web.db import included_in_comparison, load_models

# Any fixed 64-bit number, the same in every process: serialises concurrent migrations on
# PostgreSQL until the migrating transaction ends.
PG_MIGRATION_LOCK = 0x62696472_6F6F6D01

config = context.config
target_metadata = load_models()

if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = (
        config.attributes.get("database_url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("BIDROOM_DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        raise RuntimeError("no database URL: pass -x url=… or set BIDROOM_DATABASE_URL")
    return normalize_database_url(str(url))


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``)."""
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        include_name=included_in_comparison,  # not the portal's hand-made FTS objects
        render_as_batch=True,  # SQLite needs batch mode to alter tables
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = make_engine(_database_url())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
