"""The handoff state machine, the queue and its assignment, agents' replies, presence.

States of a conversation: bot -> queued -> assigned -> (resolved | bot). Every transition is
recorded as a HandoffEvent (who, when, why) and broadcast after the commit to the tenant's
console (``tenant.<id>.agents``) and to the conversation's sockets.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from agents import realtime as agents_realtime
from agents import selectors
from agents.models import (
    AgentProfile,
    CannedResponse,
    ConversationSeen,
    HandoffEvent,
    Note,
    Team,
)
from bots.engine import Event
from bots.hours import within_business_hours
from bots.selectors import bot_runtime
from chattonic.core.errors import Conflict, NotFound, ValidationFailed
from chattonic.tenancy.models import Membership, Tenant
from chattonic.tenancy.services import staff_name_set
from conversations.models import Conversation, Message
from conversations.services import (
    bot_turn,
    messages_mark_read,
    outbound_message,
    system_message,
)
from leads.models import Lead
from leads.services import lead_capture
from privacy.hooks import ContactErasing
from support.services import ticket_from_away_form
from webchat.selectors import away_form_leads, away_form_offered

Status = Conversation.Status
Reason = HandoffEvent.Reason
OPEN = (Status.QUEUED, Status.ASSIGNED)
STAMPS = ("queued_at", "assigned_at", "first_agent_response_at", "resolved_at")  # for stats
MAX_REPLY = 4096


# --- Agents -----------------------------------------------------------------------------------


def agent_profile(*, tenant_id: int, user) -> AgentProfile:
    """The profile of a member of the tenant (any role may answer); NotFound for others."""
    if (
        not Membership.objects.for_tenant(tenant_id)
        .filter(user=user, user__is_active=True)
        .exists()
    ):
        raise NotFound("No such agent.")
    profile, _ = AgentProfile.objects.get_or_create(user=user, defaults={"tenant_id": tenant_id})
    return profile


def _presence_cutoff():
    return timezone.now() - timedelta(seconds=settings.AGENT_HEARTBEAT_TIMEOUT)


def available_agents(*, tenant_id: int, team_id: int | None = None):
    """Online agents with a recent heartbeat and room for one more conversation, in
    round-robin order (longest since their last assignment first)."""
    agents = AgentProfile.objects.for_tenant(tenant_id).filter(**_online())
    if team_id:
        agents = agents.filter(teams__id=team_id)
    return (
        agents.annotate(
            open_count=Count(
                "user__assigned_conversations",
                filter=Q(user__assigned_conversations__status=Status.ASSIGNED),
            )
        )
        .filter(open_count__lt=F("capacity"))
        .order_by(F("last_assigned_at").asc(nulls_first=True), "pk")
    )


def _online() -> dict:
    """Who counts as online: chose to be, with a console that beat recently."""
    return {"presence": AgentProfile.Presence.ONLINE, "last_seen_at__gte": _presence_cutoff()}


def _unreachable(profile: AgentProfile) -> str | None:
    """Why the agent cannot be given a conversation now (None: they are online)."""
    if AgentProfile.objects.filter(pk=profile.pk, **_online()).exists():
        return None
    if profile.presence == AgentProfile.Presence.ONLINE:
        return f"{profile}'s console is not connected"
    return f"{profile} is {profile.get_presence_display().lower()}"


def _open_count(user) -> int:
    return Conversation.objects.filter(assigned_agent=user, status=Status.ASSIGNED).count()


# --- Transitions ------------------------------------------------------------------------------


def _record(conversation, from_status, reason, *, actor=None, detail: str = "") -> HandoffEvent:
    event = HandoffEvent.objects.create(
        tenant_id=conversation.tenant_id,
        conversation=conversation,
        from_status=from_status,
        to_status=conversation.status,
        reason=reason,
        actor=actor,
        agent=conversation.assigned_agent,
        team=conversation.team,
        detail=detail[:300],
    )
    agents_realtime.conversation_changed_on_commit(conversation, reason=reason)
    return event


def _locked(conversation: Conversation) -> Conversation:
    return (
        Conversation.objects.select_for_update()
        .select_related("bot", "contact")
        .get(pk=conversation.pk, tenant_id=conversation.tenant_id)
    )


def _team(tenant_id: int, team: Team | str | None) -> Team | None:
    """A team, or the tenant's team with this name (None when there is none)."""
    if isinstance(team, Team) or team is None:
        return team
    return selectors.team_named(tenant_id=tenant_id, name=team)


def flow_hand_off(
    *,
    conversation: Conversation,
    reason: str,
    team: Team | str | None = None,
    actor=None,
    text: str = "",
    own_text: bool = False,
) -> Conversation:
    """The receive service's hand-off (conversations.hooks.hand_off): the engine's own
    reasons, or a flow's handoff node's own code (flows.md: "sales_question", up to 40
    characters), which the conversation and its log call "the flow's handoff node", the log's
    detail keeping the code."""
    code = "" if reason in Reason.values else reason
    return conversation_hand_off(
        conversation=conversation,
        reason=Reason.FLOW if code else reason,
        team=team,
        actor=actor,
        code=code,
        text=text,
        own_text=own_text,
    )


@transaction.atomic
def conversation_hand_off(
    *,
    conversation: Conversation,
    reason: str,
    team: Team | str | None = None,
    actor=None,
    code: str = "",
    text: str = "",
    own_text: bool = False,
) -> Conversation:
    """Queue a bot conversation for a human (the flow, the visitor, the fallback limit).

    Changes ``conversation`` in place. When nobody can take it (no agent of the tenant
    online, or outside the bot's business hours) the visitor gets the away message and may
    leave contact details; otherwise ``text`` (the flow's handoff text: "I'm getting a
    person"), from the bot. When nobody can take it but the flow took the visitor's details
    itself (a lead of the conversation with an email or a phone) and has words of its own
    for the handoff (``own_text``: "Your ticket is open"), those are said instead, with no
    form asking the details again; the bot's ``ticket_after_hours`` opens its ticket from
    that lead. With the round-robin policy an available agent gets it at once.
    A test chat reaches no agent: where a visitor's would, it gets ``text`` and a note
    that says so (TEST_CHAT_HANDOFF).
    """
    if conversation.status == Status.RESOLVED:
        raise Conflict("This conversation is resolved.", code="resolved")
    if conversation.status in OPEN:
        return conversation  # already with the humans
    previous = conversation.status
    conversation.status = Status.QUEUED
    conversation.team = _team(conversation.tenant_id, team)
    conversation.handoff_reason = reason
    conversation.assigned_agent = None
    _new_episode(conversation)
    conversation.save(update_fields=["status", "team", "handoff_reason", "assigned_agent", *STAMPS])

    bot = conversation.bot
    open_now = within_business_hours(bot.business_hours, bot.time_zone, timezone.now())
    # Anyone online can take it: every agent's console lists the queue and may claim from it,
    # whatever the team (which routes the round-robin). Counting the team's agents only told
    # the visitor "nobody is available" while an agent online saw them waiting.
    answerable = open_now and available_agents(tenant_id=conversation.tenant_id).exists()
    left = _details_left(conversation) if not answerable and own_text and text else None
    if left is not None:
        outbound_message(conversation=conversation, sender=Message.Sender.BOT, text=text)
        if bot.ticket_after_hours:
            ticket_from_away_form(conversation=conversation, lead=left)
    elif not answerable:
        _away(conversation)
    elif text:
        outbound_message(conversation=conversation, sender=Message.Sender.BOT, text=text)
    if answerable and conversation.is_sandbox:
        system_message(conversation=conversation, text=TEST_CHAT_HANDOFF)
    # After what the visitor is told: the console's queue shows it as the last message.
    _record(conversation, previous, reason, actor=actor, detail=code)
    round_robin = Tenant.AssignmentPolicy.ROUND_ROBIN
    if (
        answerable
        and not conversation.is_sandbox
        and _policy(conversation.tenant_id) == round_robin
    ):
        transaction.on_commit(lambda: queue_dispatch(tenant_id=conversation.tenant_id))
    return conversation


# A test chat's handoff, when a visitor's would reach an agent: nobody is called from a test.
TEST_CHAT_HANDOFF = (
    "Test chat: no agent is called from here. A visitor's conversation would now wait for "
    "one of your agents in the agent console."
)


def _new_episode(conversation: Conversation) -> None:
    """A new handoff (after the bot had it back): the stats' timestamps start over; the
    HandoffEvents keep the earlier ones."""
    conversation.queued_at = timezone.now()
    conversation.assigned_at = conversation.first_agent_response_at = None
    conversation.resolved_at = None


def _policy(tenant_id: int) -> str:
    return Tenant.objects.values_list("assignment_policy", flat=True).get(pk=tenant_id)


def _details_left(conversation: Conversation) -> Lead | None:
    """The conversation's latest lead that holds a way to answer the visitor (an email or a
    phone), if any."""
    leads = Lead.objects.for_tenant(conversation.tenant_id).filter(conversation=conversation)
    for lead in leads.order_by("-pk")[:20]:
        fields = lead.fields or {}
        if any(str(fields.get(key) or "").strip() for key in ("email", "phone")):
            return lead
    return None


def _away(conversation: Conversation) -> None:
    system_message(conversation=conversation, text=conversation.bot.away_message, away=True)


def _assign(conversation: Conversation, profile: AgentProfile, reason: str, actor) -> None:
    previous = conversation.status
    now = timezone.now()
    conversation.status = Status.ASSIGNED
    conversation.assigned_agent = profile.user
    conversation.assigned_at = now
    conversation.save(update_fields=["status", "assigned_agent", "assigned_at"])
    AgentProfile.objects.filter(pk=profile.pk).update(last_assigned_at=now)
    _record(conversation, previous, reason, actor=actor)


def _lock_capacity(conversation: Conversation, user) -> AgentProfile:
    profile = agent_profile(tenant_id=conversation.tenant_id, user=user)
    # One agent's claims are serialised on their profile row, so capacity holds.
    profile = AgentProfile.objects.select_for_update().get(pk=profile.pk)
    if _open_count(user) >= profile.capacity:
        raise Conflict(
            f"You already hold {profile.capacity} conversations, your capacity.",
            code="over_capacity",
        )
    return profile


@transaction.atomic
def conversation_claim(*, conversation: Conversation, agent) -> Conversation:
    """An agent takes a queued conversation. Of many agents claiming at once, exactly one
    wins: the state moves with a conditional UPDATE, not a read then a write."""
    return _claim(conversation, agent, reason=Reason.CLAIM, actor=agent)


def _claim(conversation: Conversation, agent, *, reason: str, actor) -> Conversation:
    profile = _lock_capacity(conversation, agent)
    now = timezone.now()
    won = Conversation.objects.filter(
        pk=conversation.pk, tenant_id=conversation.tenant_id, status=Status.QUEUED
    ).update(status=Status.ASSIGNED, assigned_agent=agent, assigned_at=now)
    if not won:
        current = Conversation.objects.filter(
            pk=conversation.pk, tenant_id=conversation.tenant_id
        ).first()
        if current is None:
            raise NotFound("No such conversation.")
        if current.status == Status.RESOLVED:
            raise Conflict("This conversation is resolved.", code="resolved")
        if current.status == Status.ASSIGNED:
            raise Conflict("Another agent has this conversation.", code="already_assigned")
        raise Conflict(
            "This conversation is with the bot; take it over instead.", code="not_queued"
        )
    AgentProfile.objects.filter(pk=profile.pk).update(last_assigned_at=now)
    conversation = Conversation.objects.select_related("bot", "contact").get(pk=conversation.pk)
    _record(conversation, Status.QUEUED, reason, actor=actor)
    return conversation


@transaction.atomic
def conversation_take_over(*, conversation: Conversation, agent) -> Conversation:
    """An agent takes a conversation from the bot, or from the queue."""
    profile = _lock_capacity(conversation, agent)
    conversation = _locked(conversation)
    if conversation.status == Status.RESOLVED:
        raise Conflict("This conversation is resolved.", code="resolved")
    if conversation.status == Status.ASSIGNED:
        raise Conflict("Another agent has this conversation.", code="already_assigned")
    if conversation.status == Status.BOT:
        conversation.handoff_reason = Reason.AGENT_TAKEOVER
        _new_episode(conversation)
        conversation.save(update_fields=["handoff_reason", *STAMPS])
    _assign(conversation, profile, Reason.AGENT_TAKEOVER, agent)
    return conversation


def queue_dispatch(*, tenant_id: int) -> int:
    """Round-robin: give the queued conversations, oldest first, to available agents. A
    conversation whose team has nobody available waits, and the ones behind it are still
    served, however many wait for that team: a team found with nobody available (None: no
    agent at all) stays so for the rest of this run (assignments only fill agents up), and
    its conversations are no longer read."""
    if _policy(tenant_id) != Tenant.AssignmentPolicy.ROUND_ROBIN:
        return 0
    assigned = 0
    nobody: set[int | None] = set()
    while None not in nobody:
        with transaction.atomic():
            queue = Conversation.objects.for_tenant(tenant_id).filter(
                status=Status.QUEUED, is_sandbox=False
            )
            page = list(queue.exclude(team_id__in=nobody).order_by("queued_at", "pk")[:50])
            progress = False
            for conversation in page:
                if conversation.team_id in nobody:
                    continue
                candidates = available_agents(tenant_id=tenant_id, team_id=conversation.team_id)
                profile = candidates.first()
                if profile is None:
                    nobody.add(conversation.team_id)
                    progress = True  # the next page skips that team's conversations
                    continue
                try:
                    with transaction.atomic():
                        _claim(conversation, profile.user, reason=Reason.AUTO_ASSIGN, actor=None)
                except Conflict:
                    continue
                assigned += 1
                progress = True
                break
        if not progress:
            break
    return assigned


def _held_by(conversation: Conversation, actor) -> None:
    """Only the assigned agent, or the tenant's owners and admins, act on an assigned one."""
    if conversation.status == Status.RESOLVED:
        raise Conflict("This conversation is resolved.", code="resolved")
    if conversation.status == Status.ASSIGNED and conversation.assigned_agent_id != actor.pk:
        membership = (
            Membership.objects.for_tenant(conversation.tenant_id).filter(user=actor).first()
        )
        if membership is None:
            raise NotFound("No such conversation.")
        if membership.role == Membership.Role.AGENT:
            raise Conflict("Another agent has this conversation.", code="already_assigned")


@transaction.atomic
def conversation_transfer(
    *, conversation: Conversation, actor, to_agent=None, to_team: Team | None = None
) -> Conversation:
    """Move a conversation to another agent, or back to the queue of a team."""
    agent_profile(tenant_id=conversation.tenant_id, user=actor)
    conversation = _locked(conversation)
    _held_by(conversation, actor)
    if conversation.status == Status.BOT:
        raise Conflict("The bot has this conversation; take it over first.", code="not_with_agents")
    if to_agent is None and to_team is None:
        raise ValidationFailed.for_field("to", "Choose an agent or a team.")
    if to_team is not None and to_team.tenant_id != conversation.tenant_id:
        raise NotFound("No such team.")
    previous = conversation.status
    if to_agent is not None:
        profile = _lock_capacity(conversation, to_agent)
        why = _unreachable(profile)
        if why is not None:
            # The visitor is told that they joined: an agent who is not there stranded them
            # (and the one who sent it could no longer act on it).
            raise Conflict(
                f"{why}: transfer to an agent who is online, or to a team's queue.",
                code="agent_unavailable",
            )
        conversation.team = to_team or conversation.team
        conversation.save(update_fields=["team"])
        _assign(conversation, profile, Reason.TRANSFER, actor)
        return conversation
    conversation.status = Status.QUEUED
    conversation.team = to_team
    conversation.assigned_agent = None
    # Back in a queue, the visitor waits anew: the next first response is timed from here
    # (keeping the earlier one made it precede its queueing: 0 s in the statistics).
    _new_episode(conversation)
    conversation.save(update_fields=["status", "team", "assigned_agent", *STAMPS])
    _record(conversation, previous, Reason.TRANSFER, actor=actor, detail=f"to team {to_team}")
    transaction.on_commit(lambda: queue_dispatch(tenant_id=conversation.tenant_id))
    return conversation


@transaction.atomic
def conversation_resolve(*, conversation: Conversation, actor) -> Conversation:
    """Close the conversation; the visitor's next message starts a new one."""
    agent_profile(tenant_id=conversation.tenant_id, user=actor)
    conversation = _locked(conversation)
    _held_by(conversation, actor)
    previous = conversation.status
    conversation.status = Status.RESOLVED
    conversation.resolved_at = timezone.now()
    conversation.save(update_fields=["status", "resolved_at"])
    _record(conversation, previous, Reason.RESOLVE, actor=actor)
    transaction.on_commit(lambda: queue_dispatch(tenant_id=conversation.tenant_id))
    return conversation


@transaction.atomic
def conversation_hand_back(
    *, conversation: Conversation, actor, node: str | None = None
) -> list[Message]:
    """Give the conversation back to the bot, resuming the flow at ``node`` (or its start)."""
    agent_profile(tenant_id=conversation.tenant_id, user=actor)
    conversation = _locked(conversation)
    _held_by(conversation, actor)
    if conversation.status == Status.BOT:
        raise Conflict("The bot already has this conversation.", code="not_with_agents")
    if node is not None:
        definition_nodes = _definition_nodes(conversation)
        if node not in definition_nodes:
            raise ValidationFailed.for_field("node", f"The flow has no node {node!r}.")
    previous = conversation.status
    conversation.status = Status.BOT
    conversation.assigned_agent = None
    conversation.save(update_fields=["status", "assigned_agent"])
    _record(conversation, previous, Reason.HANDBACK, actor=actor, detail=node or "")
    replies = bot_turn(conversation=conversation, event=Event(type="handback", node=node))
    transaction.on_commit(lambda: queue_dispatch(tenant_id=conversation.tenant_id))
    return replies


def _definition_nodes(conversation: Conversation) -> dict:
    return bot_runtime(conversation.bot, conversation.bot_version_id).definition.get("nodes", {})


# --- Agents' messages -------------------------------------------------------------------------


@transaction.atomic
def agent_reply(
    *, conversation: Conversation, agent, text: str, expand_canned: bool = False
) -> Message:
    """An agent's answer: stored, then sent through the conversation's channel. With
    ``expand_canned`` (the console), a reply that is only ``/shortcut`` is the tenant's canned
    response, and an unknown shortcut is refused (``unknown_shortcut``), never sent."""
    text = (text or "").strip()
    if not text:
        raise ValidationFailed.for_field("text", "A reply needs some text.")
    if expand_canned:
        text = canned_expand(tenant_id=conversation.tenant_id, text=text)
    if len(text) > MAX_REPLY:
        raise ValidationFailed.for_field("text", f"At most {MAX_REPLY} characters.")
    agent_profile(tenant_id=conversation.tenant_id, user=agent)
    conversation = _locked(conversation)
    _held_by(conversation, agent)
    if conversation.status != Status.ASSIGNED:
        raise Conflict("Claim or take over the conversation to reply.", code="not_assigned")
    # The stored account, not the caller's copy: a console opened before the agent changed
    # their name would otherwise send the old one with the message.
    agent = get_user_model().objects.get(pk=agent.pk)
    message = outbound_message(
        conversation=conversation, sender=Message.Sender.AGENT, text=text, agent=agent
    )
    now = timezone.now()
    fields = ["last_message_at"]
    conversation.last_message_at = now
    if conversation.first_agent_response_at is None:
        conversation.first_agent_response_at = now
        fields.append("first_agent_response_at")
    conversation.save(update_fields=fields)
    return message


@transaction.atomic
def agent_send(*, conversation: Conversation, agent, text: str) -> Message:
    """An agent's message from the tenant's own system (the REST API): the agent takes the
    conversation over first when the bot or the queue has it, then replies."""
    if conversation.status in (Status.BOT, Status.QUEUED):
        conversation = conversation_take_over(conversation=conversation, agent=agent)
    return agent_reply(conversation=conversation, agent=agent, text=text)


@transaction.atomic
def note_add(*, conversation: Conversation, author, text: str) -> Note:
    """A private note, broadcast to the agents only; never to the visitor."""
    text = (text or "").strip()
    if not text:
        raise ValidationFailed.for_field("text", "A note needs some text.")
    agent_profile(tenant_id=conversation.tenant_id, user=author)
    note = Note.objects.create(
        tenant_id=conversation.tenant_id,
        conversation=conversation,
        author=author,
        text=text[:MAX_REPLY],
    )
    agents_realtime.note_added_on_commit(note)
    return note


SHORTCUT = re.compile(r"/([-a-zA-Z0-9_]+)")  # a CannedResponse's shortcut is a slug


def canned_expand(*, tenant_id: int, text: str) -> str:
    """A text that is only ``/shortcut`` becomes the tenant's canned response; an unknown
    shortcut is refused (ValidationFailed ``unknown_shortcut`` on ``text``) rather than sent
    as it is. Any other text stays as it is."""
    match = SHORTCUT.fullmatch(text.strip())
    if match is None:
        return text
    canned = CannedResponse.objects.for_tenant(tenant_id).filter(shortcut=match[1]).first()
    if canned is None:
        raise ValidationFailed.for_field(
            "text",
            f"No canned response /{match[1]}; type / to see them.",
            code="unknown_shortcut",
        )
    return canned.text


@transaction.atomic
def conversation_mark_seen(*, conversation: Conversation, agent) -> int:
    """The agent has the conversation in view: its messages so far are read by them (their
    console's unread count starts again from here). Returns the newest message id seen."""
    agent_profile(tenant_id=conversation.tenant_id, user=agent)
    newest = (
        Message.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    ) or 0
    ConversationSeen.objects.bulk_create(
        [
            ConversationSeen(
                tenant_id=conversation.tenant_id,
                conversation=conversation,
                agent=agent,
                message_id=newest,
                seen_at=timezone.now(),
            )
        ],
        update_conflicts=True,
        unique_fields=["tenant", "conversation", "agent"],
        update_fields=["message_id", "seen_at"],
    )
    if newest:  # the visitor's widget says "Read" under what the agent has seen
        messages_mark_read(conversation=conversation, up_to_id=newest, by_staff=True)
    return newest


@transaction.atomic
def agent_name_set(*, profile: AgentProfile, first_name: str, last_name: str = "") -> AgentProfile:
    """An agent changes their own name (the first name is what visitors see); the tenant's
    consoles hear it with the agent's presence."""
    staff_name_set(user=profile.user, first_name=first_name, last_name=last_name)
    agents_realtime.presence_changed_on_commit(profile)
    return profile


# --- Presence ---------------------------------------------------------------------------------


@transaction.atomic
def presence_set(*, profile: AgentProfile, presence: str) -> AgentProfile:
    """Set an agent online, away or offline; online agents may receive queued work."""
    if presence not in AgentProfile.Presence.values:
        raise ValidationFailed.for_field("presence", "online, away or offline.")
    AgentProfile.objects.filter(pk=profile.pk).update(
        presence=presence, last_seen_at=timezone.now()
    )
    profile.refresh_from_db()
    agents_realtime.presence_changed_on_commit(profile)
    if presence == AgentProfile.Presence.ONLINE:
        transaction.on_commit(lambda: queue_dispatch(tenant_id=profile.tenant_id))
    return profile


@transaction.atomic
def agent_connected(*, profile: AgentProfile) -> AgentProfile:
    """A console opened: the agent is online (unless they chose away)."""
    AgentProfile.objects.filter(pk=profile.pk).update(connections=F("connections") + 1)
    profile.refresh_from_db()
    presence = profile.presence
    if presence == AgentProfile.Presence.OFFLINE:
        presence = AgentProfile.Presence.ONLINE
    return presence_set(profile=profile, presence=presence)


@transaction.atomic
def agent_disconnected(*, profile: AgentProfile) -> AgentProfile:
    """A console closed: with no console left, the agent is offline."""
    profile = AgentProfile.objects.select_for_update().get(pk=profile.pk)
    profile.connections = max(0, profile.connections - 1)
    profile.save(update_fields=["connections"])
    if profile.connections == 0:
        return presence_set(profile=profile, presence=AgentProfile.Presence.OFFLINE)
    return profile


@transaction.atomic
def presence_heartbeat(*, profile: AgentProfile) -> AgentProfile:
    """The console is alive: keep the agent's presence fresh. A console the sweep took for
    dead (its beats were late) counts again and brings the agent back online."""
    profile = AgentProfile.objects.select_for_update().get(pk=profile.pk)
    if profile.presence == AgentProfile.Presence.OFFLINE and profile.connections == 0:
        # Swept (the sweep counts no console), yet one beats; one who chose "offline"
        # with a console open keeps their choice.
        profile.connections = 1
        profile.save(update_fields=["connections"])
        return presence_set(profile=profile, presence=AgentProfile.Presence.ONLINE)
    profile.last_seen_at = timezone.now()
    profile.save(update_fields=["last_seen_at"])
    return profile


def presence_sweep() -> int:
    """Agents whose consoles stopped beating (a crashed browser or server) go offline, and
    the conversations they held go back to the queue (reason ``agent_offline``), keeping
    their place, so that no visitor waits on an agent who is gone."""
    stale = AgentProfile.objects.exclude(presence=AgentProfile.Presence.OFFLINE).filter(
        Q(last_seen_at__lt=_presence_cutoff()) | Q(last_seen_at__isnull=True)
    )
    count = 0
    for profile in stale:
        with transaction.atomic():
            AgentProfile.objects.filter(pk=profile.pk).update(connections=0)
            presence_set(profile=profile, presence=AgentProfile.Presence.OFFLINE)
            _requeue_held_by(profile)
        count += 1
    return count


def _requeue_held_by(profile: AgentProfile) -> None:
    held = (
        Conversation.objects.for_tenant(profile.tenant_id)
        .select_for_update()
        .select_related("bot", "contact")
        .filter(assigned_agent_id=profile.user_id, status=Status.ASSIGNED)
    )
    requeued = False
    for conversation in held:
        conversation.status = Status.QUEUED
        conversation.assigned_agent = None
        conversation.save(update_fields=["status", "assigned_agent"])
        _record(conversation, Status.ASSIGNED, Reason.AGENT_OFFLINE, detail=str(profile))
        requeued = True
    if requeued:
        transaction.on_commit(lambda: queue_dispatch(tenant_id=profile.tenant_id))


# --- Away: contact details when nobody can answer ---------------------------------------------


@transaction.atomic
def away_contact_leave(*, conversation: Conversation, fields: dict) -> Lead:
    """The visitor left their details while nobody could answer: a lead (and, where the
    bot says so, a support ticket). Only while the away form is on offer (the conversation
    waits for an agent after the away message), and once per handoff: leaving the details
    again updates the same lead (and its one ticket)."""
    clean = {
        k: str(v).strip()[:1000]
        for k, v in fields.items()
        if k in ("name", "email", "phone", "message")
    }
    if not (clean.get("email") or clean.get("phone")):
        raise ValidationFailed.for_field("email", "Leave an email or a phone number.")
    if clean.get("email"):
        from django.core.exceptions import ValidationError
        from django.core.validators import validate_email

        try:
            validate_email(clean["email"])
        except ValidationError:
            raise ValidationFailed.for_field("email", "Enter a valid email address.") from None
    if conversation.is_sandbox:
        raise Conflict("The sandbox records no leads.", code="sandbox")
    conversation = _locked(conversation)
    # The rule the widget's history shows the form by (webchat.selectors): one rule for both.
    if not away_form_offered(conversation):
        raise Conflict("Leaving your details is for when nobody can answer.", code="not_away")
    lead = away_form_leads(conversation).order_by("pk").first()
    if lead is not None:
        lead.fields = {**lead.fields, **{k: v for k, v in clean.items() if v}}
        lead.updated_at = timezone.now()
        lead.save(update_fields=["fields", "updated_at"])
    else:
        lead = lead_capture(conversation=conversation, fields=clean, source=Lead.Source.AWAY_FORM)
    if conversation.bot.ticket_after_hours:
        ticket_from_away_form(conversation=conversation, lead=lead)
    return lead


# --- Privacy ----------------------------------------------------------------------------------


def conversations_records_erase(*, erasing: ContactErasing) -> None:
    """An erase (``privacy.hooks.contact_erasing``): the notes and the handoff history
    of the erased contacts' conversations go."""
    tenant_id, ids = erasing.tenant_id, erasing.conversation_ids
    Note.objects.for_tenant(tenant_id).filter(conversation_id__in=ids).delete()
    HandoffEvent.objects.for_tenant(tenant_id).filter(conversation_id__in=ids).delete()
