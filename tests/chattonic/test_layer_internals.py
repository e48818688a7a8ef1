"""What chattonic.core.layers reads of channels-redis beyond its public API, checked against
the installed version: an upgrade that changes any of it fails here, naming it, instead of
silently breaking the web chat's lane (which asks the layer who else hears a group) or the
bound on a slow consumer's queue."""

from __future__ import annotations

import asyncio
import re
import time
from importlib.metadata import version
from pathlib import Path

import redis
from channels.layers import get_channel_layer

from chattonic.core import layers

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_channels_redis_is_the_pinned_one():
    pinned = re.search(r"^channels-redis==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned and version("channels-redis") == pinned.group(1)


async def test_a_groups_redis_channel_is_the_one_its_messages_are_published_on():
    layer = get_channel_layer()
    loop_layer = layer.loop_layer()
    group = f"internals-{time.time_ns()}"
    name = layers.group_channel_name(loop_layer, group)
    assert name == f"{loop_layer.prefix}__group__{group}"

    host = layers.shard_host(layers.shard_of(loop_layer, name))
    assert isinstance(host, dict) and "address" in host
    options = {key: value for key, value in host.items() if key != "address"}
    listener = redis.Redis.from_url(host["address"], **options).pubsub()
    listener.subscribe(name)

    def published() -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = listener.get_message(timeout=0.5)
            if message and message["type"] == "message":
                return True
        return False

    try:
        await asyncio.to_thread(listener.get_message, timeout=1)  # the subscribe's answer
        await layer.group_send(group, {"type": "test.ping"})
        assert await asyncio.to_thread(published)
    finally:
        listener.close()


async def test_a_groups_local_members_and_subscription_are_read_as_assumed():
    layer = get_channel_layer()
    loop_layer = layer.loop_layer()
    group = f"internals-{time.time_ns()}"
    name = layers.group_channel_name(loop_layer, group)
    channel = await layer.new_channel()
    shard = layers.shard_of(loop_layer, name)
    assert layers.local_members(loop_layer, name) == set()
    assert not layers.shard_subscribed(shard, name)

    await layer.group_add(group, channel)
    assert layers.local_members(loop_layer, name) == {channel}
    assert layers.shard_subscribed(shard, name)

    await layer.group_discard(group, channel)
    assert layers.local_members(loop_layer, name) == set()
    assert not layers.shard_subscribed(shard, name)


async def test_the_bounded_layer_replaces_the_queue_and_the_loop_layer_it_overrides():
    layer = get_channel_layer()
    assert isinstance(layer, layers.BoundedRedisPubSubChannelLayer)
    loop_layer = layer.loop_layer()
    assert isinstance(loop_layer, layers.BoundedPubSubLoopLayer)
    assert layer._get_layer() is loop_layer  # the proxy's per-loop layer is ours
    channel = await layer.new_channel()  # RedisPubSubLoopLayer._subscribe_to_channel, ours
    assert isinstance(loop_layer.channels[channel], layers.DropOldestQueue)
    assert loop_layer.channels[channel].maxsize == loop_layer.capacity
