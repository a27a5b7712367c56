"""The durable record of sealed-bid openings: SQL tables, the hash-chained opening log, and the
content-addressed ciphertext files.

The **opening log** (``opening_log``) is the truth: every event of the pure session
(``bidroom.opening.session``), in order, one row per sequence number, never updated or
deleted. Each entry stores ``hash = sha256(prev_hash + canonical entry)`` (the first entry's
``prev_hash`` is 64 zeros), so any change to a past entry breaks every later hash: tamper-
evident 全程留痕 (O87 39: the opening is fully recorded). ``verify_chain`` recomputes it.

The other tables are projections kept in the same transaction as the log append, for queries:
``openings`` (with ``seq``, the compare-and-set guard: an append succeeds only if the opening
is still at the sequence the decision was taken on), ``opening_bids`` (every accepted upload
with its signed receipt), ``opening_objections``, and ``opening_backup_shares`` (each
official's share of the backup key, sealed to that official's encryption certificate; after a
submission, the share sealed again to the current ceremony's key, which exists only in the
memory of the process that will rebuild the key: ``bidroom.opening.backup``). No share, and no
key that opens one, is ever stored in the clear.

Ciphertext files live under ``DATA_DIR/openings/<opening id>/<sha256>.cms``: written once
(a temporary file hard-linked into place, never overwritten), read-only, and re-hashed before
every use (``verify_ciphertext``; a mismatch is ``ciphertext_corrupted``).

Must not import: market, web.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    exc,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bidroom.errors import ConflictError, NotFoundError, ValidationError
from bidroom.opening.session import (
    BidDecrypted,
    BidderInvited,
    BidReplaced,
    BidRevoked,
    BidSubmitted,
    BidWithdrawn,
    Event,
    ObjectionAnswered,
    ObjectionRaised,
    OpeningCreated,
    OpeningFailed,
    PlatformFaultMarked,
    RecordConfirmed,
    event_from_dict,
    event_to_dict,
)
from bidroom.receipts import canonical_json
from bidroom.stores.files import HASH_CHUNK, ContentFiles, sha256_file
from bidroom.stores.sql import Base, sql_errors

__all__ = [
    "GENESIS_HASH",
    "HASH_CHUNK",
    "CiphertextFiles",
    "LogEntry",
    "OpeningBidRow",
    "OpeningInvitationRow",
    "OpeningLogRow",
    "OpeningObjectionRow",
    "OpeningRow",
    "OpeningShareRow",
    "OpeningStore",
    "SupplierCertificateRow",
    "chain_hash",
    "sha256_file",
    "verify_chain",
]

GENESIS_HASH: Final = "0" * 64
_ID: Final = 64


class OpeningRow(Base):
    """An opening as created; ``seq``/``head_hash`` follow its log, ``status`` its phase."""

    __tablename__ = "openings"
    __table_args__ = (Index("ix_openings_status_deadline_ms", "status", "deadline_ms"),)

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    title: Mapped[str] = mapped_column(String)
    title_en: Mapped[str] = mapped_column(String, default="", server_default="")
    purchaser_org_id: Mapped[str] = mapped_column(String(_ID), index=True)
    agency_org_id: Mapped[str | None] = mapped_column(String(_ID), index=True)
    created_by_user_id: Mapped[str] = mapped_column(String(_ID))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    deadline_ms: Mapped[int] = mapped_column(BigInteger)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    concluded_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    # The backup opening key's certificate (PEM); its private key exists nowhere.
    backup_certificate_pem: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"OpeningRow(id={self.id!r}, status={self.status!r}, seq={self.seq!r})"


class OpeningInvitationRow(Base):
    __tablename__ = "opening_invitations"

    opening_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("openings.id", ondelete="CASCADE"), primary_key=True
    )
    supplier_org_id: Mapped[str] = mapped_column(String(_ID), primary_key=True, index=True)
    invited_at_ms: Mapped[int] = mapped_column(BigInteger)


class OpeningBidRow(Base):
    """One accepted upload, with the receipt issued for it. ``current`` marks each supplier's
    bid in force; ``status`` follows it through the opening (sealed, replaced, withdrawn,
    decrypted, revoked) and ``reason`` says why (e.g. ``withdrawn_platform_fault``)."""

    __tablename__ = "opening_bids"
    __table_args__ = (Index("ix_opening_bids_opening_id_supplier", "opening_id",
                            "supplier_org_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                    primary_key=True, autoincrement=True)
    opening_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("openings.id", ondelete="CASCADE")
    )
    supplier_org_id: Mapped[str] = mapped_column(String(_ID))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    storage_path: Mapped[str] = mapped_column(String)  # relative to the data dir
    receipt: Mapped[dict[str, Any]] = mapped_column(JSON)
    uploaded_at_ms: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(BigInteger)  # the log entry that accepted it
    current: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self) -> str:
        return (f"OpeningBidRow(opening_id={self.opening_id!r}, "
                f"supplier={self.supplier_org_id!r}, status={self.status!r})")


class OpeningLogRow(Base):
    """One event of an opening, hash-chained to the previous one. Append-only."""

    __tablename__ = "opening_log"

    opening_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("openings.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at_ms: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(_ID))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class OpeningObjectionRow(Base):
    """An objection raised at the opening and its answer (O87 42)."""

    __tablename__ = "opening_objections"

    opening_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("openings.id", ondelete="CASCADE"), primary_key=True
    )
    objection_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    supplier_org_id: Mapped[str] = mapped_column(String(_ID))
    text: Mapped[str] = mapped_column(Text)
    raised_at_ms: Mapped[int] = mapped_column(BigInteger)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(_ID))
    answered_at_ms: Mapped[int | None] = mapped_column(BigInteger)


class OpeningShareRow(Base):
    """One official's share of the backup opening key, sealed to the official's encryption
    certificate (``sealed``). A submitted share is kept only sealed to the ceremony's key
    (``ceremony_sealed``, for ``ceremony_id``), from its submission until the rebuild."""

    __tablename__ = "opening_backup_shares"

    opening_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("openings.id", ondelete="CASCADE"), primary_key=True
    )
    official_user_id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    certificate_fingerprint: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[dict[str, Any]] = mapped_column(JSON)
    ceremony_id: Mapped[str | None] = mapped_column(String(_ID))
    ceremony_sealed: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    submitted_at_ms: Mapped[int | None] = mapped_column(BigInteger)


class SupplierCertificateRow(Base):
    """A supplier's dual certificates as it registered them (``PUT /api/certificates/me``),
    e.g. from a licensed CA whose root the platform imported. Every registration is kept (a
    bid sealed to an older one can still be opened); the newest is the one in force, and
    registered certificates win over those the platform CA issued for the organisation."""

    __tablename__ = "supplier_certificates"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                    primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(_ID), index=True)
    signing_certificate_pem: Mapped[str] = mapped_column(Text)
    encryption_certificate_pem: Mapped[str] = mapped_column(Text)
    signing_fingerprint: Mapped[str] = mapped_column(String(64))
    encryption_fingerprint: Mapped[str] = mapped_column(String(64))
    registered_by_user_id: Mapped[str] = mapped_column(String(_ID))
    registered_at_ms: Mapped[int] = mapped_column(BigInteger)


# --------------------------------------------------------------------------- the hash chain


def chain_hash(prev_hash: str, opening_id: str, actor: str | None,
               data: dict[str, Any]) -> str:
    """``sha256(prev_hash + canonical entry)``; the entry is the canonical JSON of
    ``{"opening_id", "actor", "event"}`` (sorted keys, no spaces, UTF-8)."""
    entry = canonical_json({"opening_id": opening_id, "actor": actor, "event": data})
    return hashlib.sha256(prev_hash.encode("ascii") + entry).hexdigest()


def verify_chain(rows: Sequence[OpeningLogRow]) -> str | None:
    """The first problem in a log (a gap, a changed entry, a broken link), or None."""
    previous = GENESIS_HASH
    for expected_seq, row in enumerate(rows, start=1):
        if row.seq != expected_seq:
            return f"entry {expected_seq} is missing"
        if row.prev_hash != previous:
            return f"entry {row.seq} does not link to entry {row.seq - 1}"
        if chain_hash(row.prev_hash, row.opening_id, row.actor, row.data) != row.hash:
            return f"entry {row.seq} was changed after it was written"
        if row.data.get("seq") != row.seq or row.data.get("kind") != row.kind:
            return f"entry {row.seq} does not match its event"
        previous = row.hash
    return None


@dataclass(frozen=True, slots=True)
class LogEntry:
    """An event to append, with who caused it (a user id, or None for the clock)."""

    event: Event
    actor: str | None = None


# --------------------------------------------------------------------------- files


class CiphertextFiles(ContentFiles):
    """Content-addressed, write-once ciphertext files: ``DATA_DIR/openings/<opening>/<sha256>.cms``
    (``bidroom.stores.files``), and where a bid its owner decrypted is kept."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, area="openings", suffix=".cms", what="ciphertext")

    def opened_dir(self, opening_id: str, supplier_id: str) -> Path:
        """Where a bid decrypted by its owner is kept for evaluation."""
        return self.root / opening_id / "opened" / supplier_id


# --------------------------------------------------------------------------- the repository


class _LostRace(Exception):
    """Another writer moved the opening on first: roll back and decide again."""


_BID_STATUS_OF_EVENT: Final[dict[type[Any], tuple[str, str | None]]] = {
    BidDecrypted: ("decrypted", None),
    PlatformFaultMarked: ("withdrawn", "withdrawn_platform_fault"),
    BidRevoked: ("revoked", "revoked_by_bidder"),
}


class OpeningStore:
    """Durable openings. Every method runs in its own short transaction."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    async def create(
        self,
        row: OpeningRow,
        invited: Iterable[str],
        first: OpeningCreated,
        *,
        actor: str | None,
        shares: Sequence[OpeningShareRow] = (),
    ) -> None:
        """Store a new opening, its invitations, its first log entry and the sealed shares."""
        data = event_to_dict(first)
        row.seq = first.seq
        row.head_hash = chain_hash(GENESIS_HASH, row.id, actor, data)
        log = OpeningLogRow(opening_id=row.id, seq=first.seq, at_ms=first.at_ms,
                            kind=data["kind"], actor=actor, data=data,
                            prev_hash=GENESIS_HASH, hash=row.head_hash)
        with sql_errors("create opening"):
            try:
                async with self._sessions() as session, session.begin():
                    session.add(row)
                    await session.flush()
                    session.add_all(
                        OpeningInvitationRow(opening_id=row.id, supplier_org_id=s,
                                             invited_at_ms=first.at_ms)
                        for s in dict.fromkeys(invited)
                    )
                    session.add(log)
                    session.add_all(shares)
            except exc.IntegrityError as error:
                raise ConflictError(f"opening {row.id} already exists",
                                    code="opening_exists") from error

    async def get(self, opening_id: str) -> OpeningRow | None:
        with sql_errors("get opening"):
            async with self._sessions() as session:
                return await session.get(OpeningRow, opening_id)

    async def list_openings(
        self,
        *,
        purchaser_org_id: str | None = None,
        agency_org_id: str | None = None,
        supplier_org_id: str | None = None,
        everything: bool = False,
        limit: int = 100,
    ) -> list[OpeningRow]:
        """Openings, newest deadline first: of this purchaser, or run by this agency, or
        inviting this supplier (OR); ``everything`` for supervisors."""
        from sqlalchemy import or_

        stmt = select(OpeningRow)
        if not everything:
            conditions = []
            if purchaser_org_id is not None:
                conditions.append(OpeningRow.purchaser_org_id == purchaser_org_id)
            if agency_org_id is not None:
                conditions.append(OpeningRow.agency_org_id == agency_org_id)
            if supplier_org_id is not None:
                invited = select(OpeningInvitationRow.opening_id).where(
                    OpeningInvitationRow.supplier_org_id == supplier_org_id)
                conditions.append(OpeningRow.id.in_(invited))
            if not conditions:
                return []
            stmt = stmt.where(or_(*conditions))
        stmt = stmt.order_by(OpeningRow.deadline_ms.desc(), OpeningRow.id).limit(limit)
        with sql_errors("list openings"):
            async with self._sessions() as session:
                return list((await session.scalars(stmt)).all())

    async def invited(self, opening_id: str) -> list[str]:
        stmt = (select(OpeningInvitationRow.supplier_org_id)
                .where(OpeningInvitationRow.opening_id == opening_id)
                .order_by(OpeningInvitationRow.supplier_org_id))
        with sql_errors("list opening invitations"):
            async with self._sessions() as session:
                return list((await session.scalars(stmt)).all())

    async def log(self, opening_id: str, after_seq: int = 0) -> list[OpeningLogRow]:
        """Log entries after ``after_seq``, in order."""
        stmt = (select(OpeningLogRow)
                .where(OpeningLogRow.opening_id == opening_id, OpeningLogRow.seq > after_seq)
                .order_by(OpeningLogRow.seq))
        with sql_errors("read opening log"):
            async with self._sessions() as session:
                return list((await session.scalars(stmt)).all())

    async def events(self, opening_id: str, after_seq: int = 0) -> list[Event]:
        return [event_from_dict(row.data) for row in await self.log(opening_id, after_seq)]

    async def append(
        self,
        opening_id: str,
        expected_seq: int,
        entries: Sequence[LogEntry],
        *,
        status: str,
        new_bid: OpeningBidRow | None = None,
    ) -> bool:
        """Append events decided on the state at ``expected_seq``: all or nothing.

        The compare-and-set: the opening row's ``seq`` must still be ``expected_seq`` (and the
        log's primary key refuses a second entry of a sequence number). Returns False when
        another writer got there first: decide again on the fresh state.
        """
        if not entries:
            return True
        with sql_errors("append to the opening log"):
            try:
                async with self._sessions() as session, session.begin():
                    row = await session.get(OpeningRow, opening_id, with_for_update=True)
                    if row is None:
                        raise NotFoundError(f"opening {opening_id} not found",
                                            code="opening_not_found")
                    if row.seq != expected_seq:
                        return False
                    head = row.head_hash
                    new_seq = expected_seq
                    concluded = row.concluded_at_ms
                    for entry in entries:
                        data = event_to_dict(entry.event)
                        digest = chain_hash(head, opening_id, entry.actor, data)
                        session.add(OpeningLogRow(
                            opening_id=opening_id, seq=data["seq"], at_ms=data["at_ms"],
                            kind=data["kind"], actor=entry.actor, data=data, prev_hash=head,
                            hash=digest))
                        head, new_seq = digest, int(data["seq"])
                        if isinstance(entry.event, RecordConfirmed):
                            concluded = entry.event.at_ms
                        await self._project(session, opening_id, entry.event, new_bid)
                    result = await session.execute(
                        update(OpeningRow)
                        .where(OpeningRow.id == opening_id, OpeningRow.seq == expected_seq)
                        .values(seq=new_seq, head_hash=head, status=status,
                                concluded_at_ms=concluded)
                    )
                    if int(getattr(result, "rowcount", 1)) == 0:
                        raise _LostRace
                return True
            except _LostRace:
                return False
            except exc.IntegrityError:
                return False  # another writer appended this sequence number first
            except exc.OperationalError as error:
                if "locked" in str(error).lower():  # SQLite: a concurrent writer; retry
                    return False
                raise

    async def _project(self, session: AsyncSession, opening_id: str, event: Event,
                       new_bid: OpeningBidRow | None) -> None:
        if isinstance(event, BidSubmitted | BidReplaced | BidWithdrawn):
            status = "withdrawn" if isinstance(event, BidWithdrawn) else "replaced"
            reason = "withdrawn_by_bidder" if isinstance(event, BidWithdrawn) else None
            await session.execute(
                update(OpeningBidRow)
                .where(OpeningBidRow.opening_id == opening_id,
                       OpeningBidRow.supplier_org_id == event.supplier_id,
                       OpeningBidRow.current.is_(True))
                .values(current=False, status=status, reason=reason))
            if not isinstance(event, BidWithdrawn):
                if new_bid is None or new_bid.sha256 != event.sha256:
                    raise ValidationError("an accepted upload needs its bid row",
                                          code="invalid_input")
                new_bid.seq = event.seq
                new_bid.current = True
                new_bid.status = "sealed"
                session.add(new_bid)
        elif type(event) in _BID_STATUS_OF_EVENT:
            assert isinstance(event, BidDecrypted | PlatformFaultMarked | BidRevoked)
            status, reason = _BID_STATUS_OF_EVENT[type(event)]
            await session.execute(
                update(OpeningBidRow)
                .where(OpeningBidRow.opening_id == opening_id,
                       OpeningBidRow.supplier_org_id == event.supplier_id,
                       OpeningBidRow.current.is_(True))
                .values(status=status, reason=reason))
        elif isinstance(event, ObjectionRaised):
            session.add(OpeningObjectionRow(
                opening_id=opening_id, objection_id=event.objection_id,
                supplier_org_id=event.supplier_id, text=event.text,
                raised_at_ms=event.at_ms))
        elif isinstance(event, ObjectionAnswered):
            await session.execute(
                update(OpeningObjectionRow)
                .where(OpeningObjectionRow.opening_id == opening_id,
                       OpeningObjectionRow.objection_id == event.objection_id)
                .values(answer=event.text, answered_by=event.by,
                        answered_at_ms=event.at_ms))
        elif isinstance(event, BidderInvited):
            session.add(OpeningInvitationRow(opening_id=opening_id,
                                             supplier_org_id=event.supplier_id,
                                             invited_at_ms=event.at_ms))
        elif isinstance(event, OpeningFailed):
            pass  # the opening row's status says it

    async def current_bid(self, opening_id: str, supplier_id: str) -> OpeningBidRow | None:
        stmt = select(OpeningBidRow).where(
            OpeningBidRow.opening_id == opening_id,
            OpeningBidRow.supplier_org_id == supplier_id,
            OpeningBidRow.current.is_(True))
        with sql_errors("get bid"):
            async with self._sessions() as session:
                return (await session.scalars(stmt)).first()

    async def bids(self, opening_id: str, supplier_id: str | None = None,
                   *, current_only: bool = False) -> list[OpeningBidRow]:
        """Uploads of an opening (of one supplier), oldest first."""
        stmt = select(OpeningBidRow).where(OpeningBidRow.opening_id == opening_id)
        if supplier_id is not None:
            stmt = stmt.where(OpeningBidRow.supplier_org_id == supplier_id)
        if current_only:
            stmt = stmt.where(OpeningBidRow.current.is_(True))
        stmt = stmt.order_by(OpeningBidRow.id)
        with sql_errors("list bids"):
            async with self._sessions() as session:
                return list((await session.scalars(stmt)).all())

    async def objections(self, opening_id: str) -> list[OpeningObjectionRow]:
        stmt = (select(OpeningObjectionRow)
                .where(OpeningObjectionRow.opening_id == opening_id)
                .order_by(OpeningObjectionRow.objection_id))
        with sql_errors("list objections"):
            async with self._sessions() as session:
                return list((await session.scalars(stmt)).all())

    # ------------------------------------------------------------------ backup key shares

    async def share(self, opening_id: str, official: str) -> OpeningShareRow | None:
        with sql_errors("get share"):
            async with self._sessions() as session:
                return await session.get(OpeningShareRow, (opening_id, official))

    async def shares(self, opening_id: str) -> list[OpeningShareRow]:
        stmt = (select(OpeningShareRow).where(OpeningShareRow.opening_id == opening_id)
                .order_by(OpeningShareRow.official_user_id))
        with sql_errors("list shares"):
            async with self._sessions() as session:
                return list((await session.scalars(stmt)).all())

    async def keep_submission(self, opening_id: str, official: str, ceremony_id: str,
                              sealed: dict[str, Any], at_ms: int) -> None:
        """Keep a submitted share, sealed to the ceremony's key, until the rebuild."""
        with sql_errors("keep submission"):
            async with self._sessions() as session, session.begin():
                await session.execute(
                    update(OpeningShareRow)
                    .where(OpeningShareRow.opening_id == opening_id,
                           OpeningShareRow.official_user_id == official)
                    .values(ceremony_id=ceremony_id, ceremony_sealed=sealed,
                            submitted_at_ms=at_ms))

    async def erase_submission(self, opening_id: str, official: str,
                               ceremony_id: str) -> None:
        """Forget one official's submission to this ceremony (its submission was refused)."""
        with sql_errors("erase submission"):
            async with self._sessions() as session, session.begin():
                await session.execute(
                    update(OpeningShareRow)
                    .where(OpeningShareRow.opening_id == opening_id,
                           OpeningShareRow.official_user_id == official,
                           OpeningShareRow.ceremony_id == ceremony_id)
                    .values(ceremony_id=None, ceremony_sealed=None))

    async def erase_submissions(self, opening_id: str) -> None:
        """Forget every submission (after a rebuild, successful or not)."""
        with sql_errors("erase submissions"):
            async with self._sessions() as session, session.begin():
                await session.execute(
                    update(OpeningShareRow)
                    .where(OpeningShareRow.opening_id == opening_id)
                    .values(ceremony_id=None, ceremony_sealed=None))

    # ------------------------------------------------------------ registered certificates

    async def register_certificates(self, row: SupplierCertificateRow) -> None:
        """Keep a supplier's registration (the newest is in force)."""
        with sql_errors("register certificates"):
            async with self._sessions() as session, session.begin():
                session.add(row)

    async def registered_certificates(self, org_id: str) -> list[SupplierCertificateRow]:
        """The organisation's registrations, newest first."""
        stmt = (select(SupplierCertificateRow).where(SupplierCertificateRow.org_id == org_id)
                .order_by(SupplierCertificateRow.registered_at_ms.desc(),
                          SupplierCertificateRow.id.desc()))
        with sql_errors("list registered certificates"):
            async with self._sessions() as session:
                return list((await session.scalars(stmt)).all())
