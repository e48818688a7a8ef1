"""The receive service's writes: a plan's rows (one row builder, ``conversations.sql.row``),
its announcement after the commit, its effects; a conversation opened; the contacts behind
the messages and the leads they leave (conversations.receive)."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from bots.engine import Event
from bots.models import LANGUAGE_CODES, Bot
from bots.services import unmatched_phrase_record
from chattonic.core.errors import Conflict
from chattonic.tenancy.models import Tenant
from contacts.models import Contact, ContactIdentity
from contacts.services import contact_live
from conversations import hooks, realtime
from conversations.models import ChannelKind, Conversation, Message
from conversations.receive.plan import (
    _BOT_MODE,
    _IN,
    _OUT,
    _WEBCHAT,
    Arrival,
    _Conversation,
    _outbound,
    _turn,
)
from conversations.sql import (
    execute,
    insert_statements,
    row,
    rows_insert,
    update_statements,
)

if TYPE_CHECKING:
    from messaging.models import Channel

logger = logging.getLogger(__name__)


# --- Writing a plan ------------------------------------------------------------------------------


def _write(conversations: list[_Conversation], now) -> None:
    """Persist the plans (``_persist``), announce their messages after the commit, then carry
    out their effects."""
    _persist(conversations, now)
    for conversation in conversations:
        _announce(conversation)
        _effects_apply(conversation)


def _persist(conversations: list[_Conversation], now) -> None:
    """The plans' rows: the new conversations (with their new contacts and identities),
    then every new message and the other conversations' states (two statements, one round
    trip on PostgreSQL). Sets each message's id."""
    _open([c for c in conversations if c.id is None], now)
    new = []
    for conversation in conversations:
        for entry in conversation.messages:
            entry[1]["conversation_id"] = conversation.id
            if entry[2] is None:
                new.append(entry)
    states = [c.state() for c in conversations if c.changed and not c.new]
    ids, _ = execute(  # one round trip on PostgreSQL
        insert_statements(Message, [values for _, values, _ in new]),
        update_statements(Conversation, [state for state in states if len(state) == 4])
        + update_statements(Conversation, [state for state in states if len(state) > 4]),
    )
    for entry, (pk,) in zip(new, ids, strict=True):
        entry[2] = pk


def _open(conversations: list[_Conversation], now) -> None:
    """The conversations a plan opens, with the contacts and identities of new senders:
    three statements, two round trips on PostgreSQL. Another process opening one for the
    same sender at the same moment makes the identity's INSERT fail (the web chat's batch
    then runs message by message, and finds it)."""
    if not conversations:
        return
    strangers = [c for c in conversations if c.contact_id is None]
    contacts = rows_insert(Contact, [row(Contact, tenant_id=c.tenant_id) for c in strangers])
    for conversation, contact in zip(strangers, contacts, strict=True):
        conversation.contact_id = contact
    identities = insert_statements(
        ContactIdentity,
        [
            row(
                ContactIdentity,
                tenant_id=c.tenant_id,
                contact_id=c.contact_id,
                kind=c.channel_kind,
                channel_id=c.channel_id,
                external_id=c.recipient_id,
            )
            for c in strangers
        ],
    )
    rows = [
        row(
            Conversation,
            tenant_id=c.tenant_id,
            bot_id=c.bot.pk,
            bot_version_id=c.bot_version_id,
            contact_id=c.contact_id,
            channel_kind=c.channel_kind,
            channel_id=c.channel_id,
            recipient_id=c.recipient_id,
            is_sandbox=c.is_sandbox,
            status=c.status,
            engine_state=c.engine_state,
            awaiting_action=c.awaiting_action,
            language=c.language,
            created_at=now,
            last_message_at=c.last_message_at or now,
            resolved_at=c.resolved_at,
        )
        for c in conversations
    ]
    _, ids = execute(identities, insert_statements(Conversation, rows))
    for conversation, (pk,) in zip(conversations, ids, strict=True):
        conversation.id = pk
        conversation.new = True


def _payload(conversation: _Conversation, values: dict, pk: int) -> dict:
    return realtime.payload(
        id=pk,
        conversation=conversation.id,
        direction=values["direction"],
        sender=values["sender"],
        agent=conversation.agents.get(values["agent_id"]) if values["agent_id"] else None,
        kind=values["kind"],
        text=values["text"],
        data=values["data"],
        client_id=values["external_id"] if values["channel_id"] is None else None,
        status=values["status"],
        created_at=values["created_at"],
    )


def _collected(arrival: Arrival | None):
    """An arrival from a socket collects what its turn broadcasts, for the socket to send."""
    if arrival is not None and arrival.origin is not None:
        return realtime.collecting(arrival.events)
    return nullcontext()


def _announce(conversation: _Conversation) -> None:
    """After the commit: a new web chat conversation to its visitor's tabs, then each of its
    messages (to the conversation's group; an inbound one outside bot mode to the console
    too); an outbound one on a platform goes to its send task. A socket's arrival gets its
    message and the replies of its turn (its ack), and the events of those are marked as
    its own."""
    group = realtime.conversation_group(conversation.id)
    opener = conversation.opened_by
    if opener is not None and conversation.new:
        started = {"type": "conversation.started", "conversation": conversation.id}
        if opener.origin is not None:
            opener.pending.append((realtime.visitor_group(opener.visitor_id), started))
        else:
            realtime.send_on_commit(realtime.visitor_group(opener.visitor_id), started)
    platform = conversation.channel_kind != _WEBCHAT
    activity = conversation.status != _BOT_MODE and not conversation.is_sandbox
    for arrival, values, pk in conversation.messages:
        payload = _payload(conversation, values, pk)
        event = {"type": "message.created", "message": payload}
        inbound = values["direction"] == _IN
        events = [(group, event)]
        if inbound and activity:
            # The console lists it as new activity even where nobody has it open.
            events.append(
                (
                    realtime.agents_group(conversation.tenant_id),
                    {
                        "type": "conversation.activity",
                        "conversation": {"id": conversation.id, "message": payload},
                    },
                )
            )
        if arrival is not None and arrival.origin is not None:
            event["origin"] = arrival.origin
            if inbound:
                arrival.message = payload
            else:
                arrival.replies.append(payload)
            arrival.pending += events  # its socket sends them, below
        else:
            if arrival is not None:
                if inbound:
                    arrival.message = payload
                else:
                    arrival.replies.append(payload)
            for pair in events:
                realtime.send_on_commit(*pair)
        if platform and not inbound:
            _send_later(pk)
    for arrival in conversation.arrivals_announced():
        _collect(arrival.events, arrival.pending)
        arrival.pending = []


def _collect(into: list, events: list) -> None:
    """``events`` handed to a socket's list at once, not on commit: a socket's arrivals come
    through ``messages_receive`` only, which clears them (``Arrival.reset``) when their
    transaction rolls back, and hands them over only once it committed."""
    into.extend(events)


def message_deliver(*, message: Message) -> None:
    """Send a stored outbound message its way again, after the commit: to the conversation's
    sockets, and for a platform through its send task."""
    realtime.send_on_commit(
        realtime.conversation_group(message.conversation_id),
        {"type": "message.created", "message": realtime.message_payload(message)},
    )
    if message.conversation.channel_kind != ChannelKind.WEBCHAT:
        _send_later(message.pk)


def _send_later(message_id: int) -> None:
    # Robust: a broker outage is logged (the send sweep sends it later); the commit's
    # other callbacks (the sockets' broadcasts) still run.
    transaction.on_commit(lambda: hooks.message_send_enqueue(message_id), robust=True)


def _effects_apply(conversation: _Conversation) -> None:
    """What the conversation's turns caused, in order: the one place a turn reaches leads,
    the handoff (the agents' hook), the HTTP node's task and the unmatched phrases."""
    if not conversation.effects:
        return
    instance = Conversation.objects.select_related("bot", "contact").get(pk=conversation.id)
    instance.bot = conversation.bot
    for arrival, effect in conversation.effects:
        with _collected(arrival):
            kind = effect[0]
            if kind == "capture_lead":
                hooks.lead_capture(conversation=instance, fields=effect[1])
            elif kind == "hand_off":
                if instance.status == Conversation.Status.BOT:
                    hooks.hand_off(
                        conversation=instance,
                        reason=effect[1],
                        team=effect[2],
                        text=effect[3],
                        own_text=effect[4],
                    )
            elif kind == "http_request":
                _http_request(instance, effect[1], effect[2])
            elif kind == "unmatched":
                unmatched_phrase_record(
                    tenant_id=instance.tenant_id,
                    bot_id=instance.bot_id,
                    text=effect[1].get("text") or "",
                    language=effect[1].get("language") or "",
                )
    conversation.status = instance.status


def _http_request(conversation: Conversation, action_id: str, action: dict) -> None:
    # why: bots.tasks imports this app's services (the HTTP node's response comes back here)
    from bots.tasks import bot_http_request

    request = {k: action.get(k) for k in ("method", "url", "headers", "body", "timeout")}
    request_id = action.get("request_id")
    conversation_id = conversation.pk
    realtime.send_on_commit(
        realtime.conversation_group(conversation_id),
        {"type": "typing", "sender": "bot", "on": True},
    )
    transaction.on_commit(
        lambda: bot_http_request.delay(conversation_id, action_id, request, request_id=request_id),
        robust=True,  # a broker outage is logged; the commit's other callbacks still run
    )


def _messages(conversation: _Conversation) -> list[Message]:
    """The plan's stored outbound messages as model instances (for callers that want them)."""
    found = []
    for _, values, pk in conversation.messages:
        if values["direction"] == _OUT:
            message = Message(id=pk, **values)
            message._state.adding = False
            message._state.db = "default"
            found.append(message)
    return found


# --- One conversation: its start, a bot's turn, an outbound message ------------------------------


@transaction.atomic
def conversation_start(
    *,
    bot: Bot,
    contact: Contact,
    channel_kind: str,
    recipient_id: str,
    channel: Channel | None = None,
    sandbox: bool = False,
    language: str = "",
    greet: bool = True,
    unpublished_ok: bool = False,
) -> Conversation:
    """Open a conversation on the bot's live version (the draft in the sandbox) and, with
    ``greet``, run its start: the greeting and whatever the flow says first. A platform's
    conversation (``unpublished_ok``) may open before the bot is published: its first turn
    waits for a version (``messages_answer``)."""
    if not sandbox and not unpublished_ok and bot.published_version_id is None:
        raise Conflict("This bot has no published version yet.", code="not_published")
    now = timezone.now()
    plan = _Conversation(
        id=None,
        tenant_id=bot.tenant_id,
        bot=bot,
        bot_version_id=None if sandbox else bot.published_version_id,
        status=_BOT_MODE,
        is_sandbox=sandbox,
        engine_state=None,
        awaiting_action="",
        language=language if language in LANGUAGE_CODES else bot.default_language,
        channel_kind=str(channel_kind),
        channel_id=channel.pk if channel is not None else None,
        contact_id=contact.pk,
        recipient_id=recipient_id,
        last_message_at=now,
    )
    if greet:
        _turn(plan, None, Event(type="start"), now)
    _write([plan], now)
    return Conversation.objects.select_related("bot").get(pk=plan.id)


def bot_turn(*, conversation: Conversation, event: Event) -> list[Message]:
    """The bot's turn on one event that is not a message (an agent's hand-back, the HTTP
    node's response): planned, written and carried out as a message's turn. Updates
    ``conversation`` in place; returns the replies."""
    now = timezone.now()
    plan = _Conversation.of(conversation)
    _turn(plan, None, event, now)
    _write([plan], now)
    plan.copy_to(conversation)
    return _messages(plan)


def outbound_message(
    *, conversation: Conversation, sender: str, text: str, data: dict | None = None, agent=None
) -> Message:
    """Store a message to the contact (from an agent or the platform) and send it through
    the conversation's channel."""
    now = timezone.now()
    plan = _Conversation.of(conversation)
    _outbound(plan, None, now, sender=sender, text=text, data=data or {}, agent=agent)
    _write([plan], now)
    (message,) = _messages(plan)
    if agent is not None:
        message.agent = agent
    return message


@transaction.atomic
def system_message(*, conversation: Conversation, text: str, away: bool = False) -> Message:
    """A message from the platform to the contact (e.g. the away message)."""
    return outbound_message(
        conversation=conversation,
        sender=Message.Sender.SYSTEM,
        text=text,
        data={"away": True} if away else None,
    )


# --- Contacts and leads --------------------------------------------------------------------------


# The contact of the dashboard's test chat (one per browser of the staff who test): named so
# in the contacts list, where it stood as "Visitor #12" beside the real visitors until the
# test chat's purge (conversations.services.sandbox_purge) removed it a week later.
SANDBOX_CONTACT_NAME = "Test chat visitor"


def contact_for_identity(
    *,
    tenant: Tenant | int,
    kind: str,
    external_id: str,
    channel: Channel | None = None,
    name: str = "",
) -> Contact:
    """The contact behind a channel identity, created on first sight (safe under races)."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    lookup = {"kind": kind, "external_id": external_id, "channel": channel}
    identity = (
        ContactIdentity.objects.for_tenant(tenant_id)
        .select_related("contact")
        .filter(**lookup)
        .first()
    )
    if identity:
        return contact_live(identity.contact)
    try:
        with transaction.atomic():
            contact = Contact.objects.create(tenant_id=tenant_id, name=name[:200])
            ContactIdentity.objects.create(tenant_id=tenant_id, contact=contact, **lookup)
            return contact
    except IntegrityError:
        identity = (
            ContactIdentity.objects.for_tenant(tenant_id).select_related("contact").get(**lookup)
        )
        return contact_live(identity.contact)
