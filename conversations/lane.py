"""The web chat's lane: visitors' messages to a bot, many sockets' at once.

A socket's ``message`` (or ``quick_reply``) frame becomes a :class:`Turn`, which joins the
next batch of its web process (the group commit of conversations.turns). A batch:

1. counts each visitor's messages against ``WEBCHAT_MESSAGES_PER_10S`` in one Redis round
   trip (a message over the limit gets the ``rate_limited`` error and is not stored);
2. runs in one transaction, in one hop to the database thread. Its *plain* turns go together,
   in five statements for the whole batch: the conversations locked, resends looked up, the
   visitors' messages inserted, the bot's replies inserted, the conversations' states
   updated. Plain: the conversation is the socket's, with the bot, nothing pending, the bot
   unchanged since the socket read it, and the engine's step only answers (no action, no
   error). Every other turn (a visitor's first message, a conversation with an agent or
   resolved, a step that hands off, captures a lead, calls out or fails) runs on the general
   path, ``services.webchat_receive_in_transaction``, in the same transaction after them;
   so does every turn of its conversation in that batch. A batch that fails is rolled back
   and each of its turns runs alone on the general path (only a failing one is lost; its
   socket gets the error).
3. asks the channel layer, in one round trip, which conversations someone else hears
   (another tab of the visitor, an agent): only those get the plain turns' messages as group
   events. The socket that sent a message gets its ``ack`` (with the stored message) and
   the bot's replies from here, not back through Redis.

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

from bots.models import Bot
from bots.selectors import bot_runtime
from chattonic.core import ratelimit
from chattonic.core.errors import ServiceError
from conversations import realtime, services
from conversations.models import ChannelKind, Conversation, Message
from conversations.sql import raw_cursor, rows_insert
from conversations.turns import TurnBatcher, in_one_transaction

logger = logging.getLogger(__name__)


class RateLimited(ServiceError):
    status = 429
    code = "rate_limited"


@dataclass(eq=False)
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
    if not isinstance(error, _Resent):  # a resend racing another process's is expected
        logger.warning(
            "a batch of %d web chat messages failed (%r); each runs alone", len(turns), error
        )
    outcomes = []
    for turn in turns:
        turn.reset()
        results, error = in_one_transaction([lambda turn=turn: _run_general(turn)])
        outcomes.append((True, turn) if results is not None else (False, error))
    return outcomes


class _Resent(Exception):
    """A message inserted meanwhile by another process: the batch runs again, turn by turn."""


_CONVERSATIONS_SQL = (
    "SELECT c.id, c.tenant_id, c.bot_id, c.bot_version_id, c.status, c.is_sandbox, "  # noqa: S608 - table names
    "c.engine_state, c.awaiting_action, c.language, c.channel_kind, c.channel_id, "
    "b.updated_at, v.published_at "
    f"FROM {Conversation._meta.db_table} c "
    f"JOIN {Bot._meta.db_table} b ON b.id = c.bot_id "
    f"LEFT JOIN {Bot._meta.get_field('published_version').related_model._meta.db_table} v "
    "ON v.id = c.bot_version_id "
    "WHERE c.id IN ({ids}) ORDER BY c.id"
)


@dataclass
class _Conversation:
    id: int
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
    bot_updated_at: Any
    published_at: Any


def _locked_conversations(ids: list[int]) -> dict[int, _Conversation]:
    """The conversations, locked for the transaction in the order of their ids (so that
    several processes' batches never wait on each other in a circle)."""
    if not ids:
        return {}
    connection = transaction.get_connection()
    lock = " FOR UPDATE OF c" if connection.features.has_select_for_update_of else ""
    with raw_cursor() as (cursor, mark):
        cursor.execute(_CONVERSATIONS_SQL.format(ids=", ".join([mark] * len(ids))) + lock, ids)
        rows = [_Conversation(*row) for row in cursor.fetchall()]
    for row in rows:
        if isinstance(row.engine_state, str):  # SQLite, and Django's jsonb loader
            row.engine_state = json.loads(row.engine_state)
        row.bot_updated_at = _aware(row.bot_updated_at)
        row.published_at = _aware(row.published_at)
    return {row.id: row for row in rows}


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


# Lookups per statement in _resent: under SQLite's limit of 500 terms of a compound SELECT.
MAX_LOOKUPS = 400


def _resent(turns: list[Turn]) -> dict[tuple[int, str], Message]:
    """Messages these turns resend (same client id in the same conversation), stored before.
    One search of the unique index on the client ids per turn, in one statement (``IN``
    lists of conversations and client ids, or an ``OR`` of them, scan instead)."""
    keys = sorted({(turn.bot.tenant_id, turn.conversation_id, turn.client_id) for turn in turns})
    if not keys:
        return {}
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    ids: list[int] = []
    with raw_cursor() as (cursor, mark):
        one = (
            f"SELECT {quote('id')} FROM {quote(Message._meta.db_table)} "  # noqa: S608 - names
            f"WHERE {quote('tenant_id')} = {mark} AND {quote('conversation_id')} = {mark} "
            f"AND {quote('direction')} = {mark} AND {quote('external_id')} = {mark} "
            f"AND {quote('channel_id')} IS NULL AND NOT ({quote('external_id')} = '')"
        )
        for start in range(0, len(keys), MAX_LOOKUPS):
            chunk = keys[start : start + MAX_LOOKUPS]
            params = []
            for tenant_id, conversation_id, client_id in chunk:
                params += [tenant_id, conversation_id, _IN, client_id]
            cursor.execute(" UNION ALL ".join([one] * len(chunk)), params)
            ids += [row[0] for row in cursor.fetchall()]
    if not ids:
        return {}
    found = Message.objects.filter(pk__in=ids)
    return {(message.conversation_id, message.external_id): message for message in found}


def _run_together(turns: list[Turn]) -> None:
    known = [turn for turn in turns if turn.conversation_id]
    rows = _locked_conversations(sorted({turn.conversation_id for turn in known}))
    general = {turn.conversation_id for turn in turns if not turn.conversation_id}
    states: dict[int, Any] = {}
    steps: list[tuple[Turn, Any, Any]] = []  # (turn, the engine's result, its time)
    now = timezone.now()  # the batch's messages arrive, and are answered, together
    for turn in known:
        if turn.conversation_id in general:
            continue
        row = rows.get(turn.conversation_id)
        if not _plain_conversation(row, turn) or not _valid_text(turn):
            general.add(turn.conversation_id)
            continue
        steps.append((turn, None, None))
    resent = _resent([turn for turn, _, _ in steps])
    planned: list[tuple[Turn, Any, Any]] = []
    seen: dict[tuple[int, str], Turn] = {}
    for turn, _, _ in steps:
        cid = turn.conversation_id
        if cid in general:
            continue
        key = (cid, turn.client_id)
        if key in resent or key in seen:
            planned.append((turn, None, None))  # a resend: answered with what is stored
            seen.setdefault(key, turn)
            continue
        seen[key] = turn
        row = rows[cid]
        text = turn.text.strip()
        result = services.engine_step(
            bot=turn.bot,
            runtime=bot_runtime(turn.bot, row.bot_version_id, row.published_at),
            channel_kind=row.channel_kind,
            language=row.language,
            state=states.get(cid, row.engine_state),
            event=services.turn_event(turn.kind, text, turn.payload),
            now=now,
        )
        if not _plain_step(result):
            general.add(cid)
            continue
        states[cid] = result.state
        planned.append((turn, result, now))
    planned = [item for item in planned if item[0].conversation_id not in general]
    _write(planned, rows, resent, seen)
    for turn in turns:
        if turn.conversation_id in general:
            _run_general(turn)


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


def _write(planned, rows: dict[int, _Conversation], resent: dict, seen: dict) -> None:
    """The plain turns' rows, in three statements, and their payloads and events."""
    inbound, outbound, latest = [], [], {}
    for turn, result, now in planned:
        if result is None:
            continue
        row = rows[turn.conversation_id]
        data = {"payload": turn.payload} if turn.payload is not None else {}
        inbound.append(
            (
                row.tenant_id,
                row.id,
                _IN,
                _CONTACT,
                str(turn.kind),
                turn.text.strip(),
                data,
                turn.client_id,
                _RECEIVED,
                None,
                now,
            )
        )
        for reply in result.replies:
            reply_data = {}
            if reply.get("quick_replies"):
                reply_data["quick_replies"] = reply["quick_replies"]
            if reply.get("media"):
                reply_data["media"] = reply["media"]
            text = reply.get("text", "")
            outbound.append(
                (row.tenant_id, row.id, _OUT, _BOT, _TEXT, text, reply_data, "", _SENT, now, now)
            )
        latest[row.id] = (result.state, now)
    inbound_ids = rows_insert(Message, _COLUMNS, inbound)
    if len(inbound_ids) != len(inbound):
        raise _Resent
    outbound_ids = rows_insert(Message, _COLUMNS, outbound)
    _update_states(latest)

    inbound_rows = iter(zip(inbound, inbound_ids, strict=True))
    outbound_rows = iter(zip(outbound, outbound_ids, strict=True))
    for turn, result, _ in planned:
        turn.conversation = turn.conversation_id
        group = realtime.conversation_group(turn.conversation_id)
        if result is None:
            key = (turn.conversation_id, turn.client_id)
            first = seen.get(key)
            turn.duplicate = True
            if key in resent:
                turn.message = realtime.message_payload(resent[key])
            else:  # sent twice in this batch: the first one's
                turn.message = first.message
            continue
        turn.message = _payload(*next(inbound_rows))
        turn.events.append(_event(group, turn.message, turn.channel))
        for _ in result.replies:
            reply = _payload(*next(outbound_rows))
            turn.replies.append(reply)
            turn.events.append(_event(group, reply, turn.channel))


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


_STATE_FIELD = Conversation._meta.get_field("engine_state")


def _update_states(latest: dict[int, tuple[Any, Any]]) -> None:
    if not latest:
        return
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    table = quote(Conversation._meta.db_table)
    params = [
        (
            _STATE_FIELD.get_db_prep_save(state, connection),
            connection.ops.adapt_datetimefield_value(now),
            pk,
        )
        for pk, (state, now) in latest.items()
    ]
    with raw_cursor() as (cursor, mark):
        cursor.executemany(
            f"UPDATE {table} SET {quote('engine_state')} = {mark}, "  # noqa: S608 - names
            f"{quote('awaiting_action')} = '', {quote('last_message_at')} = {mark} "
            f"WHERE {quote('id')} = {mark}",
            params,
        )


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

    def __init__(self, to_thread, channel_layer):
        super().__init__(to_thread)
        self._layer = channel_layer

    async def _process(self, turns: list[Turn]) -> list[tuple[bool, Any]]:
        limit = settings.WEBCHAT_MESSAGES_PER_10S
        within = await ratelimit.hit_many(
            [f"webchat.msg.{turn.visitor_id}" for turn in turns], limit=limit, window=10
        )
        allowed = [turn for turn, ok in zip(turns, within, strict=True) if ok]
        ran = iter(await self._to_thread(run_batch)(allowed) if allowed else [])
        outcomes = []
        for ok in within:
            if ok:
                outcomes.append(next(ran))
            else:
                message = f"At most {limit} messages per 10 seconds; wait a moment."
                outcomes.append((False, RateLimited(message)))
        await self._keep_heard_events([turn for (ok, turn) in outcomes if ok])
        return outcomes

    async def _keep_heard_events(self, turns: list[Turn]) -> None:
        """Drop the plain turns' events where nobody but the sender listens; on the general
        path the sender's own message is marked as its own (it has its ack)."""
        plain = [turn for turn in turns if not turn.general and turn.events]
        for turn in turns:
            if turn.general:
                for _, event in turn.events:
                    if (
                        event.get("type") == "message.created"
                        and turn.message
                        and (event["message"]["id"] == turn.message["id"])
                    ):
                        event["origin"] = turn.channel
        if not plain:
            return
        pairs = {(realtime.conversation_group(turn.conversation), turn.channel) for turn in plain}
        try:
            heard = await self._layer.others_listening(sorted(pairs))
        except Exception:  # not knowing, tell everyone
            logger.exception("could not ask the channel layer who listens")
            return
        for turn in plain:
            if (realtime.conversation_group(turn.conversation), turn.channel) not in heard:
                turn.events = []


_lanes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def lane(to_thread, channel_layer) -> Lane:
    """This event loop's lane (made with the first caller's arguments)."""
    import asyncio

    loop = asyncio.get_running_loop()
    found = _lanes.get(loop)
    if found is None:
        found = _lanes[loop] = Lane(to_thread, channel_layer)
    return found
