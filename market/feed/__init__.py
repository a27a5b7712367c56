"""Feeding the core from the market (issue #11 item 7): a published lot gets its opening or
auction, registered suppliers are invited, and the core's results move the lot on
(docs/procurement.md, "Feeding the core").

Must not import: web.
"""

from __future__ import annotations

from market.feed.service import (
    FEED_GROUP,
    FEED_KINDS,
    PLATFORM,
    Feed,
    FeedReconciler,
    FeedService,
    LotResults,
    core_id_for,
)
from market.feed.store import FeedLinkRow, FeedRegistrationRow

__all__ = ["FEED_GROUP", "FEED_KINDS", "PLATFORM", "Feed", "FeedLinkRow", "FeedReconciler",
           "FeedRegistrationRow", "FeedService", "LotResults", "core_id_for"]
