"""What goes out on the channel layer, after the transaction commits.

Groups: ``conversation.<id>`` (every socket of the visitor and the agents watching it),
``visitor.<id>`` (every tab of a web chat visitor), ``tenant.<id>.agents`` (the console).
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def visitor_group(visitor_id: str) -> str:
    return f"visitor.{visitor_id}"


def agents_group(tenant_id: int) -> str:
    return f"tenant.{tenant_id}.agents"


def send_now(group: str, event: dict) -> None:
    async_to_sync(get_channel_layer().group_send)(group, event)


def send_on_commit(group: str, event: dict) -> None:
    """Broadcast ``event`` to ``group`` once the current transaction commits."""
    transaction.on_commit(lambda: send_now(group, event))


def message_payload(message) -> dict:
    """A message as the widget and the console see it."""
    return {
        "id": message.pk,
        "conversation": message.conversation_id,
        "direction": message.direction,
        "sender": message.sender,
        "agent": (message.agent.get_full_name() or message.agent.get_username())
        if message.agent_id
        else None,
        "kind": message.kind,
        "text": message.text,
        "quick_replies": message.data.get("quick_replies", []),
        "media": message.data.get("media"),
        "client_id": message.external_id if message.channel_id is None else None,
        "away": bool(message.data.get("away")),
        "status": message.status,
        "created_at": message.created_at.isoformat(),
    }
