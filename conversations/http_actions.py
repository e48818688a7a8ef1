"""A flow's HTTP request node as the worker sees it (``bots.hooks.http_action_*``): whether
a conversation still waits for a request's answer, and resuming the flow with it."""

from __future__ import annotations

from conversations.models import Conversation
from conversations.services import bot_http_resume


def http_action_awaited(*, conversation_id: int, action_id: str) -> bool:
    """Whether the conversation still waits for this request (not gone, not resumed yet)."""
    return Conversation.objects.filter(pk=conversation_id, awaiting_action=action_id).exists()


def http_action_resume(
    *, conversation_id: int, action_id: str, outcome: dict, request_id: int | None
) -> None:
    """Resume the flow with the request's outcome (once: a second answer is ignored)."""
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        return
    bot_http_resume(
        conversation=conversation, action_id=action_id, http=outcome, request_id=request_id
    )
