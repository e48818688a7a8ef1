"""Both sockets against frames of the wrong shape and against a bug in a frame's handling
(issue 15, finding 5): an error frame naming the field, the socket still serving, and the
address's connection slots back whatever ended a socket, through the real routing
(``chattonic.asgi.application``) and the run's channel layer and Redis."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client

from agents.models import AgentProfile
from chattonic.asgi import application
from chattonic.core import ratelimit
from conversations.models import Conversation, Message
from leads.models import Lead
from tests.factories import MembershipFactory, launched_bot
from tests.sockets import TIMEOUT, of_type, until
from webchat.consumers import WebchatConsumer

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = "https://shop.example.com"
IP = "203.0.113.50"


@pytest.fixture(autouse=True)
async def _close_the_sockets_connection():
    yield
    await database_sync_to_async(connections.close_all)()


@pytest.fixture
def bot():
    return launched_bot(allowed_origins=[ORIGIN])


def widget(bot, ip: str = IP) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(
        application, f"/ws/webchat/{bot.public_key}/", headers=[(b"origin", ORIGIN.encode())]
    )
    communicator.scope["client"] = (ip, 50000)
    return communicator


async def opened(communicator) -> dict:
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "session", frame
    return frame


async def answer(communicator, frame) -> dict:
    """The error (or ack) the frame gets, past broadcasts (the console's presence...)."""
    await communicator.send_json_to(frame)
    reply, _ = await until(communicator, lambda f: f["type"] in ("error", "ack"))
    return reply


@database_sync_to_async
def stored() -> tuple[int, int, int]:
    return Message.objects.count(), Conversation.objects.count(), Lead.objects.count()


# --- Wrongly typed fields -----------------------------------------------------------------


WIDGET_FRAMES = [
    ({"type": {}}, "type"),
    ({"type": []}, "type"),
    ({"type": 7}, "type"),
    ({"type": "message", "client_id": {}, "text": "hi"}, "client_id"),
    ({"type": "message", "client_id": "c1", "text": {"a": 1}}, "text"),
    ({"type": "message", "client_id": "c1", "text": ["hi"]}, "text"),
    ({"type": "quick_reply", "client_id": "c1", "title": "Yes", "payload": 5}, "payload"),
    ({"type": "typing", "on": {}}, "on"),
    ({"type": "read", "id": 1e300}, "id"),
    ({"type": "read", "id": 2**64}, "id"),
    ({"type": "read", "id": -3}, "id"),
    ({"type": "history", "before": [1]}, "before"),
    ({"type": "rating", "score": 5.5}, "score"),
    ({"type": "rating", "score": True}, "score"),
    ({"type": "start", "fields": {"email": {"x": 1}}}, "fields.email"),
    ({"type": "start", "fields": 12}, "fields"),
    ({"type": "contact", "fields": {"name": ["a"]}}, "fields.name"),
]


async def test_the_widget_answers_wrongly_typed_fields_naming_them_and_keeps_serving(bot):
    communicator = widget(bot)
    await opened(communicator)
    for frame, field in WIDGET_FRAMES:
        error = await answer(communicator, frame)
        assert error["type"] == "error", (frame, error)
        assert error["code"] in ("invalid", "unknown_type"), (frame, error)
        assert field in error["fields"], (frame, error)
    assert await stored() == (0, 0, 0)

    # Still the same socket, serving: a message is stored and acknowledged.
    await communicator.send_json_to({"type": "message", "client_id": "ok", "text": "hello"})
    ack, _ = await until(communicator, of_type("ack", client_id="ok"))
    assert ack["message"]["text"] == "hello"
    await communicator.disconnect()


async def test_a_nul_in_a_visitors_text_is_dropped_not_a_crash(bot):
    communicator = widget(bot)
    await opened(communicator)
    await communicator.send_json_to({"type": "message", "client_id": "n", "text": "a\x00b"})
    ack, _ = await until(communicator, of_type("ack", client_id="n"))
    assert ack["message"]["text"] == "ab"
    await communicator.disconnect()


# --- A bug while handling a frame ----------------------------------------------------------


async def test_a_frame_that_fails_unexpectedly_is_answered_and_the_socket_lives_on(
    bot, monkeypatch
):
    async def broken(self, frame):
        raise RuntimeError("a bug")

    monkeypatch.setattr(WebchatConsumer, "frame_history", broken)
    communicator = widget(bot)
    await opened(communicator)
    error = await answer(communicator, {"type": "history"})
    assert (error["type"], error["code"]) == ("error", "server_error")
    await communicator.send_json_to({"type": "message", "client_id": "after", "text": "hi"})
    await until(communicator, of_type("ack", client_id="after"))
    await communicator.disconnect()


async def test_sixty_bad_sockets_from_one_address_leave_it_able_to_connect(bot, settings):
    settings.WEBCHAT_MAX_CONNECTIONS_PER_IP = 50
    for n in range(60):
        communicator = widget(bot)
        await opened(communicator)
        error = await answer(communicator, {"type": {}})
        assert error["code"] == "unknown_type", (n, error)
        await communicator.disconnect()
    last = widget(bot)
    await opened(last)
    await last.disconnect()


async def test_a_socket_that_dies_in_connect_gives_its_slot_back(bot, settings, monkeypatch):
    settings.WEBCHAT_MAX_CONNECTIONS_PER_IP = 3

    def broken(self):
        raise RuntimeError("a bug after the slot was taken")

    monkeypatch.setattr(WebchatConsumer, "_bot_info", broken)  # read for the session frame
    for _ in range(5):
        communicator = widget(bot)
        await communicator.connect(timeout=TIMEOUT)
        with pytest.raises(RuntimeError):
            await communicator.wait(timeout=TIMEOUT)  # the consumer died
    monkeypatch.undo()
    survivor = widget(bot)
    await opened(survivor)
    await survivor.disconnect()


async def test_a_refused_connection_does_not_extend_the_lock_out(bot, settings):
    settings.WEBCHAT_MAX_CONNECTIONS_PER_IP = 1
    first = widget(bot)
    await opened(first)
    key = ratelimit._key(f"webchat.ip.{IP}")
    # docs/security.md, webchat.md: the slots expire an hour after a slot was taken.
    assert 3500 < await ratelimit.client().ttl(key) <= 3600
    await ratelimit.client().expire(key, 30)  # as if the slot had been taken a while ago

    for _ in range(3):
        refused = widget(bot)
        await refused.connect(timeout=TIMEOUT)
        frame = await refused.receive_json_from(timeout=TIMEOUT)
        assert frame["code"] == "too_many_connections"
        await refused.disconnect()
    assert 0 < await ratelimit.client().ttl(key) <= 30
    assert int(await ratelimit.client().get(key)) == 1
    await first.disconnect()
    assert int(await ratelimit.client().get(key)) == 0


# --- The agent console ---------------------------------------------------------------------


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def console(user) -> WebsocketCommunicator:
    cookie = await database_sync_to_async(session_cookie)(user)
    communicator = WebsocketCommunicator(
        application,
        "/ws/agent/",
        headers=[(b"origin", b"http://localhost"), (b"cookie", cookie.encode())],
    )
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "hello"
    return communicator


CONSOLE_FRAMES = [
    ({"type": {}}, "type"),
    ({"type": ["reply"]}, "type"),
    ({"type": "open", "conversation": "²"}, "conversation"),
    ({"type": "open", "conversation": "٣"}, "conversation"),
    ({"type": "open", "conversation": 10**30}, "conversation"),
    ({"type": "open", "conversation": {"id": 1}}, "conversation"),
    ({"type": "presence", "presence": {"x": 1}}, "presence"),
    ({"type": "reply", "conversation": 1, "text": {"a": 1}}, "text"),
    ({"type": "note", "conversation": 1, "text": [1, 2]}, "text"),
    ({"type": "transfer", "conversation": 1, "agent": "²"}, "agent"),
    ({"type": "typing", "conversation": 1, "on": "yes"}, "on"),
    ({"type": "hand_back", "conversation": 1, "node": {"id": "x"}}, "node"),
]


async def test_the_console_answers_wrongly_typed_fields_naming_them_and_keeps_serving(
    bot, tenant_agent
):
    communicator = await console(tenant_agent)
    for frame, field in CONSOLE_FRAMES:
        error = await answer(communicator, frame)
        assert error["type"] == "error", (frame, error)
        assert error["code"] != "server_error", (frame, error)
        assert field in error.get("fields", {}), (frame, error)
    assert await stored() == (0, 0, 0)
    await communicator.send_json_to({"type": "heartbeat"})
    await until(communicator, of_type("heartbeat"))
    await communicator.disconnect()


async def test_a_console_that_dies_in_a_frame_still_runs_its_disconnect(
    bot, tenant_agent, monkeypatch
):
    from agents.consumers import AgentConsumer

    async def broken(self, event):
        raise RuntimeError("a bug in a group event")

    monkeypatch.setattr(AgentConsumer, "presence_changed", broken)
    communicator = await console(tenant_agent)
    await communicator.send_json_to({"type": "presence", "presence": "online"})
    ack, _ = await until(communicator, of_type("ack"))
    assert ack["presence"] == "online"
    # The failed group event was logged and dropped: the socket still answers.
    await communicator.send_json_to({"type": "heartbeat"})
    await until(communicator, of_type("heartbeat"))
    await communicator.disconnect()
    profile = await database_sync_to_async(AgentProfile.objects.get)(user=tenant_agent)
    assert profile.presence == "offline"


@pytest.fixture
def tenant_agent(bot):
    return MembershipFactory(tenant=bot.tenant, role="agent").user
