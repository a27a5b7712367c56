"""The fan-out's pre-built WebSocket frames are exactly what the websockets library would send
(RFC 6455 §5.2: FIN, opcode, 7/16/64-bit length, no mask from a server), for every size class."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from bidroom.protocol import EncodedMessage, WireFormat, message, server_frame


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
