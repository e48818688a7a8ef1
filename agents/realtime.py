"""What the console hears, after the commit: queue and conversation changes, notes, presence;
and what the visitor hears of a change (the widget's notices)."""

from __future__ import annotations

from agents.selectors import conversation_summary, note_payload
from chattonic.tenancy.selectors import staff_public_name
from conversations import realtime
from conversations.models import Conversation, HandoffReason


def visitor_notice(conversation, reason: str = "") -> str | None:
    """What the visitor is told of a transition: an agent joined (a claim, an automatic
    assignment, a take-over, a transfer to an agent), the agent passed them on to a team's
    queue (else they believed the agent still there), or the conversation was resolved.
    Going back to the queue otherwise (the agent's console went silent) or to the bot is
    not announced."""
    if conversation.status == Conversation.Status.ASSIGNED:
        return "agent_joined"
    if conversation.status == Conversation.Status.RESOLVED:
        return "resolved"
    if conversation.status == Conversation.Status.QUEUED and reason == HandoffReason.TRANSFER:
        return "transferred"
    return None


def conversation_changed_on_commit(conversation, *, reason: str) -> None:
    summary = conversation_summary(conversation)
    if not conversation.is_sandbox:
        realtime.send_on_commit(
            realtime.agents_group(conversation.tenant_id),
            {"type": "conversation.changed", "conversation": summary, "reason": reason},
        )
    # The conversation's group reaches the visitor: the agent by their public name only.
    realtime.send_on_commit(
        realtime.conversation_group(conversation.pk),
        {
            "type": "conversation.updated",
            "conversation": {
                "id": conversation.pk,
                "status": conversation.status,
                "agent": staff_public_name(conversation.assigned_agent),
                "notice": visitor_notice(conversation, reason),
            },
        },
    )


def note_added_on_commit(note) -> None:
    # The tenant's agents group, never the conversation's group (the visitor is in it).
    realtime.send_on_commit(
        realtime.agents_group(note.tenant_id), {"type": "note.added", "note": note_payload(note)}
    )


def presence_changed_on_commit(profile) -> None:
    realtime.send_on_commit(
        realtime.agents_group(profile.tenant_id),
        {
            "type": "presence.changed",
            "agent": {"id": profile.user_id, "name": str(profile), "presence": profile.presence},
        },
    )
