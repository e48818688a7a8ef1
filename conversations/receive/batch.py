"""The web chat's messages, a batch at a time (conversations.receive)."""

from __future__ import annotations

import json
import logging
from datetime import UTC
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from bots.engine import Event
from bots.models import LANGUAGE_CODES, Bot, BotVersion
from bots.selectors import bot_refresh
from chattonic.core.errors import Conflict, ValidationFailed
from contacts.models import Contact, ContactIdentity
from conversations import realtime
from conversations.models import ChannelKind, Conversation, Message
from conversations.receive.plan import (
    _BOT_MODE,
    _IN,
    _RESOLVED,
    _WEBCHAT,
    Arrival,
    Inbound,
    _Conversation,
    _inbound,
    _turn,
    inbound_row,
    inbound_text,
    turn_event,
)
from conversations.receive.write import SANDBOX_CONTACT_NAME, _write, contact_for_identity
from conversations.selectors import webchat_current
from conversations.sql import (
    Statement,
    execute,
    found_statements,
)
from conversations.turns import in_one_transaction

logger = logging.getLogger(__name__)


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
    rows, stamps, resent, known = _read(arrivals)
    for bot in {id(a.bot): a.bot for a in arrivals}.values():
        if stamps.get(("b", bot.pk)) != bot.updated_at:
            bot_refresh(bot)  # saved since the socket read it (published again, say)
    plans: dict[Any, _Conversation] = {}
    later: list[Arrival] = []
    for arrival in arrivals:
        conversation = _conversation_for(arrival, rows, known, stamps, plans, now)
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
        values = inbound_row(
            tenant_id=conversation.tenant_id,
            conversation_id=conversation.id,
            channel_id=conversation.channel_id,
            inbound=inbound,
            text=inbound.text,
            kind=str(inbound.kind),
            external_id=inbound.external_id,
            created_at=now,
        )
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


def _conversation_for(arrival: Arrival, rows, known, stamps, plans, now) -> _Conversation | None:
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
    if arrival.sandbox or arrival.conversation_id or (bot.tenant_id, arrival.visitor_id) in known:
        # A returning visitor (or the sandbox's): their open conversation, else a new one for
        # their contact, serialised on the contact (one visitor, several tabs).
        contact = contact_for_identity(
            tenant=bot.tenant_id,
            kind=ChannelKind.WEBCHAT,
            external_id=arrival.visitor_id,
            name=SANDBOX_CONTACT_NAME if arrival.sandbox else "",
        )
        Contact.objects.select_for_update().filter(pk=contact.pk).first()
        current = webchat_conversation_current(
            bot=bot, visitor_id=arrival.visitor_id, sandbox=arrival.sandbox
        )
        if current is not None:
            arrival.conversation_id = current.pk
            return None
        contact_id = contact.pk
    language = arrival.language if arrival.language in LANGUAGE_CODES else bot.default_language
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
    array (the same statement for any number of values); elsewhere a list of placeholders."""
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
    Returns (conversations by id; the stamps by ("b", bot) and ("v", version); the resent
    messages by (conversation, client id); the known visitors, as (tenant, visitor))."""
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
    rows: dict[int, _Conversation] = {}
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
    known = {(tenant_id, visitor_id) for tenant_id, visitor_id in found_known}
    ids_resent = [values[0] for values in found_resent]
    stored = Message.objects.filter(pk__in=ids_resent) if ids_resent else []
    resent_by = {(m.conversation_id, m.external_id): m for m in stored}
    return rows, stamped, resent_by, known


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
    return webchat_current(
        tenant_id=bot.tenant_id, bot=bot, visitor_id=visitor_id, sandbox=sandbox
    ).first()
