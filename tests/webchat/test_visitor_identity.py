"""One visitor cannot become another: the attack of issue 15 (finding 1), through the socket.

Visitor B claims visitor A's email (the prechat form, the away form, a flow's question). The
claim stays on B's own contact and merges nothing; the away form is refused outside an
away handoff; and even when staff do merge the two contacts, each visitor's widget opens
their own conversations only: a visitor's conversations belong to their session token.
"""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.db import connections

from agents.services import conversation_hand_off
from contacts.models import Contact
from contacts.services import contact_merge
from conversations.models import Conversation, Message
from leads.models import Lead
from support.models import Ticket
from tests.factories import launched_bot
from tests.sockets import of_type, until
from tests.webchat.test_webchat_socket import ORIGIN, inbound_texts, opened, say, socket

pytestmark = pytest.mark.django_db(transaction=True)

A_EMAIL = "ana@example.com"


@pytest.fixture(autouse=True)
async def _close_the_sockets_connection():
    yield
    await database_sync_to_async(connections.close_all)()


@pytest.fixture
def bot():
    # Away outside business hours (none set): a handoff gets the away message.
    return launched_bot(allowed_origins=[ORIGIN], ticket_after_hours=True, business_hours={})


async def visit(bot, *, token: str = "", fields: dict | None = None):
    """A visitor's widget: connected (resuming ``token``), the chat started; returns the
    socket, its session frame (with the conversation it shows) and the history shown."""
    communicator = socket(bot.public_key, query=f"session={token}" if token else "")
    session = await opened(communicator)
    if session["conversation"] is None:
        await communicator.send_json_to({"type": "start", "fields": fields or {}})
    # The chat's own history, not an ``earlier`` one (their last resolved chat, shown above).
    history, _ = await until(communicator, lambda f: of_type("history")(f) and not f.get("earlier"))
    session["conversation"] = session["conversation"] or history["conversation"]
    session["history"] = history
    return communicator, session


def visitor_texts(history: dict) -> list[str]:
    return [m["text"] for m in history["messages"] if m["sender"] == "contact"]


@database_sync_to_async
def contact_of(conversation_id: int) -> Contact:
    return Conversation.objects.select_related("contact").get(pk=conversation_id).contact


@database_sync_to_async
def merge(target: Contact, source: Contact) -> None:
    contact_merge(target=target, source=source)


@database_sync_to_async
def counts() -> tuple[int, int, int]:
    return (
        Contact.objects.filter(merged_into__isnull=False).count(),
        Lead.objects.count(),
        Ticket.objects.count(),
    )


async def test_a_claimed_email_opens_nobody_elses_chat(bot):
    a, a_session = await visit(bot, fields={"name": "Ana", "email": A_EMAIL})
    await say(a, "a1", "hello from Ana")
    a_conversation = a_session["conversation"]
    await a.disconnect()

    # B claims Ana's email in the prechat form, then through the away form's frame.
    b, b_session = await visit(bot, fields={"email": A_EMAIL})
    b_conversation = b_session["conversation"]
    assert b_conversation != a_conversation
    await say(b, "b1", "hello from Bea")
    await b.send_json_to({"type": "contact", "fields": {"email": A_EMAIL}})
    refused, _ = await until(b, of_type("error"))
    assert refused["code"] == "not_away"
    assert await counts() == (0, 0, 0)  # nothing merged, no lead, no ticket
    a_contact, b_contact = await contact_of(a_conversation), await contact_of(b_conversation)
    assert a_contact.pk != b_contact.pk and a_contact.name == "Ana"

    # Ana comes back: her own chat, her own history.
    a, session = await visit(bot, token=a_session["token"])
    assert session["conversation"] == a_conversation
    assert visitor_texts(session["history"]) == ["hello from Ana"]
    await a.disconnect()
    await b.disconnect()


async def test_a_staff_merge_still_keeps_each_visitor_in_their_own_chat(bot):
    a, a_session = await visit(bot)
    await say(a, "a1", "Ana's secret")
    b, b_session = await visit(bot)
    await say(b, "b1", "Bea's question")
    a_conversation, b_conversation = a_session["conversation"], b_session["conversation"]
    # Staff decide they are one person (a proof, unlike a claim): the contacts merge.
    await merge(await contact_of(a_conversation), await contact_of(b_conversation))
    await a.disconnect()
    await b.disconnect()

    a, session = await visit(bot, token=a_session["token"])
    assert session["conversation"] == a_conversation
    await say(a, "a2", "Ana again")
    assert await inbound_texts(a_conversation) == ["Ana's secret", "Ana again"]
    assert await inbound_texts(b_conversation) == ["Bea's question"]

    # Bea's chat is resolved: her next visit starts a new chat, never Ana's.
    await database_sync_to_async(Conversation.objects.filter(pk=b_conversation).update)(
        status=Conversation.Status.RESOLVED
    )
    b, session = await visit(bot, token=b_session["token"])
    assert session["conversation"] not in (a_conversation, b_conversation)
    assert session["history"]["status"] == "bot" and visitor_texts(session["history"]) == []
    # ... and stays there (a late "conversation started" event of her old chat is ignored).
    ack = await say(b, "b2", "new question")
    assert ack["message"]["conversation"] == session["conversation"]
    await b.send_json_to({"type": "history"})
    history, _ = await until(b, of_type("history"))
    assert history["conversation"] == session["conversation"]
    await a.disconnect()
    await b.disconnect()


@database_sync_to_async
def hand_off(conversation_id: int) -> None:
    conversation_hand_off(
        conversation=Conversation.objects.get(pk=conversation_id), reason="visitor_request"
    )


async def test_the_away_form_is_taken_once_per_handoff(bot):
    b, session = await visit(bot)
    conversation = session["conversation"]
    await hand_off(conversation)  # nobody is online: the away message
    away, _ = await until(b, lambda f: f["type"] == "message" and f["message"].get("away"))
    assert away["message"]["sender"] == "system"
    for _ in range(3):
        await b.send_json_to(
            {"type": "contact", "fields": {"name": "Bea", "email": "bea@example.com"}}
        )
        await until(b, of_type("contact_saved"))
    assert await counts() == (0, 1, 1)  # one lead, one ticket, however often it is sent
    assert (
        await database_sync_to_async(
            Message.objects.filter(conversation_id=conversation, data__away=True).count
        )()
        == 1
    )
    await b.disconnect()
