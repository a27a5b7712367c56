"""The client side of the Bidroom WebSocket protocol (docs/protocol.md §1): msgpack envelopes.

Small on purpose: the load generators build and read the same maps a real supplier program
would. Must not import bidroom, market or web.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import msgpack

__all__ = [
    "SUBPROTOCOL",
    "bid_msg",
    "decode",
    "encode",
    "join_msg",
    "msg",
    "now_ms",
    "time_msg",
]

SUBPROTOCOL = "bidroom.v1.msgpack"
_ids = itertools.count(1)


def now_ms() -> float:
    """Wall-clock milliseconds since the epoch (float), the client's side of a latency."""
    return time.time() * 1000.0


def msg(type_: str, **fields: Any) -> dict[str, Any]:
    """A protocol message map with ``v`` and ``type`` (and an ``id`` unless one is given)."""
    body: dict[str, Any] = {"v": 1, "type": type_}
    if "id" not in fields:
        body["id"] = next(_ids)
    body.update(fields)
    return body


def encode(message: dict[str, Any]) -> bytes:
    data: bytes = msgpack.packb(message, use_bin_type=True)
    return data


def decode(frame: bytes) -> dict[str, Any]:
    value: dict[str, Any] = msgpack.unpackb(frame, raw=False)
    return value


def join_msg(auction_id: str, last_seq: int | None = None) -> dict[str, Any]:
    if last_seq is None:
        return msg("join", auction_id=auction_id)
    return msg("join", auction_id=auction_id, last_seq=last_seq)


def bid_msg(auction_id: str, bid_id: str, price_fen: int) -> dict[str, Any]:
    return msg("bid", auction_id=auction_id, bid_id=bid_id, price_fen=price_fen)


def time_msg() -> dict[str, Any]:
    return msg("time", client_time_ms=int(time.time() * 1000))
