"""Reads for the agent console."""

from __future__ import annotations

from agents.models import AgentProfile, CannedResponse, Note, Team
from agents.realtime import conversation_summary, note_payload
from conversations import realtime
from conversations.models import Conversation, Lead
from conversations.selectors import conversation_history

QUEUE_LIMIT = 200


def console_state(*, profile: AgentProfile) -> dict:
    """What the console shows on connect: me, the queue, my conversations, the team."""
    tenant_id = profile.tenant_id
    conversations = Conversation.objects.for_tenant(tenant_id).select_related(
        "bot", "contact", "team", "assigned_agent"
    )
    queue = conversations.filter(status=Conversation.Status.QUEUED, is_sandbox=False).order_by(
        "queued_at", "pk"
    )[:QUEUE_LIMIT]
    mine = conversations.filter(
        status=Conversation.Status.ASSIGNED, assigned_agent_id=profile.user_id
    ).order_by("-last_message_at")[:QUEUE_LIMIT]
    agents = AgentProfile.objects.for_tenant(tenant_id).select_related("user")
    return {
        "me": {"id": profile.user_id, "name": str(profile), "presence": profile.presence},
        "queue": [conversation_summary(c) for c in queue],
        "mine": [conversation_summary(c) for c in mine],
        "agents": [{"id": a.user_id, "name": str(a), "presence": a.presence} for a in agents],
        "teams": [{"id": t.pk, "name": t.name} for t in Team.objects.for_tenant(tenant_id)],
        "canned": [
            {"shortcut": c.shortcut, "text": c.text}
            for c in CannedResponse.objects.for_tenant(tenant_id)
        ],
    }


def conversation_detail(*, conversation: Conversation) -> dict:
    """A conversation's full history (bot messages included), notes, contact and flow."""
    from bots.selectors import bot_runtime

    messages = conversation_history(conversation=conversation, limit=500)
    notes = Note.objects.for_tenant(conversation.tenant_id).filter(conversation=conversation)
    contact = conversation.contact
    leads = Lead.objects.for_tenant(conversation.tenant_id).filter(contact=contact)[:20]
    nodes = bot_runtime(conversation.bot, conversation.bot_version_id).definition.get("nodes", {})
    return {
        "conversation": conversation_summary(conversation),
        "messages": [realtime.message_payload(m) for m in messages],
        "notes": [note_payload(n) for n in notes.select_related("author")],
        "contact": {
            "id": contact.pk,
            "name": contact.name,
            "email": contact.email,
            "phone": contact.phone,
            "attributes": contact.attributes,
            "leads": [
                {"id": lead.pk, "status": lead.status, "fields": lead.fields} for lead in leads
            ],
        },
        "nodes": [{"id": node_id, "type": node.get("type")} for node_id, node in nodes.items()],
    }
