"""Auto-pipelining of one Lua script: every call issued in the same event-loop turn goes to
Redis as one pipeline (one write, one read) instead of one round trip each.

Under load many bids arrive in one turn; sending them together is what lets a raw pipelined
client reach several times the throughput of one-call-per-round-trip (PERFORMANCE.md B1).
Each script call is still atomic and independent; calls keep their order. A lone call goes
out directly. A script the server has forgotten (NOSCRIPT, after a restart) is loaded and the
affected calls are re-run one by one.

Redis Cluster clients are not batched here (a pipeline spans slots there): calls go out directly.

Must not import: market, web.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from bidroom.stores.redis import RedisClient

__all__ = ["ScriptBatcher"]

_Pending = tuple[Sequence[str], Sequence[str | bytes], "asyncio.Future[Any]"]


class ScriptBatcher:
    def __init__(self, redis: RedisClient, script: AsyncScript) -> None:
        self._redis = redis
        self._script = script
        self._batch = isinstance(redis, Redis)
        self._pending: list[_Pending] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def __call__(self, keys: Sequence[str], args: Sequence[str | bytes]) -> Any:
        if not self._batch:
            return await self._script(keys=keys, args=args)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((keys, args, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.create_task(self._send(batch))
        self._sending.add(task)  # keep a reference until it is done
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Pending]) -> None:
        if len(batch) == 1:
            keys, args, future = batch[0]
            await self._settle(future, self._direct(keys, args))
            return
        assert isinstance(self._redis, Redis)
        pipe = self._redis.pipeline(transaction=False)
        for keys, args, _ in batch:
            pipe.evalsha(self._script.sha, len(keys), *keys, *args)
        try:
            results = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # the connection failed: every call in it failed
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (keys, args, future), result in zip(batch, results, strict=True):
            if isinstance(result, NoScriptError):
                await self._settle(future, self._direct(keys, args))
            elif future.done():
                continue  # the caller went away (a closed connection)
            elif isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _direct(self, keys: Sequence[str], args: Sequence[str | bytes]) -> Any:
        return await self._script(keys=keys, args=args)  # loads the script on NOSCRIPT

    @staticmethod
    async def _settle(future: asyncio.Future[Any], call: Any) -> None:
        try:
            result = await call
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)
