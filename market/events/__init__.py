"""Domain events between the market's modules (and the core's results): a transactional
outbox in SQL, a relay to one Redis Stream, consumer groups with idempotent handlers.

Must not import: web.
"""

from __future__ import annotations

from market.events.consumer import Consumer, Handler, decode_entry
from market.events.outbox import DomainEvent, HandledEventRow, OutboxRow, emit
from market.events.relay import EVENTS_STREAM, Relay, encode_entry

__all__ = [
    "EVENTS_STREAM",
    "Consumer",
    "DomainEvent",
    "HandledEventRow",
    "Handler",
    "OutboxRow",
    "Relay",
    "decode_entry",
    "emit",
    "encode_entry",
]
