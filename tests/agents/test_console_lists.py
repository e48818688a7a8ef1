"""The console's lists (Mine, Unassigned, All, Resolved) and what each item says: the last
message, how long the visitor has waited, the channel, and the agent's unread count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents import services
from agents.selectors import console_conversations
from conversations.models import ChannelKind, Conversation, Message
from tests.factories import (
    AgentProfileFactory,
    ConversationFactory,
    MessageFactory,
    launched_bot,
)

Status = Conversation.Status


@pytest.fixture
def ana(tenant):
    return AgentProfileFactory(tenant=tenant)


@pytest.fixture
def ben(tenant):
    return AgentProfileFactory(tenant=tenant)


def ids(profile, view: str) -> list[int]:
    return [item["id"] for item in console_conversations(profile=profile, view=view)]


def test_mine_unassigned_and_all(tenant, other_tenant, ana, ben):
    now = timezone.now()

    def conversation(status, *, agent=None, ago: int = 0, queued_ago: int = 60, **kwargs):
        return ConversationFactory(
            tenant=kwargs.pop("tenant", tenant),
            status=status,
            assigned_agent=agent.user if agent else None,
            queued_at=kwargs.pop("queued_at", now - timedelta(minutes=queued_ago)),
            last_message_at=now - timedelta(minutes=ago),
            **kwargs,
        ).pk

    waiting_long = conversation(Status.QUEUED, queued_ago=30, ago=1)
    waiting_short = conversation(Status.QUEUED, queued_ago=2, ago=2)
    anas_quiet = conversation(Status.ASSIGNED, agent=ana, ago=20)
    anas_busy = conversation(Status.ASSIGNED, agent=ana, ago=0)
    bens = conversation(Status.ASSIGNED, agent=ben, ago=5)
    # In none of these three: the bot's, the resolved, the sandbox's, another tenant's.
    conversation(Status.BOT)
    resolved_earlier = conversation(
        Status.RESOLVED, agent=ana, resolved_at=now - timedelta(hours=2)
    )
    resolved_now = conversation(Status.RESOLVED, agent=ben, resolved_at=now)
    conversation(Status.RESOLVED, queued_at=None, resolved_at=now)  # the bot's own end
    conversation(Status.RESOLVED, agent=ana, is_sandbox=True, resolved_at=now)
    conversation(Status.QUEUED, is_sandbox=True)
    conversation(Status.ASSIGNED, agent=ana, is_sandbox=True)
    conversation(Status.QUEUED, tenant=other_tenant)
    conversation(Status.RESOLVED, tenant=other_tenant, resolved_at=now)

    assert ids(ana, "mine") == [anas_busy, anas_quiet]  # latest activity first
    assert ids(ben, "mine") == [bens]
    assert ids(ana, "unassigned") == [waiting_long, waiting_short]  # first in, first out
    assert ids(ana, "all") == [anas_busy, waiting_long, waiting_short, bens, anas_quiet]
    assert ids(ben, "all") == ids(ana, "all")
    # Resolved: those people had, whoever resolved them, the latest first.
    assert ids(ana, "resolved") == [resolved_now, resolved_earlier]
    with pytest.raises(ValueError, match="mine, unassigned, all, resolved"):
        console_conversations(profile=ana, view="bot")


def test_an_item_previews_the_last_message_the_wait_the_channel_and_unread(tenant, ana, ben):
    start = timezone.now() - timedelta(hours=1)
    bot = launched_bot(tenant=tenant)
    conversation = ConversationFactory(
        tenant=tenant,
        bot=bot,
        bot_version=bot.published_version,
        status=Status.QUEUED,
        queued_at=start,
    )

    def said(text, *, sender="contact", minutes=0):
        return MessageFactory(
            tenant=tenant,
            conversation=conversation,
            direction="in" if sender == "contact" else "out",
            sender=sender,
            text=text,
            created_at=start + timedelta(minutes=minutes),
        )

    said("I need a person", minutes=-1)
    said("Connecting you with a person.", sender="bot")
    said("  it is about\n\n my order " + "and more " * 30, minutes=1)

    [item] = console_conversations(profile=ana, view="unassigned")
    assert item["channel"] == "webchat" and item["channel_label"] == "Web chat"
    assert item["status_label"] == "Waiting for an agent"
    preview = item["last_message"]
    assert preview["sender"] == "contact"
    assert preview["created_at"] == (start + timedelta(minutes=1)).isoformat()
    assert preview["text"].startswith("it is about my order and more and more")
    assert len(preview["text"]) == 120 and preview["text"].endswith("…")
    assert item["waiting_since"] == start.isoformat()  # queued: since the hand-off
    assert item["unread"] == item["contact_messages"] == 2  # never opened: all the visitor's

    # Unread is each agent's own: what came after the newest message they had in view.
    services.conversation_mark_seen(conversation=conversation, agent=ana.user)
    assert console_conversations(profile=ana, view="all")[0]["unread"] == 0
    assert console_conversations(profile=ben, view="all")[0]["unread"] == 2
    said("Hello?", minutes=2)
    assert console_conversations(profile=ana, view="all")[0]["unread"] == 1

    # Claimed, and no agent has written yet: the visitor still waits since the hand-off.
    services.conversation_claim(conversation=conversation, agent=ana.user)
    [item] = console_conversations(profile=ana, view="mine")
    assert item["waiting_since"] == start.isoformat()
    assert item["agent"]["id"] == ana.user_id and item["status_label"] == "With an agent"

    # The agent had the last word: nobody waits, and the preview is the reply.
    reply = services.agent_reply(conversation=conversation, agent=ana.user, text="Hi! Looking.")
    [item] = console_conversations(profile=ana, view="mine")
    assert item["waiting_since"] is None
    assert item["last_message"] == {
        "text": "Hi! Looking.",
        "sender": "agent",
        "created_at": reply.created_at.isoformat(),
    }

    # The visitor writes again: waiting since their first message after the reply.
    later = reply.created_at + timedelta(minutes=3)
    first = MessageFactory(
        tenant=tenant, conversation=conversation, text="Any news?", created_at=later
    )
    MessageFactory(
        tenant=tenant,
        conversation=conversation,
        text="??",
        created_at=later + timedelta(minutes=1),
    )
    [item] = console_conversations(profile=ana, view="mine")
    assert item["waiting_since"] == first.created_at.isoformat()
    assert item["last_message"]["text"] == "??"
    assert item["unread"] == 3 and item["contact_messages"] == 5


def test_channels_are_named_for_people_and_media_is_described(tenant, ana):
    for kind in ChannelKind:
        conversation = ConversationFactory(
            tenant=tenant, channel_kind=kind, status=Status.QUEUED, queued_at=timezone.now()
        )
        MessageFactory(tenant=tenant, conversation=conversation, text="", kind=Message.Kind.MEDIA)
    items = console_conversations(profile=ana, view="unassigned")
    assert {item["channel_label"] for item in items} == {kind.label for kind in ChannelKind}
    assert {item["last_message"]["text"] for item in items} == {"(media)"}


def test_a_list_takes_a_fixed_number_of_queries(tenant, ana, django_assert_num_queries):
    for _ in range(5):
        conversation = ConversationFactory(
            tenant=tenant, status=Status.QUEUED, queued_at=timezone.now()
        )
        MessageFactory(tenant=tenant, conversation=conversation)
    with django_assert_num_queries(2):
        assert len(console_conversations(profile=ana, view="all")) == 5


def test_a_view_lists_at_most_200_conversations_first_in_first_out(tenant, ana):
    """docs/agents.md: each view at most 200 items; the queue first in, first out."""
    start = timezone.now() - timedelta(hours=1)
    queued = [
        ConversationFactory(
            tenant=tenant, status=Status.QUEUED, queued_at=start + timedelta(seconds=n)
        ).pk
        for n in range(201)
    ]
    assert ids(ana, "unassigned") == queued[:200]
