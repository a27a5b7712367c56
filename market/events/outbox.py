"""Domain events between modules: the transactional outbox.

A use case that another module must react to (a lot published, an opening's record confirmed,
an auction closed, a lot failed) calls ``emit`` inside the SQL transaction that makes the change,
so the event exists exactly when the change does: a rolled-back change has no event, a committed
one always has one. ``market.events.relay`` moves outbox rows to a Redis Stream; consumers
(``market.events.consumer``) read it with consumer groups and record each event they handled in
``handled_events`` in the same transaction as their own effects, so a redelivery does nothing.

Must not import: web.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bidroom.stores.sql import Base

__all__ = ["DomainEvent", "HandledEventRow", "OutboxRow", "emit"]


class OutboxRow(Base):
    """An event written with the change it reports; ``relayed_at_ms`` once it is on the
    stream (the relay may put it there twice after a crash: consumers deduplicate)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unrelayed", "relayed_at_ms", "id"),)

    # SQLite auto-increments only an INTEGER PRIMARY KEY.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                    primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(100), nullable=False)
    aggregate: Mapped[str] = mapped_column(String(200), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    relayed_at_ms: Mapped[int | None] = mapped_column(BigInteger)


class HandledEventRow(Base):
    """One consumer group handled one event (written with the handler's own effects)."""

    __tablename__ = "handled_events"
    __table_args__ = (UniqueConstraint("consumer_group", "event_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                    primary_key=True, autoincrement=True)
    consumer_group: Mapped[str] = mapped_column(String(100), nullable=False)
    event_id: Mapped[str] = mapped_column(String(64), nullable=False)
    handled_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """What a consumer receives. ``kind`` is past tense and dotted by module
    (``project.lot_published``); ``aggregate`` names the thing it happened to (``lot:L1``)."""

    event_id: str
    kind: str
    aggregate: str
    at_ms: int
    payload: Mapping[str, Any] = field(default_factory=dict)


def emit(session: AsyncSession, kind: str, aggregate: str, payload: Mapping[str, Any], *,
         at_ms: int, event_id: str | None = None) -> DomainEvent:
    """Write an event into the caller's open transaction (it commits or rolls back with it)."""
    event = DomainEvent(event_id or uuid.uuid4().hex, kind, aggregate, at_ms, dict(payload))
    session.add(OutboxRow(event_id=event.event_id, kind=kind, aggregate=aggregate,
                          payload=dict(payload), at_ms=at_ms))
    return event
