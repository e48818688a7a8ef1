"""The platform's sockets (the web chat's, the agent console's): a small WebSocket consumer of
our own, written against two public contracts only, so that an upgrade of Channels or asgiref
cannot change it from under us:

- the ASGI WebSocket spec (``websocket.connect`` / ``receive`` / ``disconnect`` in;
  ``websocket.accept`` / ``send`` / ``close`` and the ``websocket.http.response`` extension
  out; a send on a closed connection raises an ``OSError``);
- the channel layer's documented API (``new_channel``, ``receive``, ``group_add``,
  ``group_discard``, ``group_send``), got with ``channels.layers.get_channel_layer``.

tests/chattonic/test_sockets.py holds both to what this module relies on, against the
installed Channels, channels-redis and uvicorn.

Why not Channels' ``AsyncJsonWebsocketConsumer``: its ``__call__`` dispatches every message
through a new task and an ``asyncio.wait`` (``await_many_dispatch``), its ``dispatch`` hops to
the database thread before every frame and event to close old connections (4.2+), and its
JSON goes through the standard library and three layers of ``send``: a fifth of a web chat
message's time in the web process (bench/webchat.py). Overriding those methods tied us to
Channels' internals; this class owns them instead. What a consumer writes is the same as with
Channels: ``connect``/``accept``/``close``, ``receive_json``/``send_json``, ``disconnect``,
and a method per channel-layer event type (``message.created`` -> ``message_created``).

- What comes in (frames, channel-layer events) is dispatched one at a time, in order: frames
  read in the socket's own task, events in one long-lived task beside it
  (``dispatch_in_turn``).
- Whatever ends a socket (the client leaving, a bug, the server stopping), its ``disconnect``
  runs once, so the slots it took (``chattonic.core.ratelimit.acquire``) go back; an
  unexpected error while handling one frame is logged and answered with a ``server_error``
  frame, and the socket lives on.
- ``SocketSession``: the dashboard's session, read from its cookie, for Channels'
  ``AuthMiddleware`` (the console). Channels' ``SessionMiddleware`` also wraps every frame the
  socket sends, to save the session on an HTTP response, which a socket never sends.
  ``session_user``: the same user, read in a database thread, for a socket that needs it
  only sometimes (the widget's sandbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from importlib import import_module
from types import SimpleNamespace

import orjson
from channels.exceptions import DenyConnection, StopConsumer
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
    """Read from every source, dispatch one message at a time: a reader per source takes a
    message, dispatches it once no other is being dispatched (a first-come, first-served
    lock), and only then reads the next. The first source is read in the calling task, each
    other one in a task of its own (an idle socket holds one task beside its own: the one
    waiting for the channel layer). A source's error, or the dispatch's (``StopConsumer`` at
    the end), is raised here."""
    lock = asyncio.Lock()

    async def pump(source) -> None:
        while True:
            message = await source()
            async with lock:
                await dispatch(message)

    first, *others = sources
    here = asyncio.current_task()
    failed: list[BaseException] = []
    finishing = False

    def ended(task: asyncio.Task) -> None:
        # Another reader ended (its source's error, or the dispatch's): stop this one too.
        if not finishing and not task.cancelled() and not failed:
            failed.append(task.exception())
            here.cancel()

    tasks = [asyncio.create_task(pump(source)) for source in others]
    for task in tasks:
        task.add_done_callback(ended)
    try:
        await pump(first)
    except asyncio.CancelledError:
        if not failed:
            raise
        here.uncancel()
        raise failed[0] from None
    finally:
        finishing = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def handler_name(message) -> str:
    """The method that handles a message: its type with dots as underscores (Channels'
    convention); never a private name."""
    kind = message.get("type") if isinstance(message, dict) else None
    if not isinstance(kind, str) or not kind or kind.startswith(("_", ".")):
        raise ValueError(f"a message of no usable type: {kind!r}")
    return kind.replace(".", "_")


class JsonSocket:
    """A WebSocket consumer speaking JSON text frames (see the module's docstring)."""

    channel_layer_alias = "default"
    channel_layer = None
    channel_name: str | None = None
    _released = False

    @classmethod
    def as_asgi(cls, **initkwargs):
        """The ASGI application: one instance of the class per connection."""

        async def app(scope, receive, send):
            return await cls(**initkwargs)(scope, receive, send)

        app.consumer_class = cls
        functools.update_wrapper(app, cls, updated=())
        return app

    def __init__(self, **initkwargs):
        for name, value in initkwargs.items():
            setattr(self, name, value)

    async def __call__(self, scope, receive, send):
        self.scope = scope
        self.base_send = send
        sources = [receive]
        layer = get_channel_layer(self.channel_layer_alias)
        if layer is not None:
            self.channel_layer = layer
            self.channel_name = await layer.new_channel()
            sources.append(functools.partial(layer.receive, self.channel_name))
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

    async def dispatch(self, message) -> None:
        handler = getattr(self, handler_name(message), None)
        if handler is None:
            raise ValueError(f"{type(self).__name__} has no handler for {message['type']}")
        await handler(message)

    # --- The ASGI WebSocket messages -----------------------------------------------------

    async def websocket_connect(self, message) -> None:
        try:
            await self.connect()
        except DenyConnection:
            await self.close()

    async def websocket_receive(self, message) -> None:
        await self.receive(text_data=message.get("text"), bytes_data=message.get("bytes"))

    async def websocket_disconnect(self, message) -> None:
        await self._release(message.get("code", 1000))
        raise StopConsumer()

    async def _release(self, code) -> None:
        if self._released:
            return
        self._released = True
        await self.disconnect(code)

    # --- What a consumer overrides -------------------------------------------------------

    async def connect(self) -> None:
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if text_data is None:
            raise ValueError("Frames are JSON text.")
        await self.receive_json(frame_loads(text_data))

    async def receive_json(self, content) -> None:
        pass

    async def disconnect(self, code) -> None:
        pass

    # --- Out -----------------------------------------------------------------------------

    async def accept(self, subprotocol: str | None = None) -> None:
        await self.base_send({"type": "websocket.accept", "subprotocol": subprotocol})

    async def send_json(self, content, close=False) -> None:
        try:
            await self.base_send({"type": "websocket.send", "text": frame_dumps(content)})
        except OSError:
            # The client is gone (the ASGI spec: a send on a closed connection raises a
            # server-specific OSError; uvicorn's ClientDisconnected): nothing more to do for
            # it. The consumer ends (its slots go back in ``__call__``), quietly.
            raise StopConsumer() from None
        if close:
            await self.close(close)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close the socket; before ``accept``, refuse the handshake (HTTP 403)."""
        message: dict = {"type": "websocket.close"}
        if code is not None and code is not True:
            message["code"] = code
        if reason:
            message["reason"] = reason
        try:
            await self.base_send(message)
        except OSError:
            raise StopConsumer() from None


def _cookies(scope) -> dict[str, str]:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            return parse_cookie(value.decode("latin-1"))
    return {}


def _session(cookies: dict[str, str]):
    store = import_module(settings.SESSION_ENGINE).SessionStore
    return store(cookies.get(settings.SESSION_COOKIE_NAME))


def session_user(scope):
    """The dashboard's user signed in on this socket's session cookie (or an anonymous
    user); blocking, for a database thread. Django's ``auth.get_user``, which reads only
    ``request.session``."""
    from django.contrib.auth import get_user

    return get_user(SimpleNamespace(session=_session(_cookies(scope))))


class SocketSession:
    """ASGI middleware: ``scope["cookies"]`` and ``scope["session"]`` (loaded when first read),
    as Channels' ``SessionMiddlewareStack`` sets them; nothing saved, ``send`` untouched."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        cookies = _cookies(scope)
        session = _session(cookies)
        return await self.inner({**scope, "cookies": cookies, "session": session}, receive, send)
