"""Reads for conversations shared by the doors."""

from __future__ import annotations

from conversations.models import Contact, ContactIdentity, Conversation, Message

HISTORY_PAGE = 50


def webchat_contact(*, tenant_id: int, visitor_id: str) -> Contact | None:
    identity = (
        ContactIdentity.objects.for_tenant(tenant_id)
        .select_related("contact")
        .filter(kind="webchat", channel__isnull=True, external_id=visitor_id)
        .first()
    )
    return identity.contact if identity else None


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
