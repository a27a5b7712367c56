"""The fan-out's pre-built WebSocket frames are exactly what the websockets library would send
(RFC 6455 §5.2: FIN, opcode, 7/16/64-bit length, no mask from a server), for every size class;
and a client's frames are decoded strictly (the version, the nesting depth, valid Unicode, the
id), each refusal with its code and, where they could be read, the request's type and id."""

from __future__ import annotations

import contextlib
import json

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from bidroom.protocol import (
    MAX_FRAME_BYTES,
    EncodedMessage,
    FrameError,
    WireFormat,
    decode_frame,
    message,
    server_frame,
)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 200_000])
def test_binary_frames_match_the_websockets_library(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert server_frame(payload) == Frame(Opcode.BINARY, payload).serialize(mask=False)


@pytest.mark.parametrize("text", ["", "出价", "报价 ¥1,990,000 分" * 10, "竞" * 30_000])
def test_text_frames_are_utf8_and_match_the_websockets_library(text: str) -> None:
    data = text.encode("utf-8")
    assert server_frame(text) == Frame(Opcode.TEXT, data).serialize(mask=False)


def test_an_encoded_message_builds_each_wire_formats_frame_once() -> None:
    msg = EncodedMessage(message("event", auction_id="a1", seq=7, event={"price_fen": 990}))
    first = msg.ws_frame(WireFormat.MSGPACK)
    assert msg.ws_frame(WireFormat.MSGPACK) is first  # cached: the same bytes for everyone
    assert first == server_frame(msg.frame(WireFormat.MSGPACK))
    text = msg.ws_frame(WireFormat.JSON)
    assert text[0] == 0x81 and text.endswith(str(msg.frame(WireFormat.JSON)).encode())


# ------------------------------------------------------------- client frames: strict decoding


def refusal(frame: bytes | str, wire: WireFormat = WireFormat.JSON) -> FrameError:
    with pytest.raises(FrameError) as refused:
        decode_frame(frame, wire)
    return refused.value


def nested(depth: int) -> str:
    """A ping whose ``pad`` nests arrays so that the message is ``depth`` levels deep."""
    return ('{"v": 1, "type": "ping", "id": "p", "pad": ' + "[" * (depth - 1)
            + "]" * (depth - 1) + "}")


@pytest.mark.parametrize("version", ["1.0", "true", '"1"', "2", "null"])
def test_the_version_is_the_integer_1_and_a_refusal_names_the_request(version: str) -> None:
    err = refusal(f'{{"v": {version}, "type": "ping", "id": "a"}}')
    assert (err.code, err.details, err.request) == (
        "unsupported_version", {"field": "v"}, {"type": "ping", "id": "a"})
    for wire_value in (1.0, True):  # msgpack keeps 1.0 a float and true a bool too
        frame = msgpack.packb({"v": wire_value, "type": "ping"})
        assert refusal(frame, WireFormat.MSGPACK).code == "unsupported_version"


def test_the_version_is_required() -> None:
    err = refusal('{"type": "ping", "id": 7}')
    assert (err.code, err.request) == ("unsupported_version", {"type": "ping", "id": 7})
    assert decode_frame('{"v": 1, "type": "ping"}', WireFormat.JSON)["v"] == 1


def test_a_frame_without_a_string_type_is_malformed() -> None:
    for frame in ('{"v": 1, "id": "x"}', '{"v": 1, "type": 5, "id": "x"}'):
        err = refusal(frame)
        assert (err.code, err.details, err.request) == (
            "malformed_frame", {"field": "type"}, {"id": "x"})


@pytest.mark.parametrize("depth", [33, 100, 256])
def test_json_nested_past_32_levels_is_malformed_and_names_the_request(depth: int) -> None:
    assert decode_frame(nested(32), WireFormat.JSON)["type"] == "ping"
    err = refusal(nested(depth))
    assert (err.code, err.request) == ("malformed_frame", {"type": "ping", "id": "p"})


@pytest.mark.parametrize("depth", [257, 1_000, 8_000])
def test_json_too_deep_to_decode_is_refused_before_decoding(depth: int) -> None:
    frame = nested(depth)
    assert len(frame) <= MAX_FRAME_BYTES
    err = refusal(frame)  # not a RecursionError: the decoder is never called
    assert (err.code, err.request) == ("malformed_frame", None)


def test_brackets_inside_json_strings_are_not_nesting() -> None:
    frame = '{"v": 1, "type": "ping", "id": "[[[", "pad": "' + "[{" * 2_000 + '\\"]"}'
    assert decode_frame(frame, WireFormat.JSON)["id"] == "[[["
    # an escaped quote does not end the string; an escaped backslash before a quote does
    frame = ('{"v": 1, "type": "ping", "id": "x", "a": "\\"' + "[" * 40 + '\\\\", '
             '"b": [[' + "]]}")
    assert decode_frame(frame, WireFormat.JSON)["a"] == '"' + "[" * 40 + "\\"
    err = refusal('{"v": 1, "type": "ping", "id": "x", "a": "\\\\", "b": '
                  + "[" * 40 + "]" * 40 + "}")
    assert (err.code, err.request) == ("malformed_frame", {"type": "ping", "id": "x"})


@pytest.mark.parametrize("depth", [33, 1_000])
def test_msgpack_nested_past_32_levels_is_malformed_and_names_the_request(depth: int) -> None:
    pad: list[object] = []
    for _ in range(depth - 2):
        pad = [pad]
    ok = msgpack.packb({"v": 1, "type": "time", "id": 3, "pad": [[]] * 3})
    assert decode_frame(ok, WireFormat.MSGPACK)["id"] == 3
    err = refusal(msgpack.packb({"v": 1, "type": "time", "id": 3, "client_time_ms": pad}),
                  WireFormat.MSGPACK)
    assert (err.code, err.request) == ("malformed_frame", {"type": "time", "id": 3})


@pytest.mark.parametrize("where", ['"auction_id": "\\ud800"', '"\\udfff": 1',
                                   '"pad": ["x\\ud83d"]', '"token": "\\ude00\\ud83d"'])
def test_a_lone_surrogate_in_any_json_string_is_malformed(where: str) -> None:
    err = refusal(f'{{"v": 1, "type": "join", "id": "s", {where}}}')
    assert (err.code, err.request) == ("malformed_frame", {"type": "join", "id": "s"})


def test_a_lone_surrogate_in_the_type_or_id_leaves_it_out_of_the_refusal() -> None:
    assert refusal('{"v": 1, "type": "\\ud800", "id": 1}').request == {"id": 1}
    assert refusal('{"v": 1, "type": "ping", "id": "\\ud800"}').request == {"type": "ping"}


def test_a_surrogate_pair_is_one_valid_character() -> None:
    msg = decode_frame('{"v": 1, "type": "ping", "id": "\\ud83d\\ude00"}', WireFormat.JSON)
    assert msg["id"] == "😀"


@pytest.mark.parametrize("value", ["true", "1.5", "9007199254740992", "-9007199254740992",
                                   "1" * 300, "[1]"])
def test_an_id_is_a_string_or_a_javascript_safe_integer(value: str) -> None:
    err = refusal(f'{{"v": 1, "type": "ping", "id": {value}}}')
    assert (err.code, err.details, err.request) == (
        "invalid_field", {"field": "id"}, {"type": "ping"})
    for good in (9_007_199_254_740_991, -9_007_199_254_740_991, "", "竞" * 100):
        assert decode_frame(json.dumps({"v": 1, "type": "ping", "id": good}),
                            WireFormat.JSON)["id"] == good


@pytest.mark.parametrize("frame", ['{"v": 1, "type": "ping", "x": NaN}',
                                   '{"v": 1, "type": "ping", "x": -Infinity}',
                                   '{"v": 1, "type": "ping", "x": ' + "9" * 5_000 + "}",
                                   b'{"v": 1, "type": "ping", "x": "\xff"}', "[1]", "{", ""])
def test_what_is_not_json_is_malformed(frame: bytes | str) -> None:
    assert refusal(frame).code == "malformed_frame"


def test_a_frame_over_16_kib_is_refused_by_size() -> None:
    assert refusal("{" + " " * MAX_FRAME_BYTES + "}").code == "frame_too_large"


# Any character, lone surrogates included (hypothesis leaves them out of text by default).
_ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=12)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_ANY_TEXT, inner, max_size=3),
    max_leaves=60,
)
_FIELDS = st.fixed_dictionaries(
    {}, optional={"v": _VALUES | st.just(1), "type": _VALUES | st.just("ping"),
                  "id": _VALUES, "x": _VALUES})


@settings(max_examples=400, deadline=None, derandomize=True)
@given(fields=_FIELDS, raw=st.binary(max_size=64), wire=st.sampled_from(list(WireFormat)))
def test_any_frame_decodes_to_a_message_or_a_frame_error_whose_answer_encodes(
    fields: dict[str, object], raw: bytes, wire: WireFormat,
) -> None:
    frames: list[bytes | str] = [json.dumps(fields), raw]  # ensure_ascii: \ud800 escapes
    with contextlib.suppress(Exception):  # msgpack cannot carry lone surrogates or > 64 bits
        frames.append(msgpack.packb(fields))
    for frame in frames:
        try:
            msg = decode_frame(frame, wire)
        except FrameError as refused:
            request = refused.request or {}
        else:
            assert msg["v"] == 1 and type(msg["v"]) is int and isinstance(msg["type"], str)
            request = {"type": msg["type"], **({"id": msg["id"]} if "id" in msg else {})}
        # the error (or reply) naming the request can always be written, in either format
        answer = EncodedMessage(message("error", code="x", **{
            k: v for k, v in (("request", request.get("type")), ("re", request.get("id")))
            if v is not None}))
        for out in WireFormat:
            assert answer.ws_frame(out)
