"""A small ASN.1 DER/BER codec for the CMS structures of the sealed bid, and a file walker.

Why our own: a sealed bid may be 200 MiB, so the envelope must be read *by offsets* — headers,
recipient infos, algorithm parameters and the MAC are parsed, the encrypted content is only
located (offset, length) and later streamed. General ASN.1 libraries parse a whole buffer.
Everything here is tiny and explicit:

* encoding helpers (definite-length DER, what we write): ``tlv``, ``seq``, ``set_of`` (sorted,
  as DER requires for SET OF), ``oid``, ``integer``, ``octet_string``, ``utc_time``…
* ``parse`` / ``children``: an in-memory reader for the small parts; it accepts BER
  (indefinite lengths, constructed strings) as produced by ``openssl cms -stream``;
* ``FileDer``: the same reading over a seekable binary file, header by header, so nothing
  larger than a header (or a small element asked for with a size limit) is ever read.

Every parsing failure raises ``DerError`` (a ``ValueError``); callers turn it into the
``ValidationError`` code that fits their context (``malformed_envelope``, ``bad_signature``…).

Must not import: market, web.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

__all__ = [
    "APPLICATION",
    "CONTEXT",
    "MAX_SEGMENTS",
    "PRIVATE",
    "UNIVERSAL",
    "DerError",
    "Element",
    "FileDer",
    "Header",
    "children",
    "decode_integer",
    "decode_oid",
    "decode_time",
    "encode_header",
    "generalized_time",
    "integer",
    "null",
    "octet_string",
    "octets",
    "oid",
    "parse",
    "parse_all",
    "seq",
    "set_of",
    "tlv",
    "utc_time",
]

UNIVERSAL, APPLICATION, CONTEXT, PRIVATE = 0, 1, 2, 3

# Universal tag numbers used here.
BOOLEAN, INTEGER, BIT_STRING, OCTET_STRING, NULL, OID = 1, 2, 3, 4, 5, 6
UTF8_STRING, SEQUENCE, SET, PRINTABLE_STRING, UTC_TIME, GENERALIZED_TIME = 12, 16, 17, 19, 23, 24

_MAX_DEPTH = 64  # BER nesting we follow before calling the input hostile
# BER segments of one string we accept: OpenSSL writes 4096-byte segments, so this allows
# 4 GiB, while a file of millions of tiny segments (a CPU sink) is refused.
MAX_SEGMENTS = 1 << 20


class DerError(ValueError):
    """The bytes are not the ASN.1 structure we expected."""


# ===================================================================================== encoding


def encode_header(tag: int, length: int) -> bytes:
    """Identifier octet ``tag`` (low tag numbers only) and a definite DER length."""
    if length < 0x80:
        return bytes((tag, length))
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big")


def tlv(tag: int, content: bytes) -> bytes:
    return encode_header(tag, len(content)) + content


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def set_of(parts: Iterable[bytes]) -> bytes:
    """DER SET OF: the elements sorted by their encodings (X.690 11.6)."""
    return tlv(0x31, b"".join(sorted(parts)))


def integer(value: int) -> bytes:
    size = max(1, (value.bit_length() + 8) // 8)  # room for the sign bit
    return tlv(0x02, value.to_bytes(size, "big", signed=True))


def octet_string(value: bytes) -> bytes:
    return tlv(0x04, value)


def null() -> bytes:
    return b"\x05\x00"


def oid(dotted: str) -> bytes:
    arcs = [int(part) for part in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40):
        raise ValueError(f"not an object identifier: {dotted}")
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(0x06, bytes(body))


def utc_time(moment: datetime) -> bytes:
    """UTCTime ``YYMMDDHHMMSSZ`` (RFC 5652 11.3: UTCTime for 1950–2049)."""
    moment = _as_utc(moment)
    if not 1950 <= moment.year <= 2049:
        return generalized_time(moment)
    return tlv(0x17, moment.strftime("%y%m%d%H%M%SZ").encode("ascii"))


def generalized_time(moment: datetime) -> bytes:
    return tlv(0x18, _as_utc(moment).strftime("%Y%m%d%H%M%SZ").encode("ascii"))


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("a naive datetime: pass an aware UTC time")
    return moment.astimezone(UTC).replace(microsecond=0)


# ============================================================================ in-memory reading


@dataclass(frozen=True, slots=True)
class Element:
    """One parsed TLV. ``content`` is the value (for an indefinite length: up to the EOC);
    ``raw`` is the whole encoding as it appeared (header, content and EOC)."""

    cls: int
    constructed: bool
    number: int
    content: bytes
    raw: bytes
    indefinite: bool = False

    def is_(self, cls: int, number: int) -> bool:
        return self.cls == cls and self.number == number

    @property
    def is_sequence(self) -> bool:
        return self.cls == UNIVERSAL and self.number == SEQUENCE and self.constructed


def _read_identifier(data: bytes, pos: int) -> tuple[int, bool, int, int]:
    if pos >= len(data):
        raise DerError("truncated: expected a tag")
    first = data[pos]
    pos += 1
    cls, constructed, number = first >> 6, bool(first & 0x20), first & 0x1F
    if number == 0x1F:  # high tag number form
        number = 0
        for _ in range(5):
            if pos >= len(data):
                raise DerError("truncated tag")
            byte = data[pos]
            pos += 1
            number = (number << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        else:
            raise DerError("tag number too large")
    return cls, constructed, number, pos


def _read_length(data: bytes, pos: int) -> tuple[int | None, int]:
    if pos >= len(data):
        raise DerError("truncated: expected a length")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    if first == 0x80:
        return None, pos  # indefinite (BER)
    size = first & 0x7F
    if size > 8 or pos + size > len(data):
        raise DerError("bad or truncated length")
    return int.from_bytes(data[pos : pos + size], "big"), pos + size


def parse(data: bytes, pos: int = 0, *, _depth: int = 0) -> tuple[Element, int]:
    """Parse one element at ``pos``; return it and the position after it."""
    if _depth > _MAX_DEPTH:
        raise DerError("nested too deeply")
    start = pos
    cls, constructed, number, pos = _read_identifier(data, pos)
    length, pos = _read_length(data, pos)
    if length is None:
        if not constructed:
            raise DerError("indefinite length on a primitive element")
        inner = pos
        while True:
            if data[inner : inner + 2] == b"\x00\x00":
                break
            _, inner = parse(data, inner, _depth=_depth + 1)
        end = inner + 2
        return Element(cls, constructed, number, data[pos:inner], data[start:end], True), end
    end = pos + length
    if end > len(data):
        raise DerError("truncated: the length runs past the end")
    return Element(cls, constructed, number, data[pos:end], data[start:end]), end


def parse_all(data: bytes) -> Element:
    """Parse exactly one element that fills ``data``."""
    element, end = parse(data)
    if end != len(data):
        raise DerError("trailing bytes after the element")
    return element


def children(element: Element) -> list[Element]:
    if not element.constructed:
        raise DerError("expected a constructed element")
    items: list[Element] = []
    pos = 0
    while pos < len(element.content):
        child, pos = parse(element.content, pos)
        items.append(child)
    return items


def octets(element: Element) -> bytes:
    """The value of an OCTET STRING, primitive or (BER) constructed, any tag."""
    if not element.constructed:
        return element.content
    return b"".join(octets(child) for child in children(element))


def decode_integer(element: Element) -> int:
    if element.constructed or not element.is_(UNIVERSAL, INTEGER) or not element.content:
        raise DerError("expected an INTEGER")
    return int.from_bytes(element.content, "big", signed=True)


def decode_oid(element: Element) -> str:
    if element.constructed or not element.is_(UNIVERSAL, OID) or not element.content:
        raise DerError("expected an OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for byte in element.content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if element.content[-1] & 0x80:
        raise DerError("truncated OBJECT IDENTIFIER")
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(arc) for arc in head + arcs[1:])


def decode_time(element: Element) -> datetime:
    """UTCTime or GeneralizedTime (whole seconds, ``Z``) → an aware UTC datetime."""
    try:
        text = element.content.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DerError("a time that is not ASCII") from exc
    try:
        if element.is_(UNIVERSAL, UTC_TIME):
            moment = datetime.strptime(text, "%y%m%d%H%M%SZ")
        elif element.is_(UNIVERSAL, GENERALIZED_TIME):
            moment = datetime.strptime(text.split(".")[0].rstrip("Z"), "%Y%m%d%H%M%S")
        else:
            raise DerError("expected UTCTime or GeneralizedTime")
    except ValueError as exc:
        raise DerError(f"a malformed time {text!r}") from exc
    return moment.replace(tzinfo=UTC)


# ================================================================================ file walking


@dataclass(frozen=True, slots=True)
class Header:
    """A TLV header read from a file: where it is and how long its content is (None:
    indefinite length, the content ends with an end-of-contents marker)."""

    cls: int
    constructed: bool
    number: int
    offset: int
    header_length: int
    length: int | None

    @property
    def content_offset(self) -> int:
        return self.offset + self.header_length

    def is_(self, cls: int, number: int) -> bool:
        return self.cls == cls and self.number == number

    @property
    def is_eoc(self) -> bool:
        return self.cls == UNIVERSAL and self.number == 0 and not self.constructed


class FileDer:
    """Reads TLV headers of a seekable binary file by offset; never the big contents."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream = stream
        self.size = size

    def read_at(self, offset: int, count: int) -> bytes:
        if offset < 0 or count < 0 or offset + count > self.size:
            raise DerError("truncated: a read runs past the end of the file")
        self._stream.seek(offset)
        data = self._stream.read(count)
        if len(data) != count:
            raise DerError("truncated file")
        return data

    def header(self, offset: int, *, check_bounds: bool = True) -> Header:
        """The TLV header at ``offset``; with ``check_bounds`` a definite length that runs
        past the end of the file is an error (off: to identify a truncated file first)."""
        window = self.read_at(offset, min(16, self.size - offset))
        cls, constructed, number, pos = _read_identifier(window, 0)
        length, pos = _read_length(window, pos)
        if length is None and not constructed:
            raise DerError("indefinite length on a primitive element")
        if number == 0 and cls == UNIVERSAL and (constructed or length != 0):
            raise DerError("a malformed end-of-contents marker")
        if check_bounds and length is not None and offset + pos + length > self.size:
            raise DerError("truncated: an element runs past the end of the file")
        return Header(cls, constructed, number, offset, pos, length)

    def end_of(self, header: Header, *, _depth: int = 0) -> int:
        """The offset just after the element (after its EOC if indefinite)."""
        if header.length is not None:
            return header.content_offset + header.length
        if _depth > _MAX_DEPTH:
            raise DerError("nested too deeply")
        pos = header.content_offset
        while True:
            child = self.header(pos)
            if child.is_eoc:
                return pos + child.header_length
            pos = self.end_of(child, _depth=_depth + 1)

    def child_headers(self, header: Header, *, end: int | None = None) -> Iterator[Header]:
        """The headers of a constructed element's children, in order; for an indefinite
        length, stops at (and consumes) the EOC."""
        if not header.constructed:
            raise DerError("expected a constructed element")
        pos = header.content_offset
        limit = header.content_offset + header.length if header.length is not None else end
        while True:
            if limit is not None and pos >= limit:
                if pos != limit:
                    raise DerError("a child runs past its parent")
                return
            child = self.header(pos)
            if child.is_eoc:
                if header.length is not None:
                    raise DerError("an end-of-contents marker inside a definite length")
                return
            yield child
            pos = self.end_of(child)

    def element(self, header: Header, *, limit: int) -> Element:
        """Read and parse a whole element, refusing one larger than ``limit`` bytes."""
        end = self.end_of(header)
        if end - header.offset > limit:
            raise DerError(f"an element of {end - header.offset} bytes (limit {limit})")
        return parse_all(self.read_at(header.offset, end - header.offset))

    def primitive_chunks(
        self, header: Header, *, _depth: int = 0
    ) -> list[tuple[int, int]]:
        """(offset, length) of the value bytes of a string element, primitive or BER
        constructed (nested OCTET STRING segments, as ``openssl cms -stream`` writes)."""
        if not header.constructed:
            assert header.length is not None
            return [(header.content_offset, header.length)] if header.length else []
        if _depth > _MAX_DEPTH:
            raise DerError("nested too deeply")
        chunks: list[tuple[int, int]] = []
        for count, child in enumerate(self.child_headers(header)):
            if count >= MAX_SEGMENTS:
                raise DerError(f"a string in more than {MAX_SEGMENTS} segments")
            if not child.is_(UNIVERSAL, OCTET_STRING):
                raise DerError("a constructed string segment that is not an OCTET STRING")
            chunks.extend(self.primitive_chunks(child, _depth=_depth + 1))
            if len(chunks) > MAX_SEGMENTS:
                raise DerError(f"a string in more than {MAX_SEGMENTS} segments")
        return chunks
