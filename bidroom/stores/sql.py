"""The core's SQL adapter: the durable record of auctions, their results and the audit log.

Redis holds a live room; SQL holds what must outlive it: the auction as created (settings,
invitations, status), the result and full bid log persisted once at close, and an append-only
audit log of control actions. This module gives

* ``Base``: the one declarative base every model of the project subclasses (``market`` too), so
  one ``MetaData`` (with a constraint naming convention) feeds the Alembic migrations;
* ``make_engine`` / ``make_session_factory``: an async engine for SQLite (aiosqlite) or PostgreSQL
  (asyncpg); SQLite connections run in WAL mode with foreign keys on and a busy timeout, so
  several server processes may share one file;
* the auction tables and ``AuctionRepository``, whose methods open their own short transactions
  and raise only ``bidroom.errors`` types (``StoreError`` when the database fails).

Money is integer fen and time integer milliseconds since the epoch, stored as BIGINT.

Must not import: market, web.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    event,
    exc,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.dml import Insert

from bidroom.errors import (
    BidroomError,
    ConflictError,
    NotFoundError,
    StoreError,
    ValidationError,
)

__all__ = [
    "AUCTION_STATUSES",
    "SQLITE_BUSY_TIMEOUT_MS",
    "AuctionBidRow",
    "AuctionRepository",
    "AuctionResultRow",
    "AuctionRow",
    "AuditRow",
    "Base",
    "InvitationRow",
    "make_engine",
    "make_session_factory",
    "normalize_database_url",
    "sql_errors",
]

AUCTION_STATUSES: Final = ("scheduled", "open", "closed", "failed")
SQLITE_BUSY_TIMEOUT_MS: Final = 5000

# Stable constraint names: Alembic needs them to alter or drop constraints later (and SQLite's
# batch mode needs them to recreate tables).
NAMING_CONVENTION: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite makes only "INTEGER PRIMARY KEY" an auto-incrementing rowid alias.
_AUTO_ID = BigInteger().with_variant(Integer(), "sqlite")

_ID_LEN: Final = 64


class Base(DeclarativeBase):
    """The declarative base shared by every model of the project (core and market)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _status_check() -> CheckConstraint:
    allowed = ", ".join(f"'{status}'" for status in AUCTION_STATUSES)
    return CheckConstraint(f"status IN ({allowed})", name="status")


class AuctionRow(Base):
    """An auction as created. ``settings`` is the core's settings dict (fen, ms)."""

    __tablename__ = "auctions"
    __table_args__ = (
        _status_check(),
        Index("ix_auctions_status_end_ms", "status", "end_ms"),
    )

    id: Mapped[str] = mapped_column(String(_ID_LEN), primary_key=True)
    title: Mapped[str] = mapped_column(String)
    title_en: Mapped[str] = mapped_column(String, default="", server_default="")
    purchaser_org_id: Mapped[str] = mapped_column(String(_ID_LEN), index=True)
    agency_org_id: Mapped[str | None] = mapped_column(String(_ID_LEN), index=True)
    created_by_user_id: Mapped[str] = mapped_column(String(_ID_LEN))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    start_ms: Mapped[int] = mapped_column(BigInteger)
    end_ms: Mapped[int] = mapped_column(BigInteger)  # the original end, before extensions
    closed_at_ms: Mapped[int | None] = mapped_column(BigInteger)

    def __repr__(self) -> str:
        return f"AuctionRow(id={self.id!r}, status={self.status!r})"

    def status_at(self, now_ms: int) -> str:
        """The status as listed: ``scheduled`` before the start instant, ``open`` from the start
        until the close writes ``closed`` or ``failed`` (the room is live: running, extended,
        paused or closing). Only the close writes the column; the start needs no write, as
        the start instant never moves."""
        if self.status == "scheduled" and now_ms >= self.start_ms:
            return "open"
        return self.status


class InvitationRow(Base):
    """A supplier organisation invited to an auction."""

    __tablename__ = "auction_invitations"

    auction_id: Mapped[str] = mapped_column(
        String(_ID_LEN), ForeignKey("auctions.id", ondelete="CASCADE"), primary_key=True
    )
    supplier_org_id: Mapped[str] = mapped_column(String(_ID_LEN), primary_key=True, index=True)
    invited_at_ms: Mapped[int] = mapped_column(BigInteger)


class AuctionResultRow(Base):
    """The result of a closed auction, written exactly once."""

    __tablename__ = "auction_results"

    auction_id: Mapped[str] = mapped_column(
        String(_ID_LEN), ForeignKey("auctions.id", ondelete="CASCADE"), primary_key=True
    )
    failed: Mapped[bool] = mapped_column(Boolean)
    failure_reason: Mapped[str | None] = mapped_column(String(64))
    winner_org_id: Mapped[str | None] = mapped_column(String(_ID_LEN))
    winning_fen: Mapped[int | None] = mapped_column(BigInteger)
    ceiling_fen: Mapped[int] = mapped_column(BigInteger)
    savings_fen: Mapped[int | None] = mapped_column(BigInteger)
    savings_bp: Mapped[int | None] = mapped_column(Integer)  # basis points of the ceiling
    valid_bidders: Mapped[int] = mapped_column(Integer)
    ranking: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    closed_at_ms: Mapped[int] = mapped_column(BigInteger)
    final_end_ms: Mapped[int] = mapped_column(BigInteger)
    extensions: Mapped[int] = mapped_column(Integer)
    result_sha256: Mapped[str] = mapped_column(String(64))
    persisted_at_ms: Mapped[int] = mapped_column(BigInteger)

    def __repr__(self) -> str:
        return f"AuctionResultRow(auction_id={self.auction_id!r}, failed={self.failed!r})"


class AuctionBidRow(Base):
    """One accepted bid of the full bid log, persisted with the result."""

    __tablename__ = "auction_bids"

    auction_id: Mapped[str] = mapped_column(
        String(_ID_LEN), ForeignKey("auctions.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    supplier_org_id: Mapped[str] = mapped_column(String(_ID_LEN))
    alias: Mapped[int] = mapped_column(Integer)
    bid_id: Mapped[str] = mapped_column(String(128))
    price_fen: Mapped[int] = mapped_column(BigInteger)
    at_ms: Mapped[int] = mapped_column(BigInteger)

    def __repr__(self) -> str:
        return f"AuctionBidRow(auction_id={self.auction_id!r}, seq={self.seq!r})"


class AuditRow(Base):
    """Append-only record of a control action (create, invite, pause, resume, ...)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_subject_id", "subject", "id"),)

    id: Mapped[int] = mapped_column(_AUTO_ID, primary_key=True, autoincrement=True)
    at_ms: Mapped[int] = mapped_column(BigInteger)
    actor_user_id: Mapped[str | None] = mapped_column(String(_ID_LEN))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)

    def __repr__(self) -> str:
        return f"AuditRow(id={self.id!r}, action={self.action!r}, subject={self.subject!r})"


# --------------------------------------------------------------------------- engine


def normalize_database_url(url: str) -> str:
    """Return ``url`` with an async driver: ``postgres://``/``postgresql://`` → asyncpg,
    ``sqlite://`` → aiosqlite. Other drivers are refused (``invalid_database_url``)."""
    try:
        parsed: URL = make_url(url)
    except exc.ArgumentError as error:
        raise ValidationError(
            "the database URL cannot be parsed", code="invalid_database_url"
        ) from error
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgres", "postgresql") and driver in ("", "asyncpg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite" and driver in ("", "aiosqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    else:
        raise ValidationError(
            f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:/// or "
            "postgresql://",
            code="invalid_database_url",
        )
    return parsed.render_as_string(hide_password=False)


def _configure_sqlite_connection(dbapi_connection: Any, _connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL needs a lock another process may hold.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine for a SQLite or PostgreSQL URL (see ``normalize_database_url``)."""
    normalized = normalize_database_url(url)
    if normalized.startswith("sqlite"):
        engine = create_async_engine(normalized, echo=echo)
        event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
        return engine
    return create_async_engine(normalized, echo=echo, pool_pre_ping=True)


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@contextlib.contextmanager
def sql_errors(action: str) -> Iterator[None]:
    """Translate database failures inside the block into ``bidroom.errors``.

    A ``BidroomError`` passes through; an integrity violation becomes ``ConflictError``
    (``integrity_conflict``); any other SQLAlchemy or connection failure becomes ``StoreError``.
    """
    try:
        yield
    except BidroomError:
        raise
    except exc.IntegrityError as error:
        raise ConflictError(
            f"{action}: the change conflicts with stored data", code="integrity_conflict"
        ) from error
    except (exc.SQLAlchemyError, OSError) as error:  # TimeoutError/ConnectionError are OSError
        raise StoreError(f"{action}: the database failed ({type(error).__name__})") from error


def _column_values(obj: Base) -> dict[str, Any]:
    """Column name → value for the attributes set on a (transient) ORM object; unset attributes
    are left out so column defaults apply."""
    state = inspect(obj)
    values: dict[str, Any] = {}
    for prop in state.mapper.column_attrs:
        if prop.key in state.dict:
            values[prop.columns[0].name] = state.dict[prop.key]
    return values


def _insert_ignoring_conflicts(
    dialect_name: str, table: Table, rows: Sequence[dict[str, Any]], key: Sequence[str]
) -> Insert | None:
    """``INSERT .. ON CONFLICT (key) DO NOTHING`` for the dialects that have it."""
    if dialect_name == "postgresql":
        return (
            pg_dialect.insert(table)
            .values(list(rows))
            .on_conflict_do_nothing(index_elements=list(key))
        )
    if dialect_name == "sqlite":
        return (
            sqlite_dialect.insert(table)
            .values(list(rows))
            .on_conflict_do_nothing(index_elements=list(key))
        )
    return None


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


# --------------------------------------------------------------------------- repository


class AuctionRepository:
    """Durable auction records. Every method runs in its own short transaction."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    async def create_auction(self, row: AuctionRow, invited: Iterable[str], now_ms: int) -> None:
        """Store a new auction and its invitations (duplicates in ``invited`` collapse).

        A taken id raises ``ConflictError`` (``auction_exists``).
        """
        if row.status is None:
            row.status = "scheduled"
        _check_status(row.status)
        suppliers = list(dict.fromkeys(invited))
        with sql_errors("create auction"):
            try:
                async with self._sessions() as session, session.begin():
                    session.add(row)
                    await session.flush()
                    session.add_all(
                        InvitationRow(
                            auction_id=row.id, supplier_org_id=supplier, invited_at_ms=now_ms
                        )
                        for supplier in suppliers
                    )
            except exc.IntegrityError as error:
                raise ConflictError(
                    f"auction {row.id} already exists", code="auction_exists", auction_id=row.id
                ) from error

    async def get_auction(self, auction_id: str) -> AuctionRow | None:
        with sql_errors("get auction"):
            async with self._sessions() as session:
                return await session.get(AuctionRow, auction_id)

    async def list_auctions(
        self,
        *,
        purchaser_org_id: str | None = None,
        agency_org_id: str | None = None,
        supplier_org_id: str | None = None,
        statuses: Iterable[str] | None = None,
        limit: int = 100,
        now_ms: int | None = None,
    ) -> list[AuctionRow]:
        """Auctions, newest start first. The organisation filters combine with OR (an auction
        of this purchaser, or run by this agency, or inviting this supplier); with none given,
        every auction. ``statuses``, if given, further restricts (AND): the stored column, or
        with ``now_ms`` the status as listed at that instant (``AuctionRow.status_at``), in
        the same one query."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError("limit must be a positive integer", code="invalid_limit")
        stmt = select(AuctionRow)
        conditions = []
        if purchaser_org_id is not None:
            conditions.append(AuctionRow.purchaser_org_id == purchaser_org_id)
        if agency_org_id is not None:
            conditions.append(AuctionRow.agency_org_id == agency_org_id)
        if supplier_org_id is not None:
            invited = select(InvitationRow.auction_id).where(
                InvitationRow.supplier_org_id == supplier_org_id
            )
            conditions.append(AuctionRow.id.in_(invited))
        if conditions:
            stmt = stmt.where(or_(*conditions))
        if statuses is not None:
            wanted = list(statuses)
            for status in wanted:
                _check_status(status)
            if now_ms is None:
                stmt = stmt.where(AuctionRow.status.in_(wanted))
            else:
                stmt = stmt.where(or_(*(_listed_as(status, now_ms) for status in wanted)))
        stmt = stmt.order_by(AuctionRow.start_ms.desc(), AuctionRow.id).limit(limit)
        with sql_errors("list auctions"):
            async with self._sessions() as session:
                return list((await session.scalars(stmt)).all())

    async def invited_suppliers(self, auction_id: str) -> list[str]:
        """Invited supplier ids in invitation order."""
        stmt = (
            select(InvitationRow.supplier_org_id)
            .where(InvitationRow.auction_id == auction_id)
            .order_by(InvitationRow.invited_at_ms, InvitationRow.supplier_org_id)
        )
        with sql_errors("list invitations"):
            async with self._sessions() as session:
                return list((await session.scalars(stmt)).all())

    async def add_invitations(
        self, auction_id: str, supplier_ids: Iterable[str], now_ms: int
    ) -> list[str]:
        """Invite suppliers; those already invited are ignored. Returns the newly invited ones.

        An unknown auction raises ``NotFoundError`` (``auction_not_found``).
        """
        suppliers = list(dict.fromkeys(supplier_ids))
        with sql_errors("add invitations"):
            async with self._sessions() as session, session.begin():
                if await session.get(AuctionRow, auction_id) is None:
                    raise _auction_not_found(auction_id)
                if not suppliers:
                    return []
                rows = [
                    {"auction_id": auction_id, "supplier_org_id": s, "invited_at_ms": now_ms}
                    for s in suppliers
                ]
                conn = await session.connection()
                table = _table(InvitationRow)
                stmt = _insert_ignoring_conflicts(
                    conn.dialect.name, table, rows, ("auction_id", "supplier_org_id")
                )
                if stmt is not None:
                    result = await session.execute(stmt.returning(table.c.supplier_org_id))
                    added = set(result.scalars().all())
                    return [s for s in suppliers if s in added]
                existing = set(
                    (
                        await session.scalars(
                            select(InvitationRow.supplier_org_id).where(
                                InvitationRow.auction_id == auction_id
                            )
                        )
                    ).all()
                )
                new = [s for s in suppliers if s not in existing]
                if new:
                    await session.execute(
                        insert(table),
                        [r for r in rows if r["supplier_org_id"] not in existing],
                    )
                return new

    async def set_status(
        self, auction_id: str, status: str, closed_at_ms: int | None = None
    ) -> None:
        """Set the status (and ``closed_at_ms`` when given). Unknown auction: ``NotFoundError``."""
        _check_status(status)
        values: dict[str, Any] = {"status": status}
        if closed_at_ms is not None:
            values["closed_at_ms"] = closed_at_ms
        with sql_errors("set auction status"):
            async with self._sessions() as session, session.begin():
                result = await session.execute(
                    update(AuctionRow).where(AuctionRow.id == auction_id).values(**values)
                )
                if _rowcount(result) == 0:
                    raise _auction_not_found(auction_id)

    async def save_result(self, result: AuctionResultRow, bids: Sequence[AuctionBidRow]) -> bool:
        """Persist a close exactly once: the result, its bid log, and the auction's status
        ("failed" or "closed") with ``closed_at_ms``, in one transaction.

        Idempotent and race-safe across processes: when a result for the auction already
        exists nothing is stored and False is returned; True means this call stored it.
        An unknown auction raises ``NotFoundError``.
        """
        auction_id = result.auction_id
        if any(bid.auction_id != auction_id for bid in bids):
            raise ValidationError(
                "every bid must belong to the result's auction", code="invalid_result"
            )
        result_values = _column_values(result)
        bid_values = [_column_values(bid) for bid in sorted(bids, key=lambda b: b.seq)]
        with sql_errors("save auction result"):
            try:
                async with self._sessions() as session, session.begin():
                    conn = await session.connection()
                    table = _table(AuctionResultRow)
                    stmt = _insert_ignoring_conflicts(
                        conn.dialect.name, table, [result_values], ("auction_id",)
                    )
                    if stmt is not None:
                        inserted = await session.execute(stmt.returning(table.c.auction_id))
                        if inserted.first() is None:
                            return False  # another call (or process) stored it first
                    else:
                        try:
                            async with session.begin_nested():
                                await session.execute(insert(table), [result_values])
                        except exc.IntegrityError:
                            if await session.get(AuctionResultRow, auction_id) is not None:
                                return False
                            raise
                    if bid_values:
                        await session.execute(insert(_table(AuctionBidRow)), bid_values)
                    await session.execute(
                        update(AuctionRow)
                        .where(AuctionRow.id == auction_id)
                        .values(
                            status="failed" if result.failed else "closed",
                            closed_at_ms=result.closed_at_ms,
                        )
                    )
                return True
            except exc.IntegrityError as error:
                # The result insert only conflicts on its key (handled above): what is left is
                # a missing auction (foreign key), a duplicate bid seq or a missing field.
                if await self.get_auction(auction_id) is None:
                    raise _auction_not_found(auction_id) from error
                raise ConflictError(
                    f"the result of auction {auction_id} or its bid log is inconsistent",
                    code="invalid_result",
                    auction_id=auction_id,
                ) from error

    async def get_result(
        self, auction_id: str
    ) -> tuple[AuctionResultRow, list[AuctionBidRow]] | None:
        """The stored result and its bids in sequence order, or None if not closed yet."""
        with sql_errors("get auction result"):
            async with self._sessions() as session:
                row = await session.get(AuctionResultRow, auction_id)
                if row is None:
                    return None
                bids = await session.scalars(
                    select(AuctionBidRow)
                    .where(AuctionBidRow.auction_id == auction_id)
                    .order_by(AuctionBidRow.seq)
                )
                return row, list(bids.all())

    async def append_audit(
        self,
        *,
        at_ms: int,
        action: str,
        subject: str,
        actor_user_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditRow:
        """Append one audit record (e.g. action="pause", subject=auction id,
        details={"reason": ...}) and return it with its id."""
        row = AuditRow(
            at_ms=at_ms,
            action=action,
            subject=subject,
            actor_user_id=actor_user_id,
            details=dict(details or {}),
        )
        with sql_errors("append audit"):
            async with self._sessions() as session, session.begin():
                session.add(row)
        return row

    async def list_audit(self, subject: str, *, limit: int | None = None) -> list[AuditRow]:
        """Audit records of one subject, oldest first."""
        stmt = select(AuditRow).where(AuditRow.subject == subject).order_by(AuditRow.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        with sql_errors("list audit"):
            async with self._sessions() as session:
                return list((await session.scalars(stmt)).all())


def _listed_as(status: str, now_ms: int) -> ColumnElement[bool]:
    """The SQL condition of ``AuctionRow.status_at(now_ms) == status``."""
    if status == "open":
        return or_(AuctionRow.status == "open",
                   and_(AuctionRow.status == "scheduled", AuctionRow.start_ms <= now_ms))
    if status == "scheduled":
        return and_(AuctionRow.status == "scheduled", AuctionRow.start_ms > now_ms)
    return AuctionRow.status == status


def _check_status(status: str) -> None:
    if status not in AUCTION_STATUSES:
        raise ValidationError(
            f"unknown auction status {status!r}", code="invalid_status", status=status
        )


def _auction_not_found(auction_id: str) -> NotFoundError:
    return NotFoundError(
        f"auction {auction_id} not found", code="auction_not_found", auction_id=auction_id
    )


def _rowcount(result: Any) -> int:
    count = getattr(result, "rowcount", -1)
    return int(count)
