"""The WebSocket wire format: a versioned envelope, msgpack binary or JSON text frames.

The encoding is negotiated by subprotocol: ``bidroom.v1.msgpack`` (binary frames, for programs)
or ``bidroom.v1.json`` (text frames, for browsers; also the default when none is offered).
Every message is a map with ``v`` (protocol version, 1) and ``type``; a client request may carry
``id``, echoed as ``re`` in the reply. docs/protocol.md documents every message.

Must not import: market, web.
"""

from __future__ import annotations

import json
import struct
from enum import StrEnum
from typing import Any

import msgpack

from bidroom.errors import ValidationError

__all__ = [
    "MAX_FRAME_BYTES",
    "PROTOCOL_VERSION",
    "SUBPROTOCOLS",
    "EncodedMessage",
    "WireFormat",
    "decode_frame",
    "encode",
    "message",
    "server_frame",
]

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 16 * 1024  # a client message is small; anything larger is refused


class WireFormat(StrEnum):
    MSGPACK = "bidroom.v1.msgpack"
    JSON = "bidroom.v1.json"


SUBPROTOCOLS = (WireFormat.MSGPACK.value, WireFormat.JSON.value)


def message(type_: str, **fields: Any) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "type": type_, **fields}


def encode(msg: dict[str, Any], fmt: WireFormat) -> bytes | str:
    if fmt is WireFormat.MSGPACK:
        data: bytes = msgpack.packb(msg, use_bin_type=True)
        return data
    return json.dumps(msg, ensure_ascii=False, separators=(",", ":"))


def decode_frame(frame: bytes | str, fmt: WireFormat) -> dict[str, Any]:
    """Decode one client frame into a message map, or raise ValidationError with a code.

    Floats are kept as floats here (so a float price can be refused by name, with the field);
    everything else that is not a map with a string ``type`` is refused.
    """
    size = len(frame)
    if size > MAX_FRAME_BYTES:
        raise ValidationError(f"frame too large ({size} bytes, at most {MAX_FRAME_BYTES})",
                              code="frame_too_large")
    try:
        if isinstance(frame, bytes):
            if fmt is WireFormat.JSON:
                decoded: Any = json.loads(frame.decode("utf-8"))
            else:
                decoded = msgpack.unpackb(frame, raw=False, strict_map_key=True)
        else:
            decoded = json.loads(frame)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError, UnicodeDecodeError) as exc:
        expected = "msgpack" if fmt is WireFormat.MSGPACK else "JSON"
        raise ValidationError(f"the frame is not valid {expected}", code="malformed_frame"
                              ) from exc
    if not isinstance(decoded, dict):
        raise ValidationError("a message must be a map/object", code="malformed_frame")
    version = decoded.get("v", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION:
        raise ValidationError(f"unsupported protocol version {version!r}; this server speaks 1",
                              code="unsupported_version")
    if not isinstance(decoded.get("type"), str):
        raise ValidationError("a message needs a string 'type'", code="missing_field",
                              field="type")
    request_id = decoded.get("id")
    if request_id is not None and not isinstance(request_id, str | int):
        raise ValidationError("'id' must be a string or an integer", code="invalid_field",
                              field="id")
    return decoded


class EncodedMessage:
    """One message, encoded at most once per wire format: the fan-out's encode-once unit.

    ``frame`` is the payload (what an ASGI ``send`` takes); ``ws_frame`` is the whole WebSocket
    frame a server writes (header + payload), built once and written as is to every connection
    of the audience (docs/internals.md, "Fan-out").
    """

    __slots__ = ("_cache", "_frames", "msg")

    def __init__(self, msg: dict[str, Any]) -> None:
        self.msg = msg
        self._cache: dict[WireFormat, bytes | str] = {}
        self._frames: dict[WireFormat, bytes] = {}

    def frame(self, wire: WireFormat) -> bytes | str:
        data = self._cache.get(wire)
        if data is None:
            data = self._cache[wire] = encode(self.msg, wire)
        return data

    def ws_frame(self, wire: WireFormat) -> bytes:
        data = self._frames.get(wire)
        if data is None:
            data = self._frames[wire] = server_frame(self.frame(wire))
        return data


def server_frame(payload: bytes | str) -> bytes:
    """One unfragmented, unmasked server-to-client WebSocket frame (RFC 6455 §5.2): a binary
    frame for bytes, a text frame (UTF-8) for str. No extension is negotiated (compression is
    off for room traffic, PERFORMANCE.md), so the frame is the same for every connection."""
    if isinstance(payload, str):
        data, first = payload.encode("utf-8"), 0x81  # FIN + text
    else:
        data, first = payload, 0x82  # FIN + binary
    size = len(data)
    if size < 126:
        header = bytes((first, size))
    elif size < 65_536:
        header = struct.pack("!BBH", first, 126, size)
    else:
        header = struct.pack("!BBQ", first, 127, size)
    return header + data
