"""Reference (a) of B2/B3: a bare ``websockets`` server that broadcasts with ``broadcast()``.

What the fan-out of Bidroom is compared with: the least a Python WebSocket server can do per
event. Watchers connect to ``/`` and are kept in a set; a publisher connects to ``/pub``, sends
one ``template`` message (the exact watcher event map the Bidroom server sent in the same run),
then ``bid`` messages. For each bid the server stamps ``at_ms`` and ``seq`` into the template,
encodes it **once** with msgpack and hands the same bytes to every watcher with
``websockets.broadcast`` (which never waits for a slow client). Compression is off, as in
Bidroom. uvloop is used when installed, as the Bidroom server does.

Run: ``python -m loadtest.refs.bare_ws --port 8765``. Must not import bidroom, market or web.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import signal
import sys
import time
from typing import Any

import msgpack
from websockets.asyncio.server import ServerConnection, broadcast, serve

__all__ = ["main"]

WATCHERS: set[ServerConnection] = set()


async def _publisher(ws: ServerConnection) -> None:
    template: dict[str, Any] | None = None
    seq = 0
    async for frame in ws:
        msg = msgpack.unpackb(frame, raw=False)
        kind = msg.get("type")
        if kind == "template":
            template = msg["msg"]
            await ws.send(msgpack.packb({"type": "ok", "watchers": len(WATCHERS)}))
        elif kind == "count":
            await ws.send(msgpack.packb({"type": "count", "watchers": len(WATCHERS)}))
        elif kind == "bid" and template is not None:
            seq += 1
            out = copy.deepcopy(template)
            out["seq"] = seq
            event = out.get("event", out)
            event["seq"] = seq
            event["at_ms"] = int(time.time() * 1000)
            event["price_fen"] = msg.get("price_fen", 0)
            broadcast(WATCHERS, msgpack.packb(out, use_bin_type=True))


async def _handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request is not None else "/"
    if path.startswith("/pub"):
        await _publisher(ws)
        return
    WATCHERS.add(ws)
    try:
        await ws.wait_closed()
    finally:
        WATCHERS.discard(ws)


async def _serve(host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(_handler, host, port, compression=None, max_queue=None,
                     ping_interval=None, backlog=4096):
        print("ready", flush=True)
        await stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.run(_serve(args.host, args.port))
    except ImportError:
        asyncio.run(_serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
