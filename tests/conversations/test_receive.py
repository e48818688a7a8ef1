"""conversations.receive: the one service for messages arriving. A batch of web chat
messages is planned, then written with named rows; a turn with effects (a handoff, a lead,
the HTTP node, the end) goes through the same service, and the messages of its conversation
that follow wait for what it changed. Nothing else inserts into the message table."""

from __future__ import annotations

import pytest

from bots.services import bot_publish
from chattonic.core.errors import Conflict
from contacts.models import Contact, ContactIdentity
from conversations import realtime, receive
from conversations.models import Conversation, Message
from conversations.receive import Arrival, Inbound, batch, messages_receive
from conversations.sql import row
from tests.conversations.receiving import webchat_says
from tests.conversations.writers import message_writers, only_the_receive_service_writes_messages
from tests.factories import BotFactory, MessageFactory, TenantFactory, launched_bot, trained

pytestmark = pytest.mark.django_db(transaction=True)

PRICES = "Plans start at $10."


@pytest.fixture
def bot():
    return launched_bot(allowed_origins=["https://shop.example.com"])


@pytest.fixture(autouse=True)
def _only_the_service_writes(request):
    if request.node.name == "test_the_runtime_check_catches_a_message_inserted_elsewhere":
        yield  # it writes elsewhere on purpose, under its own watch
        return
    with only_the_receive_service_writes_messages():
        yield


def arrival(bot, visitor: str, client_id: str, text: str = "how much is it", **kwargs):
    return Arrival(
        bot=bot,
        visitor_id=visitor,
        inbound=Inbound(text=text, external_id=client_id),
        origin=f"socket-of-{visitor}",
        **kwargs,
    )


def opened(bot, visitor: str) -> int:
    conversation, _ = webchat_says(bot, visitor, "hi", external_id="first")
    return conversation.pk


def test_a_new_visitors_first_message_opens_the_conversation_with_its_greeting(bot):
    first = arrival(bot, "new-1", "c1", language="es")
    messages_receive([first])

    conversation = Conversation.objects.get(pk=first.conversation)
    assert conversation.recipient_id == "new-1" and conversation.language == "es"
    assert conversation.bot_version_id == bot.published_version_id
    identity = ContactIdentity.objects.get(external_id="new-1")
    assert identity.contact_id == conversation.contact_id and identity.kind == "webchat"
    assert identity.channel_id is None
    # The greeting, the message, the answer: stored in that order; the ack carries them.
    stored = list(Message.objects.filter(conversation=conversation).order_by("id"))
    assert [m.direction for m in stored] == ["out"] * (len(stored) - 2) + ["in", "out"]
    assert first.message == realtime.message_payload(stored[-2])
    assert first.replies == [realtime.message_payload(m) for m in stored if m.direction == "out"]
    assert first.replies[-1]["text"] == PRICES
    # The visitor's other tabs hear of the new conversation; the sender's own messages are
    # marked as its own (its ack has them).
    started = {"type": "conversation.started", "conversation": conversation.pk}
    assert (realtime.visitor_group("new-1"), started) in first.events
    mine = [e for _, e in first.events if e["type"] == "message.created"]
    assert [e["message"] for e in mine] == [realtime.message_payload(m) for m in stored]
    assert {e["origin"] for e in mine} == {first.origin}


def test_resends_are_answered_with_what_was_stored(bot):
    mine = opened(bot, "v1")
    first = arrival(bot, "v1", "c1", conversation_id=mine)
    messages_receive([first])

    resent = arrival(bot, "v1", "c1", conversation_id=mine)
    new = arrival(bot, "v1", "c2", conversation_id=mine)
    twice = arrival(bot, "v1", "c2", conversation_id=mine)
    messages_receive([resent, new, twice])

    assert resent.duplicate and resent.message == first.message and not resent.replies
    assert not new.duplicate and twice.duplicate and twice.message == new.message
    assert not resent.events and not twice.events
    inbound = Message.objects.filter(conversation_id=mine, direction="in")
    assert sorted(inbound.values_list("external_id", flat=True)) == ["c1", "c2", "first"]
    assert Message.objects.filter(conversation_id=mine, text=PRICES).count() == 2


def test_a_returning_visitor_without_an_open_conversation_gets_a_new_one(bot):
    first = opened(bot, "v1")
    Conversation.objects.filter(pk=first).update(status=Conversation.Status.RESOLVED)

    again = arrival(bot, "v1", "c2")
    messages_receive([again])

    assert again.conversation != first and again.replies[-1]["text"] == PRICES
    assert Contact.objects.count() == 1


def test_a_message_to_a_resolved_conversation_goes_to_the_visitors_open_one(bot):
    first = opened(bot, "v1")
    Conversation.objects.filter(pk=first).update(status=Conversation.Status.RESOLVED)
    second = opened(bot, "v1")

    late = arrival(bot, "v1", "c9", conversation_id=first)
    messages_receive([late])

    assert late.conversation == second != first
    assert Message.objects.filter(conversation_id=second, external_id="c9").exists()


def test_a_handoff_holds_the_conversations_next_messages_until_it_is_done(bot):
    handing, other = opened(bot, "v1"), opened(bot, "v2")
    asks = arrival(bot, "v1", "c1", "talk to a person", conversation_id=handing)
    then = arrival(bot, "v1", "c2", conversation_id=handing)
    meanwhile = arrival(bot, "v2", "c1", conversation_id=other)

    messages_receive([asks, then, meanwhile])

    assert Conversation.objects.get(pk=handing).status != Conversation.Status.BOT
    assert meanwhile.replies[-1]["text"] == PRICES
    # In agent mode the bot does not answer the message that followed the handoff, and the
    # console hears of it.
    assert then.message is not None and then.replies == []
    assert not Message.objects.filter(conversation_id=handing, text=PRICES).exists()
    activity = [e for g, e in then.events if g == realtime.agents_group(bot.tenant_id)]
    assert [e["conversation"]["message"] for e in activity] == [then.message]


def test_a_bot_saved_since_the_socket_read_it_is_read_again(bot):
    mine = opened(bot, "v1")
    socket_copy = type(bot).objects.get(pk=bot.pk)
    bot.welcome_text = "Hello again"
    bot.save()
    trained(bot_publish(bot=bot))

    late = arrival(socket_copy, "v1", "c1", conversation_id=mine)
    messages_receive([late])

    assert socket_copy.updated_at == type(bot).objects.get(pk=bot.pk).updated_at
    assert late.replies[-1]["text"] == PRICES


def test_a_first_message_after_the_bot_was_published_again_opens_on_the_new_version(bot):
    socket_copy = type(bot).objects.get(pk=bot.pk)
    trained(bot_publish(bot=bot))
    newest = type(bot).objects.get(pk=bot.pk).published_version_id
    assert newest != socket_copy.published_version_id

    first = arrival(socket_copy, "late-1", "c1")
    messages_receive([first])

    assert Conversation.objects.get(pk=first.conversation).bot_version_id == newest


def test_an_invalid_message_gets_its_error_and_stores_nothing(bot):
    mine, other = opened(bot, "v1"), opened(bot, "v2")
    bad = arrival(bot, "v1", "c1", "x" * (receive.MAX_TEXT + 1), conversation_id=mine)
    good = arrival(bot, "v2", "c1", conversation_id=other)

    messages_receive([bad, good])

    assert bad.error.fields == {"text": [f"At most {receive.MAX_TEXT} characters."]}
    assert good.error is None and good.replies[-1]["text"] == PRICES
    assert not Message.objects.filter(conversation_id=mine, external_id="c1").exists()


def test_an_unpublished_bot_refuses_a_first_message(bot):
    draft = BotFactory(tenant=bot.tenant)
    first = arrival(draft, "v1", "c1")
    messages_receive([first])
    assert isinstance(first.error, Conflict) and first.error.code == "not_published"
    assert not Conversation.objects.filter(bot=draft).exists()


def test_a_sandbox_message_opens_a_sandbox_conversation_on_the_draft(bot):
    first = arrival(bot, "v1", "c1", sandbox=True)
    messages_receive([first])
    conversation = Conversation.objects.get(pk=first.conversation)
    assert conversation.is_sandbox and conversation.bot_version_id is None


def test_a_race_for_a_new_visitor_runs_the_batch_message_by_message(bot, monkeypatch):
    """Another process opened the visitor's conversation after this batch looked: the
    identity's INSERT fails, and each message then runs alone, finding it."""
    theirs = opened(bot, "raced")
    real_read = batch._read
    reads = []

    def blind_read(arrivals):
        rows, stamps, resent, known = real_read(arrivals)
        if not reads:  # the first read misses the other process's identity
            known = known - {(bot.tenant_id, "raced")}
        reads.append(len(arrivals))
        return rows, stamps, resent, known

    monkeypatch.setattr(batch, "_read", blind_read)
    mine, other = arrival(bot, "raced", "c1"), arrival(bot, "calm", "c1")
    messages_receive([mine, other])

    assert mine.conversation == theirs and mine.error is None and other.error is None
    assert Contact.objects.filter(identities__external_id="raced").count() == 1
    assert Message.objects.filter(external_id="c1").count() == 2


def test_a_messages_tenant_is_its_conversations(bot):
    other = launched_bot(tenant=TenantFactory(), allowed_origins=["https://shop.example.com"])
    known = opened(bot, "v1")
    messages_receive(
        [
            arrival(bot, "v1", "c1", conversation_id=known),
            arrival(bot, "v2", "c1"),
            arrival(other, "v3", "c1"),
        ]
    )
    from django.db.models import F

    assert Message.objects.filter(tenant_id=other.tenant_id).count() >= 2
    assert not Message.objects.exclude(tenant_id=F("conversation__tenant_id")).exists()


# --- One row builder ------------------------------------------------------------------------------


def test_rows_are_named_from_the_models_fields():
    values = row(Message, tenant_id=1, conversation_id=2, direction="in", sender="contact")
    names = {f.attname for f in Message._meta.concrete_fields if not f.primary_key}
    assert set(values) == names  # a field added to Message is in every row, at its default
    assert values["handle_failures"] == 0 and values["data"] == {}
    with pytest.raises(TypeError, match="no field"):
        row(Message, tenant_id=1, conversation=2)


# --- The only writer --------------------------------------------------------------------------


def test_no_module_but_the_service_inserts_messages_in_its_source():
    assert message_writers() == []


def test_the_runtime_check_catches_a_message_inserted_elsewhere(bot):
    conversation = Conversation.objects.get(pk=opened(bot, "v1"))
    watching = only_the_receive_service_writes_messages()
    writers = watching.__enter__()
    MessageFactory(tenant=conversation.tenant, conversation=conversation)
    assert writers and writers[0].startswith("tests.conversations.test_receive:")
    with pytest.raises(AssertionError, match=r"outside conversations\.receive"):
        watching.__exit__(None, None, None)
