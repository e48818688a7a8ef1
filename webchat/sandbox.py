"""The dashboard's test chat as the flow editor sees it (``bots.hooks.sandbox_node``)."""

from __future__ import annotations

from bots.models import Bot
from conversations.services import webchat_conversation_current
from webchat import services as webchat


def sandbox_node(bot: Bot, token: str) -> str | None:
    """The node the sandbox conversation opened with ``token`` (the widget's session token,
    signed for this bot) is on, or None."""
    visitor_id = webchat.visitor_from_token(token, bot.pk)
    if visitor_id is None:
        return None
    conversation = webchat_conversation_current(bot=bot, visitor_id=visitor_id, sandbox=True)
    state = conversation.engine_state if conversation is not None else None
    node = state.get("node") if isinstance(state, dict) else None
    return node if isinstance(node, str) else None
