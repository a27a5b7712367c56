"""The shared pub/sub listener (bidroom/stores/channels.py): messages reach the owner by key;
a removed channel is silent; after its connection is killed it resubscribes every channel,
tells the owner (who repairs from its log) and delivers again."""

from __future__ import annotations

import asyncio
import uuid

from bidroom.stores.channels import ChannelListener
from bidroom.stores.redis import RedisClient, is_cluster_url


async def test_messages_by_key_removal_and_recovery_after_the_connection_is_killed(
    redis_client: RedisClient, redis_url: str,
) -> None:
    tag = uuid.uuid4().hex[:8]
    got: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    resubscribed = asyncio.Event()

    async def on_message(key: str, data: bytes) -> None:
        await got.put((key, data))

    async def on_resubscribed() -> None:
        resubscribed.set()

    listener = ChannelListener(redis_client, name="test", on_message=on_message,
                               on_resubscribed=on_resubscribed)
    await listener.start()
    a, b = f"test:{tag}:a", f"test:{tag}:b"
    try:
        await listener.add(a, "room-a")
        await listener.add(b, "room-b")
        await redis_client.publish(a, b"1")
        await redis_client.publish(b, b"2")
        received = {await asyncio.wait_for(got.get(), 10) for _ in range(2)}
        assert received == {("room-a", b"1"), ("room-b", b"2")}

        await listener.remove(b)
        await redis_client.publish(b, b"unheard")
        await redis_client.publish(a, b"3")
        assert await asyncio.wait_for(got.get(), 10) == ("room-a", b"3")  # b's was not heard

        assert not resubscribed.is_set()  # no failure so far, so no repair asked for
        if not is_cluster_url(redis_url):  # kill the pub/sub connection from the server side
            killed = await redis_client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            assert int(killed) >= 1
            await asyncio.wait_for(resubscribed.wait(), 10)
            await redis_client.publish(a, b"4")
            assert await asyncio.wait_for(got.get(), 10) == ("room-a", b"4")
    finally:
        await listener.stop()
