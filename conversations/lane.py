"""The web chat's lane: visitors' messages to a bot, many sockets' at once.

A socket's ``message`` (or ``quick_reply``) frame becomes a :class:`Turn`, which joins the
next batch of its web process (the group commit of conversations.turns). A batch:

1. hops to a database thread, which does the rest (``run_lane_batch``; Redis too, with a
   blocking client, so that no step waits behind the event loop's bursts of frames);
   counts each visitor's messages against ``WEBCHAT_MESSAGES_PER_10S`` in one Redis round
   trip (a message over the limit gets the ``rate_limited`` error and is not stored);
2. runs in one transaction. Its *plain* turns go together, in five statements for the
   whole batch: the conversations locked, resends looked up, the visitors' messages
   inserted, the bot's replies inserted, the conversations' states updated. Plain: the
   conversation is the socket's, with the bot, nothing pending, the bot unchanged since the
   socket read it, and the engine's step only answers (no action, no error). Every other
   turn (a visitor's first message, a conversation with an agent or resolved, a step that
   hands off, captures a lead, calls out or fails) runs on the general path,
   ``services.webchat_receive_in_transaction``, in the same transaction after them; so does
   every turn of its conversation in that batch. A batch that fails is rolled back and each
   of its turns runs alone on the general path (only a failing one is lost; its socket gets
   the error).
3. asks the channel layer, in one round trip from the same thread, which conversations
   someone else hears (another tab of the visitor, an agent): only those get the plain
   turns' messages as group events. The socket that sent a message gets its ``ack`` (with
   the stored message) and the bot's replies from here, not back through Redis.

What is stored, and what every socket sees, is the same on both paths (tests/conversations/
test_lane.py compares them).
"""

from __future__ import annotations

import json
import logging
import weakref
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from bots.engine import Event
from bots.hours import within_business_hours
from bots.models import Bot, BotVersion
from bots.selectors import bot_refresh, bot_runtime
from chattonic.core import ratelimit
from chattonic.core.errors import ServiceError
from conversations import realtime, services
from conversations.models import ChannelKind, Contact, ContactIdentity, Conversation, Message
from conversations.sql import (
    Statement,
    execute,
    found_statements,
    insert_statements,
    rows_insert,
    update_statements,
)
from conversations.turns import TurnBatcher, in_one_transaction

logger = logging.getLogger(__name__)


# Batches under way at once in a web process: while one is in its database thread, the next
# one gathers and the last one's answers go out (measured faster than one, three or four).
IN_FLIGHT = 2


class RateLimited(ServiceError):
    status = 429
    code = "rate_limited"


@dataclass(eq=False, slots=True)
class Turn:
    """One visitor message, from its socket, and (once run) what came of it."""

    bot: Bot
    visitor_id: str
    conversation_id: int | None  # the one the socket watches, if any
    sandbox: bool
    language: str
    channel: str  # the sending socket's channel name
    kind: str
    text: str
    payload: str | None
    client_id: str
    # The outcome.
    conversation: int | None = None
    message: dict | None = None  # the visitor's message, as stored
    duplicate: bool = False  # a resend: stored before, nothing new happened
    replies: list[dict] = field(default_factory=list)  # the bot's, for the sending socket
    events: list = field(default_factory=list)  # (group, event) for the others
    general: bool = False  # ran on the general path (its replies go out as events)

    def reset(self) -> None:
        self.conversation = self.message = None
        self.duplicate = self.general = False
        self.replies = []
        self.events = []


# --- The batch, in the database thread ---------------------------------------------------------


def run_batch(turns: list[Turn]) -> list[tuple[bool, Any]]:
    """All of ``turns`` in one transaction; if it fails, each alone on the general path.
    Returns (True, turn) or (False, error) for each."""
    results, error = in_one_transaction([lambda: _run_together(turns)])
    if results is not None:
        return [(True, turn) for turn in turns]
    database = transaction.get_connection().Database
    if not isinstance(error, database.IntegrityError):  # a race with another process: fine
        logger.warning(
            "a batch of %d web chat messages failed (%r); each runs alone", len(turns), error
        )
    outcomes = []
    for turn in turns:
        turn.reset()
        results, error = in_one_transaction([lambda turn=turn: _run_general(turn)])
        outcomes.append((True, turn) if results is not None else (False, error))
    return outcomes


_CONVERSATIONS_SQL = (
    "SELECT id, tenant_id, bot_id, bot_version_id, status, is_sandbox, engine_state, "  # noqa: S608 - table names
    f"awaiting_action, language, channel_kind, channel_id FROM {Conversation._meta.db_table} "
    "WHERE id {ids} ORDER BY id"
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


@dataclass
class _Conversation:
    id: int | None  # None: opened by this batch, not inserted yet
    tenant_id: int
    bot_id: int
    bot_version_id: int | None
    status: str
    is_sandbox: bool
    engine_state: Any
    awaiting_action: str
    language: str
    channel_kind: str
    channel_id: int | None
    bot_updated_at: Any = None  # the bot's change stamp, as the batch read it
    published_at: Any = None  # its version's publication time (the runtime's cache key)


@dataclass
class _Plan:
    """One conversation's plain turns in the batch, worked out before anything is written."""

    row: _Conversation | None  # None: not found (the plan is general)
    visitor_id: str = ""  # a conversation this batch opens: its visitor
    greeting: list[dict] = field(default_factory=list)  # ... and what its start says
    turns: list[tuple[Turn, Any]] = field(default_factory=list)  # (turn, step; None: resend)
    general: bool = False  # something is not plain: all its turns take the general path


def _read(turns: list[Turn]):
    """What the batch needs to know, in one round trip on PostgreSQL: the conversations
    (locked for the transaction in the order of their ids, so that several processes'
    batches never wait on each other in a circle), the bots' change stamps and the versions'
    publication times, the messages the turns resend, and which new visitors are known.
    Returns (conversations by id, the stamps by ("b", bot) and ("v", version), resent ids,
    known)."""
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    known_ids = sorted({t.conversation_id for t in turns if t.conversation_id})
    ids, ids_params = _among(connection, known_ids)
    bots, bots_params = _among(connection, sorted({t.bot.pk for t in turns}))
    versions, versions_params = _among(
        connection, sorted({t.bot.published_version_id for t in turns} - {None})
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
                (t.bot.tenant_id, t.conversation_id, _IN, t.client_id)
                for t in turns
                if t.conversation_id
            }
        ),
        where=f"t.{quote('channel_id')} IS NULL AND NOT (t.{quote('external_id')} = '')",
    )
    opening = [t for t in turns if not t.conversation_id and not t.sandbox]
    known = found_statements(
        ContactIdentity,
        ("tenant_id", "external_id"),
        ("tenant_id", "kind", "external_id"),
        sorted({(t.bot.tenant_id, _WEBCHAT, t.visitor_id) for t in opening}),
        where=f"t.{quote('channel_id')} IS NULL",
    )
    found_rows, found_stamps, found_resent, found_known = execute(
        conversations, [stamps], resent, known
    )
    rows = {}
    for values in found_rows:
        row = _Conversation(*values)
        if isinstance(row.engine_state, str):  # SQLite, and Django's jsonb loader
            row.engine_state = json.loads(row.engine_state)
        rows[row.id] = row
    stamped = {(kind, pk): _aware(stamp) for kind, pk, stamp in found_stamps}
    for row in rows.values():
        row.bot_updated_at = stamped.get(("b", row.bot_id))
        row.published_at = stamped.get(("v", row.bot_version_id))
    return rows, stamped, [values[0] for values in found_resent], set(found_known)


def _aware(value):
    """A datetime as the ORM gives it (SQLite's rows hold naive UTC ones, or text)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def _plain_conversation(row: _Conversation | None, turn: Turn) -> bool:
    return (
        row is not None
        and row.status == Conversation.Status.BOT
        and row.bot_id == turn.bot.pk
        and row.tenant_id == turn.bot.tenant_id
        and row.is_sandbox == turn.sandbox
        and row.channel_kind == ChannelKind.WEBCHAT
        and not row.awaiting_action
        and row.bot_updated_at == turn.bot.updated_at
    )


def _valid_text(turn: Turn) -> bool:
    """What ``services`` would accept (else the general path says what is wrong)."""
    text = turn.text.strip()
    return len(text) <= services.MAX_TEXT and bool(text or turn.kind != Message.Kind.TEXT)


def _plain_step(result) -> bool:
    return not (result.error or result.actions or (result.state or {}).get("status") == "http")


def _resent(ids: list[int]) -> dict[tuple[int, str], Message]:
    """The stored messages that turns resend (``_read`` found their ids), by conversation
    and client id."""
    if not ids:
        return {}
    found = Message.objects.filter(pk__in=ids)
    return {(message.conversation_id, message.external_id): message for message in found}


def _run_together(turns: list[Turn]) -> None:
    now = timezone.now()  # the batch's messages arrive, and are answered, together
    rows, stamps, resent_ids, known = _read(turns)
    plans: dict[Any, _Plan] = {}
    general: list[Turn] = []

    def plan_of(turn: Turn) -> _Plan | None:
        if turn.conversation_id:
            key: Any = turn.conversation_id
        elif turn.sandbox or turn.bot.published_version_id is None:
            return None  # the general path opens the sandbox's, or says it is not published
        else:
            key = ("new", turn.bot.pk, turn.visitor_id)
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = _new_plan(turn, rows, known, now, stamps)
        return plan

    for turn in turns:
        plan = plan_of(turn)
        if plan is None or plan.general or not _valid_text(turn):
            if plan is not None:
                plan.general = True
            continue
        plan.turns.append((turn, True))  # its step below, once resends are known
    resent = _resent(resent_ids)
    for plan in plans.values():
        if not plan.general:
            _step_all(plan, resent, now)
    for turn in turns:
        plan = plan_of(turn)
        if plan is None or plan.general:
            general.append(turn)
    _write([plan for plan in plans.values() if not plan.general], resent, now)
    for turn in general:
        _run_general(turn)


def _new_plan(turn: Turn, rows: dict, known: set, now, stamps: dict) -> _Plan:
    bot = turn.bot
    if turn.conversation_id:
        row = rows.get(turn.conversation_id)
        return _Plan(row=row, general=not _plain_conversation(row, turn))
    if stamps.get(("b", bot.pk)) != bot.updated_at:
        # Saved since the socket read it (published again, say): read it again, and let the
        # general path open the conversation on what it is now.
        bot_refresh(bot)
        return _Plan(row=None, general=True)
    # A new visitor's first message: the conversation is opened here, with its start.
    language = turn.language if turn.language in Bot.Language.values else bot.default_language
    row = _Conversation(
        id=None,
        tenant_id=bot.tenant_id,
        bot_id=bot.pk,
        bot_version_id=bot.published_version_id,
        status=Conversation.Status.BOT,
        is_sandbox=False,
        engine_state=None,
        awaiting_action="",
        language=language,
        channel_kind=ChannelKind.WEBCHAT,
        channel_id=None,
        published_at=stamps.get(("v", bot.published_version_id)),
    )
    plan = _Plan(row=row, visitor_id=turn.visitor_id)
    if (bot.tenant_id, turn.visitor_id) in known:
        plan.general = True  # a returning visitor: the general path finds their conversation
        return plan
    result = _step(row, bot, Event(type="start"), now)
    if not _plain_step(result):
        plan.general = True
        return plan
    row.engine_state = result.state
    plan.greeting = result.replies
    return plan


# Per bot: (the batch's time, the bot's stamp, whether it is open then), so that a batch
# works the business hours out once per bot.
_open_now: dict[int, tuple[Any, Any, bool]] = {}


def _step(row: _Conversation, bot: Bot, event: Event, now):
    known = _open_now.get(bot.pk)
    if known is None or known[0] is not now or known[1] != bot.updated_at:
        known = (now, bot.updated_at, within_business_hours(bot.business_hours, bot.time_zone, now))
        _open_now[bot.pk] = known
    return services.engine_step(
        bot=bot,
        runtime=bot_runtime(bot, row.bot_version_id, row.published_at),
        channel_kind=row.channel_kind,
        language=row.language,
        state=row.engine_state,
        event=event,
        now=now,
        open_now=known[2],
    )


def _step_all(plan: _Plan, resent: dict, now) -> None:
    """The engine's steps for the plan's turns, one after the other (a resend takes none);
    the plan turns general at the first step that is not plain."""
    seen: set[str] = set()
    stepped = []
    for turn, _ in plan.turns:
        if (plan.row.id, turn.client_id) in resent or turn.client_id in seen:
            stepped.append((turn, None))
            continue
        seen.add(turn.client_id)
        event = services.turn_event(turn.kind, turn.text.strip(), turn.payload)
        result = _step(plan.row, turn.bot, event, now)
        if not _plain_step(result):
            plan.general = True
            return
        plan.row.engine_state = result.state
        stepped.append((turn, result))
    plan.turns = stepped


# The columns the lane writes (the others take their defaults), and its values as plain
# strings (choices' enum members cost more to pass around).
_COLUMNS = (
    "tenant_id",
    "conversation_id",
    "direction",
    "sender",
    "kind",
    "text",
    "data",
    "external_id",
    "status",
    "status_at",
    "created_at",
)
_IN, _OUT = str(Message.Direction.IN), str(Message.Direction.OUT)
_CONTACT, _BOT = str(Message.Sender.CONTACT), str(Message.Sender.BOT)
_TEXT = str(Message.Kind.TEXT)
_RECEIVED, _SENT = str(Message.Status.RECEIVED), str(Message.Status.SENT)
_WEBCHAT = str(ChannelKind.WEBCHAT)


def _write(plans: list[_Plan], resent: dict, now) -> None:
    """The plans' rows: the new visitors' contacts, identities and conversations (three
    statements, two round trips on PostgreSQL), then every message and the other
    conversations' states (two statements, one round trip on PostgreSQL); then the payloads
    and events of each turn."""
    _open(plans, now)
    messages: list[tuple] = []
    for plan in plans:
        row = plan.row
        messages += [_reply_row(row, reply, now) for reply in plan.greeting]
        for turn, result in plan.turns:
            if result is None:
                continue
            data = {"payload": turn.payload} if turn.payload is not None else {}
            text = turn.text.strip()
            kind = str(turn.kind)
            messages.append(
                (
                    row.tenant_id,
                    row.id,
                    _IN,
                    _CONTACT,
                    kind,
                    text,
                    data,
                    turn.client_id,
                    _RECEIVED,
                    None,
                    now,
                )
            )
            messages += [_reply_row(row, reply, now) for reply in result.replies]
    states = [plan.row for plan in plans if not plan.visitor_id]
    ids, _ = execute(  # one round trip on PostgreSQL
        insert_statements(Message, _COLUMNS, messages),
        update_statements(
            Conversation,
            "id",
            ("engine_state", "awaiting_action", "last_message_at"),
            [(row.id, row.engine_state, "", now) for row in states],
        ),
    )
    stored = iter(zip(messages, [values[0] for values in ids], strict=True))

    for plan in plans:
        group = realtime.conversation_group(plan.row.id)
        greeting = [_payload(*next(stored)) for _ in plan.greeting]
        first: dict[str, dict] = {}
        for turn, result in plan.turns:
            turn.conversation = plan.row.id
            if result is None:  # a resend: what was stored for it
                turn.duplicate = True
                found = resent.get((plan.row.id, turn.client_id))
                turn.message = realtime.message_payload(found) if found else first[turn.client_id]
                continue
            turn.message = first[turn.client_id] = _payload(*next(stored))
            if greeting:  # the sender hears the start first; the visitor's other tabs join
                turn.events.append(
                    (
                        realtime.visitor_group(plan.visitor_id),
                        {"type": "conversation.started", "conversation": plan.row.id},
                    )
                )
                turn.replies += greeting
                turn.events += [_event(group, message, turn.channel) for message in greeting]
                greeting = []
            turn.events.append(_event(group, turn.message, turn.channel))
            for _ in result.replies:
                reply = _payload(*next(stored))
                turn.replies.append(reply)
                turn.events.append(_event(group, reply, turn.channel))


def _reply_row(row: _Conversation, reply: dict, now) -> tuple:
    data, text = services.reply_data(reply), reply.get("text", "")
    return (row.tenant_id, row.id, _OUT, _BOT, _TEXT, text, data, "", _SENT, now, now)


def _open(plans: list[_Plan], now) -> None:
    """The new visitors' contacts, then their identities and conversations together (as
    ``webchat_open`` makes them). Another process opening one at the same time makes the
    identity's INSERT fail: the batch then runs turn by turn on the general path, which
    finds it."""
    new = [plan for plan in plans if plan.visitor_id]
    if not new:
        return
    contacts = rows_insert(Contact, ("tenant_id",), [(plan.row.tenant_id,) for plan in new])
    identities = insert_statements(
        ContactIdentity,
        ("tenant_id", "contact_id", "kind", "external_id"),
        [
            (plan.row.tenant_id, contact, _WEBCHAT, plan.visitor_id)
            for plan, contact in zip(new, contacts, strict=True)
        ],
    )
    columns = ("tenant_id", "bot_id", "bot_version_id", "contact_id", "channel_kind")
    columns += ("recipient_id", "language", "engine_state", "created_at", "last_message_at")
    conversations = insert_statements(
        Conversation,
        columns,
        [
            (
                plan.row.tenant_id,
                plan.row.bot_id,
                plan.row.bot_version_id,
                contact,
                _WEBCHAT,
                plan.visitor_id,
                plan.row.language,
                plan.row.engine_state,
                now,
                now,
            )
            for plan, contact in zip(new, contacts, strict=True)
        ],
    )
    _, ids = execute(identities, conversations)  # one round trip on PostgreSQL
    for plan, (pk,) in zip(new, ids, strict=True):
        plan.row.id = pk


def _payload(row: tuple, pk: int) -> dict:
    _, conversation, direction, sender, kind, text, data, client_id, status, _status_at, at = row
    return realtime.payload(
        id=pk,
        conversation=conversation,
        direction=direction,
        sender=sender,
        agent=None,
        kind=kind,
        text=text,
        data=data,
        client_id=client_id,
        status=status,
        created_at=at,
    )


def _event(group: str, message: dict, origin: str) -> tuple[str, dict]:
    return group, {"type": "message.created", "message": message, "origin": origin}


def _run_general(turn: Turn) -> None:
    inbound = services.Inbound(
        text=turn.text,
        kind=turn.kind,
        payload=turn.payload,
        external_id=turn.client_id,
    )
    with realtime.collecting(turn.events):
        conversation, received = services.webchat_receive_in_transaction(
            bot=turn.bot,
            visitor_id=turn.visitor_id,
            inbound=inbound,
            conversation_id=turn.conversation_id,
            sandbox=turn.sandbox,
            language=turn.language,
        )
    turn.general = True
    turn.conversation = conversation.pk
    turn.message = realtime.message_payload(received.message)
    turn.duplicate = not received.created


# --- The batch, on the event loop ----------------------------------------------------------------


class Lane(TurnBatcher):
    """One per event loop: ``await run(turn, key)`` fills in ``turn``'s outcome or raises
    its error (ServiceError for the visitor's mistakes and the rate limit)."""

    def __init__(self, to_thread, channel_layer, in_flight: int = IN_FLIGHT):
        super().__init__(to_thread, in_flight)
        self._layer = channel_layer

    async def _process(self, turns: list[Turn]) -> list[tuple[bool, Any]]:
        return await self._to_thread(run_lane_batch)(turns, self._layer.loop_layer())


def run_lane_batch(turns: list[Turn], layer) -> list[tuple[bool, Any]]:
    """A batch of the lane, in its database thread: the rate count, ``run_batch`` for the
    turns within the limit, then who else hears their conversations. Redis is asked from
    here, with a blocking client: through the event loop, each of the two round trips
    waited behind the loop's bursts of frames (4 and 2 ms a batch, measured)."""
    limit = settings.WEBCHAT_MESSAGES_PER_10S
    within = ratelimit.hit_many_blocking(
        [f"webchat.msg.{turn.visitor_id}" for turn in turns], limit=limit, window=10
    )
    allowed = [turn for turn, ok in zip(turns, within, strict=True) if ok]
    ran = iter(run_batch(allowed) if allowed else [])
    outcomes = []
    for ok in within:
        if ok:
            outcomes.append(next(ran))
        else:
            message = f"At most {limit} messages per 10 seconds; wait a moment."
            outcomes.append((False, RateLimited(message)))
    _keep_heard_events([turn for (ok, turn) in outcomes if ok], layer)
    return outcomes


def _keep_heard_events(turns: list[Turn], layer) -> None:
    """Drop the plain turns' events that nobody but their sender would hear; on the general
    path the sender's own message is marked as its own (it has its ack)."""
    for turn in turns:
        if turn.general:
            for _, event in turn.events:
                if (
                    event.get("type") == "message.created"
                    and turn.message
                    and (event["message"]["id"] == turn.message["id"])
                ):
                    event["origin"] = turn.channel
    plain = [turn for turn in turns if not turn.general and turn.events]
    if not plain:
        return
    pairs = {(group, turn.channel) for turn in plain for group, _ in turn.events}
    try:
        heard = layer.others_listening(sorted(pairs))
    except Exception:  # not knowing, tell everyone
        logger.exception("could not ask the channel layer who listens")
        return
    for turn in plain:
        turn.events = [(g, event) for g, event in turn.events if (g, turn.channel) in heard]


_lanes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def lane(to_thread, channel_layer) -> Lane:
    """This event loop's lane (made with the first caller's arguments)."""
    import asyncio

    loop = asyncio.get_running_loop()
    found = _lanes.get(loop)
    if found is None:
        found = _lanes[loop] = Lane(to_thread, channel_layer)
    return found
