"""Database schema management: the project's model registry and Alembic migrations.

``load_models()`` imports every module that declares tables on ``bidroom.stores.sql.Base`` (core
and market), so ``Base.metadata`` is complete; ``web/migrations/env.py`` uses it. A new models
module must be added to ``MODEL_MODULES`` and get a migration in ``web/migrations/versions``.

``upgrade_database(url)`` runs ``alembic upgrade head`` on an async engine's connection (through
``run_sync``), so it works inside a running event loop (the app's lifespan) as well as from the
CLI. Several processes may call it at once: on PostgreSQL a transaction-scoped advisory lock
serialises them; on SQLite a loser of the race retries and finds the schema current.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, exc
from sqlalchemy.engine import Connection

from bidroom.errors import BidroomError, StoreError
from bidroom.stores.sql import Base, make_engine, normalize_database_url

__all__ = [
    "MIGRATIONS_DIR",
    "MODEL_MODULES",
    "alembic_config",
    "database_revision",
    "head_revision",
    "included_in_comparison",
    "load_models",
    "upgrade_database",
    "upgrade_database_sync",
]

MIGRATIONS_DIR: Final = Path(__file__).resolve().with_name("migrations")

# Every module that declares tables on Base. Imported for their side effect (registration).
MODEL_MODULES: Final = (
    "bidroom.stores.sql",
    "market.registry.models",
    "market.catalog.models",
    "bidroom.opening.store",
    "market.calendar.store",
    "market.events.outbox",
    "market.projects.store",
    "market.feed.store",
    "market.plans.store",
    "market.tendering.store",
    "market.experts.store",
)

_ATTEMPTS: Final = 3


def load_models() -> MetaData:
    """Import every models module and return the shared metadata."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return Base.metadata


#: Schema objects a migration creates by hand, outside the models (migration 0009: the portal's
#: full-text structures): autogenerate and the models-match-migrations test leave them alone.
HAND_MADE: Final = ("announcements_fts", "ix_announcements_text_trgm")


def included_in_comparison(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name`` hook: every object but the hand-made ones (and the shadow
    tables ``announcements_fts_*`` SQLite's FTS5 keeps)."""
    return name is None or not name.startswith(HAND_MADE)


def alembic_config(url: str | None = None) -> Config:
    """An Alembic ``Config`` built in code (no ini file): our script location, and the database
    URL (if given) in ``attributes`` — not in the ini options, where ``%`` would need escaping."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        cfg.attributes["database_url"] = normalize_database_url(url)
    return cfg


def head_revision() -> str | None:
    """The newest revision of the migration scripts."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade_on(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _revision_on(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade_database(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision`` (default: the newest). Idempotent.

    Raises ``StoreError`` when the database is unreachable or a migration fails.
    """
    engine = make_engine(url)
    try:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with engine.begin() as conn:
                    await conn.run_sync(_upgrade_on, revision)
                return
            except BidroomError:
                raise
            except (exc.SQLAlchemyError, OSError) as error:
                # SQLite: another process may have created the same tables a moment ago; the
                # next attempt sees its alembic_version and has nothing left to do.
                if attempt == _ATTEMPTS or engine.dialect.name != "sqlite":
                    raise StoreError(
                        f"database migration failed ({type(error).__name__}: {error})"
                    ) from error
                await asyncio.sleep(0.2 * attempt)
    finally:
        await engine.dispose()


def upgrade_database_sync(url: str, revision: str = "head") -> None:
    """``upgrade_database`` for synchronous callers (CLI, scripts). Called from a thread that
    runs an event loop, it migrates on a fresh loop in a worker thread (and blocks)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(upgrade_database(url, revision))
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, upgrade_database(url, revision)).result()


async def database_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at (None: never migrated)."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_revision_on)
    except (exc.SQLAlchemyError, OSError) as error:
        raise StoreError(f"cannot read the schema revision ({type(error).__name__})") from error
    finally:
        await engine.dispose()
