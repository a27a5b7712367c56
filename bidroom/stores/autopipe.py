"""Auto-pipelining of one Lua script: every call issued in the same event-loop turn goes to
Redis as one pipeline (one write, one read) instead of one round trip each.

Under load many bids arrive in one turn; sending them together is what lets a raw pipelined
client reach several times the throughput of one-call-per-round-trip (PERFORMANCE.md B1).
Each script call is still atomic and independent; calls keep their order. A script the server
has forgotten (NOSCRIPT, after a restart) is loaded and the affected calls are re-run one by one.

The batch is packed by hiredis' C ``pack_command`` (redis-py's asyncio connection packs in
Python: 11 % of the bid path's event-loop time in the B1 profile), written on a pooled
connection and read back with redis-py's parser (hiredis), without a ``Pipeline`` object: that
also saves the command stack, the retry and observability wrappers and the per-command
bookkeeping (docs/benchmarks.md, B1). A connection that fails mid-batch is disconnected and every
call in the batch fails with the error (callers see ``store_unavailable``; a bid re-sent with the
same ``bid_id`` is answered once). Each call is packed on its own before the batch is written: a
call whose keys or arguments cannot be encoded (a lone surrogate has no UTF-8 form) fails its
own caller with the encoding error, and the rest of the batch goes out without it.

Redis Cluster clients are not batched here (a pipeline spans slots there): calls go out directly.

Must not import: market, web.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

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

    async def _send(self, pending: list[_Pending]) -> None:
        batch, packed = self._pack(pending)
        if not batch:
            return
        results, failure = await self._exchange(batch, packed)
        if isinstance(failure, RedisConnectionError) and not results:
            # The server closed the connection before answering any of the batch (a Redis
            # restart, an idle timeout, CLIENT KILL): once more on a new one. Should the
            # server have run some of it after all, running it again is safe: a bid is
            # answered once by its bid_id, a command is refused as already done.
            results, failure = await self._exchange(batch, packed)
        for (keys, args, future), result in zip(batch, results, strict=False):
            if isinstance(result, NoScriptError):
                await self._settle(future, self._direct(keys, args))
            elif future.done():
                continue  # the caller went away (a closed connection)
            elif isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
        if failure is not None:  # the connection failed: the calls it did not answer failed
            for _, _, future in batch[len(results):]:
                if not future.done():
                    future.set_exception(failure)
            if isinstance(failure, asyncio.CancelledError):
                raise failure

    def _pack(self, pending: list[_Pending]) -> tuple[list[_Pending], list[bytes]]:
        """Each call packed on its own: a call that cannot be encoded fails its own caller
        now and is left out; the calls that can, and their packed commands, in order."""
        batch: list[_Pending] = []
        packed: list[bytes] = []
        sha = self._script.sha
        for keys, args, future in pending:
            try:
                command = hiredis.pack_command(  # (hiredis' type hints declare a 1-tuple)
                    ("EVALSHA", sha, len(keys), *keys, *args))  # type: ignore[arg-type]
            except Exception as exc:  # UnicodeEncodeError, TypeError: this caller's input
                if not future.done():
                    future.set_exception(exc)
                continue
            batch.append((keys, args, future))
            packed.append(command)
        return batch, packed

    async def _exchange(self, batch: list[_Pending],
                        packed: list[bytes]) -> tuple[list[Any], BaseException | None]:
        """Write the batch on one pooled connection and read one reply (or error) per call;
        on a failure, the replies read so far and the failure."""
        assert isinstance(self._redis, Redis)
        pool = self._redis.connection_pool
        results: list[Any] = []
        try:
            conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        except BaseException as exc:
            return results, exc
        try:
            await conn.send_packed_command(b"".join(packed))
            for _ in batch:
                try:
                    results.append(await conn.read_response())
                except ResponseError as exc:  # this call's error; the others stand
                    results.append(exc)
        except BaseException as exc:
            await conn.disconnect()  # mid-batch: the rest of its replies cannot be matched
            return results, exc
        finally:
            await pool.release(conn)
        return results, None

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
