"""The sockets' own layer (chattonic.core.sockets): the dispatch loop (one message at a time,
in the order they come, errors raised), orjson frames, and the public contracts of Channels,
channels-redis, asgiref and uvicorn that it relies on, so that an upgrade that changes one of
them fails here rather than in production."""

from __future__ import annotations

import asyncio
import logging

import pytest
from channels.exceptions import StopConsumer

from chattonic.core import inputs
from chattonic.core.sockets import (
    JsonSocket,
    dispatch_in_turn,
    frame_dumps,
    frame_loads,
    handler_name,
)


async def test_messages_are_dispatched_one_at_a_time_in_the_order_they_came():
    frames, events = asyncio.Queue(), asyncio.Queue()
    release = asyncio.Event()
    log: list[str] = []

    async def dispatch(message):
        log.append(f"start {message}")
        if message == "frame 1":
            await release.wait()  # an event arriving now waits for this one to end
        log.append(f"end {message}")
        if message == "stop":
            raise StopConsumer

    runner = asyncio.create_task(dispatch_in_turn([frames.get, events.get], dispatch))
    frames.put_nowait("frame 1")
    await asyncio.sleep(0)
    events.put_nowait("event 1")
    frames.put_nowait("frame 2")  # read only once frame 1 is dispatched
    for _ in range(5):
        await asyncio.sleep(0)
    assert log == ["start frame 1"]
    release.set()
    events.put_nowait("stop")
    with pytest.raises(StopConsumer):
        await asyncio.wait_for(runner, 5)
    assert log == [
        "start frame 1",
        "end frame 1",
        "start event 1",
        "end event 1",
        "start frame 2",
        "end frame 2",
        "start stop",
        "end stop",
    ]


async def test_a_source_that_fails_ends_the_loop_with_its_error_and_stops_the_others():
    never = asyncio.Event()
    waiting = []

    async def quiet():
        waiting.append(True)
        await never.wait()

    async def broken():
        raise ConnectionError("the channel layer is down")

    async def dispatch(message):
        raise AssertionError("nothing to dispatch")

    with pytest.raises(ConnectionError, match="down"):
        await asyncio.wait_for(dispatch_in_turn([quiet, broken], dispatch), 5)
    assert waiting == [True]  # it was waiting, and was cancelled (the loop returned)


def test_frames_are_compact_json_and_bad_json_is_a_value_error():
    assert frame_dumps({"type": "ack", "text": "olá"}) == '{"type":"ack","text":"olá"}'
    assert frame_loads('{"type": "message"}') == {"type": "message"}
    with pytest.raises(ValueError):
        frame_loads("{not json")


def test_a_flat_frame_is_not_walked_for_its_depth_and_a_nested_one_is(monkeypatch):
    walked = []
    walk = inputs._walk_depth

    def counted(value, **kwargs):
        walked.append(value)
        return walk(value, **kwargs)

    monkeypatch.setattr(inputs, "_walk_depth", counted)
    flat = '{"type": "message", "client_id": "c-1", "text": "hi", "n": 1, "on": true}'
    assert frame_loads(flat)["text"] == "hi"
    assert walked == []
    assert frame_loads('{"type": "start", "fields": {"name": "Ann"}}')["fields"] == {"name": "Ann"}
    assert len(walked) == 1
    deep = "[" * (inputs.MAX_DEPTH + 1) + "]" * (inputs.MAX_DEPTH + 1)
    for refused in (f'{{"a": {deep}}}', deep, '{"a": NaN}', '{"a": "\\ud800"}', "{"):
        with pytest.raises(ValueError):
            frame_loads(refused)


# Channels closes old database connections around each frame (a thread of this run may hold one).
@pytest.mark.django_db
async def test_a_client_gone_mid_send_ends_the_socket_quietly_and_releases_it(caplog):
    """A send to a client that has gone raises an OSError (the ASGI spec; uvicorn's
    ``ClientDisconnected``): the socket ends, its ``disconnect`` runs, and nothing is logged
    as an error (a server's log of tracebacks is for faults, not for visitors leaving)."""
    released = []

    class Echo(JsonSocket):
        channel_layer_alias = "none-here"  # no layer: frames only

        async def connect(self):
            await self.accept()

        async def receive_json(self, content, **kwargs):
            await self.send_json({"echo": content})

        async def disconnect(self, code):
            released.append(code)

    frames = iter(
        [
            {"type": "websocket.connect"},
            {"type": "websocket.receive", "text": '{"hello": 1}'},
        ]
    )

    async def receive():
        try:
            return next(frames)
        except StopIteration:
            await asyncio.Event().wait()  # the client says nothing more

    async def send(message):
        if message["type"] == "websocket.send":
            raise OSError("the client disconnected")

    with caplog.at_level(logging.ERROR):
        await asyncio.wait_for(Echo()({"type": "websocket"}, receive, send), timeout=5)
    assert released == [1006]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# --- What the layer relies on ------------------------------------------------------------------


class Greeter(JsonSocket):
    """Says hello with the route's name, echoes frames, passes ``note.added`` events on, and
    joins the group ``?group=`` names."""

    async def connect(self):
        if self.scope["url_route"]["kwargs"]["name"] == "nobody":
            await self.close()  # before accept: the handshake is refused
            return
        await self.accept()
        await self.channel_layer.group_add("greeters", self.channel_name)
        await self.send_json({"hello": self.scope["url_route"]["kwargs"]["name"]})

    async def receive_json(self, content):
        await self.send_json({"echo": content})

    async def note_added(self, event):
        await self.send_json({"note": event["text"]})

    async def disconnect(self, code):
        await self.channel_layer.group_discard("greeters", self.channel_name)


def greeter(name: str):
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator
    from django.urls import path

    router = URLRouter([path("ws/greet/<str:name>/", Greeter.as_asgi())])
    return WebsocketCommunicator(router, f"/ws/greet/{name}/")


async def test_a_socket_on_channels_routing_and_layer_greets_echoes_and_hears_its_group():
    """Channels' URLRouter gives a plain ASGI app its route (``url_route``); the layer's
    documented API (new_channel, receive, group_add, group_send, group_discard) carries an
    event to a socket's method named after its type."""
    from channels.layers import get_channel_layer

    communicator = greeter("ana")
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    assert await communicator.receive_json_from(timeout=5) == {"hello": "ana"}
    await communicator.send_json_to({"n": 1})
    assert await communicator.receive_json_from(timeout=5) == {"echo": {"n": 1}}
    await get_channel_layer().group_send("greeters", {"type": "note.added", "text": "hi"})
    assert await communicator.receive_json_from(timeout=5) == {"note": "hi"}
    await communicator.disconnect()


async def test_a_close_before_accept_refuses_the_handshake():
    communicator = greeter("nobody")
    connected, _ = await communicator.connect(timeout=5)
    assert not connected


def test_an_event_type_never_names_a_private_method():
    assert handler_name({"type": "message.created"}) == "message_created"
    for bad in ("_release", ".release", "", None, 5):
        with pytest.raises(ValueError):
            handler_name({"type": bad})


def test_no_channel_layer_of_an_unknown_alias():
    from channels.layers import get_channel_layer

    assert get_channel_layer("none-here") is None


def test_uvicorns_send_to_a_gone_client_raises_an_os_error():
    """``send_json`` ends a socket quietly on OSError: uvicorn's ``ClientDisconnected`` (what
    its WebSocket protocols raise on a send to a closed connection, ASGI spec 2.4) must be
    one."""
    from uvicorn.protocols.utils import ClientDisconnected

    assert issubclass(ClientDisconnected, OSError)


async def test_asgirefs_sync_to_async_runs_in_the_executor_it_is_given():
    """The sockets' opening reads and lane batches run in pools of their own on PostgreSQL
    (webchat.consumers), through ``sync_to_async``'s public ``executor``."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import sync_to_async

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="own-pool") as pool:
        name = await sync_to_async(
            lambda: threading.current_thread().name, thread_sensitive=False, executor=pool
        )()
    assert name.startswith("own-pool")


async def test_a_sockets_channel_keeps_only_its_newest_events():
    """A socket that cannot keep up (a stalled network) holds at most ``capacity`` events:
    chattonic.core.layers bounds each channel's queue through channels-redis's
    ``_subscribe_to_channel`` (not a public API). If an upgrade stops calling it, the oldest
    events are no longer dropped and this fails."""
    from channels.layers import get_channel_layer

    from chattonic.core.layers import DEFAULT_CAPACITY

    layer = get_channel_layer()
    channel = await layer.new_channel()
    queue = layer.loop_layer().channels[channel]
    for n in range(DEFAULT_CAPACITY + 3):
        await layer.send(channel, {"type": "test.event", "n": n})
    async with asyncio.timeout(10):
        while queue.dropped < 3:  # the publishes come back through Redis
            await asyncio.sleep(0.01)
    assert (await layer.receive(channel))["n"] == 3
    assert queue.qsize() == DEFAULT_CAPACITY - 1


async def test_an_idle_socket_holds_one_task_beside_its_own():
    """What 8,000 idle visitors cost is mostly what each socket holds while it waits: its own
    task (the server's) reads its frames, and one more waits for the channel layer."""
    warm = greeter("warm")  # the layer's connection and its reader, shared by every socket
    await warm.connect(timeout=5)
    await warm.receive_json_from(timeout=5)
    before = len(asyncio.all_tasks())
    idle = greeter("idle")
    await idle.connect(timeout=5)
    await idle.receive_json_from(timeout=5)
    assert len(asyncio.all_tasks()) - before == 2  # the socket's own (the communicator's) + 1
    for communicator in (warm, idle):
        await communicator.disconnect()
