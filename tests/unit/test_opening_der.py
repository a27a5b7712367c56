"""The small DER/BER codec behind the envelope: encodings round-trip, BER is read, hostile
input fails cleanly."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from bidroom.opening import der
from bidroom.opening.der import DerError, FileDer


@given(st.integers(min_value=-(2**200), max_value=2**200))
def test_integers_round_trip(value: int) -> None:
    encoded = der.integer(value)
    assert der.decode_integer(der.parse_all(encoded)) == value


@given(
    st.integers(min_value=0, max_value=2),
    st.integers(min_value=0, max_value=39),
    st.lists(st.integers(min_value=0, max_value=2**64), max_size=8),
)
def test_object_identifiers_round_trip_and_match_cryptography(
    first: int, second: int, rest: list[int]
) -> None:
    dotted = ".".join(str(arc) for arc in [first, second, *rest])
    encoded = der.oid(dotted)
    assert der.decode_oid(der.parse_all(encoded)) == dotted
    if len(encoded) - 2 <= CRYPTOGRAPHY_MAX_OID_BYTES:
        assert x509.ObjectIdentifier(dotted).dotted_string == dotted
    else:  # longer than cryptography's (rust-asn1's) limit: it refuses what we still encode
        with pytest.raises(ValueError):
            x509.ObjectIdentifier(dotted)


CRYPTOGRAPHY_MAX_OID_BYTES = 63  # the longest OID content cryptography parses


@given(st.binary(max_size=70_000))
def test_definite_lengths_round_trip(payload: bytes) -> None:
    element = der.parse_all(der.octet_string(payload))
    assert der.octets(element) == payload


def test_set_of_is_sorted_as_der_requires() -> None:
    assert der.set_of([b"\x04\x01\x02", b"\x04\x01\x01"]) == b"\x31\x06\x04\x01\x01\x04\x01\x02"


def test_times_encode_as_utc_time_until_2049() -> None:
    moment = datetime(2026, 3, 2, 9, 30, 15, tzinfo=UTC)
    encoded = der.utc_time(moment)
    assert encoded == b"\x17\x0d260302093015Z"
    assert der.decode_time(der.parse_all(encoded)) == moment
    later = der.utc_time(datetime(2051, 1, 1, tzinfo=UTC))
    assert later[0] == 0x18 and der.decode_time(der.parse_all(later)).year == 2051


BER = (
    b"\x30\x80"  # SEQUENCE, indefinite
    b"\x06\x03\x2a\x03\x04"  # OID 1.2.3.4
    b"\xa0\x80"  # [0], indefinite
    b"\x24\x80"  # constructed OCTET STRING, indefinite
    b"\x04\x03abc\x04\x02de"
    b"\x24\x80\x04\x01f\x00\x00"  # a nested constructed segment
    b"\x00\x00"
    b"\x00\x00"
    b"\x00\x00"
)


def test_ber_indefinite_lengths_and_constructed_strings_are_read() -> None:
    top = der.parse_all(BER)
    assert top.indefinite
    oid, wrapper = der.children(top)
    assert der.decode_oid(oid) == "1.2.3.4"
    (string,) = der.children(wrapper)
    assert der.octets(string) == b"abcdef"


def test_the_file_walker_finds_the_segments_of_a_ber_string() -> None:
    reader = FileDer(io.BytesIO(BER), len(BER))
    top = reader.header(0)
    assert top.length is None and reader.end_of(top) == len(BER)
    _, wrapper = list(reader.child_headers(top))
    (string,) = list(reader.child_headers(wrapper))
    chunks = reader.primitive_chunks(string)
    assert b"".join(BER[o : o + n] for o, n in chunks) == b"abcdef"
    assert len(chunks) == 3


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x30",
        b"\x30\x05\x02\x01",  # truncated
        b"\x30\x89" + b"\xff" * 9,  # a 9-byte length
        b"\x04\x80abc\x00\x00",  # indefinite primitive
        b"\x30\x80\x02\x01\x00",  # no end-of-contents
        b"\x30\x80" * 70 + b"\x00\x00" * 70,  # absurdly nested
    ],
)
def test_malformed_input_raises_der_error(data: bytes) -> None:
    with pytest.raises(DerError):
        der.parse_all(data)
    reader = FileDer(io.BytesIO(data), len(data))
    with pytest.raises(DerError):
        reader.end_of(reader.header(0))


@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_but_der_error(data: bytes) -> None:
    try:
        der.parse_all(data)
    except DerError:
        pass
    reader = FileDer(io.BytesIO(data), len(data))
    try:
        reader.end_of(reader.header(0))
    except DerError:
        pass
