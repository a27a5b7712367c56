"""The feed's own tables: which opening or auction each lot's round created, and the
registrations (报名) the feed saw go by as events.

The feed never reads another module's store: a registration is known here because a
``tendering.supplier_registered`` event said so, and the lot's link because this module made
it. Both are written in the consumer's transaction, with its ``handled_events`` row.

Must not import: web.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bidroom.stores.sql import Base

__all__ = ["FeedLinkRow", "FeedRegistrationRow"]

_ID = 64


class FeedLinkRow(Base):
    """A lot's round and the core object it runs in: an opening (sealed bids) or an auction.
    ``settled`` once the lot has left bidding (opened, failed, terminated, re-tendered): the
    reconciliation no longer looks at it."""

    __tablename__ = "feed_links"
    __table_args__ = (Index("ix_feed_links_unsettled", "settled", "lot_id"),)

    lot_id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    round: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    project_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)  # "opening" / "auction"
    core_id: Mapped[str] = mapped_column(String(_ID), nullable=False, unique=True)
    published_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    settled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class FeedRegistrationRow(Base):
    """A supplier registered for a lot (from ``tendering.supplier_registered``), and what came
    of inviting it: ``invited_to`` the core id once the invitation is final, ``outcome``
    ``invited`` / ``already_invited`` / ``deadline_passed``."""

    __tablename__ = "feed_registrations"

    lot_id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    supplier_org_id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    registered_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    invited_to: Mapped[str | None] = mapped_column(String(_ID))
    outcome: Mapped[str | None] = mapped_column(String(20))
