"""The sockets' dispatch loop (chattonic.core.sockets.dispatch_in_turn): one message at a time,
in the order they come, errors raised; and orjson frames."""

from __future__ import annotations

import asyncio
import logging

import pytest
from channels.exceptions import StopConsumer

from chattonic.core.sockets import JsonSocket, dispatch_in_turn, frame_dumps, frame_loads


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
