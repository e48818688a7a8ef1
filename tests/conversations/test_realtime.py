"""conversations.realtime: what a socket consumer broadcasts after its transaction."""

from __future__ import annotations

from conversations.realtime import _coalesced


def created(text: str) -> dict:
    return {"type": "message.created", "message": {"text": text}}


def test_consecutive_messages_of_one_group_go_as_one_event_in_order():
    typing = {"type": "typing", "sender": "bot", "on": False}
    events = [
        ("conversation.1", created("hi")),
        ("conversation.1", created("Hello!")),
        ("conversation.1", created("How can I help?")),
        ("conversation.2", created("elsewhere")),
        ("conversation.1", typing),
        ("conversation.1", created("later")),
    ]
    assert _coalesced(events) == [
        (
            "conversation.1",
            {
                "type": "messages.created",
                "messages": [{"text": "hi"}, {"text": "Hello!"}, {"text": "How can I help?"}],
            },
        ),
        ("conversation.2", created("elsewhere")),
        ("conversation.1", typing),
        ("conversation.1", created("later")),
    ]


def test_a_lone_message_keeps_its_own_event():
    assert _coalesced([("conversation.1", created("hi"))]) == [("conversation.1", created("hi"))]
