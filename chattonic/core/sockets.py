"""What the platform's sockets (the web chat's, the agent console's) share.

- ``JsonSocket``: JSON frames read and written with orjson, each frame sent straight to the
  server. A chat message's socket work is mostly frames in and out; the standard library's
  encoder and Channels' three layers of ``send`` were a fifth of a web chat message's time
  in the web process (bench/webchat.py).
- ``SocketSession``: the dashboard's session, read from its cookie, for Channels'
  ``AuthMiddleware``. Channels' ``SessionMiddleware`` also wraps every frame the socket
  sends, to save the session on an HTTP response, which a socket never sends.
"""

from __future__ import annotations

from importlib import import_module

import orjson
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.http import parse_cookie


def frame_loads(text: str | bytes):
    """A frame's JSON (ValueError when it is not JSON)."""
    return orjson.loads(text)


def frame_dumps(content) -> str:
    return orjson.dumps(content).decode()


class JsonSocket(AsyncJsonWebsocketConsumer):
    @classmethod
    async def decode_json(cls, text_data):
        return frame_loads(text_data)

    @classmethod
    async def encode_json(cls, content):
        return frame_dumps(content)

    async def send_json(self, content, close=False):
        await self.base_send({"type": "websocket.send", "text": frame_dumps(content)})
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
