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


async def test_a_shards_lock_and_subscribe_are_as_assumed():
    loop_layer = get_channel_layer().loop_layer()
    name = layers.group_channel_name(loop_layer, f"internals-{time.time_ns()}")
    shard = layers.shard_of(loop_layer, name)
    assert isinstance(layers.shard_lock(shard), asyncio.Lock)
    async with layers.shard_lock(shard):
        await layers.shard_subscribe(shard, [name, name])
    assert layers.shard_subscribed(shard, name)
    await shard.unsubscribe(name)  # channels-redis's own, under the same lock
    assert not layers.shard_subscribed(shard, name)


async def test_groups_joined_at_once_are_subscribed_in_one_trip_and_hear_their_messages(
    monkeypatch,
):
    layer = get_channel_layer()
    loop_layer = layer.loop_layer()
    channels = [await layer.new_channel() for _ in range(20)]
    groups = [f"together-{time.time_ns()}-{n}" for n in range(20)]
    shard = layers.shard_of(loop_layer, layers.group_channel_name(loop_layer, groups[0]))
    trips = []
    subscribe = shard._pubsub.subscribe

    async def counted(*names):
        trips.append(names)
        return await subscribe(*names)

    monkeypatch.setattr(shard._pubsub, "subscribe", counted)
    await asyncio.gather(*(layer.group_add(g, c) for g, c in zip(groups, channels, strict=True)))

    assert len(trips) == 1 and len(trips[0]) == 20
    for group, channel in zip(groups, channels, strict=True):
        name = layers.group_channel_name(loop_layer, group)
        assert layers.shard_subscribed(shard, name)
        assert layers.local_members(loop_layer, name) == {channel}
    await layer.group_send(groups[7], {"type": "test.ping"})
    assert await asyncio.wait_for(layer.receive(channels[7]), 10) == {"type": "test.ping"}
    for group, channel in zip(groups, channels, strict=True):
        await layer.group_discard(group, channel)


async def test_a_group_left_before_its_subscription_is_not_subscribed():
    layer = get_channel_layer()
    loop_layer = layer.loop_layer()
    channel = await layer.new_channel()
    group = f"left-{time.time_ns()}"
    name = layers.group_channel_name(loop_layer, group)
    shard = layers.shard_of(loop_layer, name)
    async with layers.shard_lock(shard):  # the subscription waits its turn
        joining = asyncio.ensure_future(layer.group_add(group, channel))
        await asyncio.sleep(0)
        loop_layer.groups.pop(name)  # as group_discard leaves it, before its turn
    await joining
    assert not layers.shard_subscribed(shard, name)


async def test_a_blocking_group_send_is_heard_as_group_send_is():
    """Sync code (a Celery task's commit) sends with ``group_send_blocking``: a socket in the
    group hears the same message, in order with the ones sent on the loop, and the client is
    one for all the sends (no connection a message)."""
    layer = get_channel_layer()
    group = f"blocking-{time.time_ns()}"
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    try:
        await layer.group_send(group, {"type": "chat.event", "n": 0})
        await asyncio.to_thread(layer.group_send_blocking, group, {"type": "chat.event", "n": 1})
        clients = dict(layers._blocking_clients)
        await asyncio.to_thread(layer.group_send_blocking, group, {"type": "chat.event", "n": 2})
        heard = [await asyncio.wait_for(layer.receive(channel), 10) for _ in range(3)]
        assert heard == [{"type": "chat.event", "n": n} for n in range(3)]
        assert layers._blocking_clients == clients  # the same client, no new one
    finally:
        await layer.group_discard(group, channel)
