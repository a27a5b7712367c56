"""The WebSocket wire format: a versioned envelope, msgpack binary or JSON text frames.

The encoding is negotiated by subprotocol: ``bidroom.v1.msgpack`` (binary frames, for programs)
or ``bidroom.v1.json`` (text frames, for browsers; also the default when none is offered).
Every message is a map with ``v`` (protocol version: the integer 1, required) and ``type``; a
client request may carry ``id``, echoed as ``re`` in the reply. A client frame is strict: at most
16 KiB, nested at most 32 deep, valid Unicode (docs/protocol.md §1.1 and §1.4, ``error``).

Must not import: market, web.
"""

from __future__ import annotations

import json
import re
import struct
from enum import StrEnum
from typing import Any

import msgpack

from bidroom.errors import ValidationError

__all__ = [
    "MAX_DEPTH",
    "MAX_FRAME_BYTES",
    "MAX_SAFE_INT",
    "PROTOCOL_VERSION",
    "SUBPROTOCOLS",
    "EncodedMessage",
    "FrameError",
    "WireFormat",
    "decode_frame",
    "encode",
    "message",
    "server_frame",
]

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 16 * 1024  # a client message is small; anything larger is refused
MAX_DEPTH = 32  # maps/arrays nested in a client message, the message itself counting 1
MAX_SAFE_INT = 2**53 - 1  # the largest integer a JavaScript client reads exactly
# JSON deeper than this is refused without decoding it (the decoder recurses); between
# MAX_DEPTH and this it is decoded first, so the refusal can name the request.
_DECODE_DEPTH = 256
# What nesting depends on: an escape (skipped whole, so \" ends no string), a quote, a bracket.
# No token can backtrack, so a scan is linear in the frame even for adversarial text.
_JSON_TOKENS = re.compile(r'\\.|["\[\]{}]', re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")


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


class FrameError(ValidationError):
    """A frame refused as a whole, before it became a message.

    ``request`` holds the frame's ``type`` and ``id`` where they could be read (a string type,
    a valid id), so the error still names the request; it is ``None`` when the frame could not
    be decoded at all.
    """

    def __init__(self, message: str, *, code: str, request: dict[str, Any] | None = None,
                 **details: Any) -> None:
        super().__init__(message, code=code, **details)
        self.request = request


def decode_frame(frame: bytes | str, fmt: WireFormat) -> dict[str, Any]:
    """Decode one client frame into a message map, or raise ``FrameError`` with a code.

    Refused with ``malformed_frame``: not msgpack/JSON, not a map, nested deeper than
    ``MAX_DEPTH`` (checked before JSON is decoded: deep JSON would exhaust the recursion
    limit), a string that is not valid Unicode (a lone surrogate such as ``"\\ud800"``), JSON's
    ``NaN``/``Infinity``, or no string ``type``. ``v`` is required and must be the integer 1
    (``unsupported_version``); ``id``, if present, a string or an integer within ±(2⁵³−1)
    (``invalid_field``). Floats are kept as floats (so a float price can be refused by name,
    with the field).
    """
    size = len(frame)
    if size > MAX_FRAME_BYTES:
        raise FrameError(f"frame too large ({size} bytes, at most {MAX_FRAME_BYTES})",
                         code="frame_too_large")
    expected = "msgpack" if fmt is WireFormat.MSGPACK else "JSON"
    text: str | None = None
    try:
        if isinstance(frame, str):
            text = frame
        elif fmt is WireFormat.JSON:
            text = frame.decode("utf-8")
        if text is not None:
            depth = _json_depth(text)
            if depth > _DECODE_DEPTH:  # not even decoded: it could not name the request
                raise FrameError(f"the frame nests deeper than {MAX_DEPTH} levels",
                                 code="malformed_frame")
            decoded: Any = _JSON.decode(text)
        else:
            assert isinstance(frame, bytes)
            decoded = msgpack.unpackb(frame, raw=False, strict_map_key=True)
            depth = 0
    except (ValueError, TypeError, RecursionError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError) as exc:  # UnicodeDecodeError is a ValueError
        raise FrameError(f"the frame is not valid {expected}", code="malformed_frame") from exc
    if not isinstance(decoded, dict):
        raise FrameError("a message must be a map/object", code="malformed_frame")
    # Only a JSON escape (\\ud800) makes a lone surrogate: UTF-8 decoding never does.
    escapes = text is not None and "\\u" in text
    kind, request_id = decoded.get("type"), decoded.get("id")
    request: dict[str, Any] = {}
    if isinstance(kind, str) and not (escapes and _SURROGATE.search(kind)):
        request["type"] = kind
    if isinstance(request_id, str):
        if not (escapes and _SURROGATE.search(request_id)):
            request["id"] = request_id
    elif type(request_id) is int and -MAX_SAFE_INT <= request_id <= MAX_SAFE_INT:
        request["id"] = request_id  # a bool is not an integer here
    if text is None:
        depth = _depth(decoded)
    if depth > MAX_DEPTH:
        raise FrameError(f"the frame nests deeper than {MAX_DEPTH} levels",
                         code="malformed_frame", request=request)
    if escapes and _lone_surrogate(decoded):
        raise FrameError("a string in the frame is not valid Unicode (a lone surrogate)",
                         code="malformed_frame", request=request)
    if "type" not in request:
        raise FrameError("a message needs a string 'type'", code="malformed_frame",
                         request=request, field="type")
    version = decoded.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:
        if version is None:
            what = "missing"
        elif type(version) is int:
            what = "not 1"
        else:  # 1.0 and true are not the integer 1
            what = f"a {type(version).__name__}, not the integer 1"
        raise FrameError(f"'v' (the protocol version) is {what}; this server speaks 1",
                         code="unsupported_version", request=request, field="v")
    if request_id is not None and "id" not in request:
        raise FrameError("'id' must be a string or an integer within ±(2^53 - 1)",
                         code="invalid_field", request=request, field="id")
    return decoded


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_JSON = json.JSONDecoder(parse_constant=_no_constant)  # NaN and Infinity are not JSON


def _json_depth(text: str) -> int:
    """How deep arrays and objects nest in a JSON text (brackets in strings do not count).

    With few brackets their count is the answer's bound and the text is not scanned: an
    ordinary message costs two ``str.count``.
    """
    brackets = text.count("[") + text.count("{")
    if brackets <= MAX_DEPTH:
        return brackets
    depth = deepest = 0
    in_string = False
    for token in _JSON_TOKENS.findall(text):
        if token == '"':
            in_string = not in_string
        elif in_string:
            continue  # a bracket or an escape inside a string
        elif token == "[" or token == "{":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif token == "]" or token == "}":
            depth -= 1
    return deepest


def _depth(value: Any) -> int:
    """How deep maps and arrays nest in a decoded message (1: a flat map); stops past the
    limit. Iterative, so a deep value cannot exhaust the recursion limit."""
    for child in value.values():
        if isinstance(child, dict | list):
            break
    else:
        return 1  # a flat map: the usual message, no walk
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if depth > MAX_DEPTH:
                break
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return deepest


def _lone_surrogate(value: Any) -> bool:
    """Whether any string (key or value) holds a lone surrogate: JSON's ``\\ud800`` decodes to
    one, and no UTF-8 encoder (a reply, a Redis key, SQL) can write it."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item) is not None:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


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
