"""The end of a flow ends the conversation (issue 18, finding 7): the contact's next
message starts a new conversation on the version live then, not the old one again."""

from __future__ import annotations

import json

import pytest

from bots.models import BotVersion
from bots.services import bot_launch, bot_publish, draft_update
from conversations import services
from conversations.models import Conversation, Message
from tests.conversations.payloads import raw
from tests.conversations.receiving import webchat_says
from tests.factories import BotFactory, trained
from tests.fakes import FakeTelegram
from tests.fakes.channels import make_channel, point_settings_at, signed_post

pytestmark = pytest.mark.django_db


def short_flow(goodbye: str) -> dict:
    return {
        "start": "name",
        "nodes": {
            "name": {"type": "question", "text": "Your name?", "variable": "name", "next": "bye"},
            "bye": {"type": "end", "text": goodbye},
        },
    }


@pytest.fixture
def bot(tenant):
    bot = BotFactory(tenant=tenant, draft_definition=short_flow("Bye from v1, {{name}}."))
    trained(bot_publish(bot=bot))
    return bot_launch(bot=bot)


def publish_v2(bot) -> BotVersion:
    draft_update(bot=bot, definition=short_flow("Bye from v2, {{name}}."))
    trained(bot_publish(bot=bot))
    bot.refresh_from_db()
    return bot.published_version


def texts(conversation: Conversation) -> list[str]:
    """The conversation's messages after the bot's welcome text."""
    messages = Message.objects.filter(conversation=conversation).order_by("id")
    return list(messages.values_list("text", flat=True))[1:]


def test_a_web_chat_message_after_the_end_starts_a_new_conversation_on_the_live_version(bot):
    first, _ = webchat_says(bot, "vis-1", "Ann", external_id="m1")
    first.refresh_from_db()
    assert texts(first) == ["Your name?", "Ann", "Bye from v1, Ann."]
    assert first.status == Conversation.Status.RESOLVED and first.resolved_at is not None
    v1 = first.bot_version_id

    v2 = publish_v2(bot)
    # The socket still watches the ended conversation; the message goes to a new one.
    second, _ = webchat_says(bot, "vis-1", "Bea", external_id="m2", conversation_id=first.pk)
    assert second.pk != first.pk
    assert second.bot_version_id == v2.pk != v1
    assert texts(second) == ["Your name?", "Bea", "Bye from v2, Bea."]
    assert texts(first) == ["Your name?", "Ann", "Bye from v1, Ann."]  # untouched


def test_a_channel_message_after_the_end_starts_a_new_conversation_on_the_live_version(
    bot, client, settings, django_capture_on_commit_callbacks
):
    settings.CHANNEL_RATE_LIMITS = False
    with FakeTelegram() as fake:
        point_settings_at(settings, "telegram", fake)
        channel = make_channel("telegram", bot=bot)
        update = json.loads(raw("telegram/text.json"))

        def send(update_id: int, text: str):
            update["update_id"] = update_id
            update["message"]["message_id"] = update_id
            update["message"]["text"] = text
            update["message"].pop("entities", None)
            with django_capture_on_commit_callbacks(execute=True):
                response = signed_post(client, channel, json.dumps(update).encode())
            assert response.status_code == 200, response.content

        send(1001, "hello")  # opens the conversation: the greeting asks the name
        send(1002, "Ann")
        first = Conversation.objects.get()
        assert first.status == Conversation.Status.RESOLVED
        assert texts(first)[-1] == "Bye from v1, Ann."
        v2 = publish_v2(bot)
        send(1003, "hello again")
        send(1004, "Bea")

    second = Conversation.objects.exclude(pk=first.pk).get()
    assert second.bot_version_id == v2.pk
    assert texts(second)[-1] == "Bye from v2, Bea."
    assert [r.json["text"] for r in fake.requests if r.json][-1] == "Bye from v2, Bea."


def test_an_end_while_agents_hold_the_conversation_leaves_it_to_them(bot):
    conversation, _ = webchat_says(bot, "vis-2", "hi", external_id="x1")
    Conversation.objects.filter(pk=conversation.pk).update(
        status=Conversation.Status.ASSIGNED, resolved_at=None
    )
    conversation.refresh_from_db()
    services.bot_turn(conversation=conversation, event=services.Event(type="start"))
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.ASSIGNED
