"""Reads for the agent console: its lists (Mine, Unassigned, All), a conversation's summary
and detail, notes."""

from __future__ import annotations

from django.db.models import Count, F, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils.translation import get_language_info

from agents.models import (
    AgentProfile,
    CannedResponse,
    ConversationSeen,
    HandoffEvent,
    Note,
    Team,
)
from bots.diagram import step_title
from bots.selectors import bot_runtime
from chattonic.core.errors import NotFound
from chattonic.tenancy.models import Membership
from chattonic.tenancy.selectors import staff_display_name
from conversations import realtime
from conversations.hooks import StaffEntry
from conversations.models import Conversation, Message
from conversations.selectors import conversation_history
from leads.models import Lead

QUEUE_LIMIT = 200
PREVIEW_CHARS = 120
Status = Conversation.Status

# The console's views of the conversations with the agents (the bot's own are not listed).
VIEWS = ("mine", "unassigned", "all", "resolved")


def _view(queryset: QuerySet, *, view: str, user_id: int) -> QuerySet:
    if view == "mine":
        return queryset.filter(status=Status.ASSIGNED, assigned_agent_id=user_id).order_by(
            "-last_message_at", "-pk"
        )
    if view == "unassigned":
        return queryset.filter(status=Status.QUEUED).order_by("queued_at", "pk")
    if view == "all":
        return queryset.filter(status__in=(Status.QUEUED, Status.ASSIGNED)).order_by(
            "-last_message_at", "-pk"
        )
    if view == "resolved":
        # Those the agents resolved (queued_at: a person had it), the latest first: a
        # resolved chat left every view, and nothing in the console found it again.
        return queryset.filter(status=Status.RESOLVED, queued_at__isnull=False).order_by(
            F("resolved_at").desc(nulls_last=True), "-pk"
        )
    raise ValueError(f"No view {view!r}; one of {', '.join(VIEWS)}.")


def console_conversations(*, profile: AgentProfile, view: str) -> list[dict]:
    """One of the console's lists, for this agent: ``mine`` (assigned to them, latest
    activity first), ``unassigned`` (the queue, first in first out), ``all`` (queued or
    assigned to anyone) or ``resolved`` (resolved after a handoff, the latest first; at
    most QUEUE_LIMIT, as every view). Sandbox conversations are never listed. Each item is
    the conversation's summary and the agent's ``unread`` count."""
    conversations = Conversation.objects.for_tenant(profile.tenant_id).filter(is_sandbox=False)
    page = _view(conversations, view=view, user_id=profile.user_id)[:QUEUE_LIMIT]
    return _summaries(page, unread_for=profile.user_id)


def console_state(*, profile: AgentProfile) -> dict:
    """What the console shows on connect: me, the three views, the agents, teams, canned."""
    tenant_id = profile.tenant_id
    agents = AgentProfile.objects.for_tenant(tenant_id).select_related("user")
    user = profile.user
    return {
        "me": {
            "id": profile.user_id,
            "name": str(profile),
            "first_name": user.first_name,
            "last_name": user.last_name,
            "presence": profile.presence,
            # Owners and admins act on any agent's conversation; an agent on their own.
            "admin": Membership.objects.for_tenant(tenant_id)
            .filter(user=user)
            .exclude(role=Membership.Role.AGENT)
            .exists(),
        },
        "views": {view: console_conversations(profile=profile, view=view) for view in VIEWS},
        "agents": [{"id": a.user_id, "name": str(a), "presence": a.presence} for a in agents],
        "teams": [{"id": t.pk, "name": t.name} for t in Team.objects.for_tenant(tenant_id)],
        "canned": [
            {"shortcut": c.shortcut, "text": c.text}
            for c in CannedResponse.objects.for_tenant(tenant_id)
        ],
    }


def conversation_summary(conversation: Conversation) -> dict:
    """A conversation as the console lists it (the same for every agent: no unread count)."""
    one = Conversation.objects.for_tenant(conversation.tenant_id).filter(pk=conversation.pk)
    return _summaries(one)[0]


def _summaries(conversations: QuerySet, *, unread_for: int | None = None) -> list[dict]:
    """Summaries of ``conversations`` in its order, in two queries whatever their number:
    the conversations with their last message's id and waiting time (subqueries on the
    messages' (conversation, created_at) index), then those last messages."""
    of_it = Message.objects.filter(conversation=OuterRef("pk"))
    conversations = conversations.select_related(
        "bot", "contact", "team", "assigned_agent"
    ).annotate(
        last_message_id=Subquery(of_it.order_by("-created_at", "-id").values("pk")[:1]),
        last_agent_at=Subquery(
            of_it.filter(sender=Message.Sender.AGENT)
            .order_by("-created_at")
            .values("created_at")[:1]
        ),
    )
    conversations = conversations.annotate(
        contact_messages=_count(of_it.filter(direction=Message.Direction.IN)),
        # The visitor's first message since the agent last wrote (none: the agent had the
        # last word).
        unanswered_since=Subquery(
            of_it.filter(direction=Message.Direction.IN, created_at__gt=OuterRef("last_agent_at"))
            .order_by("created_at")
            .values("created_at")[:1]
        ),
    )
    if unread_for is not None:
        seen = ConversationSeen.objects.filter(
            tenant_id=OuterRef("tenant_id"), conversation=OuterRef("pk"), agent_id=unread_for
        )
        conversations = conversations.annotate(
            seen_up_to=Coalesce(Subquery(seen.values("message_id")[:1]), Value(0))
        ).annotate(
            unread=_count(
                of_it.filter(direction=Message.Direction.IN, pk__gt=OuterRef("seen_up_to"))
            )
        )
    rows = list(conversations)
    last = Message.objects.in_bulk([c.last_message_id for c in rows if c.last_message_id])
    items = []
    for conversation in rows:
        item = _summary(conversation, last.get(conversation.last_message_id))
        if unread_for is not None:
            item["unread"] = conversation.unread
        items.append(item)
    return items


def _count(messages: QuerySet):
    """The number of ``messages`` (a subquery on the outer conversation), 0 for none."""
    counted = messages.order_by().values("conversation").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _summary(conversation: Conversation, last: Message | None) -> dict:
    contact = conversation.contact
    agent = conversation.assigned_agent
    return {
        "id": conversation.pk,
        "status": conversation.status,
        "status_label": conversation.get_status_display(),
        "bot": conversation.bot.name,
        "channel": conversation.channel_kind,
        "channel_label": conversation.get_channel_kind_display(),
        "contact": {"id": contact.pk, "name": str(contact), "email": contact.email},
        "team": conversation.team.name if conversation.team_id else None,
        "agent": {"id": agent.pk, "name": staff_display_name(agent)} if agent else None,
        "reason": conversation.handoff_reason,
        "sandbox": conversation.is_sandbox,
        "queued_at": _iso(conversation.queued_at),
        "resolved_at": _iso(conversation.resolved_at),
        "last_message_at": _iso(conversation.last_message_at),
        "last_message": _preview(last),
        # The visitor's messages in all: a console that first hears of the conversation live
        # counts them unread (each agent's own count comes with ``hello``).
        "contact_messages": conversation.contact_messages,
        "waiting_since": _iso(_waiting_since(conversation)),
    }


def _waiting_since(conversation: Conversation):
    """Since when the visitor waits for a person: a queued conversation since its hand-off;
    an assigned one since the visitor's first message after the agent's last reply, or
    since the hand-off while no agent has replied in it. None when nobody waits."""
    if conversation.status == Status.QUEUED:
        return conversation.queued_at
    if conversation.status != Status.ASSIGNED:
        return None
    replied = conversation.last_agent_at
    if replied is None or (conversation.queued_at and replied < conversation.queued_at):
        return conversation.queued_at
    return conversation.unanswered_since


def _preview(message: Message | None) -> dict | None:
    if message is None:
        return None
    text = " ".join((message.text or "").split())
    if len(text) > PREVIEW_CHARS:
        text = text[: PREVIEW_CHARS - 1].rstrip() + "…"
    return {
        "text": text or f"({message.get_kind_display().lower()})",
        "sender": message.sender,
        "created_at": _iso(message.created_at),
    }


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def staff_entries(*, conversation: Conversation) -> list[StaffEntry]:
    """The conversation's private notes and changes of hands (conversations.hooks), oldest
    first, in words: "Claimed from the queue · Maya Lopez", "Transferred · to team Billing"."""
    tenant_id = conversation.tenant_id
    notes = (
        Note.objects.for_tenant(tenant_id)
        .filter(conversation=conversation)
        .select_related("author")
    )
    entries = [
        StaffEntry(
            kind="note",
            who=f"Private note by {staff_display_name(n.author) if n.author else 'an agent'}",
            text=n.text,
            created_at=n.created_at,
        )
        for n in notes
    ]
    events = (
        HandoffEvent.objects.for_tenant(tenant_id)
        .filter(conversation=conversation)
        .select_related("actor", "agent", "team")
    )
    for event in events:
        parts = [event.get_reason_display()]
        if event.agent is not None and event.to_status == Status.ASSIGNED:
            parts.append(f"with {staff_display_name(event.agent)}")
        if event.detail:  # a transfer's "to team Billing", a flow's handoff code
            parts.append(event.detail)
        elif event.team is not None and event.to_status == Status.QUEUED:
            parts.append(f"for team {event.team.name}")
        entries.append(
            StaffEntry(
                kind="handoff",
                who=staff_display_name(event.actor) if event.actor else "",
                text=" · ".join(parts),
                created_at=event.created_at,
            )
        )
    return sorted(entries, key=lambda entry: entry.created_at)


def note_payload(note: Note) -> dict:
    author = note.author
    return {
        "id": note.pk,
        "conversation": note.conversation_id,
        "text": note.text,
        "author": staff_display_name(author) if author else None,
        "created_at": note.created_at.isoformat(),
    }


def _language_name(code: str) -> str:
    """``fr`` → "French": the language's English name, the code itself when Django has none."""
    try:
        return get_language_info(code)["name"]
    except KeyError:
        return code


def conversation_detail(*, conversation: Conversation) -> dict:
    """A conversation's full history (bot messages included), notes, contact and flow."""
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
            # What we know of any visitor, named or not: the panel is never empty.
            "channel": conversation.get_channel_kind_display(),
            "language": _language_name(conversation.language),
            "first_seen": _iso(contact.created_at),
            "previous_conversations": Conversation.objects.for_tenant(conversation.tenant_id)
            .filter(contact=contact, created_at__lt=conversation.created_at)
            .exclude(pk=conversation.pk)
            .count(),
            "leads": [
                {"id": lead.pk, "status": lead.status, "fields": lead.fields} for lead in leads
            ],
        },
        "nodes": [
            {"id": node_id, "type": node.get("type"), "title": step_title(node_id, node)}
            for node_id, node in nodes.items()
        ],
    }


def conversations_records_export(
    *, tenant_id: int, conversation_ids: list[int]
) -> dict[int, dict[str, list[dict]]]:
    """A contact's export (``privacy.hooks.contact_exporting``): each conversation's
    notes and handoff history, JSON-ready."""
    records: dict[int, dict[str, list[dict]]] = {
        pk: {"notes": [], "handoffs": []} for pk in conversation_ids
    }
    for note in Note.objects.for_tenant(tenant_id).filter(conversation_id__in=conversation_ids):
        records[note.conversation_id]["notes"].append(
            {"text": note.text, "created_at": _iso(note.created_at)}
        )
    for event in HandoffEvent.objects.for_tenant(tenant_id).filter(
        conversation_id__in=conversation_ids
    ):
        records[event.conversation_id]["handoffs"].append(
            {
                "from": event.from_status,
                "to": event.to_status,
                "reason": event.reason,
                "created_at": _iso(event.created_at),
            }
        )
    return records


# --- Lookups for the doors --------------------------------------------------------------------


def conversation_for_agent(*, tenant_id: int, conversation_id: int) -> Conversation:
    """The tenant's conversation with its bot and contact; NotFound for another's or none."""
    found = (
        Conversation.objects.for_tenant(tenant_id)
        .select_related("bot", "contact")
        .filter(pk=conversation_id)
        .first()
    )
    if found is None:
        raise NotFound("No such conversation.")
    return found


def tenant_agent(*, tenant_id: int, user_id: int):
    """The active staff member of the tenant with this user id (any role may answer), or
    None."""
    membership = (
        Membership.objects.for_tenant(tenant_id)
        .select_related("user")
        .filter(user_id=user_id, user__is_active=True)
        .first()
    )
    return membership.user if membership is not None else None


def team_named(*, tenant_id: int, name: str) -> Team | None:
    """The tenant's team with this name (any case), or None."""
    if not name:
        return None
    return Team.objects.for_tenant(tenant_id).filter(name__iexact=name).first()


def team_for_id(*, tenant_id: int, team_id: int) -> Team | None:
    """The tenant's team with this id, or None."""
    return Team.objects.for_tenant(tenant_id).filter(pk=team_id).first()
