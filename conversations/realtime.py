"""What goes out on the channel layer, after the transaction commits.

Groups: ``conversation.<id>`` (every socket of the visitor and the agents watching it),
``visitor.<id>`` (every tab of a web chat visitor), ``tenant.<id>.agents`` (the console).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from channels.layers import get_channel_layer
from django.db import transaction

from chattonic.tenancy.selectors import staff_public_name

# Where a socket consumer collects the broadcasts of the sync work it runs in a thread, to
# send them itself from its event loop: no thread hop per event, and it can join a new
# conversation's group before that conversation's first events go out.
_collector: ContextVar[list | None] = ContextVar("chattonic_realtime_collector", default=None)


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def visitor_group(visitor_id: str) -> str:
    return f"visitor.{visitor_id}"


def agents_group(tenant_id: int) -> str:
    return f"tenant.{tenant_id}.agents"


def send_now(group: str, event: dict) -> None:
    """Broadcast ``event`` to ``group`` from sync code (not on an event loop: from there,
    ``await channel_layer.group_send``)."""
    get_channel_layer().group_send_blocking(group, event)


def send_on_commit(group: str, event: dict) -> None:
    """Broadcast ``event`` to ``group`` once the current transaction commits (or, inside
    ``collecting()``, hand it to the collector then)."""
    into = _collector.get()
    if into is not None:
        transaction.on_commit(lambda: into.append((group, event)))
    else:
        # Robust: a channel layer that does not answer (Redis frozen) is logged, and the
        # commit's other callbacks (the replies' sends) still run.
        transaction.on_commit(lambda: send_now(group, event), robust=True)


@contextmanager
def collecting(into: list) -> Iterator[list]:
    """Within the block (sync code), committed broadcasts are appended to ``into`` as
    ``(group, event)`` instead of being sent; the caller sends them (``broadcast``)."""
    token = _collector.set(into)
    try:
        yield into
    finally:
        _collector.reset(token)


async def broadcast(channel_layer, events: list) -> None:
    """Send what ``collecting()`` gathered, in commit order."""
    for group, event in events:
        await channel_layer.group_send(group, event)


def message_payload(message) -> dict:
    """A message as the widget and the console see it (an agent by their public name: the
    visitor is in the same group)."""
    return payload(
        id=message.pk,
        conversation=message.conversation_id,
        direction=message.direction,
        sender=message.sender,
        agent=staff_public_name(message.agent) if message.agent_id else None,
        kind=message.kind,
        text=message.text,
        data=message.data,
        client_id=message.external_id if message.channel_id is None else None,
        status=message.status,
        created_at=message.created_at,
    )


def payload(
    *, id, conversation, direction, sender, agent, kind, text, data, client_id, status, created_at
) -> dict:
    """``message_payload`` from the message's values (the web chat's fast lane has no model
    instances)."""
    return {
        "id": id,
        "conversation": conversation,
        "direction": direction,
        "sender": sender,
        "agent": agent,
        "kind": kind,
        "text": text,
        "quick_replies": data.get("quick_replies", []),
        "media": data.get("media"),
        "client_id": client_id,
        "away": bool(data.get("away")),
        "status": status,
        "created_at": created_at.isoformat(),
    }


class MessageEvents:
    """A conversation group's message events, as the widget's and the console's sockets pass
    them on (mixed into their consumers)."""

    async def message_created(self, event):
        if event.get("origin") == self.channel_name:
            return  # the socket that sent it has it already (its ``ack``)
        await self.send_json({"type": "message", "message": event["message"]})

    async def message_status(self, event):
        await self.send_json({"type": "status", "id": event["id"], "status": event["status"]})

    async def message_read(self, event):
        await self.send_json({"type": "read", "ids": event["ids"]})
