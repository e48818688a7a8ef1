"""What the web chat reads besides the conversations' own selectors: the away form's state."""

from __future__ import annotations

from conversations.models import Conversation, Message
from leads.models import Lead

# The away form's states in a conversation (the ``history`` frame's ``away_form``).
AWAY_OFFERED = "offered"  # nobody can answer: the visitor may leave their details
AWAY_ANSWERED = "answered"  # they did, in this handoff (sending again updates that lead)


def away_form_offered(conversation: Conversation) -> bool:
    """Whether the away form is on offer: the conversation waits for an agent and got the
    away message since it was queued (an agent joined, a transfer or a resolve ends it)."""
    if conversation.status != Conversation.Status.QUEUED:
        return False
    away = Message.objects.for_tenant(conversation.tenant_id).filter(
        conversation=conversation, sender=Message.Sender.SYSTEM, data__away=True
    )
    if conversation.queued_at is not None:
        away = away.filter(created_at__gte=conversation.queued_at)
    return away.exists()


def away_form_leads(conversation: Conversation):
    """The leads the away form left in the conversation's current handoff (one at most)."""
    leads = Lead.objects.for_tenant(conversation.tenant_id).filter(
        conversation=conversation, source=Lead.Source.AWAY_FORM
    )
    if conversation.queued_at is not None:
        leads = leads.filter(created_at__gte=conversation.queued_at)
    return leads


def away_form_state(conversation: Conversation) -> str | None:
    """The away form's state in the conversation: AWAY_OFFERED, AWAY_ANSWERED (the details
    were left in this handoff), or None (not on offer: the widget shows no form)."""
    if not away_form_offered(conversation):
        return None
    return AWAY_ANSWERED if away_form_leads(conversation).exists() else AWAY_OFFERED
