"""A platform's messages: stored with the webhook, answered by a task (conversations.receive)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from bots.engine import Event
from bots.engine.types import DEFAULT_INTENT_THRESHOLD, RESTART
from bots.models import Bot
from bots.selectors import bot_runtime
from contacts.models import Contact
from conversations import hooks
from conversations.models import ChannelKind, Conversation, Message
from conversations.receive.plan import (
    _BOT_MODE,
    _OUT,
    BOT_ERROR_REASON,
    MAX_TEXT,
    _Conversation,
    _effect,
    _turn,
    inbound_row,
)
from conversations.receive.write import (
    _effects_apply,
    _messages,
    _write,
    contact_for_identity,
    conversation_start,
)
from conversations.sql import (
    row_insert,
)

logger = logging.getLogger(__name__)

# The message kinds, as a set (``Message.Kind.values`` builds a new list on each use).
_KINDS = frozenset(Message.Kind.values)

if TYPE_CHECKING:
    from messaging.models import Channel


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
    """A platform's message as a row: a kind we do not know is stored as unsupported, the
    text and the platform's id cut to what the table holds."""
    return inbound_row(
        tenant_id=channel.tenant_id,
        conversation_id=conversation_id,
        channel_id=channel.pk,
        inbound=inbound,
        text=(inbound.text or "")[:MAX_TEXT],
        kind=inbound.kind if inbound.kind in _KINDS else Message.Kind.UNSUPPORTED,
        external_id=inbound.external_id[:200],
        created_at=timezone.now(),
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
            _effect(plan, None, ("hand_off", BOT_ERROR_REASON, "", "", False))
            _effects_apply(plan)
        return True


def _answer_callback_query(message: Message) -> None:
    """Telegram shows a spinner on a tapped inline button until the bot answers the query."""
    channel_id, query_id = message.channel_id, str(message.data["callback_query_id"])
    transaction.on_commit(lambda: hooks.callback_answer(channel_id=channel_id, query_id=query_id))


def _asks_something(plan: _Conversation, message: Message) -> bool:
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
    plan.moved = True
    return True


def _channel_event(plan: _Conversation, message: Message) -> Event:
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
        chosen = hooks.numbered_reply_resolve(
            message.text, (offered or {}).get("quick_replies") or []
        )
        if chosen is not None and chosen.get("payload") is not None:
            return Event(type="quick_reply", text=chosen["title"], payload=str(chosen["payload"]))
    return Event(type="message", text=message.text)
