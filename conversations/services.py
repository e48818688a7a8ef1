"""Writes for conversations: contacts, receiving a message, the bot's turn, delivery."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from bots.engine import Context, Event, StepResult, step
from bots.engine.templates import render
from bots.hours import within_business_hours
from bots.models import Bot, BotVersion
from bots.selectors import bot_refresh, bot_runtime
from bots.services import unmatched_phrase_record
from chattonic.core.errors import Conflict, ValidationFailed
from chattonic.tenancy.models import Tenant
from conversations import realtime
from conversations.models import (
    Channel,
    ChannelKind,
    Contact,
    ContactIdentity,
    Conversation,
    Lead,
    Message,
)
from conversations.sql import message_insert, row_update

logger = logging.getLogger(__name__)

MAX_TEXT = 4096


@dataclass(frozen=True)
class Inbound:
    """A message from a contact, in neutral form (from a socket frame or a webhook)."""

    text: str = ""
    kind: str = Message.Kind.TEXT
    payload: str | None = None
    data: dict = field(default_factory=dict)
    external_id: str = ""
    timestamp: datetime | None = None


@dataclass
class Received:
    message: Message
    created: bool
    replies: list[Message] = field(default_factory=list)


# --- Contacts ---------------------------------------------------------------------------------


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
        return _follow_merges(identity.contact)
    try:
        with transaction.atomic():
            contact = Contact.objects.create(tenant_id=tenant_id, name=name[:200])
            ContactIdentity.objects.create(tenant_id=tenant_id, contact=contact, **lookup)
            return contact
    except IntegrityError:
        identity = (
            ContactIdentity.objects.for_tenant(tenant_id).select_related("contact").get(**lookup)
        )
        return _follow_merges(identity.contact)


def _follow_merges(contact: Contact) -> Contact:
    seen = set()
    while contact.merged_into_id and contact.pk not in seen:
        seen.add(contact.pk)
        contact = Contact.objects.get(pk=contact.merged_into_id)
    return contact


# --- Conversations ----------------------------------------------------------------------------


def webchat_conversation_current(
    *, bot: Bot, visitor_id: str, sandbox: bool = False
) -> Conversation | None:
    """The web chat visitor's open conversation with this bot, if any. A visitor's
    conversations are those their session token opened (``recipient_id``), never those of
    whoever shares their contact: contacts merge on details that another visitor can claim
    (a staff merge, say), and a merge must not hand one visitor's chat to another."""
    return (
        Conversation.objects.for_tenant(bot.tenant_id)
        .filter(
            channel__isnull=True,  # the (channel, recipient_id) index
            recipient_id=visitor_id,
            channel_kind=ChannelKind.WEBCHAT,
            bot=bot,
            is_sandbox=sandbox,
        )
        .exclude(status=Conversation.Status.RESOLVED)
        .order_by("-created_at")
        .first()
    )


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
) -> Conversation:
    """Open a conversation on the bot's live version (the draft in the sandbox) and run its
    start: the greeting and whatever the flow says first."""
    if not sandbox and bot.published_version_id is None:
        raise Conflict("This bot has no published version yet.", code="not_published")
    conversation = Conversation.objects.create(
        tenant_id=bot.tenant_id,
        bot=bot,
        bot_version_id=None if sandbox else bot.published_version_id,
        contact=contact,
        channel_kind=channel_kind,
        channel=channel,
        recipient_id=recipient_id,
        is_sandbox=sandbox,
        language=language if language in Bot.Language.values else bot.default_language,
    )
    bot_turn(conversation=conversation, event=Event(type="start"))
    return conversation


@transaction.atomic
def message_receive(*, conversation: Conversation, inbound: Inbound) -> Received:
    """Store a contact's message once (a redelivery is a no-op) and, in bot mode, let the
    bot answer. Broadcasts the message and the replies after the commit."""
    text = _inbound_text(inbound)
    return _receive_into(_locked(conversation.pk), inbound, text)


def _inbound_text(inbound: Inbound) -> str:
    text = (inbound.text or "").strip()
    if len(text) > MAX_TEXT:
        raise ValidationFailed.for_field("text", f"At most {MAX_TEXT} characters.")
    if inbound.kind == Message.Kind.TEXT and not text:
        raise ValidationFailed.for_field("text", "A message needs some text.")
    return text


def _locked(conversation_id: int) -> Conversation:
    """The conversation, locked for this transaction, with its bot.

    Locked before the message is inserted: the insert's foreign-key check share-locks the
    conversation row (PostgreSQL), so locking it after would deadlock two messages of one
    conversation arriving at once."""
    return (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("bot")
        .get(pk=conversation_id)
    )


def _receive_into(conversation: Conversation, inbound: Inbound, text: str) -> Received:
    """``message_receive`` on a conversation locked by the caller's transaction."""
    data = dict(inbound.data)
    if inbound.payload is not None:
        data["payload"] = inbound.payload
    message = Message(
        tenant_id=conversation.tenant_id,
        conversation=conversation,
        channel=conversation.channel,
        direction=Message.Direction.IN,
        sender=Message.Sender.CONTACT,
        kind=inbound.kind,
        text=text,
        data=data,
        external_id=inbound.external_id,
        status=Message.Status.RECEIVED,
        created_at=inbound.timestamp or timezone.now(),
    )
    if inbound.external_id:
        # A resend (same client or platform id) is skipped by the unique constraint.
        if message_insert(message, skip_conflicts=True) is None:
            existing = _existing_inbound(conversation, inbound.external_id)
            return Received(message=existing, created=False)
    else:
        message.save()

    conversation.last_message_at = timezone.now()
    if conversation.status != Conversation.Status.BOT:
        # In bot mode the bot's turn saves it with the conversation's new state.
        conversation.save(update_fields=["last_message_at"])
    payload = realtime.message_payload(message)
    realtime.send_on_commit(
        realtime.conversation_group(conversation.pk),
        {"type": "message.created", "message": payload},
    )
    if conversation.status != Conversation.Status.BOT and not conversation.is_sandbox:
        # The console lists it as new activity even where nobody has it open.
        realtime.send_on_commit(
            realtime.agents_group(conversation.tenant_id),
            {
                "type": "conversation.activity",
                "conversation": {"id": conversation.pk, "message": payload},
            },
        )
    replies: list[Message] = []
    if conversation.status == Conversation.Status.BOT:
        event = turn_event(inbound.kind, text, inbound.payload)
        replies = bot_turn(conversation=conversation, event=event)
    return Received(message=message, created=True, replies=replies)


def _existing_inbound(conversation: Conversation, external_id: str) -> Message:
    messages = Message.objects.for_tenant(conversation.tenant_id).filter(
        external_id=external_id, direction=Message.Direction.IN
    )
    if conversation.channel_id:
        return messages.get(channel_id=conversation.channel_id)
    return messages.get(conversation=conversation, channel__isnull=True)


# --- The bot's turn ---------------------------------------------------------------------------


def bot_turn(*, conversation: Conversation, event: Event) -> list[Message]:
    """Run the engine on one event: store its replies, carry out its actions, save its state.
    An engine error (a loop, a broken flow) never leaves the visitor in silence: the fallback
    text goes out and the conversation is handed to a person (reason ``bot_error``)."""
    bot = conversation.bot
    # A conversation read with its version's publication time (webchat_receive) saves a query.
    published_at = getattr(conversation, "version_published_at", None)
    runtime = bot_runtime(bot, conversation.bot_version_id, published_at)
    result = engine_step(
        bot=bot,
        runtime=runtime,
        channel_kind=conversation.channel_kind,
        language=conversation.language,
        state=conversation.engine_state,
        event=event,
        now=timezone.now(),
    )
    if result.error:
        return _bot_failed(conversation, runtime.definition, result.error)
    conversation.engine_state = result.state
    if (result.state or {}).get("status") != "http":
        # Nothing pending any more: a late response to an abandoned request is ignored.
        # While a request is pending (a message was queued meanwhile) it stays awaited.
        conversation.awaiting_action = ""
    replies = [_bot_reply(conversation, reply) for reply in result.replies]
    for action in result.actions:
        _carry_out(conversation, action)
    row_update(
        conversation,
        ["engine_state", "awaiting_action", "last_message_at", "status", "resolved_at"],
    )
    return replies


def turn_event(kind: str, text: str, payload: str | None) -> Event:
    """The engine's event for a contact's message: a quick reply's payload, or the text."""
    if kind == Message.Kind.BUTTON and payload is not None:
        return Event(type="quick_reply", text=text, payload=payload)
    return Event(type="message", text=text)


def engine_step(
    *,
    bot: Bot,
    runtime,
    channel_kind: str,
    language: str,
    state,
    event: Event,
    now: datetime,
    open_now: bool | None = None,
) -> StepResult:
    """The engine's step on ``event``: a text's intent classified first. Pure (no writes).
    ``open_now``: whether ``now`` is within the bot's business hours, if the caller knows."""
    if event.type == "message" and event.text:
        understood = runtime.matcher.understand(event.text, 0.0)  # the engine applies the bot's
        event = Event(
            type="message",
            text=event.text,
            intent=understood.intent,
            confidence=understood.confidence,
        )
        # The visitor's language for this turn: the message's when it tells, else the
        # conversation's (the widget's lang, or the bot's).
        language = understood.language or language
    if open_now is None:
        open_now = within_business_hours(bot.business_hours, bot.time_zone, now)
    context = Context(
        channel=channel_kind,
        within_business_hours=open_now,
        now=now,
        language=language,
    )
    return step(runtime.definition, state, event, context)


BOT_ERROR_REASON = "bot_error"


def _bot_failed(conversation: Conversation, definition: dict, error: dict) -> list[Message]:
    """The engine could not go on: say the fallback text and hand off to a person. The
    engine's state stays as it was before the event."""
    from agents.services import conversation_hand_off

    logger.warning(
        "bot %s conversation %s: engine error %s",
        conversation.bot_id,
        conversation.pk,
        error,
    )
    text = (definition.get("settings") or {}).get("fallback_text") or conversation.bot.fallback_text
    variables = (conversation.engine_state or {}).get("vars") or {}
    replies = [_bot_reply(conversation, {"text": render(text, variables)})] if text else []
    conversation.awaiting_action = ""
    conversation.save(update_fields=["awaiting_action", "last_message_at"])
    if conversation.status == Conversation.Status.BOT:
        conversation_hand_off(conversation=conversation, reason=BOT_ERROR_REASON)
    return replies


def reply_data(reply: dict) -> dict:
    """A bot reply's message data: its quick replies and media, where it has them."""
    data = {}
    if reply.get("quick_replies"):
        data["quick_replies"] = reply["quick_replies"]
    if reply.get("media"):
        data["media"] = reply["media"]
    return data


def _bot_reply(conversation: Conversation, reply: dict) -> Message:
    message = outbound_message(
        conversation=conversation,
        sender=Message.Sender.BOT,
        text=reply.get("text", ""),
        data=reply_data(reply),
    )
    conversation.last_message_at = message.created_at
    return message


def outbound_message(
    *, conversation: Conversation, sender: str, text: str, data: dict | None = None, agent=None
) -> Message:
    """Store a message to the contact (from the bot, an agent or the platform) and send it
    through the conversation's channel."""
    # The web chat's sockets get it with the commit: sent as it is stored. A platform's
    # message is pending until its send task hears back.
    webchat = conversation.channel_kind == ChannelKind.WEBCHAT
    message = Message(
        tenant_id=conversation.tenant_id,
        conversation=conversation,
        channel_id=conversation.channel_id,
        direction=Message.Direction.OUT,
        sender=sender,
        agent=agent,
        text=text,
        data=data or {},
        status=Message.Status.SENT if webchat else Message.Status.PENDING,
        status_at=timezone.now() if webchat else None,
    )
    message_insert(message)
    message_deliver(message=message)
    return message


def _carry_out(conversation: Conversation, action: dict) -> None:
    kind = action.get("type")
    if kind == "capture_lead":
        lead_capture(conversation=conversation, fields=action.get("fields", {}))
    elif kind == "handoff":
        from agents.services import conversation_hand_off

        conversation_hand_off(
            conversation=conversation,
            reason=action.get("reason") or "flow",
            team=action.get("team") or "",
        )
    elif kind == "http_request":
        from bots.tasks import bot_http_request

        action_id = uuid.uuid4().hex
        request_id = action.get("request_id")
        conversation.awaiting_action = action_id
        request = {k: action.get(k) for k in ("method", "url", "headers", "body", "timeout")}
        realtime.send_on_commit(
            realtime.conversation_group(conversation.pk),
            {"type": "typing", "sender": "bot", "on": True},
        )
        transaction.on_commit(
            lambda: bot_http_request.delay(
                conversation.pk, action_id, request, request_id=request_id
            ),
            robust=True,  # a broker outage is logged; the commit's other callbacks still run
        )
    elif kind == "end":
        # The flow's end ends the conversation: the contact's next message starts a new one,
        # on the version live then (the web chat and channel doors open a new conversation
        # when the last one is resolved). A conversation with agents is theirs to resolve.
        if conversation.status == Conversation.Status.BOT:
            conversation.status = Conversation.Status.RESOLVED
            conversation.resolved_at = timezone.now()
    elif kind == "unmatched":
        # Kept for the bot's owner to teach to an intent; the sandbox's tests are not visitors.
        if not conversation.is_sandbox:
            unmatched_phrase_record(
                tenant_id=conversation.tenant_id,
                bot_id=conversation.bot_id,
                text=action.get("text") or "",
                language=action.get("language") or "",
            )
    else:
        logger.warning("unknown engine action %r", kind)


def lead_capture(
    *, conversation: Conversation, fields: dict, source: str = Lead.Source.BOT
) -> Lead | None:
    """Record a lead from the conversation's fields; sandbox conversations record none."""
    if conversation.is_sandbox:
        return None
    from conversations.contacts import normalize_email, normalize_phone
    from conversations.leads import lead_created

    clean = {str(k)[:100]: str(v)[:1000] for k, v in (fields or {}).items() if v not in (None, "")}
    contact = conversation.contact
    # What a visitor types is a claim: it fills the contact's blank details and goes on the
    # lead, and never merges contacts (anyone can type anyone's email). Contacts merge only
    # on a proof: a staff member's merge (contacts.contact_merge).
    _contact_fill_blanks(
        contact,
        name=clean.get("name", "").strip(),
        email=normalize_email(clean.get("email", "")),
        phone=normalize_phone(clean.get("phone", "")),
    )
    lead = Lead.objects.create(
        tenant_id=conversation.tenant_id,
        contact=contact,
        conversation=conversation,
        bot_id=conversation.bot_id,
        channel_kind=conversation.channel_kind,
        fields=clean,
        source=source,
    )
    lead_created(lead=lead)
    return lead


# --- Delivery ---------------------------------------------------------------------------------


def message_deliver(*, message: Message) -> None:
    """Send an outbound message its way, after the commit: to the visitor's sockets for the
    web chat, or through the platform by a Celery task."""
    group = realtime.conversation_group(message.conversation_id)
    if message.conversation.channel_kind == ChannelKind.WEBCHAT:
        realtime.send_on_commit(
            group, {"type": "message.created", "message": realtime.message_payload(message)}
        )
        return
    # Agents watching see the reply at once; the platform send follows in the worker.
    realtime.send_on_commit(
        group, {"type": "message.created", "message": realtime.message_payload(message)}
    )
    from conversations.delivery import send_enqueue

    # Robust: a broker outage is logged (the send sweep sends it later); the commit's
    # other callbacks (the sockets' broadcasts) still run.
    transaction.on_commit(lambda: send_enqueue(message.pk), robust=True)


STATUS_ORDER = {
    Message.Status.PENDING: 0,
    Message.Status.SENT: 1,
    Message.Status.DELIVERED: 2,
    Message.Status.READ: 3,
}


@transaction.atomic
def message_status_update(
    *, message: Message, status: str, at: datetime | None = None, error: str = ""
) -> Message:
    """Move an outbound message's status forward (sent < delivered < read); never back.
    ``failed`` is final unless the message was already delivered or read."""
    message = Message.objects.select_for_update().get(pk=message.pk)
    current = message.status
    if status == Message.Status.FAILED:
        if current in (Message.Status.DELIVERED, Message.Status.READ, Message.Status.FAILED):
            return message
    elif current == Message.Status.FAILED or STATUS_ORDER.get(status, -1) <= STATUS_ORDER.get(
        current, -1
    ):
        return message
    message.status = status
    message.status_at = at or timezone.now()
    message.error = error[:2000]
    message.save(update_fields=["status", "status_at", "error"])
    realtime.send_on_commit(
        realtime.conversation_group(message.conversation_id),
        {"type": "message.status", "id": message.pk, "status": status},
    )
    return message


@transaction.atomic
def bot_http_resume(
    *, conversation: Conversation, action_id: str, http: dict, request_id: int | None = None
) -> list[Message]:
    """Resume the flow with the outcome of its HTTP request, once per request; the engine
    ignores a response whose ``request_id`` is not the request it waits for."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if conversation.awaiting_action != action_id:
        return []
    realtime.send_on_commit(
        realtime.conversation_group(conversation.pk),
        {"type": "typing", "sender": "bot", "on": False},
    )
    if conversation.status != Conversation.Status.BOT:
        conversation.awaiting_action = ""
        conversation.save(update_fields=["awaiting_action"])
        return []
    event = Event(type="http_response", http=http, request_id=request_id)
    return bot_turn(conversation=conversation, event=event)


# --- The web chat -----------------------------------------------------------------------------


@transaction.atomic
def webchat_open(
    *,
    bot: Bot,
    visitor_id: str,
    sandbox: bool = False,
    fields: dict | None = None,
    language: str = "",
) -> tuple[Conversation, bool]:
    """The visitor's open conversation with the bot, or a new one started with the greeting.
    Returns it and whether it is new; every tab of the visitor hears of a new one."""
    contact = contact_for_identity(
        tenant=bot.tenant_id, kind=ChannelKind.WEBCHAT, external_id=visitor_id
    )
    # One visitor, several tabs, one conversation: serialise on the contact.
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if fields:
        _apply_prechat(contact, fields)
    conversation = webchat_conversation_current(bot=bot, visitor_id=visitor_id, sandbox=sandbox)
    if conversation is not None:
        return conversation, False
    conversation = conversation_start(
        bot=bot,
        contact=contact,
        channel_kind=ChannelKind.WEBCHAT,
        recipient_id=visitor_id,
        sandbox=sandbox,
        language=language,
    )
    realtime.send_on_commit(
        realtime.visitor_group(visitor_id),
        {"type": "conversation.started", "conversation": conversation.pk},
    )
    return conversation, True


def webchat_receive(**kwargs) -> tuple[Conversation, Received]:
    """A web chat visitor's message, in one transaction: into the conversation the socket
    watches (``conversation_id``) unless it was resolved meanwhile, else into the visitor's
    open one, or a new one started with the greeting. Nothing is stored if it is invalid.
    Arguments: those of :func:`webchat_receive_in_transaction`."""
    with transaction.atomic():
        return webchat_receive_in_transaction(**kwargs)


def webchat_receive_in_transaction(
    *,
    bot: Bot,
    visitor_id: str,
    inbound: Inbound,
    conversation_id: int | None = None,
    sandbox: bool = False,
    language: str = "",
) -> tuple[Conversation, Received]:
    """``webchat_receive`` within the caller's transaction (no savepoint of its own): the
    socket's group commit (conversations.turns) runs many visitors' messages in one."""
    text = _inbound_text(inbound)
    conversation = None
    if conversation_id:
        conversation = _watched_conversation(bot, conversation_id, sandbox)
    if conversation is None:
        opened, _ = webchat_open(bot=bot, visitor_id=visitor_id, sandbox=sandbox, language=language)
        conversation = _locked(opened.pk)
    return conversation, _receive_into(conversation, inbound, text)


_WATCHED_CONVERSATION_SQL = (
    "SELECT c.*, b.updated_at = %s AS bot_unchanged, v.published_at AS version_published_at "  # noqa: S608 - table names, not input
    f"FROM {Conversation._meta.db_table} c "
    f"JOIN {Bot._meta.db_table} b ON b.id = c.bot_id "
    f"LEFT JOIN {BotVersion._meta.db_table} v ON v.id = c.bot_version_id "
    "WHERE c.id = %s AND c.tenant_id = %s AND c.bot_id = %s AND c.is_sandbox = %s "
    "AND c.status <> %s"
)


def _watched_conversation(bot: Bot, conversation_id: int, sandbox: bool) -> Conversation | None:
    """The socket's conversation, locked, unless it was resolved meanwhile, with its bot and
    the version's publication time. The bot is the socket's own copy (``bot``, loaded when it
    connected), read again (in place) only when it was saved since. Plain SQL: the ORM's
    query building cost more than the rest of a web chat message's statements together."""
    connection = transaction.get_connection()
    lock = " FOR UPDATE OF c" if connection.features.has_select_for_update_of else ""
    params = [
        connection.ops.adapt_datetimefield_value(bot.updated_at),
        conversation_id,
        bot.tenant_id,
        bot.pk,
        sandbox,
        Conversation.Status.RESOLVED,
    ]
    found = list(Conversation.objects.raw(_WATCHED_CONVERSATION_SQL + lock, params))
    if not found:
        return None
    conversation = found[0]
    if not conversation.bot_unchanged:
        bot_refresh(bot)
    conversation.bot = bot
    return conversation


def _apply_prechat(contact: Contact, fields: dict) -> None:
    name = str(fields.get("name", "")).strip()[:200]
    email = str(fields.get("email", "")).strip().lower()[:254]
    if email:
        from django.core.exceptions import ValidationError
        from django.core.validators import validate_email

        try:
            validate_email(email)
        except ValidationError:
            raise ValidationFailed.for_field("email", "Enter a valid email address.") from None
    _contact_fill_blanks(contact, name=name, email=email)
    if "consent" in fields:
        contact.attributes = {**contact.attributes, "consent": bool(fields["consent"])}
        contact.updated_at = timezone.now()
        contact.save(update_fields=["attributes", "updated_at"])


def _contact_fill_blanks(contact: Contact, **details: str) -> None:
    """A visitor's claimed details (a form, a flow's question) on their contact, where it has
    none yet: a claim never overwrites what the contact has (a staff member's edit, or
    details of another identity merged into it by staff)."""
    changed = []
    for key, value in details.items():
        if value and not getattr(contact, key):
            setattr(contact, key, value[: Contact._meta.get_field(key).max_length])
            changed.append(key)
    if changed:
        contact.updated_at = timezone.now()
        contact.save(update_fields=[*changed, "updated_at"])


@transaction.atomic
def messages_mark_read(*, conversation: Conversation, up_to_id: int) -> int:
    """The visitor read every message up to ``up_to_id``: mark our outbound ones read."""
    unread = Message.objects.for_tenant(conversation.tenant_id).filter(
        conversation=conversation,
        direction=Message.Direction.OUT,
        pk__lte=up_to_id,
        status__in=[Message.Status.SENT, Message.Status.DELIVERED],
    )
    ids = list(unread.values_list("pk", flat=True))
    if not ids:
        return 0
    now = timezone.now()
    Message.objects.filter(pk__in=ids).update(status=Message.Status.READ, status_at=now)
    realtime.send_on_commit(
        realtime.conversation_group(conversation.pk),
        {"type": "message.read", "ids": ids},
    )
    return len(ids)


@transaction.atomic
def system_message(*, conversation: Conversation, text: str, away: bool = False) -> Message:
    """A message from the platform to the contact (e.g. the away message)."""
    return outbound_message(
        conversation=conversation,
        sender=Message.Sender.SYSTEM,
        text=text,
        data={"away": True} if away else None,
    )


SANDBOX_RETENTION_DAYS = 7


def sandbox_purge(*, older_than_days: int = SANDBOX_RETENTION_DAYS) -> int:
    """Delete the dashboard's test conversations (and their contacts) after a week."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    stale = Conversation.objects.filter(is_sandbox=True, last_message_at__lt=cutoff)
    contact_ids = set(stale.values_list("contact_id", flat=True))
    deleted, _ = stale.delete()
    # Contacts who only ever talked to a sandbox go too.
    Contact.objects.filter(pk__in=contact_ids, conversations__isnull=True).delete()
    return deleted
