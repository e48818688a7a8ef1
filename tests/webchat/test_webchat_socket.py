"""The web chat socket through the real ASGI application and the real channel layer.

Every test drives ``chattonic.asgi.application`` (routing, auth middleware, consumer) with
``WebsocketCommunicator`` and the Redis channel layer of the run (embedded or REDIS_URL);
the consumer's database work runs in its own thread, hence transactional test databases.
"""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client

from bots.models import Bot
from bots.services import bot_pause
from chattonic.asgi import application
from conversations.models import Conversation, Message
from tests.factories import BotFactory, MembershipFactory, launched_bot
from tests.sockets import TIMEOUT, of_type, said, says, until
from webchat import services as webchat

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = "https://shop.example.com"


@pytest.fixture(autouse=True)
async def _close_the_sockets_connection():
    """The consumers keep their thread's database connection between frames: close it
    after each test, as a server's shutdown would."""
    yield
    await database_sync_to_async(connections.close_all)()


@pytest.fixture
def bot():
    return launched_bot(allowed_origins=[ORIGIN])


def socket(
    key: str,
    *,
    origin: str | None = ORIGIN,
    query: str = "",
    ip: str = "203.0.113.7",
    cookie: str = "",
) -> WebsocketCommunicator:
    headers = []
    if origin:
        headers.append((b"origin", origin.encode()))
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    path = f"/ws/webchat/{key}/" + (f"?{query}" if query else "")
    communicator = WebsocketCommunicator(application, path, headers=headers)
    communicator.scope["client"] = (ip, 50000)
    return communicator


async def opened(communicator: WebsocketCommunicator) -> dict:
    """Connect and return the ``session`` frame (after which a resumed chat sends history)."""
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "session", frame
    return frame


def bot_says(text: str):
    return says("bot", text)


async def heard(communicator, ack: dict, text: str) -> dict:
    """The bot's reply saying ``text`` to the message ``ack`` acknowledged: in the ack when
    the bot answered at once, else in a ``message`` frame after it."""
    for message in said(ack):
        if message["sender"] == "bot" and message["text"] == text:
            return message
    return (await bot_reply(communicator, text))[0]


async def bot_reply(communicator, text: str) -> tuple[dict, list]:
    """The bot's message saying ``text`` (in a ``message`` frame or an ack), and the frames
    read before the one that brought it."""
    frame, before = await until(communicator, bot_says(text))
    return next(m for m in said(frame) if m["sender"] == "bot" and m["text"] == text), before


PRICES = "Plans start at $10."


async def say(communicator, client_id: str, text: str = "how much is it") -> dict:
    """Send a message; return its ack (the bot's reply arrives on the same socket)."""
    await communicator.send_json_to({"type": "message", "client_id": client_id, "text": text})
    ack, _ = await until(communicator, of_type("ack", client_id=client_id))
    return ack


@database_sync_to_async
def count(model, **filters) -> int:
    return model.objects.filter(**filters).count()


@database_sync_to_async
def inbound_texts(conversation_id: int) -> list[str]:
    return list(
        Message.objects.filter(conversation_id=conversation_id, direction="in")
        .order_by("pk")
        .values_list("text", flat=True)
    )


# --- The handshake ----------------------------------------------------------------------------


async def refused(communicator: WebsocketCommunicator) -> tuple[dict, int]:
    """Connect a socket that is refused: its one error frame and its close code."""
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected  # accepted so that the widget can read why, and not retry
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    closed = await communicator.receive_output(timeout=TIMEOUT)
    assert closed["type"] == "websocket.close", closed
    assert await communicator.receive_nothing()
    return frame, closed["code"]


@pytest.mark.parametrize(
    ("origin", "named"),
    [
        ("https://evil.example.net", "https://evil.example.net"),
        ("http://shop.example.com/", "http://shop.example.com"),  # another scheme
        (None, None),
    ],
)
async def test_a_foreign_origin_is_told_so_and_reaches_no_chat(bot, origin, named, settings):
    # A visitor with an open conversation; their token then comes from a page the bot does
    # not allow (a copied snippet, or a site that would read other visitors' chats).
    visitor = socket(bot.public_key)
    token = (await opened(visitor))["token"]
    await heard(visitor, await say(visitor, "c1"), PRICES)
    await visitor.disconnect()
    before = (await count(Conversation), await count(Message))
    settings.WEBCHAT_MAX_CONNECTIONS_PER_IP = 1

    communicator = socket(bot.public_key, origin=origin, query=f"session={token}")
    frame, code = await refused(communicator)
    assert code == 4403
    assert (frame["type"], frame["code"], frame["origin"]) == ("error", "origin_not_allowed", named)
    if named:
        assert named in frame["message"] and "Allowed origins" in frame["message"]
    # Only the error: no session, no history, nothing written, no connection slot kept.
    assert (await count(Conversation), await count(Message)) == before
    allowed = socket(bot.public_key)
    await opened(allowed)
    await allowed.disconnect()


async def test_an_allowed_origin_gets_a_session_and_the_bots_look(bot):
    communicator = socket(bot.public_key)
    session = await opened(communicator)
    assert webchat.visitor_from_token(session["token"], bot.pk)
    assert session["conversation"] is None
    assert session["bot"]["title"] == bot.name
    assert session["bot"]["color"] == bot.theme_color
    assert session["bot"]["sandbox"] is False
    await communicator.disconnect()


async def test_the_first_visit_from_an_allowed_origin_marks_the_bot_embedded(bot, settings):
    """The dashboard's setup checklist ticks "on your site" from it: the platform's own
    pages (the demo page, the test chat) do not count, and later visits change nothing."""
    settings.ALLOWED_HOSTS = ["platform.example.org"]
    bot.allowed_origins = [ORIGIN, "https://other.example.com"]
    await database_sync_to_async(bot.save)()
    own = socket(bot.public_key, origin="https://platform.example.org")
    await opened(own)
    await own.disconnect()
    await database_sync_to_async(bot.refresh_from_db)()
    assert bot.embedded_at is None

    for origin in (ORIGIN + "/", "https://other.example.com"):
        visitor = socket(bot.public_key, origin=origin)
        await opened(visitor)
        await visitor.disconnect()
    await database_sync_to_async(bot.refresh_from_db)()
    assert bot.embedded_at is not None and bot.embedded_origin == ORIGIN


async def test_an_unknown_widget_key_is_told_so(bot):
    frame, code = await refused(socket("nope" + bot.public_key[4:]))
    assert (frame["code"], code) == ("unknown_bot", 4404)
    assert "data-bot" in frame["message"]


async def test_a_bot_of_another_region_answers_with_an_error_frame_naming_it():
    other = await database_sync_to_async(launched_bot)(
        allowed_origins=[ORIGIN], region="eu-frankfurt"
    )
    communicator = socket(other.public_key)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected  # accepted so that the widget can read why
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "error"
    assert frame["code"] == "wrong_region"
    assert frame["region"] == "eu-frankfurt"
    closed = await communicator.receive_output(timeout=TIMEOUT)
    assert closed == {"type": "websocket.close", "code": 4421}
    assert await count(Conversation) == 0


async def test_a_paused_bot_answers_with_an_error_frame(bot):
    await database_sync_to_async(bot_pause)(bot=bot)
    communicator = socket(bot.public_key)
    await communicator.connect(timeout=TIMEOUT)
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert (frame["type"], frame["code"]) == ("error", "bot_unavailable")
    assert await communicator.receive_output(timeout=TIMEOUT) == {
        "type": "websocket.close",
        "code": 4409,
    }


async def test_connections_per_ip_are_limited(bot, settings):
    settings.WEBCHAT_MAX_CONNECTIONS_PER_IP = 2
    first, second = socket(bot.public_key), socket(bot.public_key)
    await opened(first)
    await opened(second)

    third = socket(bot.public_key)
    await third.connect(timeout=TIMEOUT)
    frame = await third.receive_json_from(timeout=TIMEOUT)
    assert (frame["type"], frame["code"]) == ("error", "too_many_connections")
    assert await third.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": 4429}

    # Another address is not counted with this one; a closed socket frees its slot.
    elsewhere = socket(bot.public_key, ip="198.51.100.1")
    await opened(elsewhere)
    await first.disconnect()
    again = socket(bot.public_key)
    await opened(again)
    for communicator in (second, elsewhere, again):
        await communicator.disconnect()


# --- Frames in --------------------------------------------------------------------------------


async def test_bad_and_oversized_frames_get_error_frames_and_store_nothing(bot):
    communicator = socket(bot.public_key)
    await opened(communicator)

    async def error_for(send) -> dict:
        await send
        frame, _ = await until(communicator, of_type("error"))
        return frame

    assert (await error_for(communicator.send_to(text_data="{not json")))["code"] == "bad_json"
    assert (await error_for(communicator.send_to(bytes_data=b"\x00\x01")))["code"] == "bad_frame"
    assert (await error_for(communicator.send_json_to([1, 2])))["code"] == "bad_frame"
    assert (await error_for(communicator.send_json_to({"type": "shout"})))["code"] == "unknown_type"
    huge = {"type": "message", "client_id": "c-huge", "text": "x" * (webchat.MAX_FRAME_BYTES + 1)}
    assert (await error_for(communicator.send_json_to(huge)))["code"] == "frame_too_large"
    # Under the frame limit but over a message's length: refused before anything is opened.
    long = {"type": "message", "client_id": "c-long", "text": "x" * 4097}
    frame = await error_for(communicator.send_json_to(long))
    assert (frame["code"], frame.get("client_id")) == ("invalid", "c-long"), frame
    assert "text" in frame["message"]
    no_id = await error_for(communicator.send_json_to({"type": "message", "text": "hi"}))
    assert no_id["code"] == "invalid" and "client_id" in no_id["message"]
    blank = await error_for(communicator.send_json_to({"type": "message", "client_id": "c-blank"}))
    assert (blank["code"], blank["client_id"]) == ("invalid", "c-blank")
    no_payload = {"type": "quick_reply", "client_id": "c-qr", "title": "Prices"}
    assert (await error_for(communicator.send_json_to(no_payload)))["code"] == "invalid"
    bad_read = await error_for(communicator.send_json_to({"type": "read", "id": "7"}))
    assert bad_read["code"] == "invalid"

    assert await count(Message) == 0
    assert await count(Conversation) == 0

    # The socket is still open and serves a good frame.
    ack = await say(communicator, "c-good")
    assert ack["duplicate"] is False
    await heard(communicator, ack, PRICES)
    await communicator.disconnect()


async def test_a_4096_character_message_in_any_script_fits_a_frame(bot):
    """docs/webchat.md: frames of 20 KiB, "a 4,096-character message in any script fits";
    a ``client_id`` has 1 to 64 characters."""
    assert webchat.MAX_FRAME_BYTES == 20 * 1024
    communicator = socket(bot.public_key)
    await opened(communicator)
    for client_id, letter in (("c" * 64, "😀"), ("c-cjk", "字")):
        frame = {"type": "message", "client_id": client_id, "text": letter * 4096}
        await communicator.send_to(text_data=json.dumps(frame, ensure_ascii=False))
        ack, _ = await until(communicator, of_type("ack", client_id=client_id))
        assert ack["message"]["text"] == letter * 4096
    await communicator.send_json_to({"type": "message", "client_id": "c" * 65, "text": "hi"})
    error, _ = await until(communicator, of_type("error"))
    assert error["code"] == "invalid" and "client_id" in error["message"]
    assert await count(Message, direction="in") == 2
    await communicator.disconnect()


async def test_the_per_visitor_rate_limit_answers_with_an_error_and_keeps_the_socket(bot, settings):
    settings.WEBCHAT_MESSAGES_PER_10S = 3
    communicator = socket(bot.public_key)
    await opened(communicator)
    for n in range(3):
        await say(communicator, f"c{n}")
    await communicator.send_json_to({"type": "message", "client_id": "c3", "text": "again"})
    frame, _ = await until(communicator, of_type("error"))
    assert (frame["code"], frame["client_id"]) == ("rate_limited", "c3")

    # Still open: the history arrives, and the refused message was not stored.
    await communicator.send_json_to({"type": "history"})
    history, _ = await until(communicator, of_type("history"))
    conversation = history["conversation"]
    assert await inbound_texts(conversation) == ["how much is it"] * 3
    await communicator.disconnect()


async def test_other_frames_are_limited_too(bot, settings):
    settings.WEBCHAT_MESSAGES_PER_10S = 1  # other frames: 5 in 10 seconds
    communicator = socket(bot.public_key)
    await opened(communicator)
    for _ in range(5):
        await communicator.send_json_to({"type": "history"})
        await until(communicator, of_type("history"))
    await communicator.send_json_to({"type": "history"})
    frame, _ = await until(communicator, of_type("error"))
    assert frame["code"] == "rate_limited"
    # Messages have their own budget.
    await say(communicator, "m1")
    await communicator.disconnect()


async def test_the_limit_counts_every_socket_of_the_visitor(bot, settings):
    settings.WEBCHAT_MESSAGES_PER_10S = 2
    first = socket(bot.public_key)
    token = (await opened(first))["token"]
    second = socket(bot.public_key, query=f"session={token}")
    await opened(second)
    await say(first, "a1")
    await say(second, "b1")
    await second.send_json_to({"type": "message", "client_id": "b2", "text": "third"})
    frame, _ = await until(second, of_type("error"))
    assert frame["code"] == "rate_limited"
    await first.disconnect()
    await second.disconnect()


# --- Sessions, resends, tabs ------------------------------------------------------------------


async def test_the_session_token_resumes_the_same_conversation_with_its_history(bot):
    first = socket(bot.public_key)
    token = (await opened(first))["token"]
    ack = await say(first, "c1")
    await heard(first, ack, PRICES)
    await first.disconnect()

    again = socket(bot.public_key, query=f"session={token}")
    session = await opened(again)
    assert webchat.visitor_from_token(session["token"], bot.pk) == webchat.visitor_from_token(
        token, bot.pk
    )
    history = await again.receive_json_from(timeout=TIMEOUT)
    assert history["type"] == "history"
    assert session["conversation"] == history["conversation"]
    texts = [(m["sender"], m["text"]) for m in history["messages"]]
    assert texts == [
        ("bot", bot.welcome_text),
        ("bot", "What can I do for you?"),
        ("contact", "how much is it"),
        ("bot", PRICES),
    ]
    assert history["messages"][2]["id"] == ack["id"]
    assert history["messages"][2]["client_id"] == "c1"
    await again.disconnect()

    # A token of another bot, or a forged one, starts afresh.
    other = await database_sync_to_async(launched_bot)(allowed_origins=[ORIGIN])
    for bad in (token, token[:-2] + "xx"):
        key = other.public_key if bad == token else bot.public_key
        stranger = socket(key, query=f"session={bad}")
        assert (await opened(stranger))["conversation"] is None
        await stranger.disconnect()


async def test_history_pages_by_50_before_a_message(bot):
    """docs/webchat.md: ``history`` answers the 50 messages before ``before`` (or the newest
    50), oldest first."""
    communicator = socket(bot.public_key)
    await opened(communicator)
    ack = await say(communicator, "c1")
    await heard(communicator, ack, PRICES)

    @database_sync_to_async
    def fill() -> list[int]:
        from tests.factories import MessageFactory

        conversation = Message.objects.get(pk=ack["id"]).conversation
        for n in range(110):
            MessageFactory(tenant=conversation.tenant, conversation=conversation, text=f"h{n}")
        return list(
            Message.objects.filter(conversation=conversation)
            .order_by("id")
            .values_list("id", flat=True)
        )

    every = await fill()
    assert len(every) > 100
    await communicator.send_json_to({"type": "history"})
    newest, _ = await until(communicator, of_type("history"))
    assert [m["id"] for m in newest["messages"]] == every[-50:]
    await communicator.send_json_to({"type": "history", "before": every[-50]})
    older, _ = await until(communicator, of_type("history"))
    assert [m["id"] for m in older["messages"]] == every[-100:-50]
    await communicator.disconnect()


async def test_a_resend_with_the_same_client_id_is_stored_once(bot):
    first = socket(bot.public_key)
    token = (await opened(first))["token"]
    ack = await say(first, "same-id")
    resent = await say(first, "same-id")
    assert resent["id"] == ack["id"]
    assert (ack["duplicate"], resent["duplicate"]) == (False, True)
    await first.disconnect()

    # After a dropped connection, from a new socket of the same visitor.
    again = socket(bot.public_key, query=f"session={token}")
    await opened(again)
    third = await say(again, "same-id")
    assert (third["id"], third["duplicate"]) == (ack["id"], True)
    conversation = await database_sync_to_async(
        lambda: Message.objects.get(pk=ack["id"]).conversation_id
    )()
    assert await inbound_texts(conversation) == ["how much is it"]
    # The bot answered once.
    assert await count(Message, conversation_id=conversation, text=PRICES) == 1
    await again.disconnect()


async def test_every_socket_of_a_visitor_receives_the_bots_replies(bot):
    first = socket(bot.public_key)
    token = (await opened(first))["token"]
    second = socket(bot.public_key, query=f"session={token}")
    assert (await opened(second))["conversation"] is None

    # The first message opens the conversation: the other tab joins it and hears the reply
    # (live or in the history it is sent on joining).
    await heard(first, await say(first, "c1"), PRICES)

    def prices(frame):
        if frame["type"] == "history":
            return any(m["text"] == PRICES for m in frame["messages"])
        return bot_says(PRICES)(frame)

    await until(second, prices)

    # Now both watch it: a message from either tab reaches both (the sender has it in its
    # ack, not a second time), and so does the reply.
    await second.send_json_to({"type": "message", "client_id": "c2", "text": "prices"})
    ack, before = await until(second, of_type("ack"))
    assert ack["message"]["client_id"] == "c2" and ack["message"]["text"] == "prices"
    assert [m["text"] for m in ack["replies"]] == [PRICES]
    assert ack["replies"][0]["id"] > ack["id"] == ack["message"]["id"]
    assert not [f for f in before if f["type"] == "message"]
    mine, _ = await until(
        first, lambda f: f["type"] == "message" and f["message"]["client_id"] == "c2"
    )
    reply, _ = await bot_reply(first, PRICES)
    assert reply["id"] == ack["replies"][0]["id"] > mine["message"]["id"] == ack["id"]
    await first.disconnect()
    await second.disconnect()


async def test_a_read_frame_marks_the_replies_read(bot):
    first = socket(bot.public_key)
    await opened(first)
    reply = await heard(first, await say(first, "c1"), PRICES)
    await first.send_json_to({"type": "read", "id": reply["id"]})
    read, _ = await until(first, of_type("read"))
    assert reply["id"] in read["ids"]
    assert await count(Message, pk=reply["id"], status="read") == 1
    await first.disconnect()


async def test_a_quick_reply_follows_the_button(bot):
    communicator = socket(bot.public_key)
    await opened(communicator)
    await communicator.send_json_to({"type": "start"})
    history, _ = await until(communicator, of_type("history"))
    greeting = history["messages"][-1]
    assert [q["title"] for q in greeting["quick_replies"]] == ["Prices", "Email me"]
    await communicator.send_json_to(
        {
            "type": "quick_reply",
            "client_id": "q1",
            "title": "Email me",
            "payload": greeting["quick_replies"][1]["payload"],
        }
    )
    await until(communicator, bot_says("What's your email?"))
    await communicator.disconnect()


# --- The sandbox ------------------------------------------------------------------------------


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def test_the_sandbox_is_for_the_tenants_staff_only(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    draft = await database_sync_to_async(BotFactory)(allowed_origins=[ORIGIN])  # a draft
    assert draft.status == Bot.Status.DRAFT

    anonymous = socket(draft.public_key, query="sandbox=1")
    await anonymous.connect(timeout=TIMEOUT)
    frame = await anonymous.receive_json_from(timeout=TIMEOUT)
    assert (frame["type"], frame["code"]) == ("error", "forbidden")

    def cookie_of(**kwargs):
        return session_cookie(MembershipFactory(**kwargs).user)

    for stranger in (
        await database_sync_to_async(cookie_of)(role="owner"),  # another tenant's owner
        await database_sync_to_async(cookie_of)(tenant=draft.tenant, role="agent"),
    ):
        communicator = socket(draft.public_key, query="sandbox=1", cookie=stranger)
        await communicator.connect(timeout=TIMEOUT)
        frame = await communicator.receive_json_from(timeout=TIMEOUT)
        assert (frame["type"], frame["code"]) == ("error", "forbidden")

    # Without the sandbox flag, a draft bot is not available to anybody.
    public = socket(draft.public_key)
    await public.connect(timeout=TIMEOUT)
    assert (await public.receive_json_from(timeout=TIMEOUT))["code"] == "bot_unavailable"

    staff = await database_sync_to_async(cookie_of)(tenant=draft.tenant, role="admin")
    communicator = socket(
        draft.public_key, origin="http://localhost:8000", query="sandbox=1", cookie=staff
    )
    session = await opened(communicator)
    assert session["bot"]["sandbox"] is True
    await heard(communicator, await say(communicator, "s1"), PRICES)
    conversation = await database_sync_to_async(Conversation.objects.get)()
    assert conversation.is_sandbox and conversation.bot_version_id is None
    await communicator.disconnect()


@pytest.mark.parametrize("first", ["message", "start"])
async def test_the_test_chats_contact_is_named_so_in_the_contacts_list(settings, first):
    """Whichever frame opens it (a message: the lane; a start: webchat_open), the test
    chat's contact reads "Test chat visitor" among the contacts, not "Visitor #12"; a real
    visitor's stays unnamed."""
    from contacts.models import Contact
    from conversations.receive import SANDBOX_CONTACT_NAME

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    bot = await database_sync_to_async(launched_bot)(allowed_origins=[ORIGIN])
    staff = await database_sync_to_async(
        lambda: session_cookie(MembershipFactory(tenant=bot.tenant, role="admin").user)
    )()
    tester = socket(bot.public_key, origin="http://localhost:8000", query="sandbox=1", cookie=staff)
    visitor = socket(bot.public_key)
    for communicator in (tester, visitor):
        await opened(communicator)
        if first == "message":
            await heard(communicator, await say(communicator, "m1"), PRICES)
        else:
            await communicator.send_json_to({"type": "start"})
            await until(communicator, of_type("history"))
        await communicator.disconnect()

    def names() -> dict:
        return {
            c.conversations.get().is_sandbox: str(c)
            for c in Contact.objects.for_tenant(bot.tenant).prefetch_related("conversations")
        }

    found = await database_sync_to_async(names)()
    assert found[True] == SANDBOX_CONTACT_NAME == "Test chat visitor"
    assert found[False].startswith("Visitor #")


async def test_an_open_sandbox_socket_runs_the_draft_as_it_is_edited(settings):
    """The socket keeps its copy of the bot between messages and reads it again once the
    bot was saved: a tester editing the flow sees the edit without reconnecting."""
    import copy

    from bots.services import draft_update
    from tests.factories import simple_definition

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    draft = await database_sync_to_async(BotFactory)(allowed_origins=[ORIGIN])
    staff = await database_sync_to_async(
        lambda: session_cookie(MembershipFactory(tenant=draft.tenant, role="admin").user)
    )()
    communicator = socket(
        draft.public_key, origin="http://localhost:8000", query="sandbox=1", cookie=staff
    )
    await opened(communicator)
    await heard(communicator, await say(communicator, "e1"), PRICES)

    edited = copy.deepcopy(simple_definition())
    edited["nodes"]["prices"]["text"] = "Plans start at $12 now."
    await database_sync_to_async(draft_update)(bot=draft, definition=edited)

    await heard(communicator, await say(communicator, "e2"), "Plans start at $12 now.")
    await communicator.disconnect()


# --- The away form and the rating -------------------------------------------------------------


async def test_the_away_form_leaves_a_lead_and_bad_details_name_the_field(bot):
    from leads.models import Lead

    communicator = socket(bot.public_key)
    await opened(communicator)
    await say(communicator, "c1", "talk to a person")
    await until(communicator, lambda f: f["type"] == "message" and f["message"]["away"])

    await communicator.send_json_to({"type": "contact", "fields": {"name": "Ana"}})
    error, _ = await until(communicator, of_type("error"))
    assert "email" in error["fields"]
    assert await count(Lead) == 0

    details = {"name": "Ana", "email": "ana@example.com", "message": "Call me"}
    await communicator.send_json_to({"type": "contact", "fields": details})
    await until(communicator, of_type("contact_saved"))
    assert await count(Lead, source="away_form") == 1
    await communicator.disconnect()


async def test_the_history_says_whether_the_away_form_is_on_offer(bot):
    """A reload must not bring the away form back where it can no longer be used: the
    history frame says ``offered`` while nobody answers, ``answered`` once the details were
    left, null once an agent joined, and null for the earlier (resolved) conversation."""
    from agents.services import conversation_claim, conversation_resolve
    from tests.factories import AgentProfileFactory

    communicator = socket(bot.public_key)
    token = (await opened(communicator))["token"]

    async def reopened() -> tuple[dict, dict]:
        again = socket(bot.public_key, query=f"session={token}")
        session = await opened(again)
        history = await again.receive_json_from(timeout=TIMEOUT)
        await again.disconnect()
        assert history["type"] == "history", history
        return session, history

    await say(communicator, "c1", "how much is it")
    assert (await reopened())[1]["away_form"] is None  # with the bot: no form
    await say(communicator, "c2", "talk to a person")
    await until(communicator, lambda f: f["type"] == "message" and f["message"]["away"])
    _, history = await reopened()
    assert history["away_form"] == "offered"
    assert history["messages"][-1]["away"]

    details = {"name": "Ana", "email": "ana@example.com"}
    await communicator.send_json_to({"type": "contact", "fields": details})
    await until(communicator, of_type("contact_saved"))
    assert (await reopened())[1]["away_form"] == "answered"
    await communicator.disconnect()

    agent = await database_sync_to_async(lambda: AgentProfileFactory(tenant=bot.tenant).user)()

    @database_sync_to_async
    def agent_does(service) -> None:
        conversation = Conversation.objects.get()
        if service is conversation_claim:
            conversation_claim(conversation=conversation, agent=agent)
        else:
            service(conversation=conversation, actor=agent)

    await agent_does(conversation_claim)
    _, history = await reopened()
    assert any(m["away"] for m in history["messages"])
    assert (history["status"], history["away_form"]) == ("assigned", None)

    await agent_does(conversation_resolve)
    session, earlier = await reopened()
    assert session["conversation"] is None
    assert earlier["earlier"] and any(m["away"] for m in earlier["messages"])
    assert earlier["away_form"] is None


async def test_a_resolved_conversation_takes_a_rating_from_1_to_5(bot):
    communicator = socket(bot.public_key)
    await opened(communicator)
    await say(communicator, "c1")
    await communicator.send_json_to({"type": "rating", "score": 4})
    refused, _ = await until(communicator, of_type("error"))
    assert refused["code"] == "not_resolved"

    @database_sync_to_async
    def resolve():
        from django.utils import timezone

        Conversation.objects.update(status="resolved", resolved_at=timezone.now())

    await resolve()
    for bad in (0, 6, "5", True):
        await communicator.send_json_to({"type": "rating", "score": bad})
        error, _ = await until(communicator, of_type("error"))
        assert error["code"] == "invalid" and "score" in error["message"]
    await communicator.send_json_to({"type": "rating", "score": 4})
    await until(communicator, of_type("rated", score=4))
    assert await count(Conversation, csat=4) == 1
    await communicator.disconnect()


# --- A tenant's pattern does not hold the thread (issue 15, finding 7) ------------------------


async def test_a_catastrophic_pattern_answered_on_the_socket_holds_no_one(bot):
    """A backtracking engine took 2 s on a 22-character answer to ``(a|a?)+$`` (2^40 steps
    on this one), and every visitor of the web process waited with it. Under RE2 the answer
    is refused at once and another tenant's visitor is answered beside it."""
    import time

    code_flow = {
        "start": "ask",
        "nodes": {
            "ask": {
                "type": "question",
                "text": "Your code?",
                "variable": "code",
                "validation": "regex",
                "pattern": "(a|a?)+$",
                "retry_text": "Not a code.",
                "next": "done",
            },
            "done": {"type": "end", "text": "Got {{code}}."},
        },
    }
    theirs = await database_sync_to_async(launched_bot)(
        allowed_origins=[ORIGIN], draft_definition=code_flow
    )
    assert theirs.tenant_id != bot.tenant_id
    attacker, neighbour = socket(theirs.public_key), socket(bot.public_key, ip="203.0.113.8")
    await opened(attacker)
    await opened(neighbour)
    await heard(attacker, await say(attacker, "a1", "hello"), "Your code?")

    started = time.perf_counter()
    await attacker.send_json_to({"type": "message", "client_id": "a2", "text": "a" * 40 + "!"})
    await neighbour.send_json_to({"type": "message", "client_id": "n1", "text": "how much"})
    ack, _ = await until(attacker, of_type("ack", client_id="a2"))
    await heard(attacker, ack, "Not a code.")
    ack, _ = await until(neighbour, of_type("ack", client_id="n1"))
    await heard(neighbour, ack, PRICES)
    # Both round trips together: well under the 2 s a 22-character answer took before.
    assert time.perf_counter() - started < 1.0

    await heard(attacker, await say(attacker, "a3", "aaaa"), "Got aaaa.")
    await attacker.disconnect()
    await neighbour.disconnect()
