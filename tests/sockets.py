"""What the socket tests share: reading a communicator's frames until one matches, the
messages a frame brings, and the Redis commands a block of a test sends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import uuid

from channels.testing import WebsocketCommunicator

TIMEOUT = 10  # a safety net for a hung socket, not a timing assertion


async def until(communicator: WebsocketCommunicator, predicate) -> tuple[dict, list[dict]]:
    """Read frames until one matches; returns it and every frame read before it."""
    seen = []
    while True:
        frame = await communicator.receive_json_from(timeout=TIMEOUT)
        if predicate(frame):
            return frame, seen
        seen.append(frame)


def of_type(kind: str, **fields):
    return lambda f: f["type"] == kind and all(f.get(k) == v for k, v in fields.items())


def said(frame: dict) -> list[dict]:
    """The messages a frame brings: a ``message`` frame's, or the bot's replies that came
    with a web chat ``ack``."""
    if frame.get("type") == "message":
        return [frame["message"]]
    return frame.get("replies") or [] if frame.get("type") == "ack" else []


def says(sender: str, text: str | None = None):
    """A frame bringing a message from ``sender`` (saying ``text``)."""
    return lambda f: any(
        m["sender"] == sender and (text is None or m["text"] == text) for m in said(f)
    )


@contextlib.asynccontextmanager
async def redis_commands():
    """The commands this run's Redis database receives inside the block, as lists of their
    words (``["EVALSHA", sha, ...]``), seen by ``MONITOR``: whichever client sends them (the
    rate limit's, the channel layer's), not those a script runs. Other databases of a shared
    server are left out."""
    from redis import asyncio as aioredis

    from chattonic.core import ratelimit

    url = ratelimit._redis_url()
    seen: list[list[str]] = []
    client, watcher = aioredis.from_url(url), aioredis.from_url(url)
    db = client.connection_pool.connection_kwargs.get("db", 0)
    marker = f"end-of-block-{uuid.uuid4().hex}"
    try:
        await client.ping()  # the marker's connection is ready (its SELECT) before the block
        async with watcher.monitor() as monitor:
            yield seen
            await client.echo(marker)
            while True:
                command = await asyncio.wait_for(monitor.next_command(), TIMEOUT)
                if marker in command["command"]:
                    break
                # What a script runs shows too, as from "lua": part of its one command.
                if int(command["db"]) == int(db) and command.get("client_type") != "lua":
                    seen.append(shlex.split(command["command"]))
    finally:
        await client.aclose()
        await watcher.aclose()


class Frames:
    """A real socket's (the ``websockets`` client's) frames, read until one matches; every
    frame read is kept. ``timeout``: a safety net for a hung socket, not a timing assertion."""

    def __init__(self, socket, timeout: float = 30):
        self.socket = socket
        self.timeout = timeout
        self.seen: list[dict] = []

    async def until(self, predicate) -> dict:
        async with asyncio.timeout(self.timeout):
            while True:
                frame = json.loads(await self.socket.recv())
                self.seen.append(frame)
                if predicate(frame):
                    return frame
