"""Auto-pipelining of the room script: many calls in one loop turn share one round trip and
each still gets its own answer, in order; a server that forgot the script recovers."""

from __future__ import annotations

import asyncio
import uuid

from redis.asyncio import Redis

from bidroom.stores.autopipe import ScriptBatcher
from bidroom.stores.redis import connect_redis

COUNTER = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


async def test_calls_in_one_turn_are_answered_each_in_order(redis_url: str) -> None:
    client = connect_redis(redis_url)
    key = f"{{t:{uuid.uuid4().hex}}}:n"
    try:
        batcher = ScriptBatcher(client, client.register_script(COUNTER))
        results = await asyncio.gather(*(batcher([key], ["1"]) for _ in range(50)))
        assert results == list(range(1, 51))  # one pipeline, executed in submission order
        assert await batcher([key], ["5"]) == 55  # a lone call goes out directly
    finally:
        await client.delete(key)
        await client.aclose()


async def test_a_server_that_forgot_the_script_is_given_it_again(redis_url: str) -> None:
    client = connect_redis(redis_url)
    key = f"{{t:{uuid.uuid4().hex}}}:n"
    try:
        script = client.register_script(COUNTER)
        batcher = ScriptBatcher(client, script)
        await batcher([key], ["1"])
        if isinstance(client, Redis):
            await client.script_flush()
        results = await asyncio.gather(*(batcher([key], ["1"]) for _ in range(10)))
        assert sorted(results) == list(range(2, 12))
    finally:
        await client.delete(key)
        await client.aclose()


async def test_an_error_reaches_only_its_own_caller(redis_url: str) -> None:
    client = connect_redis(redis_url)
    key = f"{{t:{uuid.uuid4().hex}}}:n"
    try:
        batcher = ScriptBatcher(client, client.register_script(COUNTER))
        good, bad = await asyncio.gather(batcher([key], ["1"]), batcher([key], ["x"]),
                                         return_exceptions=True)
        assert good == 1
        assert isinstance(bad, Exception) and "not an integer" in str(bad)
    finally:
        await client.delete(key)
        await client.aclose()


async def test_an_argument_that_cannot_be_sent_fails_its_own_caller_alone(redis_url: str) -> None:
    """One caller's arguments that cannot be encoded for the wire (a lone surrogate has no
    UTF-8 form) fail that caller before anything is written; the other bids packed into the
    same batch are sent and answered as if it had not been there."""
    client = connect_redis(redis_url)
    assert isinstance(client, Redis)  # (Redis Cluster is not batched: calls go out directly)
    key = f"{{t:{uuid.uuid4().hex}}}:n"
    try:
        batcher = ScriptBatcher(client, client.register_script(COUNTER))
        calls = [batcher([key], ["1"]), batcher([key], ["\ud800"]), batcher([key], ["1"]),
                 batcher([key], [b"1"]), batcher([key + "\udfff"], ["1"])]
        first, bad, second, third, bad_key = await asyncio.gather(*calls,
                                                                  return_exceptions=True)
        assert (first, second, third) == (1, 2, 3)
        assert isinstance(bad, UnicodeEncodeError)
        assert isinstance(bad_key, UnicodeEncodeError)
        assert await client.get(key) == b"3"  # nothing of the bad calls reached Redis
        assert await batcher([key], ["1"]) == 4  # and the batcher goes on as before
    finally:
        await client.delete(key)
        await client.aclose()


async def test_after_the_server_dropped_its_connections_the_next_batch_goes_out_on_new_ones(
    redis_url: str,
) -> None:
    """A Redis restart or an idle timeout leaves dead connections in the pool: a batch that
    meets one (closed before any reply) goes out again on a new connection instead of failing
    every bid in it."""
    client = connect_redis(redis_url)
    assert isinstance(client, Redis)  # (Redis Cluster is not batched: calls go out directly)
    key = f"{{t:{uuid.uuid4().hex}}}:n"
    name = f"autopipe-{uuid.uuid4().hex[:8]}"
    try:
        batcher = ScriptBatcher(client, client.register_script(COUNTER))
        await asyncio.gather(*(batcher([key], ["1"]) for _ in range(20)))
        pooled = client.connection_pool._available_connections  # type: ignore[attr-defined]
        assert pooled
        for conn in pooled:  # name them, then kill exactly them from the server side
            await conn.send_command("CLIENT", "SETNAME", name)
            assert await conn.read_response() == b"OK"
        ours = [c["id"] for c in await client.client_list() if c.get("name") == name]
        assert ours
        killer = connect_redis(redis_url)
        try:
            for client_id in ours:
                await killer.execute_command("CLIENT", "KILL", "ID", client_id)
        finally:
            await killer.aclose()
        results = await asyncio.gather(*(batcher([key], ["1"]) for _ in range(20)))
        assert sorted(results) == list(range(21, 41))
    finally:
        await client.delete(key)
        await client.aclose()
