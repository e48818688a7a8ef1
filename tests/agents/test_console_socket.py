"""The agent console's socket, ``/ws/agent/``, through the real ASGI application.

Every test drives ``chattonic.asgi.application`` (origin check, session auth, routing, the
consumer) with ``WebsocketCommunicator`` and the Redis channel layer of the run (embedded or
REDIS_URL). The agent signs in with the test client and the socket carries its session
cookie; the visitor uses the real web chat socket. The consumers' database work runs in
threads, hence transactional test databases.
"""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from agents import services
from agents.models import AgentProfile, Note
from chattonic.asgi import application
from conversations.models import Conversation, Message
from tests.factories import (
    CannedResponseFactory,
    ConversationFactory,
    MembershipFactory,
    TeamFactory,
    TenantFactory,
    UserFactory,
    launched_bot,
)
from tests.sockets import TIMEOUT, of_type, says, until

pytestmark = pytest.mark.django_db(transaction=True)

SITE = "https://shop.example.com"  # the tenant's site, where the widget runs
CONSOLE = "http://localhost"  # our own host, where the console runs
ALWAYS_OPEN = {
    day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}
PRICES = "Plans start at $10."


@pytest.fixture
def tenant():
    return TenantFactory()


@pytest.fixture
def bot(tenant):
    return launched_bot(tenant=tenant, allowed_origins=[SITE], business_hours=ALWAYS_OPEN)


def agent_of(tenant, role="agent"):
    return MembershipFactory(tenant=tenant, role=role).user


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def console_socket(cookie: str = "", origin: str | None = CONSOLE) -> WebsocketCommunicator:
    headers = []
    if origin:
        headers.append((b"origin", origin.encode()))
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, "/ws/agent/", headers=headers)


async def console(user) -> tuple[WebsocketCommunicator, dict]:
    """A signed-in console; returns it and its ``hello`` frame."""
    communicator = console_socket(await database_sync_to_async(session_cookie)(user))
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    hello = await communicator.receive_json_from(timeout=TIMEOUT)
    assert hello["type"] == "hello", hello
    return communicator, hello


async def visitor(bot) -> WebsocketCommunicator:
    """A web chat visitor with a started conversation (its history has been read)."""
    communicator = WebsocketCommunicator(
        application, f"/ws/webchat/{bot.public_key}/", headers=[(b"origin", SITE.encode())]
    )
    communicator.scope["client"] = ("203.0.113.9", 50000)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "session"
    await communicator.send_json_to({"type": "start"})
    await until(communicator, of_type("history"))
    return communicator


def changed(conversation_id: int, status: str):
    return lambda f: (
        f["type"] == "conversation.changed"
        and f["conversation"]["id"] == conversation_id
        and f["conversation"]["status"] == status
    )


async def act(communicator, frame: dict) -> dict:
    """Send an action with a ref; return its ack (failing on its error frame)."""
    ref = f"r{id(frame)}"
    await communicator.send_json_to({**frame, "ref": ref})
    reply, _ = await until(communicator, lambda f: f.get("ref") == ref)
    assert reply["type"] == "ack", reply
    return reply


async def refused(communicator, frame) -> dict:
    """Send a frame (a dict, or raw text); return the error frame it earns, past any
    broadcast frames."""
    if isinstance(frame, dict):
        await communicator.send_json_to(frame)
    else:
        await communicator.send_to(text_data=frame)
    reply, _ = await until(communicator, lambda f: f["type"] in ("error", "ack"))
    assert reply["type"] == "error", reply
    return reply


@database_sync_to_async
def fetch(model, **filters):
    return model.objects.get(**filters)


@database_sync_to_async
def queued_conversation(bot, **kwargs) -> Conversation:
    conversation = ConversationFactory(
        tenant=bot.tenant, bot=bot, bot_version=bot.published_version, **kwargs
    )
    services.conversation_hand_off(conversation=conversation, reason="flow")
    return conversation


# --- Who may open the console ------------------------------------------------------------------


async def test_an_anonymous_socket_is_refused():
    connected, _ = await console_socket().connect(timeout=TIMEOUT)
    assert not connected


async def test_a_signed_in_user_of_no_tenant_is_refused():
    user = await database_sync_to_async(UserFactory)()
    communicator = console_socket(await database_sync_to_async(session_cookie)(user))
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert not connected
    assert not await database_sync_to_async(AgentProfile.objects.exists)()


async def test_a_foreign_origin_is_refused_even_with_a_session(tenant):
    user = await database_sync_to_async(agent_of)(tenant)
    cookie = await database_sync_to_async(session_cookie)(user)
    connected, _ = await console_socket(cookie, origin="https://evil.example.net").connect(
        timeout=TIMEOUT
    )
    assert not connected


# --- The visitor and the agent, live ---------------------------------------------------------


async def test_the_queue_arrives_live_and_the_agent_serves_the_visitor(bot, tenant):
    ana = await database_sync_to_async(agent_of)(tenant)
    ana.first_name, ana.last_name = "Ana", "Lima"
    await database_sync_to_async(ana.save)()
    await database_sync_to_async(CannedResponseFactory)(
        tenant=tenant, shortcut="hours", text="We open at nine."
    )
    agent, hello = await console(ana)
    assert hello["me"]["presence"] == "online" and hello["views"]["unassigned"] == []
    assert {"shortcut": "hours", "text": "We open at nine."} in hello["canned"]
    chat = await visitor(bot)

    # The visitor asks for a human: the console hears it without asking.
    await chat.send_json_to({"type": "message", "client_id": "c1", "text": "talk to a human"})
    frame, _ = await until(agent, lambda f: f["type"] == "conversation.changed")
    summary = frame["conversation"]
    assert frame["reason"] == "visitor_request"
    assert summary["status"] == "queued" and summary["agent"] is None
    cid = summary["id"]

    # The full history, bot messages included.
    await agent.send_json_to({"type": "open", "conversation": cid})
    detail, _ = await until(agent, of_type("conversation"))
    senders = [m["sender"] for m in detail["messages"]]
    assert "contact" in senders and "bot" in senders
    assert detail["contact"]["id"] == summary["contact"]["id"]
    # Opened is seen: the visitor's widget hears that their messages were read.
    asked = [m["id"] for m in detail["messages"] if m["sender"] == "contact"]
    read, _ = await until(chat, of_type("read"))
    assert read["ids"] == asked

    await act(agent, {"type": "claim", "conversation": cid})
    frame, _ = await until(agent, changed(cid, "assigned"))
    assert frame["reason"] == "claim" and frame["conversation"]["agent"]["id"] == ana.pk
    frame, _ = await until(chat, of_type("conversation", status="assigned"))

    # Typing, then messages both ways.
    await agent.send_json_to({"type": "typing", "conversation": cid, "on": True})
    # The visitor reads "Ana is typing…": her first name only, never more.
    typing, _ = await until(chat, of_type("typing", sender="agent", on=True))
    assert typing == {"type": "typing", "sender": "agent", "on": True, "name": "Ana"}
    await chat.send_json_to({"type": "message", "client_id": "c2", "text": "My order is late"})
    await until(agent, says("contact", "My order is late"))
    ack = await act(agent, {"type": "reply", "conversation": cid, "text": "Let me look."})
    reply, _ = await until(chat, says("agent", "Let me look."))
    assert reply["message"]["id"] == ack["id"]
    await act(agent, {"type": "reply", "conversation": cid, "text": "/hours"})
    await until(chat, says("agent", "We open at nine."))

    # A private note: the agents hear it, the visitor never does.
    ack = await act(agent, {"type": "note", "conversation": cid, "text": "Angry, VIP"})
    note, _ = await until(agent, of_type("note"))
    assert note["note"]["text"] == "Angry, VIP" and note["note"]["conversation"] == cid

    # Back to the bot at a chosen node; it speaks from there, and answers again.
    await act(agent, {"type": "hand_back", "conversation": cid, "node": "prices"})
    frame, _ = await until(agent, changed(cid, "bot"))
    assert frame["reason"] == "handback"
    _, before_handback = await until(chat, says("bot", PRICES))
    await chat.send_json_to({"type": "message", "client_id": "c3", "text": "how much is it"})
    _, after_handback = await until(chat, says("bot", PRICES))
    assert "Angry, VIP" not in json.dumps(before_handback + after_handback)
    assert {
        "type": "conversation",
        "id": cid,
        "status": "bot",
        "agent": None,
        "notice": None,
    } in before_handback

    stored = await fetch(Conversation, pk=cid)
    assert stored.status == Conversation.Status.BOT
    assert stored.first_agent_response_at is not None
    assert await database_sync_to_async(Note.objects.filter(conversation_id=cid).count)() == 1
    await chat.disconnect()
    await agent.disconnect()


@pytest.mark.parametrize("first_name", ["Ana", ""])
async def test_the_visitor_sees_the_agents_first_name_never_their_email(bot, tenant, first_name):
    ana = await database_sync_to_async(agent_of)(tenant)
    ana.first_name, ana.last_name = first_name, "Lima"
    await database_sync_to_async(ana.save)()
    agent, _ = await console(ana)
    chat = await visitor(bot)

    await chat.send_json_to({"type": "message", "client_id": "c1", "text": "talk to a human"})
    frame, _ = await until(agent, lambda f: f["type"] == "conversation.changed")
    cid = frame["conversation"]["id"]
    await act(agent, {"type": "claim", "conversation": cid})
    assigned, before = await until(chat, of_type("conversation", status="assigned"))
    await act(agent, {"type": "reply", "conversation": cid, "text": "Hello!"})
    reply, between = await until(chat, says("agent", "Hello!"))

    # The widget shows "Agent" (in the visitor's language) where there is no name.
    assert assigned["agent"] == (first_name or None)
    assert reply["message"]["agent"] == (first_name or None)
    heard = json.dumps([*before, assigned, *between, reply])
    assert ana.email not in heard and ana.username not in heard and "Lima" not in heard
    await chat.disconnect()
    await agent.disconnect()


async def test_transfer_to_an_agent_to_a_team_and_resolve(bot, tenant):
    ana, ben = [await database_sync_to_async(agent_of)(tenant) for _ in range(2)]
    billing = await database_sync_to_async(TeamFactory)(tenant=tenant, name="Billing")
    first, _ = await console(ana)
    second, _ = await console(ben)
    conversation = await queued_conversation(bot)
    cid = conversation.pk
    await until(second, changed(cid, "queued"))

    await act(first, {"type": "claim", "conversation": cid})
    await until(second, changed(cid, "assigned"))
    # Ben may not act on Ana's conversation.
    error = await refused(second, {"type": "resolve", "conversation": cid})
    assert error["code"] == "already_assigned" and error["action"] == "resolve"

    await act(first, {"type": "transfer", "conversation": cid, "agent": ben.pk})
    frame, _ = await until(second, changed(cid, "assigned"))
    assert frame["reason"] == "transfer" and frame["conversation"]["agent"]["id"] == ben.pk

    await act(second, {"type": "transfer", "conversation": cid, "team": billing.pk})
    frame, _ = await until(first, changed(cid, "queued"))
    assert frame["conversation"]["team"] == "Billing" and frame["conversation"]["agent"] is None

    await act(first, {"type": "take_over", "conversation": cid})
    await until(second, changed(cid, "assigned"))
    await act(first, {"type": "resolve", "conversation": cid})
    frame, _ = await until(second, changed(cid, "resolved"))
    assert frame["reason"] == "resolve"
    error = await refused(first, {"type": "claim", "conversation": cid})
    assert error["code"] == "resolved"

    reasons = await database_sync_to_async(
        lambda: list(conversation.handoff_events.values_list("reason", flat=True))
    )()
    assert reasons == ["flow", "claim", "transfer", "transfer", "agent_takeover", "resolve"]
    await first.disconnect()
    await second.disconnect()


# --- Bad input ---------------------------------------------------------------------------------


async def test_bad_frames_get_an_error_frame_naming_the_field_and_write_nothing(bot, tenant):
    ana = await database_sync_to_async(agent_of)(tenant)
    agent, _ = await console(ana)
    conversation = await queued_conversation(bot)
    cid = conversation.pk
    await act(agent, {"type": "claim", "conversation": cid})
    messages = await database_sync_to_async(Message.objects.count)()

    for frame, field in (
        ({"type": "launch"}, "type"),
        ({"type": "claim"}, "conversation"),
        ({"type": "open", "conversation": "abc"}, "conversation"),
        ({"type": "reply", "conversation": True, "text": "hi"}, "conversation"),
        ({"type": "reply", "conversation": cid, "text": "  "}, "text"),
        ({"type": "reply", "conversation": cid, "text": "x" * 5000}, "text"),
        ({"type": "note", "conversation": cid}, "text"),
        ({"type": "presence", "presence": "busy"}, "presence"),
        ({"type": "transfer", "conversation": cid}, "to"),
        ({"type": "transfer", "conversation": cid, "agent": "ana"}, "agent"),
        ({"type": "transfer", "conversation": cid, "team": [1]}, "team"),
        ({"type": "hand_back", "conversation": cid, "node": "nope"}, "node"),
        ({"type": "hand_back", "conversation": cid, "node": 7}, "node"),
    ):
        error = await refused(agent, frame)
        assert field in error.get("fields", {}), (frame, error)
        assert error["action"] == frame["type"]

    for raw, code in (("not json", "bad_json"), ("[1, 2]", "unknown_type")):
        assert (await refused(agent, raw))["code"] == code
    assert (await refused(agent, json.dumps({"type": "note", "text": "x" * 20000})))[
        "code"
    ] == "bad_frame"
    # docs/agents.md: a frame over 16 KiB is bad_frame; one of 16 KiB is read (and its text,
    # over 4096 characters, refused naming it).
    for size, code in ((16 * 1024, "invalid"), (16 * 1024 + 1, "bad_frame")):
        frame = json.dumps({"type": "note", "conversation": cid, "text": ""})
        frame = frame.replace('"text": ""', '"text": "' + "x" * (size - len(frame)) + '"')
        assert len(frame.encode()) == size
        assert (await refused(agent, frame))["code"] == code
    for frame in (
        {"type": "open", "conversation": 10**9},
        {"type": "transfer", "conversation": cid, "agent": 10**9},
        {"type": "transfer", "conversation": cid, "team": 10**9},
    ):
        assert (await refused(agent, frame))["code"] == "not_found"

    # The socket is still open and nothing was written.
    await agent.send_json_to({"type": "heartbeat"})
    await until(agent, of_type("heartbeat"))
    assert await database_sync_to_async(Message.objects.count)() == messages
    assert not await database_sync_to_async(Note.objects.exists)()
    stored = await fetch(Conversation, pk=cid)
    assert stored.status == "assigned" and stored.assigned_agent_id == ana.pk
    assert (await fetch(AgentProfile, user=ana)).presence == "online"
    await agent.disconnect()


# --- Tenant scoping ----------------------------------------------------------------------------


async def test_an_agent_of_another_tenant_hears_nothing_and_touches_nothing(bot, tenant):
    other = await database_sync_to_async(TenantFactory)()
    their_bot = await database_sync_to_async(launched_bot)(
        tenant=other, allowed_origins=[SITE], business_hours=ALWAYS_OPEN
    )
    ana = await database_sync_to_async(agent_of)(tenant)
    zoe = await database_sync_to_async(agent_of)(other)
    ours, _ = await console(ana)
    theirs, hello = await console(zoe)
    await until(ours, of_type("presence"))  # ana's own

    # Tenant A's queue, claim, note, reply, presence.
    conversation = await queued_conversation(bot)
    cid = conversation.pk
    await act(ours, {"type": "claim", "conversation": cid})
    await ours.send_json_to({"type": "open", "conversation": cid})
    await until(ours, of_type("conversation"))
    await act(ours, {"type": "note", "conversation": cid, "text": "secret of A"})
    await act(ours, {"type": "reply", "conversation": cid, "text": "reply of A"})
    await act(ours, {"type": "presence", "presence": "away"})

    # Tenant B refuses to touch A's conversation, as if it did not exist.
    for action in ("open", "claim", "take_over", "resolve", "hand_back"):
        error = await refused(theirs, {"type": action, "conversation": cid})
        assert error["code"] == "not_found", error
    error = await refused(theirs, {"type": "note", "conversation": cid, "text": "hi"})
    assert error["code"] == "not_found"

    # A marker of B's own: everything B heard before it was B's.
    mine = await queued_conversation(their_bot)
    _, heard = await until(theirs, changed(mine.pk, "queued"))
    text = json.dumps(heard)
    assert "secret of A" not in text and "reply of A" not in text
    assert all(f.get("conversation", {}).get("id") != cid for f in heard if "conversation" in f)
    assert all(f["agent"]["id"] != ana.pk for f in heard if f["type"] == "presence")
    assert not [f for f in heard if f["type"] in ("note", "message", "activity")]
    assert cid not in [c["id"] for view in hello["views"].values() for c in view]
    await ours.disconnect()
    await theirs.disconnect()


# --- Presence --------------------------------------------------------------------------------


async def test_presence_follows_the_consoles(tenant):
    ana, ben = [await database_sync_to_async(agent_of)(tenant) for _ in range(2)]
    watcher, _ = await console(ana)
    ben_console, hello = await console(ben)
    assert hello["me"]["presence"] == "online"
    frame, _ = await until(
        watcher, lambda f: f["type"] == "presence" and f["agent"]["id"] == ben.pk
    )
    assert frame["agent"]["presence"] == "online"

    ack = await act(ben_console, {"type": "presence", "presence": "away"})
    assert ack["presence"] == "away"
    frame, _ = await until(
        watcher, lambda f: f["type"] == "presence" and f["agent"]["id"] == ben.pk
    )
    assert frame["agent"]["presence"] == "away"
    await act(ben_console, {"type": "presence", "presence": "online"})
    await until(watcher, lambda f: f["type"] == "presence" and f["agent"]["id"] == ben.pk)

    # A second console of Ben's: closing one keeps him online, closing both takes him offline.
    ben_again, _ = await console(ben)
    await ben_console.disconnect()
    profile = await fetch(AgentProfile, user=ben)
    assert profile.presence == "online" and profile.connections == 1
    await ben_again.disconnect()
    frame, _ = await until(
        watcher,
        lambda f: (
            f["type"] == "presence"
            and f["agent"]["id"] == ben.pk
            and f["agent"]["presence"] == "offline"
        ),
    )
    profile = await fetch(AgentProfile, user=ben)
    assert profile.presence == "offline" and profile.connections == 0

    # The heartbeat keeps presence fresh.
    before = (await fetch(AgentProfile, user=ana)).last_seen_at
    await watcher.send_json_to({"type": "heartbeat"})
    await until(watcher, of_type("heartbeat"))
    assert (await fetch(AgentProfile, user=ana)).last_seen_at >= before
    await watcher.disconnect()


# --- The console's lists, the agent's name, shortcuts, the visitor's notices --------------------


async def test_hello_lists_the_views_with_previews_and_unread_and_seen_resets_it(bot, tenant):
    ana = await database_sync_to_async(agent_of)(tenant)
    chat = await visitor(bot)
    await chat.send_json_to({"type": "message", "client_id": "c1", "text": "talk to a human"})
    frame, _ = await until(chat, of_type("conversation", status="queued"))
    cid = frame["id"]
    await chat.send_json_to({"type": "message", "client_id": "c2", "text": "It is order 42"})
    await until(chat, of_type("ack", client_id="c2"))
    stored = await fetch(Conversation, pk=cid)

    agent, hello = await console(ana)
    assert hello["views"]["mine"] == []
    [item] = hello["views"]["unassigned"]
    assert hello["views"]["all"] == [item]
    assert item["id"] == cid and item["channel_label"] == "Web chat"
    assert item["last_message"]["text"] == "It is order 42"
    assert item["last_message"]["sender"] == "contact"
    assert item["waiting_since"] == stored.queued_at.isoformat()
    assert item["unread"] == 2
    # Every agent hears the change; the list item's unread count is each agent's own.
    assert hello["me"] == {
        "id": ana.pk,
        "name": ana.get_full_name() or ana.username,
        "first_name": ana.first_name,
        "last_name": ana.last_name,
        "presence": "online",
        "admin": False,  # an agent acts on their own conversations only
    }

    # Opening it is seeing it; a message after that is unread until the console says so.
    await agent.send_json_to({"type": "open", "conversation": cid})
    await until(agent, of_type("conversation"))
    await agent.disconnect()
    agent, hello = await console(ana)
    assert hello["views"]["unassigned"][0]["unread"] == 0
    await chat.send_json_to({"type": "message", "client_id": "c3", "text": "Hello?"})
    activity, _ = await until(agent, of_type("activity"))
    assert activity["conversation"]["id"] == cid
    assert activity["conversation"]["message"]["text"] == "Hello?"
    await agent.disconnect()
    agent, hello = await console(ana)
    assert hello["views"]["unassigned"][0]["unread"] == 1
    ack = await act(agent, {"type": "seen", "conversation": cid})
    assert ack["id"] == activity["conversation"]["message"]["id"]
    await agent.disconnect()
    agent, hello = await console(ana)
    assert hello["views"]["unassigned"][0]["unread"] == 0

    # Claimed: it moves from Unassigned to Mine, and the summary every console hears says so.
    await act(agent, {"type": "claim", "conversation": cid})
    frame, _ = await until(agent, changed(cid, "assigned"))
    summary = frame["conversation"]
    assert summary["status_label"] == "With an agent" and "unread" not in summary
    assert summary["last_message"]["text"] == "Hello?"
    await agent.disconnect()
    agent, hello = await console(ana)
    assert [c["id"] for c in hello["views"]["mine"]] == [cid]
    assert hello["views"]["unassigned"] == []
    error = await refused(agent, {"type": "seen", "conversation": 10**9})
    assert error["code"] == "not_found"
    await chat.disconnect()
    await agent.disconnect()


async def test_an_agent_sets_the_name_visitors_see(bot, tenant):
    # An account made before names were asked for: no first name, an email for a username.
    ana = await database_sync_to_async(agent_of)(tenant)
    ana.first_name = ana.last_name = ""
    await database_sync_to_async(ana.save)()
    ben = await database_sync_to_async(agent_of)(tenant)
    agent, hello = await console(ana)
    assert hello["me"]["first_name"] == ""
    colleague, _ = await console(ben)

    # Refused, naming the field, and nothing changes.
    for frame, field in (
        ({"first_name": "   "}, "first_name"),
        ({"first_name": ana.email}, "first_name"),
        ({"first_name": "x" * 151}, "first_name"),
        ({"first_name": 7}, "first_name"),
        ({"first_name": "Ana", "last_name": "y" * 151}, "last_name"),
        ({"first_name": "Ana", "last_name": ["Lima"]}, "last_name"),
    ):
        error = await refused(agent, {"type": "profile", **frame})
        assert error["action"] == "profile" and field in error["fields"], (frame, error)
    stored = await fetch(type(ana), pk=ana.pk)
    assert (stored.first_name, stored.last_name) == ("", "")

    ack = await act(agent, {"type": "profile", "first_name": "  Ana  ", "last_name": "Lima"})
    assert ack["me"]["first_name"] == "Ana" and ack["me"]["name"] == "Ana Lima"
    frame, _ = await until(
        colleague, lambda f: f["type"] == "presence" and f["agent"]["name"] == "Ana Lima"
    )
    assert frame["agent"]["id"] == ana.pk
    stored = await fetch(type(ana), pk=ana.pk)
    assert (stored.first_name, stored.last_name) == ("Ana", "Lima")

    # The visitor sees the first name only.
    chat = await visitor(bot)
    await chat.send_json_to({"type": "message", "client_id": "c1", "text": "talk to a human"})
    queued, _ = await until(chat, of_type("conversation", status="queued"))
    await act(agent, {"type": "claim", "conversation": queued["id"]})
    joined, before = await until(chat, of_type("conversation", status="assigned"))
    assert joined["agent"] == "Ana" and joined["notice"] == "agent_joined"
    await act(agent, {"type": "reply", "conversation": queued["id"], "text": "Hi"})
    reply, between = await until(chat, says("agent", "Hi"))
    assert reply["message"]["agent"] == "Ana"
    heard = json.dumps([*before, joined, *between, reply])
    assert ana.email not in heard and "Lima" not in heard
    await chat.disconnect()
    await agent.disconnect()
    await colleague.disconnect()


async def test_an_unknown_shortcut_is_refused_and_never_reaches_the_visitor(bot, tenant):
    ana = await database_sync_to_async(agent_of)(tenant)
    await database_sync_to_async(CannedResponseFactory)(
        tenant=tenant, shortcut="hours", text="We open at nine."
    )
    agent, _ = await console(ana)
    chat = await visitor(bot)
    await chat.send_json_to({"type": "message", "client_id": "c1", "text": "talk to a human"})
    frame, _ = await until(agent, lambda f: f["type"] == "conversation.changed")
    cid = frame["conversation"]["id"]
    await act(agent, {"type": "claim", "conversation": cid})
    messages = await database_sync_to_async(Message.objects.count)()

    error = await refused(
        agent, {"type": "reply", "conversation": cid, "text": " /nope ", "ref": "r1"}
    )
    assert error == {
        "type": "error",
        "code": "unknown_shortcut",
        "message": "No canned response /nope; type / to see them.",
        "action": "reply",
        "ref": "r1",
        "fields": {"text": ["No canned response /nope; type / to see them."]},
    }
    assert await database_sync_to_async(Message.objects.count)() == messages

    # A known one goes out as its text; the visitor heard nothing of the refused one.
    await act(agent, {"type": "reply", "conversation": cid, "text": "/hours"})
    _, before = await until(chat, says("agent", "We open at nine."))
    assert "/nope" not in json.dumps(before)
    texts = await database_sync_to_async(
        lambda: list(Message.objects.filter(sender="agent").values_list("text", flat=True))
    )()
    assert texts == ["We open at nine."]
    await chat.disconnect()
    await agent.disconnect()


async def test_the_visitor_hears_who_joined_and_that_it_was_resolved(bot, tenant):
    ana, ben = [await database_sync_to_async(agent_of)(tenant) for _ in range(2)]
    for user, first, last in ((ana, "Ana", "Lima"), (ben, "Ben", "Ode")):
        user.first_name, user.last_name = first, last
        await database_sync_to_async(user.save)()
    billing = await database_sync_to_async(TeamFactory)(tenant=tenant, name="Billing")
    agent, _ = await console(ana)
    colleague, _ = await console(ben)
    chat = await visitor(bot)
    await chat.send_json_to({"type": "message", "client_id": "c1", "text": "talk to a human"})
    queued, _ = await until(chat, of_type("conversation"))
    cid = queued["id"]
    assert queued == {
        "type": "conversation",
        "id": cid,
        "status": "queued",
        "agent": None,
        "notice": None,
    }

    def notice(status, agent_name, kind):
        return {
            "type": "conversation",
            "id": cid,
            "status": status,
            "agent": agent_name,
            "notice": kind,
        }

    heard = []
    for by, frame, expected in (
        (agent, {"type": "claim"}, notice("assigned", "Ana", "agent_joined")),
        (agent, {"type": "transfer", "agent": ben.pk}, notice("assigned", "Ben", "agent_joined")),
        # Passed on to a team's queue: said so (the visitor believed Ben still there), the
        # team's name kept to the staff.
        (
            colleague,
            {"type": "transfer", "team": billing.pk},
            notice("queued", None, "transferred"),
        ),
        (agent, {"type": "take_over"}, notice("assigned", "Ana", "agent_joined")),
        (agent, {"type": "resolve"}, notice("resolved", "Ana", "resolved")),
    ):
        await act(by, {**frame, "conversation": cid})
        got, before = await until(chat, of_type("conversation"))
        assert got == expected, frame
        heard += [*before, got]
    text = json.dumps(heard)
    for private in (ana.email, ben.email, "Lima", "Ode", "Billing"):
        assert private not in text

    # The widget stays usable: the visitor's next message starts a new conversation.
    await chat.send_json_to({"type": "message", "client_id": "c2", "text": "how much is it"})
    ack, _ = await until(chat, of_type("ack", client_id="c2"))
    assert ack["message"]["conversation"] != cid
    if PRICES not in [m["text"] for m in ack["replies"]]:
        await until(chat, says("bot", PRICES))
    await chat.disconnect()
    await agent.disconnect()
    await colleague.disconnect()


async def test_a_console_gone_while_it_is_answered_ends_quietly(bot, tenant, caplog):
    """The agent closes the tab while the server answers an action (the page's last open):
    the send fails as the ASGI spec says (an OSError), the socket ends, and nothing is
    logged as a failure ("open failed" with a traceback was, in a browser test's teardown)."""
    import asyncio
    import logging

    agent = await database_sync_to_async(agent_of)(tenant)
    conversation = await queued_conversation(bot)
    cookie = await database_sync_to_async(session_cookie)(agent)
    frames = asyncio.Queue()
    await frames.put({"type": "websocket.connect"})
    sent = []
    hello = asyncio.Event()

    async def receive():
        return await frames.get()

    async def send(message):
        if message["type"] != "websocket.send":
            return
        kind = json.loads(message["text"])["type"]
        if kind == "conversation":
            raise OSError("the client disconnected")  # uvicorn's ClientDisconnected
        sent.append(kind)
        if kind == "hello":
            hello.set()

    scope = {
        "type": "websocket",
        "path": "/ws/agent/",
        "raw_path": b"/ws/agent/",
        "query_string": b"",
        "headers": [(b"origin", CONSOLE.encode()), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "subprotocols": [],
        "scheme": "ws",
    }
    with caplog.at_level(logging.WARNING):
        running = asyncio.ensure_future(application(scope, receive, send))
        await asyncio.wait_for(hello.wait(), TIMEOUT)
        open_frame = {"type": "open", "conversation": conversation.pk, "ref": "r1"}
        await frames.put({"type": "websocket.receive", "text": json.dumps(open_frame)})
        await asyncio.wait_for(running, TIMEOUT)  # the socket ended
    assert "hello" in sent
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
