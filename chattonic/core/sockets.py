"""What the platform's sockets (the web chat's, the agent console's) share.

- ``JsonSocket``: JSON frames read and written with orjson, each frame sent straight to the
  server, and what comes in (frames, channel-layer events) dispatched one at a time by a
  long-lived task per source. A chat message's socket work is mostly frames in
  and out; the standard library's encoder and Channels' three layers of ``send`` were a
  fifth of a web chat message's time in the web process, and Channels'
  ``await_many_dispatch`` makes a task and an ``asyncio.wait`` for every message
  (bench/webchat.py).
- Whatever ends a socket (the client leaving, a bug, the server stopping), its
  ``disconnect`` runs once, so the slots it took (``chattonic.core.ratelimit.acquire``) go
  back; an unexpected error while handling one frame is logged and answered with a
  ``server_error`` frame, and the socket lives on.
- ``SocketSession``: the dashboard's session, read from its cookie, for Channels'
  ``AuthMiddleware``. Channels' ``SessionMiddleware`` also wraps every frame the socket
  sends, to save the session on an HTTP response, which a socket never sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from importlib import import_module

import orjson
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.http import parse_cookie

from chattonic.core import inputs

logger = logging.getLogger(__name__)


SERVER_ERROR = "That did not work; it was logged. Try again."


def frame_loads(text: str | bytes):
    """A frame's JSON (``chattonic.core.inputs``: no NaN, no lone surrogates, bounded depth);
    ValueError when it is not JSON we take."""
    try:
        return inputs.loads(text, field="frame")
    except inputs.InputError as exc:
        raise ValueError(exc.reason) from None


def frame_dumps(content) -> str:
    return orjson.dumps(content).decode()


async def dispatch_in_turn(sources, dispatch) -> None:
    """Channels' ``await_many_dispatch``, without a new task and an ``asyncio.wait`` for every
    message: a long-lived task per source reads a message, dispatches it once no other is
    being dispatched (a first-come, first-served lock), and only then reads the next. A
    source's error, or the dispatch's (``StopConsumer`` at the end), is raised here."""
    lock = asyncio.Lock()

    async def pump(source) -> None:
        while True:
            message = await source()
            async with lock:
                await dispatch(message)

    tasks = [asyncio.create_task(pump(source)) for source in sources]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class JsonSocket(AsyncJsonWebsocketConsumer):
    _released = False

    async def __call__(self, scope, receive, send):
        # Channels' AsyncConsumer.__call__, with dispatch_in_turn.
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
            sources.append(self.channel_receive)
        self.base_send = send
        try:
            with contextlib.suppress(StopConsumer):  # the socket closed: done
                await dispatch_in_turn(sources, self._dispatch_one)
        finally:
            # A connect that failed half-way, a server shutting down: what the socket took
            # goes back all the same (1006: closed without a close frame).
            await self._release(1006)

    async def _dispatch_one(self, message) -> None:
        """One frame or event; an unexpected error in a frame is answered, not fatal."""
        kind = message.get("type")
        if kind in ("websocket.connect", "websocket.disconnect"):
            await self.dispatch(message)
            return
        try:
            await self.dispatch(message)
        except StopConsumer:
            raise
        except Exception:
            # The frame's work rolled back (its transaction); the client is told, and the
            # socket serves its next frame instead of dying with its slots held.
            logger.exception("%s: a %s failed", type(self).__name__, kind)
            if kind == "websocket.receive":
                await self.send_json(
                    {"type": "error", "code": "server_error", "message": SERVER_ERROR}
                )

    async def websocket_disconnect(self, message):
        await self._release(message.get("code", 1000))
        raise StopConsumer()

    async def _release(self, code) -> None:
        if self._released:
            return
        self._released = True
        if self.channel_layer is not None:
            for group in self.groups:
                await self.channel_layer.group_discard(group, self.channel_name)
        await self.disconnect(code)

    @classmethod
    async def decode_json(cls, text_data):  # for Channels' ``receive`` where it is inherited
        return frame_loads(text_data)

    async def send_json(self, content, close=False):
        try:
            await self.base_send({"type": "websocket.send", "text": frame_dumps(content)})
        except OSError:
            # The client is gone (the ASGI spec: a send on a closed connection raises a
            # server-specific OSError; uvicorn's ClientDisconnected): nothing more to do for
            # it. The consumer ends (its slots go back in ``__call__``), quietly.
            raise StopConsumer() from None
        if close:
            await self.close(close)


class SocketSession:
    """ASGI middleware: ``scope["cookies"]`` and ``scope["session"]`` (loaded when first read),
    as Channels' ``SessionMiddlewareStack`` sets them; nothing saved, ``send`` untouched."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        cookies: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            if name == b"cookie":
                cookies = parse_cookie(value.decode("latin-1"))
                break
        store = import_module(settings.SESSION_ENGINE).SessionStore
        session = store(cookies.get(settings.SESSION_COOKIE_NAME))
        return await self.inner({**scope, "cookies": cookies, "session": session}, receive, send)
