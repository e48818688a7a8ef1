"""The channel layer: channels-redis's pub/sub layer with a bound per consumer.

The pub/sub layer was measured 2.5x faster here than the list-based RedisChannelLayer,
but it queues without limit for each consumer channel. A consumer that cannot keep up
(a visitor's socket on a stalled network) would pile messages up in the web process's
memory; this layer keeps the newest ``capacity`` messages per channel and drops the
oldest, with a warning. Nothing is lost for good: messages are stored before they are
broadcast, and a client that reconnects asks for the history.
"""

from __future__ import annotations

import asyncio
import logging

import redis
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer
from channels_redis.utils import _wrap_close

logger = logging.getLogger(__name__)

DEFAULT_CAPACITY = 1000


# --- What this module relies on in channels-redis beyond its public API ---------------------------
#
# channels-redis has no public way to ask who listens to a group, nor to bound a consumer's
# queue. These few functions are the only places that read its internals (channels-redis
# 4.3, pinned in requirements.txt); tests/chattonic/test_layer_internals.py checks each of
# them against the installed version, so an upgrade that changes one fails there, by name,
# rather than silently in the web chat's lane. Each says what it assumes.


def group_channel_name(loop_layer: RedisPubSubLoopLayer, group: str) -> str:
    """The Redis pub/sub channel a group's messages are published on (``<prefix>__group__
    <group>``: ``RedisPubSubLoopLayer._get_group_channel_name``)."""
    return loop_layer._get_group_channel_name(group)


def local_members(loop_layer: RedisPubSubLoopLayer, group_channel: str) -> set[str]:
    """This process's channels in a group (``RedisPubSubLoopLayer.groups``: group channel
    name -> set of channel names; read only, in one step)."""
    return loop_layer.groups.get(group_channel, set())


def shard_of(loop_layer: RedisPubSubLoopLayer, name: str):
    """The shard (one Redis server) a channel or group channel lives on
    (``RedisPubSubLoopLayer._get_shard``)."""
    return loop_layer._get_shard(name)


def shard_host(shard) -> dict:
    """The shard's host as configured (``{"address": ...}`` and redis-py options:
    ``RedisSingleShardConnection.host``)."""
    return shard.host


def shard_subscribed(shard, name: str) -> bool:
    """Whether this process is subscribed to ``name`` on the shard (``RedisSingleShard
    Connection._subscribed_to``: a set of channel names)."""
    return name in shard._subscribed_to


def shard_lock(shard) -> asyncio.Lock:
    """The lock that orders the shard's subscribes, unsubscribes and publishes
    (``RedisSingleShardConnection._lock``)."""
    return shard._lock


async def shard_subscribe(shard, names: list[str]) -> None:
    """Subscribe the shard's pub/sub connection to those of ``names`` it is not subscribed to,
    in one ``SUBSCRIBE``; the caller holds ``shard_lock``. What ``RedisSingleShardConnection.
    subscribe`` does for one name (``_ensure_redis``, ``_ensure_receiver``, ``_pubsub``,
    ``_subscribed_to``)."""
    new = [name for name in dict.fromkeys(names) if name not in shard._subscribed_to]
    if not new:
        return
    shard._ensure_redis()
    shard._ensure_receiver()
    await shard._pubsub.subscribe(*new)
    shard._subscribed_to.update(new)


class DropOldestQueue(asyncio.Queue):
    """A bounded queue whose ``put_nowait`` drops the oldest item instead of raising."""

    dropped = 0

    def put_nowait(self, item):
        if self.full():
            self.get_nowait()
            self.dropped += 1
            logger.warning("channel layer: a slow consumer dropped its oldest message")
        super().put_nowait(item)


class BoundedPubSubLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args, capacity: int = DEFAULT_CAPACITY, **kwargs):
        super().__init__(*args, **kwargs)
        self.capacity = capacity
        self._subscribing: dict[object, tuple[list[str], asyncio.Future]] = {}
        self._subscribers: set[asyncio.Task] = set()

    async def _subscribe_to_channel(self, channel):
        self.channels[channel] = DropOldestQueue(maxsize=self.capacity)
        await self._subscribe(channel)

    async def group_add(self, group, channel):
        """channels-redis's ``group_add``, its subscription made with the others asked for
        at the same moment (``_subscribe``)."""
        if channel not in self.channels:
            await super().group_add(group, channel)  # refused there, as it says
            return
        name = group_channel_name(self, group)
        self.groups.setdefault(name, set()).add(channel)
        await self._subscribe(name)

    async def _subscribe(self, name: str) -> None:
        """Subscribe to a channel or a group's channel together with the other names asked
        for while the shard's lock was taken: one ``SUBSCRIBE`` for all of them, where
        channels-redis sends one each, in turn behind that lock (each waiting a turn of the
        busy event loop: 200 web chat visitors' first messages waited 25-55 ms on average
        to join their conversations' groups in bench/webchat.py). Returns once subscribed;
        a name whose channel or group is gone by then is left out."""
        shard = shard_of(self, name)
        pending = self._subscribing.get(shard)
        if pending is None:
            done = asyncio.get_running_loop().create_future()
            done.add_done_callback(lambda f: f.cancelled() or f.exception())  # seen
            pending = self._subscribing[shard] = ([], done)
            task = asyncio.get_running_loop().create_task(self._subscribe_pending(shard))
            self._subscribers.add(task)
            task.add_done_callback(self._subscribers.discard)
        pending[0].append(name)
        await asyncio.shield(pending[1])

    async def _subscribe_pending(self, shard) -> None:
        async with shard_lock(shard):
            names, done = self._subscribing.pop(shard)
            try:
                wanted = [n for n in names if n in self.channels or n in self.groups]
                await shard_subscribe(shard, wanted)
            except asyncio.CancelledError:
                done.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - each caller gets it
                done.set_exception(exc)
            else:
                done.set_result(None)

    def subscriber_counts(self, groups: list[str]) -> dict[str, int]:
        """How many processes Redis counts as subscribed to each group (``PUBSUB NUMSUB``:
        one subscription per process), in one round trip per shard. Blocking, and it reads
        nothing of this loop layer's tables: any thread, or another process with a layer of
        its own (``BoundedRedisPubSubChannelLayer.counting_layer``), may ask (the web chat
        lane's batch asks right after its commit, from its database thread or process)."""
        remote: dict[object, dict[str, str]] = {}
        for group in dict.fromkeys(groups):
            name = group_channel_name(self, group)
            remote.setdefault(shard_of(self, name), {})[name] = group
        counts: dict[str, int] = {}
        for shard, names in remote.items():
            for key, count in _blocking_client(shard_host(shard)).pubsub_numsub(*names):
                counts[names[key.decode() if isinstance(key, bytes) else key]] = count
        return counts

    def others_listening(
        self, pairs: list[tuple[str, str]], counts: dict[str, int]
    ) -> set[tuple[str, str]]:
        """Those of the (group, channel) pairs whose group someone other than the channel
        hears: another channel of this process, or another process (``counts``, from
        ``subscriber_counts``, less this process's own subscription). Reads this loop layer's
        tables, each in one step, and nothing else: call it on the loop. A subscription under
        way may be missed, as a ``group_send`` at that moment would."""
        found: set[tuple[str, str]] = set()
        for group, channel in pairs:
            name = group_channel_name(self, group)
            if local_members(self, name) - {channel}:
                found.add((group, channel))
                continue
            mine = 1 if shard_subscribed(shard_of(self, name), name) else 0
            if counts.get(group, 0) > mine:
                found.add((group, channel))
        return found


_blocking_clients: dict[str, redis.Redis] = {}


def _blocking_client(host: dict) -> redis.Redis:
    """A blocking client (thread-safe pool) to a shard's Redis, one per address."""
    address = host["address"]
    client = _blocking_clients.get(address)
    if client is None:
        options = {key: value for key, value in host.items() if key != "address"}
        client = _blocking_clients[address] = redis.Redis.from_url(address, **options)
    return client


class BoundedRedisPubSubChannelLayer(RedisPubSubChannelLayer):
    def _get_layer(self):
        loop = asyncio.get_running_loop()
        try:
            return self._layers[loop]
        except KeyError:
            layer = BoundedPubSubLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
            return layer

    def loop_layer(self) -> BoundedPubSubLoopLayer:
        """This event loop's layer (call it on the loop; use it from any thread)."""
        return self._get_layer()

    def counting_layer(self) -> BoundedPubSubLoopLayer:
        """A layer of no event loop, for the blocking calls from a thread or a process that
        has no loop layer (the web chat lane's worker processes, Celery tasks):
        ``subscriber_counts``, and the group names and shards of ``group_send_blocking``. It
        never subscribes."""
        if self._counting is None:
            self._counting = BoundedPubSubLoopLayer(*self._args, **self._kwargs, channel_layer=self)
        return self._counting

    _counting: BoundedPubSubLoopLayer | None = None

    def group_send_blocking(self, group: str, message: dict) -> None:
        """``group_send`` from sync code with no event loop (a Celery task, a view, a
        transaction's commit callbacks): the same PUBLISH of the same serialized message on
        the group's channel, from a blocking client. Through ``async_to_sync`` each message
        took a new event loop, a new loop layer and a new Redis connection: 2.0-2.4 ms an
        event, measured here; this one call reuses its connection."""
        layer = self.counting_layer()
        name = group_channel_name(layer, group)
        client = _blocking_client(shard_host(shard_of(layer, name)))
        client.publish(name, self.serialize(message))
