"""Trello's rate limit, kept by every worker together: a sliding window per token in Redis.

Trello allows 100 requests per 10 seconds per token and answers 429 past that, without a
``Retry-After``. Every request first takes a slot here (an atomic script on Redis's own
clock, so that workers on several hosts agree); after a 429 the token is paused for the
back-off's length, so that no worker hammers it meanwhile.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import redis
from django.conf import settings

WINDOW_SECONDS = 10.0

_TAKE = """
local pause = redis.call('PTTL', KEYS[2])
if pause > 0 then return -pause end
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local window_us = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_us - window_us)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now_us, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window_us / 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, math.ceil((tonumber(oldest[2]) + window_us - now_us) / 1000))
"""

_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        url = (
            f"unix://{settings.EMBEDDED_REDIS_SOCKET}"
            if settings.EMBEDDED_REDIS
            else settings.REDIS_URL
        )
        _client = redis.Redis.from_url(url, socket_timeout=5)
    return _client


def _keys(token: str) -> tuple[str, str]:
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    base = f"chattonic.{settings.CHATTONIC_REGION}.trello.{digest}"
    return f"{base}.log", f"{base}.pause"


class RateLimited(Exception):
    """No slot within the time the caller may wait; try again after ``wait`` seconds."""

    def __init__(self, wait: float):
        super().__init__(f"Trello rate limit: next request in {wait:.1f}s")
        self.wait = wait


def try_take(token: str, *, limit: int, window: float | None = None) -> float:
    """Take a request slot for ``token``: 0.0 if taken, else the seconds to wait (negative
    while the token is paused after a 429)."""
    window = WINDOW_SECONDS if window is None else window
    log_key, pause_key = _keys(token)
    wait_ms = _redis().eval(
        _TAKE, 2, log_key, pause_key, int(window * 1_000_000), limit, secrets.token_hex(8)
    )
    return int(wait_ms) / 1000


def take(token: str, *, limit: int, max_wait: float, sleep=time.sleep) -> None:
    """Wait for a slot (at most ``max_wait`` seconds in all); RateLimited past that, and at
    once while the token is paused after a 429 (that back-off is the outbox's to wait)."""
    deadline = time.monotonic() + max_wait
    while True:
        wait = try_take(token, limit=limit)
        if wait == 0:
            return
        if wait < 0 or time.monotonic() + wait > deadline:
            raise RateLimited(abs(wait))
        sleep(wait)


def pause(token: str, seconds: float) -> None:
    """No requests with ``token`` for ``seconds`` (after a 429), unless paused longer already."""
    _, pause_key = _keys(token)
    client = _redis()
    current = client.pttl(pause_key)
    wanted = max(1, int(seconds * 1000))
    if current is None or current < wanted:
        client.set(pause_key, 1, px=wanted)


def paused_for(token: str) -> float:
    """Seconds left in the token's pause (0.0 if not paused)."""
    _, pause_key = _keys(token)
    left = _redis().pttl(pause_key)
    return max(0, left or 0) / 1000
