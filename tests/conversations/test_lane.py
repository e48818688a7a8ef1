"""conversations.lane: the web chat's batched turns. Plain turns go together in a few
statements; what they store, and what the sockets are sent, is what the general path
(services.webchat_receive_in_transaction) stores and sends; anything else takes that path."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connections, transaction

from bots.services import bot_publish
from chattonic.core.errors import ValidationFailed
from conversations import lane, realtime, services
from conversations.consumers import message_sync_to_async
from conversations.models import Contact, ContactIdentity, Conversation, Message
from tests.factories import launched_bot, trained

pytestmark = pytest.mark.django_db(transaction=True)

PRICES = "Plans start at $10."
# What a stored message is, apart from its id, its conversation and its time.
COMPARED = ("tenant_id", "channel_id", "direction", "sender", "agent_id", "kind", "text")
COMPARED += ("data", "external_id", "status", "error", "handled_at", "handle_failures")


@pytest.fixture
def bot():
    return launched_bot(allowed_origins=["https://shop.example.com"])


def turn(bot, visitor: str, client_id: str, text: str = "how much is it", **kwargs) -> lane.Turn:
    fields = {
        "bot": bot,
        "visitor_id": visitor,
        "conversation_id": None,
        "sandbox": False,
        "language": "",
        "channel": f"socket-of-{visitor}",
        "kind": Message.Kind.TEXT,
        "text": text,
        "payload": None,
        "client_id": client_id,
    }
    return lane.Turn(**{**fields, **kwargs})


def opened(bot, visitor: str) -> int:
    """A visitor's conversation, opened by a first message on the general path."""
    conversation, _ = services.webchat_receive(
        bot=bot, visitor_id=visitor, inbound=services.Inbound(text="hi", external_id="first")
    )
    return conversation.pk


def general(one: lane.Turn) -> lane.Turn:
    with transaction.atomic():
        lane._run_general(one)
    return one


def stored(conversation_id: int) -> list[tuple]:
    messages = Message.objects.filter(conversation_id=conversation_id).order_by("id")
    return [tuple(getattr(m, name) for name in COMPARED) for m in messages]


def test_plain_turns_store_and_send_what_the_general_path_does(bot):
    mine, theirs = opened(bot, "v1"), opened(bot, "v2")
    before = Conversation.objects.get(pk=mine).last_message_at

    fast = turn(bot, "v1", "c1", conversation_id=mine)
    assert lane.run_batch([fast]) == [(True, fast)]
    slow = general(turn(bot, "v2", "c1", conversation_id=theirs))

    assert not fast.general and slow.general
    assert stored(mine) == stored(theirs)
    ours, other = Conversation.objects.get(pk=mine), Conversation.objects.get(pk=theirs)
    assert ours.engine_state == other.engine_state
    assert ours.awaiting_action == "" and ours.last_message_at > before
    # The socket's ack and replies are the stored messages as every socket sees them.
    assert fast.message == realtime.message_payload(Message.objects.get(pk=fast.message["id"]))
    replies = Message.objects.filter(conversation_id=mine, direction="out").order_by("id")
    assert fast.replies == [realtime.message_payload(replies.last())]
    assert fast.replies[0]["text"] == PRICES and not fast.duplicate
    # The other sockets of the conversation hear the same, marked as the sender's.
    assert [event["message"] for _, event in fast.events] == [fast.message, *fast.replies]
    assert {(group, event["origin"]) for group, event in fast.events} == {
        (realtime.conversation_group(mine), fast.channel)
    }


def test_a_new_visitors_first_message_opens_the_conversation_in_the_batch(bot):
    fast = turn(bot, "new-1", "c1", language="es")
    lane.run_batch([fast])
    slow = general(turn(bot, "new-2", "c1", language="es"))

    assert not fast.general and slow.general
    mine = Conversation.objects.get(pk=fast.conversation)
    theirs = Conversation.objects.get(pk=slow.conversation)
    for name in ("status", "bot_version_id", "language", "channel_kind", "is_sandbox"):
        assert getattr(mine, name) == getattr(theirs, name), name
    assert mine.engine_state == theirs.engine_state
    assert mine.recipient_id == "new-1" and mine.language == "es"
    identity = ContactIdentity.objects.get(external_id="new-1")
    assert identity.contact_id == mine.contact_id and identity.kind == "webchat"
    assert identity.channel_id is None and Contact.objects.filter(pk=mine.contact_id).exists()
    # The greeting, the message, the answer: stored in that order, as the general path does.
    assert stored(mine.pk) == stored(theirs.pk)
    said = Message.objects.filter(conversation_id=theirs.pk, direction="out").order_by("id")
    assert [m["text"] for m in fast.replies] == [m.text for m in said]
    assert fast.replies[-1]["text"] == PRICES
    assert any(m["quick_replies"] for m in fast.replies)  # the greeting's buttons
    # The visitor's other tabs hear of the new conversation.
    assert (
        realtime.visitor_group("new-1"),
        {"type": "conversation.started", "conversation": mine.pk},
    ) in fast.events


def test_a_returning_visitor_without_an_open_conversation_takes_the_general_path(bot):
    first = opened(bot, "v1")
    Conversation.objects.filter(pk=first).update(status=Conversation.Status.RESOLVED)

    again = turn(bot, "v1", "c2")
    lane.run_batch([again])

    assert again.general and again.conversation != first
    assert Contact.objects.count() == 1


def test_resends_are_answered_with_what_was_stored(bot):
    mine = opened(bot, "v1")
    first = turn(bot, "v1", "c1", conversation_id=mine)
    lane.run_batch([first])

    resent = turn(bot, "v1", "c1", conversation_id=mine)
    new = turn(bot, "v1", "c2", conversation_id=mine)
    twice = turn(bot, "v1", "c2", conversation_id=mine)
    lane.run_batch([resent, new, twice])

    assert not any(t.general for t in (resent, new, twice))
    assert resent.duplicate and resent.message == first.message and not resent.replies
    assert not new.duplicate and twice.duplicate and twice.message == new.message
    assert not resent.events and not twice.events
    inbound = Message.objects.filter(conversation_id=mine, direction="in")
    assert sorted(inbound.values_list("external_id", flat=True)) == ["c1", "c2", "first"]
    assert Message.objects.filter(conversation_id=mine, text=PRICES).count() == 2


def test_a_turn_that_is_not_plain_takes_its_conversation_to_the_general_path(bot):
    handing, other = opened(bot, "v1"), opened(bot, "v2")
    asks = turn(bot, "v1", "c1", "talk to a person", conversation_id=handing)
    then = turn(bot, "v1", "c2", conversation_id=handing)
    meanwhile = turn(bot, "v2", "c1", conversation_id=other)

    lane.run_batch([asks, then, meanwhile])

    assert asks.general and then.general and not meanwhile.general
    assert Conversation.objects.get(pk=handing).status != Conversation.Status.BOT
    assert meanwhile.replies[0]["text"] == PRICES
    # In agent mode the bot does not answer the message that followed the handoff.
    assert not Message.objects.filter(conversation_id=handing, text=PRICES).exists()


def test_a_bot_saved_since_the_socket_read_it_takes_the_general_path(bot):
    mine = opened(bot, "v1")
    socket_copy = type(bot).objects.get(pk=bot.pk)
    bot.welcome_text = "Hello again"
    bot.save()
    trained(bot_publish(bot=bot))

    late = turn(socket_copy, "v1", "c1", conversation_id=mine)
    lane.run_batch([late])

    assert late.general
    assert socket_copy.updated_at == type(bot).objects.get(pk=bot.pk).updated_at  # read again


def test_a_failing_turn_fails_alone(bot):
    mine, other = opened(bot, "v1"), opened(bot, "v2")
    bad = turn(bot, "v1", "c1", "x" * (services.MAX_TEXT + 1), conversation_id=mine)
    good = turn(bot, "v2", "c1", conversation_id=other)

    outcomes = lane.run_batch([bad, good])

    # The batch was rolled back; each ran alone on the general path.
    assert outcomes[1] == (True, good) and good.general and not good.duplicate
    assert outcomes[0][0] is False and isinstance(outcomes[0][1], ValidationFailed)
    assert Message.objects.filter(conversation_id=other, text=PRICES).count() == 1
    assert not Message.objects.filter(conversation_id=mine, external_id="c1").exists()
    assert Message.objects.filter(conversation_id=other, external_id="c1").count() == 1


def test_sandbox_and_unpublished_first_messages_take_the_general_path(bot):
    sandbox = turn(bot, "v1", "c1", sandbox=True)
    lane.run_batch([sandbox])
    assert sandbox.general
    assert Conversation.objects.get(pk=sandbox.conversation).is_sandbox


# --- The lane on the event loop ------------------------------------------------------------


@pytest.fixture
async def _close_the_threads_connection():
    yield
    await database_sync_to_async(connections.close_all)()


@pytest.mark.usefixtures("_close_the_threads_connection")
async def test_the_rate_limit_refuses_a_visitors_extra_messages_and_stores_none(bot, settings):
    settings.WEBCHAT_MESSAGES_PER_10S = 2
    mine = await database_sync_to_async(opened)(bot, "limited")
    runner = lane.Lane(message_sync_to_async, get_channel_layer())
    turns = [turn(bot, "limited", f"c{n}", conversation_id=mine) for n in range(3)]

    outcomes = await asyncio.gather(*(runner.run(t) for t in turns), return_exceptions=True)

    assert outcomes[:2] == turns[:2]
    assert isinstance(outcomes[2], lane.RateLimited) and outcomes[2].code == "rate_limited"
    kept = database_sync_to_async(
        lambda: list(
            Message.objects.filter(conversation_id=mine, external_id__in=["c0", "c1", "c2"])
            .order_by("external_id")
            .values_list("external_id", flat=True)
        )
    )
    assert await kept() == ["c0", "c1"]


@pytest.mark.usefixtures("_close_the_threads_connection")
async def test_events_go_out_only_where_someone_else_listens(bot):
    layer = get_channel_layer()
    alone, other = await layer.new_channel(), await layer.new_channel()
    mine = await database_sync_to_async(opened)(bot, "v1")
    await layer.group_add(realtime.conversation_group(mine), alone)
    runner = lane.Lane(message_sync_to_async, layer)

    quiet = turn(bot, "v1", "c1", conversation_id=mine, channel=alone)
    await runner.run(quiet)
    assert quiet.events == [] and quiet.replies  # the sender has its ack and replies

    # Another tab (here, another channel of this process) joins: it hears the turn.
    await layer.group_add(realtime.conversation_group(mine), other)
    heard = turn(bot, "v1", "c2", conversation_id=mine, channel=alone)
    await runner.run(heard)
    assert [event["message"] for _, event in heard.events] == [heard.message, *heard.replies]
    await realtime.broadcast(layer, heard.events)
    received = await asyncio.wait_for(layer.receive(other), 10)
    assert received["message"]["client_id"] == "c2" and received["origin"] == alone


def test_a_first_message_after_the_bot_was_published_again_opens_on_the_new_version(bot):
    socket_copy = type(bot).objects.get(pk=bot.pk)
    trained(bot_publish(bot=bot))  # a new version, after the socket read the bot
    newest = type(bot).objects.get(pk=bot.pk).published_version_id
    assert newest != socket_copy.published_version_id

    first = turn(socket_copy, "late-1", "c1")
    lane.run_batch([first])

    assert first.general
    assert Conversation.objects.get(pk=first.conversation).bot_version_id == newest


def test_a_messages_tenant_is_its_conversations_on_both_paths(bot):
    """The database checks a message's conversation key, not its tenant key (a lock on the
    tenant's one row for every message): the writers copy the tenant from the conversation."""
    from django.db.models import F

    from tests.factories import TenantFactory

    other = launched_bot(tenant=TenantFactory(), allowed_origins=["https://shop.example.com"])
    known = opened(bot, "v1")
    lane.run_batch(
        [
            turn(bot, "v1", "c1", conversation_id=known),
            turn(bot, "v2", "c1"),  # opened in the batch
            turn(other, "v3", "c1"),
        ]
    )
    general(turn(other, "v4", "c1"))
    assert Message.objects.filter(tenant_id=other.tenant_id).count() >= 6
    assert not Message.objects.exclude(tenant_id=F("conversation__tenant_id")).exists()
