"""The receive service's plan of a turn, pure: the conversation's state, the engine's step, the
rows to write and the effects to carry out (conversations.receive)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bots.engine import Context, Event, StepResult, step
from bots.engine.templates import render
from bots.hours import within_business_hours
from bots.models import Bot
from bots.selectors import bot_runtime
from chattonic.core.errors import ValidationFailed
from chattonic.tenancy.selectors import staff_public_name
from conversations.models import ChannelKind, Conversation, Message
from conversations.sql import (
    row,
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
    pending: list = field(default_factory=list)  # events of the transaction under way

    def reset(self) -> None:
        self.conversation = self.message = self.error = None
        self.duplicate = False
        self.replies = []
        self.events = []
        self.pending = []


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
    moved: bool = False  # ... with its status or version
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
        """What a turn changes of its row. The status, its end and the version only when the
        plan changed them (``moved``): an UPDATE that sets an indexed column costs index
        work on SQLite even when the value stays."""
        state = {
            "id": self.id,
            "engine_state": self.engine_state,
            "awaiting_action": self.awaiting_action,
            "last_message_at": self.last_message_at,
        }
        if self.moved:
            state.update(
                bot_version_id=self.bot_version_id,
                status=self.status,
                resolved_at=self.resolved_at,
            )
        return state

    def arrivals_announced(self) -> list[Arrival]:
        """The socket arrivals with events waiting for the commit, in order, once each."""
        found: dict[int, Arrival] = {}
        for arrival, _, _ in self.messages:
            if arrival is not None and arrival.pending:
                found.setdefault(id(arrival), arrival)
        return list(found.values())

    def copy_to(self, conversation: Conversation) -> None:
        """The caller's model instance, as the plan left it."""
        for name in ("engine_state", "awaiting_action", "last_message_at", "bot_version_id"):
            setattr(conversation, name, getattr(self, name))
        conversation.status, conversation.resolved_at = self.status, self.resolved_at


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
            _effect(conversation, arrival, ("hand_off", BOT_ERROR_REASON, "", "", False))
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
            team, text = action.get("team") or "", action.get("message") or ""
            own = bool(action.get("own_text"))
            _effect(conversation, arrival, ("hand_off", reason, team, text, own))
        elif kind == "http_request":
            action_id = uuid.uuid4().hex
            conversation.awaiting_action = action_id
            _effect(conversation, arrival, ("http_request", action_id, action))
        elif kind == "end":
            # The flow's end ends the conversation: the contact's next message starts a new
            # one, on the version live then. A conversation with agents is theirs to resolve.
            if conversation.status == _BOT_MODE and not conversation.handing_off:
                conversation.status = _RESOLVED
                conversation.moved = True
                conversation.resolved_at = now
                conversation.blocked = True
        elif kind == "unmatched":
            # Kept for the bot's owner to teach to an intent; the sandbox's tests are not
            # visitors. Not an effect that changes the conversation: its next turns go on.
            if not conversation.is_sandbox:
                conversation.effects.append((arrival, ("unmatched", action)))
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


def inbound_row(
    *,
    tenant_id: int,
    conversation_id,
    channel_id,
    inbound,
    text: str,
    kind: str,
    external_id: str,
    created_at,
) -> dict:
    """The row of a message a contact sent, whatever the door (the socket's batch, a
    platform's webhook): its payload kept in ``data``."""
    data = dict(inbound.data)
    if inbound.payload is not None:
        data["payload"] = inbound.payload
    return row(
        Message,
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        channel_id=channel_id,
        direction=_IN,
        sender=_CONTACT,
        kind=kind,
        text=text,
        data=data,
        external_id=external_id,
        status=_RECEIVED,
        created_at=inbound.timestamp or created_at,
    )
