"""What the console hears, after the commit: queue and conversation changes, notes, presence."""

from __future__ import annotations

from chattonic.tenancy.selectors import staff_public_name
from conversations import realtime


def conversation_summary(conversation) -> dict:
    contact = conversation.contact
    agent = conversation.assigned_agent
    return {
        "id": conversation.pk,
        "status": conversation.status,
        "bot": conversation.bot.name,
        "channel": conversation.channel_kind,
        "contact": {"id": contact.pk, "name": str(contact), "email": contact.email},
        "team": conversation.team.name if conversation.team_id else None,
        "agent": {"id": agent.pk, "name": agent.get_full_name() or agent.get_username()}
        if agent
        else None,
        "reason": conversation.handoff_reason,
        "sandbox": conversation.is_sandbox,
        "queued_at": conversation.queued_at.isoformat() if conversation.queued_at else None,
        "last_message_at": conversation.last_message_at.isoformat(),
    }


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
                "status": conversation.status,
                "agent": staff_public_name(conversation.assigned_agent),
            },
        },
    )


def note_payload(note) -> dict:
    author = note.author
    return {
        "id": note.pk,
        "conversation": note.conversation_id,
        "text": note.text,
        "author": (author.get_full_name() or author.get_username()) if author else None,
        "created_at": note.created_at.isoformat(),
    }


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
