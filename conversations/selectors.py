"""Reads for conversations shared by the doors."""

from __future__ import annotations

from conversations.models import Conversation, Message

HISTORY_PAGE = 50


def conversation_history(
    *, conversation: Conversation, before: int | None = None, limit: int = HISTORY_PAGE
) -> list[Message]:
    """The newest ``limit`` messages (older than ``before``), oldest first."""
    messages = Message.objects.for_tenant(conversation.tenant_id).filter(conversation=conversation)
    if before is not None:
        messages = messages.filter(pk__lt=before)
    page = list(messages.select_related("agent").order_by("-created_at", "-id")[:limit])
    page.reverse()
    return page
