"""Messages arrive: the one service that writes them, whatever the door.

Every door hands its messages here, as a batch (one message is a batch of one): the web chat
socket (``conversations.lane`` gathers its sockets' messages), each platform's webhook and
the API channel (``conversations.channels``), the agent console and the API's replies
(``agents.services.agent_reply``: ``outbound_message``), and the tests. For each message:

1. **read** what the batch needs in one round trip: the conversations (locked, in the order
   of their ids, so that batches of several processes never wait on each other in a
   circle), the bots' change stamps, the messages it resends, which new visitors are known;
2. **plan** each turn, pure: the conversation it goes to (found, or opened with its
   greeting), the engine's step, and what must be written: the rows of the messages, the
   conversation's new state, and the effects (a lead, a handoff, an HTTP request, the end);
3. **persist** the batch with one row builder (``conversations.sql.row``: named rows built
   from the model's fields): the new conversations, every message in one ``INSERT``, every
   conversation's state in one ``UPDATE``;
4. **carry out** the effects, in order, in ``_effects_apply``: the one place a turn reaches
   leads, the agents' handoff and the HTTP node's task.

A turn whose effects change the conversation (a handoff, the end, an error) ends the batch's
planning of that conversation: its next messages are planned again, in another round of the
same service, on what the effects left. What each message caused goes out after the commit
(``realtime.send_on_commit``; a socket collects its own, to send them itself).

Nothing else inserts into the message table (tests/conversations/test_receive.py checks the
source and the running code).
"""

from __future__ import annotations

import json
import logging
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from bots.engine import Context, Event, StepResult, step
from bots.engine.templates import render
from bots.hours import within_business_hours
from bots.models import Bot, BotVersion
from bots.selectors import bot_refresh, bot_runtime
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
from conversations.sql import (
    Statement,
    execute,
    found_statements,
    insert_statements,
    row,
    row_insert,
    rows_insert,
    update_statements,
)

logger = logging.getLogger(__name__)

MAX_TEXT = 4096  # a message's text, from any door
BOT_ERROR_REASON = "bot_error"

_IN, _OUT = str(Message.Direction.IN), str(Message.Direction.OUT)
_CONTACT, _BOT = str(Message.Sender.CONTACT), str(Message.Sender.BOT)
_TEXT = str(Message.Kind.TEXT)
_RECEIVED, _SENT = str(Message.Status.RECEIVED), str(Message.Status.SENT)
_PENDING = str(Message.Status.PENDING)
_WEBCHAT = str(ChannelKind.WEBCHAT)
_BOT_MODE = str(Conversation.Status.BOT)
_RESOLVED = str(Conversation.Status.RESOLVED)


@dataclass(frozen=True)
class Inbound:
    """A message from a contact, in neutral form (from a socket frame or a webhook)."""

    text: str = ""
    kind: str = Message.Kind.TEXT
    payload: str | None = None
    data: dict = field(default_factory=dict)
    external_id: str = ""
    timestamp: datetime | None = None


@dataclass(eq=False, slots=True)
class Arrival:
    """One web chat visitor's message to a bot, and (once received) what came of it."""

    bot: Bot
    visitor_id: str
    inbound: Inbound
    conversation_id: int | None = None  # the one the visitor's socket watches, if any
    sandbox: bool = False
    language: str = ""
    # The sending socket's channel name: its events are collected (``events``) for it to
    # send, and those it has already (its ack) are marked as its own.
    origin: str | None = None
    # The outcome.
    conversation: int | None = None
    message: dict | None = None  # the visitor's message, as stored
    duplicate: bool = False  # a resend: stored before, nothing new happened
    replies: list[dict] = field(default_factory=list)  # what the turn said, in order
    events: list = field(default_factory=list)  # (group, event), with ``origin``
    error: Exception | None = None

    def reset(self) -> None:
        self.conversation = self.message = self.error = None
        self.duplicate = False
        self.replies = []
        self.events = []


# --- The plan ------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Conversation:
    """A conversation as a plan sees it: its state, then what the batch writes to it."""

    id: int | None  # None: opened by this batch, not inserted yet
    tenant_id: int
    bot: Bot
    bot_version_id: int | None
    status: str
    is_sandbox: bool
    engine_state: Any
    awaiting_action: str
    language: str
    channel_kind: str
    channel_id: int | None
    resolved_at: Any = None
    last_message_at: Any = None
    published_at: Any = None  # its version's publication time (the runtime's cache key)
    # Opened by the batch: its contact (None: a new one, with an identity) and recipient.
    contact_id: int | None = None
    recipient_id: str = ""
    opened_by: Arrival | None = None  # the web chat arrival that opened it
    # What the batch writes: [arrival or None, row, id (set once stored)], in order.
    messages: list = field(default_factory=list)
    effects: list = field(default_factory=list)  # (arrival or None, effect), in order
    agents: dict = field(default_factory=dict)  # agent id -> public name, for the payloads
    arrivals: list = field(default_factory=list)
    waiting: list = field(default_factory=list)  # arrivals for the next round
    seen: dict = field(default_factory=dict)  # a client id -> its first arrival
    blocked: bool = False  # an effect changes it: its next messages wait for another round
    handing_off: bool = False
    changed: bool = False  # its state is written
    new: bool = False

    @classmethod
    def of(cls, conversation: Conversation) -> _Conversation:
        return cls(
            id=conversation.pk,
            tenant_id=conversation.tenant_id,
            bot=conversation.bot,
            bot_version_id=conversation.bot_version_id,
            status=conversation.status,
            is_sandbox=conversation.is_sandbox,
            engine_state=conversation.engine_state,
            awaiting_action=conversation.awaiting_action,
            language=conversation.language,
            channel_kind=conversation.channel_kind,
            channel_id=conversation.channel_id,
            resolved_at=conversation.resolved_at,
            last_message_at=conversation.last_message_at,
            published_at=getattr(conversation, "version_published_at", None),
        )

    def state(self) -> dict:
        return {
            "id": self.id,
            "bot_version_id": self.bot_version_id,
            "engine_state": self.engine_state,
            "awaiting_action": self.awaiting_action,
            "last_message_at": self.last_message_at,
            "status": self.status,
            "resolved_at": self.resolved_at,
        }

    def copy_to(self, conversation: Conversation) -> None:
        """The caller's model instance, as the plan left it."""
        for name, value in self.state().items():
            setattr(conversation, name, value)


# Per bot: (the batch's time, the bot's stamp, whether it is open then), so that a batch
# works the business hours out once per bot.
_open_now: dict[int, tuple[Any, Any, bool]] = {}


def _step(conversation: _Conversation, event: Event, now) -> StepResult:
    bot = conversation.bot
    known = _open_now.get(bot.pk)
    if known is None or known[0] is not now or known[1] != bot.updated_at:
        known = (now, bot.updated_at, within_business_hours(bot.business_hours, bot.time_zone, now))
        _open_now[bot.pk] = known
    return engine_step(
        bot=bot,
        runtime=bot_runtime(bot, conversation.bot_version_id, conversation.published_at),
        channel_kind=conversation.channel_kind,
        language=conversation.language,
        state=conversation.engine_state,
        event=event,
        now=now,
        open_now=known[2],
    )


def _turn(conversation: _Conversation, arrival: Arrival | None, event: Event, now) -> None:
    """Plan the bot's turn on ``event``: its replies, the conversation's new state, its
    effects. An engine error (a loop, a broken flow) never leaves the contact in silence:
    the fallback text goes out and the conversation is handed to a person (``bot_error``);
    the engine's state stays as it was."""
    result = _step(conversation, event, now)
    conversation.changed = True
    if result.error:
        logger.warning(
            "bot %s conversation %s: engine error %s",
            conversation.bot.pk,
            conversation.id,
            result.error,
        )
        runtime = bot_runtime(
            conversation.bot, conversation.bot_version_id, conversation.published_at
        )
        settings_ = runtime.definition.get("settings") or {}
        text = settings_.get("fallback_text") or conversation.bot.fallback_text
        variables = (conversation.engine_state or {}).get("vars") or {}
        if text:
            _reply(conversation, arrival, {"text": render(text, variables)}, now)
        conversation.awaiting_action = ""
        if conversation.status == _BOT_MODE:
            _effect(conversation, arrival, ("hand_off", BOT_ERROR_REASON, ""))
        return
    conversation.engine_state = result.state
    if (result.state or {}).get("status") != "http":
        # Nothing pending any more: a late response to an abandoned request is ignored.
        # While a request is pending (a message was queued meanwhile) it stays awaited.
        conversation.awaiting_action = ""
    for reply in result.replies:
        _reply(conversation, arrival, reply, now)
    for action in result.actions:
        kind = action.get("type")
        if kind == "capture_lead":
            _effect(conversation, arrival, ("capture_lead", action.get("fields", {})))
        elif kind == "handoff":
            reason = action.get("reason") or "flow"
            _effect(conversation, arrival, ("hand_off", reason, action.get("team") or ""))
        elif kind == "http_request":
            action_id = uuid.uuid4().hex
            conversation.awaiting_action = action_id
            _effect(conversation, arrival, ("http_request", action_id, action))
        elif kind == "end":
            # The flow's end ends the conversation: the contact's next message starts a new
            # one, on the version live then. A conversation with agents is theirs to resolve.
            if conversation.status == _BOT_MODE and not conversation.handing_off:
                conversation.status = _RESOLVED
                conversation.resolved_at = now
                conversation.blocked = True
        else:
            logger.warning("unknown engine action %r", kind)


def _effect(conversation: _Conversation, arrival: Arrival | None, effect: tuple) -> None:
    conversation.effects.append((arrival, effect))
    conversation.blocked = True
    if effect[0] == "hand_off":
        conversation.handing_off = True


def _reply(conversation: _Conversation, arrival: Arrival | None, reply: dict, now) -> None:
    _outbound(
        conversation, arrival, now, sender=_BOT, text=reply.get("text", ""), data=reply_data(reply)
    )


def _outbound(conversation: _Conversation, arrival, now, *, sender, text, data, agent=None) -> None:
    webchat = conversation.channel_kind == _WEBCHAT
    values = row(
        Message,
        tenant_id=conversation.tenant_id,
        conversation_id=conversation.id,
        channel_id=conversation.channel_id,
        direction=_OUT,
        sender=str(sender),
        agent_id=agent.pk if agent is not None else None,
        kind=_TEXT,
        text=text,
        data=data,
        # The web chat's sockets get it with the commit: sent as it is stored. A platform's
        # message is pending until its send task hears back.
        status=_SENT if webchat else _PENDING,
        status_at=now if webchat else None,
        created_at=now,
    )
    if agent is not None:
        from chattonic.tenancy.selectors import staff_public_name

        conversation.agents[agent.pk] = staff_public_name(agent)
    conversation.messages.append([arrival, values, None])
    conversation.last_message_at = now


def _inbound(conversation: _Conversation, arrival: Arrival, values: dict, now) -> None:
    conversation.messages.append([arrival, values, None])
    conversation.last_message_at = now
    conversation.changed = True


def reply_data(reply: dict) -> dict:
    """A bot reply's message data: its quick replies and media, where it has them."""
    data = {}
    if reply.get("quick_replies"):
        data["quick_replies"] = reply["quick_replies"]
    if reply.get("media"):
        data["media"] = reply["media"]
    return data


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


def inbound_text(inbound: Inbound) -> str:
    """The inbound message's text as stored, or ValidationFailed naming ``text``."""
    text = (inbound.text or "").strip()
    if len(text) > MAX_TEXT:
        raise ValidationFailed.for_field("text", f"At most {MAX_TEXT} characters.")
    if inbound.kind == Message.Kind.TEXT and not text:
        raise ValidationFailed.for_field("text", "A message needs some text.")
    return text


def _inbound_row(conversation: _Conversation, inbound: Inbound, text: str, kind: str, now) -> dict:
    data = dict(inbound.data)
    if inbound.payload is not None:
        data["payload"] = inbound.payload
    return row(
        Message,
        tenant_id=conversation.tenant_id,
        conversation_id=conversation.id,
        channel_id=conversation.channel_id,
        direction=_IN,
        sender=_CONTACT,
        kind=kind,
        text=text,
        data=data,
        external_id=inbound.external_id,
        status=_RECEIVED,
        created_at=inbound.timestamp or now,
    )


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
        update_statements(Conversation, states),
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
        with _collected(opener):
            realtime.send_on_commit(
                realtime.visitor_group(opener.visitor_id),
                {"type": "conversation.started", "conversation": conversation.id},
            )
    platform = conversation.channel_kind != _WEBCHAT
    for arrival, values, pk in conversation.messages:
        payload = _payload(conversation, values, pk)
        event = {"type": "message.created", "message": payload}
        inbound = values["direction"] == _IN
        if arrival is not None:
            if inbound:
                arrival.message = payload
            else:
                arrival.replies.append(payload)
            if arrival.origin is not None:
                event["origin"] = arrival.origin
        with _collected(arrival):
            realtime.send_on_commit(group, event)
            if inbound and conversation.status != _BOT_MODE and not conversation.is_sandbox:
                # The console lists it as new activity even where nobody has it open.
                realtime.send_on_commit(
                    realtime.agents_group(conversation.tenant_id),
                    {
                        "type": "conversation.activity",
                        "conversation": {"id": conversation.id, "message": payload},
                    },
                )
        if platform and not inbound:
            _send_later(pk)


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
    from conversations.delivery import send_enqueue  # delivery reads this app's channels

    # Robust: a broker outage is logged (the send sweep sends it later); the commit's
    # other callbacks (the sockets' broadcasts) still run.
    transaction.on_commit(lambda: send_enqueue(message_id), robust=True)


def _effects_apply(conversation: _Conversation) -> None:
    """What the conversation's turns caused, in order: the one place a turn reaches leads,
    the agents' handoff and the HTTP node's task."""
    if not conversation.effects:
        return
    from agents.services import conversation_hand_off  # the room above: ARCHITECTURE.md

    instance = Conversation.objects.select_related("bot", "contact").get(pk=conversation.id)
    instance.bot = conversation.bot
    for arrival, effect in conversation.effects:
        with _collected(arrival):
            kind = effect[0]
            if kind == "capture_lead":
                lead_capture(conversation=instance, fields=effect[1])
            elif kind == "hand_off":
                if instance.status == Conversation.Status.BOT:
                    conversation_hand_off(conversation=instance, reason=effect[1], team=effect[2])
            elif kind == "http_request":
                _http_request(instance, effect[1], effect[2])
    conversation.status = instance.status


def _http_request(conversation: Conversation, action_id: str, action: dict) -> None:
    from bots.tasks import bot_http_request  # bots' tasks call back into this app

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
        language=language if language in Bot.Language.values else bot.default_language,
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


# --- The web chat: a batch of visitors' messages -------------------------------------------------

# A batch's rounds: a conversation that effects changed is planned again, and a returning
# visitor's conversation is read (and locked) before its message goes in; more is a bug.
MAX_ROUNDS = 10


def messages_receive(arrivals: list[Arrival]) -> list[Arrival]:
    """Receive web chat visitors' messages in one transaction: each into the conversation
    its socket watches (unless it was resolved meanwhile), else the visitor's open one,
    else a new one started with the greeting; a resend is answered with what was stored.
    If the batch fails (another process opened a visitor's conversation at that moment),
    each runs alone, so that only a failing one is lost. An invalid message gets its
    ``error`` (a ServiceError) and stores nothing. What each caused is broadcast after the
    commit (collected in its ``events`` when it came from a socket)."""
    from conversations.turns import in_one_transaction

    results, error = in_one_transaction([lambda: _receive(arrivals)])
    if results is not None:
        return arrivals
    database = transaction.get_connection().Database
    if not isinstance(error, database.IntegrityError):  # a race with another process: fine
        logger.warning(
            "a batch of %d web chat messages failed (%r); each runs alone", len(arrivals), error
        )
    for arrival in arrivals:
        arrival.reset()
        results, error = in_one_transaction([lambda arrival=arrival: _receive([arrival])])
        if results is None:
            arrival.reset()
            arrival.error = error
    return arrivals


def _receive(arrivals: list[Arrival]) -> None:
    now = timezone.now()  # the batch's messages arrive, and are answered, together
    pending = []
    for arrival in arrivals:
        try:
            text = inbound_text(arrival.inbound)
        except ValidationFailed as exc:
            arrival.error = exc
            continue
        if text != arrival.inbound.text:
            inbound = arrival.inbound
            arrival.inbound = Inbound(
                text=text,
                kind=inbound.kind,
                payload=inbound.payload,
                data=inbound.data,
                external_id=inbound.external_id,
                timestamp=inbound.timestamp,
            )
        pending.append(arrival)
    for _ in range(MAX_ROUNDS):
        if not pending:
            return
        pending = _round(pending, now)
    raise RuntimeError(f"{len(pending)} web chat messages found no conversation")


def _round(arrivals: list[Arrival], now) -> list[Arrival]:
    """Plan and write what can be; returns the arrivals left for another round."""
    rows, stamps, resent = _read(arrivals)
    for bot in {id(a.bot): a.bot for a in arrivals}.values():
        if stamps.get(("b", bot.pk)) != bot.updated_at:
            bot_refresh(bot)  # saved since the socket read it (published again, say)
    plans: dict[Any, _Conversation] = {}
    later: list[Arrival] = []
    for arrival in arrivals:
        conversation = _conversation_for(arrival, rows, stamps, plans, now)
        if conversation is None:
            if arrival.error is None:
                later.append(arrival)  # the visitor's open one: read and locked first
            continue
        if conversation.blocked:
            conversation.waiting.append(arrival)
            continue
        conversation.arrivals.append(arrival)
        external_id = arrival.inbound.external_id
        stored = resent.get((conversation.id, external_id)) if conversation.id else None
        if stored is not None or (external_id and external_id in conversation.seen):
            arrival.duplicate = True
            if stored is not None:
                arrival.message = realtime.message_payload(stored)
            continue
        if external_id:
            conversation.seen[external_id] = arrival
        inbound = arrival.inbound
        values = _inbound_row(conversation, inbound, inbound.text, str(inbound.kind), now)
        _inbound(conversation, arrival, values, now)
        if conversation.status == _BOT_MODE:
            event = turn_event(inbound.kind, inbound.text, inbound.payload)
            _turn(conversation, arrival, event, now)
    conversations = list(plans.values())
    _write(conversations, now)
    for conversation in conversations:
        for arrival in conversation.arrivals:
            arrival.conversation = conversation.id
            first = conversation.seen.get(arrival.inbound.external_id)
            if arrival.duplicate and arrival.message is None and first is not None:
                arrival.message = first.message
        for arrival in conversation.waiting:
            arrival.conversation_id = conversation.id
            later.append(arrival)
    return later


def _conversation_for(arrival: Arrival, rows, stamps, plans, now) -> _Conversation | None:
    """The plan of the arrival's conversation: the socket's (unless resolved meanwhile), or
    a new one; None when the visitor has an open one not read yet (its id is then the
    arrival's), or with the arrival's error."""
    bot = arrival.bot
    found = rows.get(arrival.conversation_id) if arrival.conversation_id else None
    if found is not None and _watched(found, arrival):
        plan = plans.get(found.id)
        if plan is None:
            plan = plans[found.id] = found
            found.bot = bot
        return plan
    if not arrival.sandbox and bot.published_version_id is None:
        arrival.error = Conflict("This bot has no published version yet.", code="not_published")
        return None
    key = ("new", bot.pk, arrival.visitor_id, arrival.sandbox)
    plan = plans.get(key)
    if plan is not None:
        return plan
    contact_id = None
    if arrival.sandbox or arrival.conversation_id or (bot.tenant_id, arrival.visitor_id) in rows:
        # A returning visitor (or the sandbox's): their open conversation, else a new one for
        # their contact, serialised on the contact (one visitor, several tabs).
        contact = contact_for_identity(
            tenant=bot.tenant_id, kind=ChannelKind.WEBCHAT, external_id=arrival.visitor_id
        )
        Contact.objects.select_for_update().filter(pk=contact.pk).first()
        current = webchat_conversation_current(
            bot=bot, visitor_id=arrival.visitor_id, sandbox=arrival.sandbox
        )
        if current is not None:
            arrival.conversation_id = current.pk
            return None
        contact_id = contact.pk
    language = arrival.language if arrival.language in Bot.Language.values else bot.default_language
    plan = plans[key] = _Conversation(
        id=None,
        tenant_id=bot.tenant_id,
        bot=bot,
        bot_version_id=None if arrival.sandbox else bot.published_version_id,
        status=_BOT_MODE,
        is_sandbox=arrival.sandbox,
        engine_state=None,
        awaiting_action="",
        language=language,
        channel_kind=_WEBCHAT,
        channel_id=None,
        last_message_at=now,
        published_at=None if arrival.sandbox else stamps.get(("v", bot.published_version_id)),
        contact_id=contact_id,
        recipient_id=arrival.visitor_id,
        opened_by=arrival,
    )
    _turn(plan, arrival, Event(type="start"), now)
    return plan


def _watched(found: _Conversation, arrival: Arrival) -> bool:
    bot = arrival.bot
    return (
        found.tenant_id == bot.tenant_id
        and found.bot.pk == bot.pk
        and found.is_sandbox == arrival.sandbox
        and found.status != _RESOLVED
        and found.channel_kind == _WEBCHAT
    )


_CONVERSATIONS_SQL = (
    "SELECT id, tenant_id, bot_id, bot_version_id, status, is_sandbox, engine_state, "  # noqa: S608 - table names
    "awaiting_action, language, channel_kind, channel_id, resolved_at, last_message_at "
    f"FROM {Conversation._meta.db_table} WHERE id {{ids}} ORDER BY id"
)
_STAMPS_SQL = (
    f"SELECT 'b', id, updated_at FROM {Bot._meta.db_table} WHERE id {{bots}} UNION ALL "  # noqa: S608 - table names
    f"SELECT 'v', id, published_at FROM {BotVersion._meta.db_table} WHERE id {{versions}} OR id IN "
    f"(SELECT bot_version_id FROM {Conversation._meta.db_table} WHERE id {{ids}})"
)


def _among(connection, values: list) -> tuple[str, list]:
    """``IN (...)`` of ``values`` as SQL and its parameters: on PostgreSQL ``= ANY`` of one
    array (the same statement for any number of values, so psycopg and the server parse and
    plan it once per connection); elsewhere a list of placeholders."""
    if connection.vendor == "postgresql":
        return "= ANY(%s::bigint[])", [values]
    return f"IN ({', '.join(['?'] * len(values)) or 'NULL'})", values


class _Bot:
    """A bot's id, where a conversation's row names it (the arrival's bot replaces it)."""

    __slots__ = ("pk",)

    def __init__(self, pk: int):
        self.pk = pk


def _read(arrivals: list[Arrival]):
    """What a round needs to know, in one round trip on PostgreSQL: the conversations
    (locked for the transaction in the order of their ids, so that several processes'
    batches never wait on each other in a circle), the bots' change stamps and the versions'
    publication times, the messages the arrivals resend, and which new visitors are known.
    Returns (conversations by id, plus (tenant, visitor) of the known visitors; the stamps
    by ("b", bot) and ("v", version); the resent messages by (conversation, client id))."""
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    known_ids = sorted({a.conversation_id for a in arrivals if a.conversation_id})
    ids, ids_params = _among(connection, known_ids)
    bots, bots_params = _among(connection, sorted({a.bot.pk for a in arrivals}))
    versions, versions_params = _among(
        connection, sorted({a.bot.published_version_id for a in arrivals} - {None})
    )
    conversations = []
    if known_ids:
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        conversations = [Statement(_CONVERSATIONS_SQL.format(ids=ids) + lock, ids_params)]
    stamps = Statement(
        _STAMPS_SQL.format(bots=bots, versions=versions, ids=ids),
        [*bots_params, *versions_params, *ids_params],
    )
    resent = found_statements(
        Message,
        ("id",),
        ("tenant_id", "conversation_id", "direction", "external_id"),
        sorted(
            {
                (a.bot.tenant_id, a.conversation_id, _IN, a.inbound.external_id)
                for a in arrivals
                if a.conversation_id and a.inbound.external_id
            }
        ),
        where=f"t.{quote('channel_id')} IS NULL AND NOT (t.{quote('external_id')} = '')",
    )
    opening = [a for a in arrivals if not a.conversation_id and not a.sandbox]
    known = found_statements(
        ContactIdentity,
        ("tenant_id", "external_id"),
        ("tenant_id", "kind", "external_id"),
        sorted({(a.bot.tenant_id, _WEBCHAT, a.visitor_id) for a in opening}),
        where=f"t.{quote('channel_id')} IS NULL",
    )
    found_rows, found_stamps, found_resent, found_known = execute(
        conversations, [stamps], resent, known
    )
    stamped = {(kind, pk): _aware(stamp) for kind, pk, stamp in found_stamps}
    rows: dict[Any, Any] = {}
    for values in found_rows:
        (pk, tenant_id, bot_id, version_id, status, sandbox, state, awaiting) = values[:8]
        language, channel_kind, channel_id, resolved_at, last_message_at = values[8:]
        if isinstance(state, str):  # SQLite, and Django's jsonb loader
            state = json.loads(state)
        rows[pk] = _Conversation(
            id=pk,
            tenant_id=tenant_id,
            bot=_Bot(bot_id),
            bot_version_id=version_id,
            status=status,
            is_sandbox=bool(sandbox),
            engine_state=state,
            awaiting_action=awaiting,
            language=language,
            channel_kind=channel_kind,
            channel_id=channel_id,
            resolved_at=_aware(resolved_at),
            last_message_at=_aware(last_message_at),
            published_at=stamped.get(("v", version_id)),
        )
    for tenant_id, visitor_id in found_known:
        rows[(tenant_id, visitor_id)] = True
    ids_resent = [values[0] for values in found_resent]
    stored = Message.objects.filter(pk__in=ids_resent) if ids_resent else []
    resent_by = {(m.conversation_id, m.external_id): m for m in stored}
    return rows, stamped, resent_by


def _aware(value):
    """A datetime as the ORM gives it (SQLite's rows hold naive UTC ones, or text)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


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


# --- Contacts and leads --------------------------------------------------------------------------


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


def contact_fill_blanks(contact: Contact, **details: str) -> None:
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
    contact_fill_blanks(
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


# --- A platform's messages: stored with the webhook, answered by a task --------------------------


def channel_messages_receive(*, channel: Channel, inbound: list) -> list[tuple[int, bool]]:
    """Store a webhook's messages (``connectors.InboundMessage``), each once: a redelivery
    is a no-op, even concurrently (the unique constraint on (tenant, channel, external id)).
    Each commits on its own, so that one bad message never costs the others. Returns each
    one's id and whether it is new; the caller queues the bot's turns
    (``messages_answer``) after the commit, so that the platform gets its 200 once the
    messages are durable, and quickly."""
    return [_channel_message_receive(channel, message) for message in inbound]


def _channel_message_receive(channel: Channel, inbound) -> tuple[int, bool]:
    try:
        return _store(channel, inbound), True
    except IntegrityError:
        # Stored already (a redelivery): the unique constraint refused the insert, whatever
        # the race, and nothing of this request stays.
        existing = _existing(channel, inbound.external_id) if inbound.external_id else None
        if existing is None:
            raise
        return existing.pk, False


def _channel_row(channel: Channel, inbound, conversation_id) -> dict:
    data = dict(inbound.data)
    if inbound.payload is not None:
        data["payload"] = inbound.payload
    return row(
        Message,
        tenant_id=channel.tenant_id,
        conversation_id=conversation_id,
        channel_id=channel.pk,
        direction=_IN,
        sender=_CONTACT,
        kind=inbound.kind if inbound.kind in Message.Kind.values else Message.Kind.UNSUPPORTED,
        text=(inbound.text or "")[:MAX_TEXT],
        data=data,
        external_id=inbound.external_id[:200],
        status=_RECEIVED,
        created_at=inbound.timestamp or timezone.now(),
    )


def _store(channel: Channel, inbound) -> int:
    """Usually one statement: the message is inserted into the sender's open conversation on
    the channel, found by a subquery of the INSERT (the conversation's recipient on the
    channel is the sender). Without one, the INSERT fails on its NOT NULL conversation and
    the conversation is opened (``_channel_conversation``). Broadcasting and the bot's turn
    happen in the task: the acknowledgement waits for nothing else."""
    values = _channel_row(channel, inbound, None)
    params = [channel.tenant_id, channel.pk, inbound.sender_id, Conversation.Status.RESOLVED]
    try:
        return row_insert(
            Message,
            values,
            subquery=("conversation_id", _OPEN_CONVERSATION_SQL, params),
            savepoint=True,
        )
    except IntegrityError:
        if inbound.external_id and _existing(channel, inbound.external_id) is not None:
            raise  # a redelivery
    values["conversation_id"] = _channel_conversation(channel, inbound)
    return row_insert(Message, values, savepoint=True)


_OPEN_CONVERSATION_SQL = (
    f"(SELECT id FROM {Conversation._meta.db_table} "  # noqa: S608 - names, not input
    "WHERE tenant_id = %s AND channel_id = %s AND recipient_id = %s AND NOT is_sandbox "
    "AND status <> %s ORDER BY created_at DESC LIMIT 1)"
)


def _existing(channel: Channel, external_id: str) -> Message | None:
    return (
        Message.objects.for_tenant(channel.tenant_id)
        .filter(channel=channel, external_id=external_id[:200])
        .first()
    )


def _channel_conversation(channel: Channel, inbound) -> int:
    """The id of the sender's open conversation on the channel, or of a new one (the
    greeting runs with the bot's first turn, in the task)."""

    def current() -> int | None:
        return (
            Conversation.objects.for_tenant(channel.tenant_id)
            .filter(channel=channel, recipient_id=inbound.sender_id, is_sandbox=False)
            .exclude(status=Conversation.Status.RESOLVED)
            .order_by("-created_at")
            .values_list("pk", flat=True)
            .first()
        )

    conversation_id = current()
    if conversation_id is not None:
        return conversation_id
    with transaction.atomic():
        contact = contact_for_identity(
            tenant=channel.tenant_id,
            kind=channel.kind,
            external_id=inbound.sender_id,
            channel=channel,
            name=inbound.sender_name or "",
        )
        # Two first messages of a new contact at once: one conversation (serialise on it).
        Contact.objects.select_for_update().filter(pk=contact.pk).first()
        conversation_id = current()
        if conversation_id is not None:
            return conversation_id
        bot = Bot.objects.get(pk=channel.bot_id)  # fresh: the channel may come from a cache
        conversation = conversation_start(
            bot=bot,
            contact=contact,
            channel_kind=channel.kind,
            recipient_id=inbound.sender_id,
            channel=channel,
            greet=False,
            unpublished_ok=True,
        )
        return conversation.pk


@transaction.atomic
def messages_answer(*, message_id: int) -> list[Message]:
    """Hand the unhandled inbound messages of the message's conversation, in order, to the
    agents watching and, in bot mode, to the bot: planned, written and carried out as the
    web chat's turns. Safe to run twice: handled messages are skipped."""
    conversation_id = (
        Message.objects.filter(pk=message_id).values_list("conversation_id", flat=True).first()
    )
    conversation = (
        Conversation.objects.select_for_update().select_related("bot").filter(pk=conversation_id)
    ).first()
    if conversation is None:
        return []
    pending = list(
        Message.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, direction=Message.Direction.IN, handled_at=None)
        .order_by("created_at", "id")
    )
    if not pending:
        return []
    now = timezone.now()
    replies: list[Message] = []
    plan = _Conversation.of(conversation)
    plan.changed = True  # its last message's time
    for message in pending:
        if plan.blocked:
            # What the effects left (a handoff, the end) decides the next message's fate.
            _write([plan], now)
            replies += _messages(plan)
            conversation = Conversation.objects.select_related("bot").get(pk=conversation.pk)
            plan = _Conversation.of(conversation)
            plan.changed = True
        if message.data.get("reply_type") == "callback_query" and message.data.get(
            "callback_query_id"
        ):
            _answer_callback_query(message)
        answering = plan.status == _BOT_MODE and _bot_ready(plan)
        if answering and plan.engine_state is None:
            # A first message opens the conversation with the bot's greeting (told before
            # the message, as the web chat tells it); it is also answered when it asks for
            # something the bot knows ("how much is it?"), not when it is only a hello.
            _turn(plan, None, Event(type="start"), now)
            answering = _asks_something(plan, message)
        plan.messages.append([None, _stored(message), message.pk])  # announced, not inserted
        plan.last_message_at = now
        if answering and plan.blocked:
            # The start's effects first (a handoff): then the message, on what they left.
            _write([plan], now)
            replies += _messages(plan)
            conversation = Conversation.objects.select_related("bot").get(pk=conversation.pk)
            plan = _Conversation.of(conversation)
            plan.changed = True
            answering = plan.status == _BOT_MODE
        if answering:
            _turn(plan, None, _channel_event(plan, message), now)
    _write([plan], now)
    replies += _messages(plan)
    Message.objects.filter(pk__in=[m.pk for m in pending]).update(handled_at=timezone.now())
    return replies


def _stored(message: Message) -> dict:
    """A stored message's row (for its announcement)."""
    return {f.attname: getattr(message, f.attname) for f in Message._meta.concrete_fields}


def messages_answer_failed(*, message_id: int, max_failures: int) -> bool:
    """Count a crashed bot turn against the unhandled messages of the message's conversation.
    At ``max_failures`` the retries stop: those messages are marked handled and the
    conversation goes to a person (reason ``bot_error``), so that a bug costs the contact a
    wait for an agent, not a day of silence and a crash a minute. Returns whether it did."""
    from django.db.models import F, Max

    with transaction.atomic():
        conversation_id = (
            Message.objects.filter(pk=message_id).values_list("conversation_id", flat=True).first()
        )
        conversation = (
            Conversation.objects.select_for_update()
            .select_related("bot")
            .filter(pk=conversation_id)
        ).first()
        if conversation is None:
            return False
        pending = Message.objects.filter(
            conversation=conversation, direction=Message.Direction.IN, handled_at=None
        )
        pending.update(handle_failures=F("handle_failures") + 1)
        failures = pending.aggregate(most=Max("handle_failures"))["most"] or 0
        if failures < max_failures:
            return False
        pending.update(handled_at=timezone.now())
        logger.error(
            "conversation %s: the bot's turn crashed %d times; handed to a person",
            conversation.pk,
            failures,
        )
        if conversation.status == Conversation.Status.BOT:
            plan = _Conversation.of(conversation)
            _effect(plan, None, ("hand_off", BOT_ERROR_REASON, ""))
            _effects_apply(plan)
        return True


def _answer_callback_query(message: Message) -> None:
    """Telegram shows a spinner on a tapped inline button until the bot answers the query."""
    from conversations.tasks import telegram_callback_answer

    channel_id, query_id = message.channel_id, str(message.data["callback_query_id"])
    transaction.on_commit(lambda: telegram_callback_answer.delay(channel_id, query_id))


def _asks_something(plan: _Conversation, message: Message) -> bool:
    from bots.engine.types import DEFAULT_INTENT_THRESHOLD, RESTART

    if message.kind == Message.Kind.BUTTON:
        return True
    if message.kind != Message.Kind.TEXT or not message.text:
        return False
    runtime = bot_runtime(plan.bot, plan.bot_version_id, plan.published_at)
    intent, confidence = runtime.matcher.classify(message.text)
    settings_ = runtime.definition.get("settings") or {}
    # "Start again" means nothing in a conversation that has just started ("hello again").
    return intent not in (None, RESTART) and confidence >= settings_.get(
        "intent_threshold", DEFAULT_INTENT_THRESHOLD
    )


def _bot_ready(plan: _Conversation) -> bool:
    if plan.bot_version_id is not None:
        return True
    version = plan.bot.published_version_id
    if version is None:
        logger.warning("bot %s has no published version: not answering", plan.bot.pk)
        return False
    plan.bot_version_id = version
    return True


def _channel_event(plan: _Conversation, message: Message) -> Event:
    from conversations.connectors import resolve_numbered_reply

    payload = message.data.get("payload")
    if message.kind == Message.Kind.BUTTON and payload is not None:
        return Event(type="quick_reply", text=message.text, payload=str(payload))
    if plan.channel_kind == ChannelKind.TWILIO and message.kind == Message.Kind.TEXT:
        # SMS shows quick replies as numbered options: "2" answers the second one.
        said = [values for _, values, pk in plan.messages if values["direction"] == _OUT]
        if said:
            offered = said[-1]["data"]
        else:
            offered = (
                Message.objects.for_tenant(plan.tenant_id)
                .filter(conversation_id=plan.id, direction=Message.Direction.OUT, pk__lt=message.pk)
                .order_by("-created_at", "-id")
                .values_list("data", flat=True)
                .first()
            )
        chosen = resolve_numbered_reply(message.text, (offered or {}).get("quick_replies") or [])
        if chosen is not None and chosen.get("payload") is not None:
            return Event(type="quick_reply", text=chosen["title"], payload=str(chosen["payload"]))
    return Event(type="message", text=message.text)
