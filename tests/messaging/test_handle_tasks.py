"""The bot's turns for stored channel messages: conversations_handle takes a burst in one task
call (a message whose turn fails is left for the channel sweep, the others are answered), and
a turn that keeps crashing is given up on after CHANNEL_HANDLE_MAX_FAILURES: a person takes the
conversation and the sweep stops queuing it."""

from __future__ import annotations

import pytest

from conversations import receive
from conversations.models import Conversation, Message
from conversations.receive import platforms
from messaging import tasks as messaging_tasks
from messaging.services import unhandled_messages_requeue
from messaging.tasks import conversation_handle, conversations_handle
from tests.fakes.channels import make_channel, signed_post, text_body

pytestmark = pytest.mark.django_db


def stored_unhandled(
    client, django_capture_on_commit_callbacks, users: int, *, one_sender: bool = False
) -> list[int]:
    """Stored, not yet handled, messages: one from each of ``users`` WhatsApp users (or, with
    ``one_sender``, that many from one user)."""
    import json

    channel = make_channel("whatsapp")
    template = json.loads(text_body("whatsapp"))
    ids = []
    for n in range(users):
        value = template["entry"][0]["changes"][0]["value"]
        sender = "15550000000" if one_sender else f"1555000{n:04d}"
        value["contacts"][0]["wa_id"] = value["messages"][0]["from"] = sender
        value["messages"][0]["id"] = f"wamid.batch{n}"
        with django_capture_on_commit_callbacks(execute=False):
            response = signed_post(client, channel, json.dumps(template).encode())
        assert response.status_code == 200
        ids.append(Message.objects.get(external_id=f"wamid.batch{n}").pk)
    return ids


def test_a_failing_turn_is_left_for_the_sweep_and_the_others_are_answered(
    client, django_capture_on_commit_callbacks, monkeypatch, settings
):
    settings.CHANNEL_RATE_LIMITS = False
    first, failing, last = stored_unhandled(client, django_capture_on_commit_callbacks, 3)
    handle = receive.messages_answer

    def crashing(*, message_id):
        if message_id == failing:
            raise RuntimeError("the bot's turn crashed")
        return handle(message_id=message_id)

    monkeypatch.setattr(messaging_tasks, "messages_answer", crashing)
    with django_capture_on_commit_callbacks(execute=False):  # the replies' sends: not here
        conversations_handle([first, failing, last])

    handled = dict(
        Message.objects.filter(pk__in=[first, failing, last]).values_list("pk", "handled_at")
    )
    assert handled[first] is not None and handled[last] is not None
    assert handled[failing] is None  # channel_sweep queues it again
    for message_id in (first, last):
        conversation = Message.objects.get(pk=message_id).conversation_id
        assert Message.objects.filter(conversation_id=conversation, direction="out").exists()
    failing_conversation = Message.objects.get(pk=failing).conversation_id
    assert not Message.objects.filter(
        conversation_id=failing_conversation, direction="out"
    ).exists()


def test_a_turn_that_keeps_crashing_goes_to_a_person_and_leaves_the_sweep(
    client, django_capture_on_commit_callbacks, monkeypatch, settings
):
    settings.CHANNEL_RATE_LIMITS = False
    settings.CHANNEL_HANDLE_MAX_FAILURES = 3
    (message_id,) = stored_unhandled(client, django_capture_on_commit_callbacks, 1)
    conversation = Message.objects.get(pk=message_id).conversation

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in a flow's node")

    monkeypatch.setattr(platforms, "_turn", broken)
    for attempt in (1, 2):
        with pytest.raises(RuntimeError):
            conversation_handle(message_id)
        message = Message.objects.get(pk=message_id)
        assert (message.handle_failures, message.handled_at) == (attempt, None)
    # Still unhandled: the sweep queues it again.

    with pytest.raises(RuntimeError):
        conversation_handle(message_id)

    message = Message.objects.get(pk=message_id)
    assert message.handle_failures == 3 and message.handled_at is not None
    conversation.refresh_from_db()
    assert conversation.status != Conversation.Status.BOT
    assert conversation.handoff_reason == "bot_error"
    assert unhandled_messages_requeue(older_than_seconds=-60) == 0  # else it would crash here


def test_a_bursts_crash_counts_once_for_its_conversation(
    client, django_capture_on_commit_callbacks, monkeypatch, settings
):
    settings.CHANNEL_RATE_LIMITS = False
    ids = stored_unhandled(client, django_capture_on_commit_callbacks, 3, one_sender=True)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in a flow's node")

    monkeypatch.setattr(platforms, "_turn", broken)
    conversations_handle(ids)  # three messages of one conversation: one failed turn

    failures = set(Message.objects.filter(pk__in=ids).values_list("handle_failures", flat=True))
    assert failures == {1}
    assert Message.objects.filter(pk__in=ids, handled_at=None).count() == 3  # the sweep's
