"""Reference (b) of B2: python-socketio ``AsyncServer`` with a room emit, under uvicorn.

What most Python teams would pick for a live auction room. Every watcher that connects over the
Engine.IO WebSocket transport enters the room ``room``; a publisher (query ``?pub=1``) first
emits ``template`` (the same watcher event map the Bidroom server sent in the same run), then
``bid`` events; for each bid the server stamps ``seq`` and ``at_ms`` and calls
``sio.emit("event", payload, room="room")`` — Socket.IO's JSON encoding of the same map. Served
by uvicorn with the same settings as Bidroom (uvloop, ``websockets-sansio``, no compression).

Run: ``python -m loadtest.refs.socketio_ref --port 8766``. Needs the ``bench`` extra
(python-socketio). Must not import bidroom, market or web.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import sys
import time
from typing import Any

import socketio
import uvicorn

__all__ = ["build_app", "main"]


def build_app() -> Any:
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=[], logger=False,
                               engineio_logger=False, http_compression=False,
                               ping_interval=25, ping_timeout=60)
    state: dict[str, Any] = {"template": None, "seq": 0}

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if "pub=1" not in environ.get("QUERY_STRING", ""):
            await sio.enter_room(sid, "room")

    @sio.on("template")
    async def template(sid: str, data: dict[str, Any]) -> str:
        state["template"] = data
        return "ok"

    @sio.on("bid")
    async def bid(sid: str, data: dict[str, Any]) -> None:
        tmpl = state["template"]
        if tmpl is None:
            return
        state["seq"] += 1
        out = copy.deepcopy(tmpl)
        out["seq"] = state["seq"]
        event = out.get("event", out)
        event["seq"] = state["seq"]
        event["at_ms"] = int(time.time() * 1000)
        event["price_fen"] = data.get("price_fen", 0)
        await sio.emit("event", out, room="room")

    return socketio.ASGIApp(sio)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "auto"
    config = uvicorn.Config(build_app(), host=args.host, port=args.port, loop=loop,
                            ws="websockets-sansio", ws_per_message_deflate=False,
                            log_level="warning", backlog=4096)
    server = uvicorn.Server(config)
    print("ready", flush=True)  # the runner also polls the port
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
