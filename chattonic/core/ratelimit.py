"""Fixed-window counters in Redis, shared by every process, for the sockets' hot paths.

Native asyncio (redis.asyncio), so a socket frame costs no thread hop for its rate check;
``hit_many_blocking`` for a thread that is already off the event loop (the web chat lane's).
"""

from __future__ import annotations

import asyncio

import redis
from django.conf import settings
from redis import asyncio as aioredis

_clients: dict[asyncio.AbstractEventLoop, aioredis.Redis] = {}
_scripts: dict[asyncio.AbstractEventLoop, object] = {}

# One round trip, atomic, for any number of counters: count the event, and start the window
# on its first event (or on a counter that somehow has no expiry, so that it can never block
# for good). Redis 6.2 (the embedded server) has no EXPIRE NX.
_HIT = """
local counts = {}
for i, key in ipairs(KEYS) do
    local count = redis.call('INCR', key)
    if count == 1 or redis.call('TTL', key) == -1 then
        redis.call('EXPIRE', key, ARGV[1])
    end
    counts[i] = count
end
return counts
"""


def _redis_url() -> str:
    if settings.EMBEDDED_REDIS:
        return f"unix://{settings.EMBEDDED_REDIS_SOCKET}"
    return settings.REDIS_URL


def client() -> aioredis.Redis:
    """One client per event loop (a Redis connection cannot cross loops)."""
    loop = asyncio.get_running_loop()
    redis = _clients.get(loop)
    if redis is None:
        for old in [lp for lp in _clients if lp.is_closed()]:
            del _clients[old]
            _scripts.pop(old, None)
            _gathers.pop(old, None)
        redis = aioredis.from_url(_redis_url(), socket_timeout=5, max_connections=1000)
        _clients[loop] = redis
    return redis


def _key(name: str) -> str:
    return f"chattonic.{settings.CHATTONIC_REGION}.rl.{name}"


async def hit(name: str, *, limit: int, window: int) -> bool:
    """Count one event under ``name``; False once more than ``limit`` fall in the window."""
    return (await hit_many([name], limit=limit, window=window))[0]


async def hit_many(names: list[str], *, limit: int, window: int) -> list[bool]:
    """``hit`` for many events in one round trip (a batch of sockets' messages): for each,
    in order, whether it is within ``limit``."""
    if not names:
        return []
    loop = asyncio.get_running_loop()
    redis = client()
    script = _scripts.get(loop)
    if script is None:
        script = _scripts[loop] = redis.register_script(_HIT)
    counts = await script(keys=[_key(name) for name in names], args=[window])
    return [count <= limit for count in counts]


_blocking_script = None  # the script on a blocking client, made on first use


def hit_many_blocking(names: list[str], *, limit: int, window: int) -> list[bool]:
    """``hit_many`` from a thread (a blocking client, thread-safe, one per process): the web
    chat lane counts its batch in its database thread, not through the event loop."""
    global _blocking_script
    if not names:
        return []
    if _blocking_script is None:
        _blocking_script = redis.Redis.from_url(_redis_url(), socket_timeout=5).register_script(
            _HIT
        )
    counts = _blocking_script(keys=[_key(name) for name in names], args=[window])
    return [count <= limit for count in counts]


# Take a slot only while fewer than the limit are taken, and only then (re)start the slots'
# expiry (a safety net for slots of a process that died before giving them back). A refused
# attempt changes nothing: retrying never extends anyone's wait. Any number of attempts in
# one round trip, in order (ARGV: limit and ttl of each).
_ACQUIRE = """
local taken = {}
for i, key in ipairs(KEYS) do
    local limit = tonumber(ARGV[2 * i - 1])
    local count = tonumber(redis.call('GET', key) or '0')
    if count >= limit then
        taken[i] = 0
    else
        redis.call('INCR', key)
        redis.call('EXPIRE', key, ARGV[2 * i])
        taken[i] = 1
    end
end
return taken
"""


class _Gather:
    """Attempts made while one round trip is under way go together in the next: 500
    sockets opening at once cost a few round trips on one connection, not 500 of them on
    500 connections (the client's pool would open one per attempt waiting)."""

    def __init__(self, script):
        self.script = script
        self.waiting: list[tuple[str, int, int, asyncio.Future]] = []
        self.busy = False
        self.task: asyncio.Task | None = None

    async def acquire(self, key: str, limit: int, ttl: int) -> bool:
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((key, limit, ttl, future))
        if not self.busy:
            self.busy = True
            self.task = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting, []
                args: list[int] = []
                for _, limit, ttl, _ in batch:
                    args += [limit, ttl]
                try:
                    taken = await self.script(keys=[key for key, *_ in batch], args=args)
                except Exception as exc:  # noqa: BLE001 (each attempt raises it)
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (key, _, _, future), one in zip(batch, taken, strict=True):
                    if not future.done():
                        future.set_result(bool(one))
                    elif one:  # its socket went away meanwhile: the slot goes back
                        await _release_key(key)
        finally:
            self.busy = False


_gathers: dict[asyncio.AbstractEventLoop, _Gather] = {}


async def acquire(name: str, *, limit: int, ttl: int = 3600) -> bool:
    """Take one of ``limit`` concurrent slots (e.g. open sockets of one IP); False when all
    are taken. Give it back with ``release``. Attempts at the same moment share a round
    trip."""
    loop = asyncio.get_running_loop()
    gather = _gathers.get(loop)
    if gather is None:
        gather = _gathers[loop] = _Gather(client().register_script(_ACQUIRE))
    return await gather.acquire(_key(name), limit, ttl)


async def release(name: str) -> None:
    await _release_key(_key(name))


async def _release_key(key: str) -> None:
    if await client().decr(key) < 0:
        await client().set(key, 0, ex=60)
