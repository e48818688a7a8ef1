"""Sending outbound messages to the platforms: attempts, retries, rate limits, exactly once.

One Celery task per message (``messaging.tasks.message_send``) calls :func:`message_send`,
which answers what the task should do next. Each try is a :class:`DeliveryAttempt` row,
committed *before* the request goes out:

- a message that is no longer pending (sent, failed) is never sent again, so a task run twice
  (a redelivered broker message, a retry racing a late answer) sends nothing the second time;
- two runs claiming the same attempt number collide on a unique constraint: one backs off;
- the run that sends holds the message (:func:`_sender`: a PostgreSQL advisory lock, which
  goes with the process when it dies); an attempt left "sending" by a dead run (the worker
  died mid-request) is marked "lost" as soon as the lock is free, or on SQLite once its
  lease (twice the time-out, plus 5 s) has passed;
- the platform's acceptance is recorded at once, in one statement (:func:`_record_sent`);
  a run that finds an attempt "sent" and its message still pending finishes the record;
- a "lost" attempt, or one whose answer never came (a read time-out, a 5xx: "unknown"), may
  have reached the platform. Where the platform hands our reference back on its status
  webhooks (``Connector.reports_reference``), the message waits up to
  ``CHANNEL_SETTLE_SECONDS`` for that status, which marks it sent without a second request
  (:func:`message_settle`); only then is it sent again. Telegram reports no status: there it
  is sent again at once, and the delivery log shows the possible duplicate.

Order: a conversation's replies go out one after the other, in the order written (their ids):
only the first pending reply of a conversation is sent; when it is settled (sent or failed)
the next is queued.

Waits (a back-off, a rate limit, a wait for a status) are never left on the broker as
countdowns, which a worker holds in its memory until they are due, so that a killed worker
would take them along until the broker's visibility time-out. They are ours: the attempt
records when the message is due, and the send is put in a Redis sorted set by due time
(:func:`send_later`), which :func:`sends_due_queue` empties every second. Should that be lost,
:func:`pending_sends_requeue`, every few seconds, finds the due sends in the database.

Retries: 429, 5xx, time-outs and connection errors back off exponentially with jitter, never
sooner than the platform's hint (``Retry-After``, Telegram's ``retry_after``). Permanent errors
mark the message failed with the platform's reason. The platforms' rate limits (the connectors'
``rate_limits``) are kept in Redis by every worker together.
"""

from __future__ import annotations

import contextlib
import logging
import random
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import redis
import requests
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Min
from django.utils import timezone

from chattonic.core import outbound
from chattonic.core.credentials import CredentialsUnreadable
from chattonic.core.redact import redact
from chattonic.tenancy.selectors import staff_public_name
from conversations.models import ChannelKind, Message
from conversations.services import message_status_update
from messaging.connectors import (
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    get_connector,
)
from messaging.models import Channel, DeliveryAttempt
from messaging.services import channel_credentials, channel_error_record, webhook_url

logger = logging.getLogger(__name__)

BACKOFF_BASE = 2.0  # seconds before the second attempt, doubling after
BACKOFF_CAP = 900.0  # at most 15 minutes between attempts (unless the platform asks more)


@dataclass(frozen=True)
class Outcome:
    """What the task does next: ``retry_in`` seconds (a retry) or nothing (``state`` is
    final for this run: sent, failed, skipped, gone)."""

    state: str
    retry_in: float | None = None
    counts_as_retry: bool = True


# --- Rate limits ------------------------------------------------------------------------------

_TAKE = """
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local wait = 0
for i, key in ipairs(KEYS) do
  local count = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_us - window)
  local used = redis.call('ZCARD', key)
  if used >= count then
    local entry = redis.call('ZRANGE', key, used - count, used - count, 'WITHSCORES')
    wait = math.max(wait, tonumber(entry[2]) + window - now_us)
  end
end
if wait > 0 then return math.max(1, math.ceil(wait / 1000)) end
local member = ARGV[#ARGV]
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now_us, member)
  redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[2 * i]) / 1000) + 1000)
end
return 0
"""

_local = threading.local()


def _redis() -> redis.Redis:
    client = getattr(_local, "redis", None)
    if client is None:
        url = (
            f"unix://{settings.EMBEDDED_REDIS_SOCKET}"
            if settings.EMBEDDED_REDIS
            else settings.REDIS_URL
        )
        client = _local.redis = redis.Redis.from_url(url, socket_timeout=5)
    return client


def rate_limit_take(limits: list[tuple[str, int, float]]) -> float:
    """Take one slot in every (key, count, per seconds) bucket at once: 0.0 when taken, else
    the seconds until all of them have room (nothing is taken then). Sliding windows on
    Redis's own clock, so that workers on several hosts agree."""
    if not limits or not settings.CHANNEL_RATE_LIMITS:
        return 0.0
    prefix = f"chattonic.{settings.CHATTONIC_REGION}.ratelimit."
    keys = [prefix + key for key, _, _ in limits]
    args: list = []
    for _, count, per in limits:
        args += [max(1, int(count)), int(per * 1_000_000)]
    wait_ms = _redis().eval(_TAKE, len(keys), *keys, *args, secrets.token_hex(8))
    return int(wait_ms) / 1000


# --- Sending ----------------------------------------------------------------------------------

_sessions = threading.local()


def _session() -> requests.Session:
    """This thread's guarded session (chattonic/core/outbound.py), kept to reuse connections."""
    session = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = outbound.session()
    return session


def backoff(attempt: int, hint: float | None = None) -> float:
    """Seconds before the next try after ``attempt`` failed: exponential with jitter, never
    less than the platform's hint."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempt - 1))
    delay *= random.uniform(0.5, 1.0)  # jitter: senders that failed together spread out
    if hint is not None:
        delay = max(delay, hint + random.uniform(0, min(1.0, hint * 0.1 + 0.05)))
    return delay


def outbound_external_id(kind: str, recipient_id: str, platform_id: str) -> str:
    """Our stored id of a sent message. Telegram's message ids count per chat, and the API
    channel's are ours: both are qualified so they never meet an inbound id."""
    if kind == "telegram":
        return f"{recipient_id}:{platform_id}"[:200]
    if kind == "api":
        return f"out:{platform_id}"[:200]
    return platform_id[:200]


def _outbound(message: Message) -> OutboundMessage:
    replies = [
        {"title": str(r.get("title", "")), "payload": str(r.get("payload", r.get("title", "")))}
        for r in message.data.get("quick_replies") or []
        if isinstance(r, dict)
    ]
    media = message.data.get("media") if isinstance(message.data.get("media"), dict) else None
    return OutboundMessage(
        text=message.text,
        quick_replies=replies,
        media=media,
        reference=str(message.pk),
        sender=message.sender,
        agent=staff_public_name(message.agent),
    )


#: The send locks' key space (PostgreSQL advisory locks take two int4 keys: this, the message).
_LOCK_SPACE = 0x43540001


def _lock_key(message_id: int) -> int:
    return message_id & 0x7FFFFFFF  # two messages 2**31 apart share a key: one waits a lease


@contextlib.contextmanager
def _sender(message_id: int):
    """Held by the run that may send ``message_id``, from before its attempt is recorded
    until its outcome is: on PostgreSQL a session advisory lock, which the server lets go the
    moment the process holding it dies (its connection closes). So a run that gets it knows
    that an attempt still "sending" is a dead run's, at once, without waiting for its lease.
    Yields True (held), False (another run holds it) or None (SQLite: the lease tells)."""
    if connection.vendor != "postgresql":
        yield None
        return
    key = _lock_key(message_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_SPACE, key])
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_SPACE, key])
            except DatabaseError:  # the connection is gone, and the lock with it
                logger.warning("message %s: its send lock was not let go", message_id)


def _senders_gone(message_ids: list[int]) -> set[int]:
    """The ones of ``message_ids`` (each with an attempt still "sending") whose sender no
    longer holds its lock: it died (PostgreSQL only; elsewhere the lease tells, and this is
    empty). Each lock is taken and let go at once."""
    if connection.vendor != "postgresql" or not message_ids:
        return set()
    keys = {_lock_key(message_id): message_id for message_id in message_ids}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT k FROM unnest(%s::int[]) AS k WHERE pg_try_advisory_lock(%s, k)",
            [list(keys), _LOCK_SPACE],
        )
        free = [row[0] for row in cursor.fetchall()]
        if free:
            cursor.execute(
                "SELECT pg_advisory_unlock(%s, k) FROM unnest(%s::int[]) AS k",
                [_LOCK_SPACE, free],
            )
    return {keys[key] for key in free}


def _lease() -> timedelta:
    return timedelta(seconds=2 * settings.CHANNEL_SEND_TIMEOUT + 5)


def _settle_window(connector) -> float:
    """Seconds a possibly-sent message waits for the platform's status before a resend."""
    return float(settings.CHANNEL_SETTLE_SECONDS) if connector.reports_reference else 0.0


POSSIBLY_SENT = (DeliveryAttempt.Outcome.LOST, DeliveryAttempt.Outcome.UNKNOWN)


@transaction.atomic
def _fail(message: Message, reason: str) -> Outcome:
    message_status_update(message=message, status=Message.Status.FAILED, error=reason)
    _next_queue(message)
    return Outcome("failed")


def _earlier_pending(message: Message) -> bool:
    """True while an earlier reply of the conversation is still pending: the conversation's
    replies go out in the order written, whatever happened in between."""
    return (
        Message.objects.for_tenant(message.tenant_id)
        .filter(
            conversation_id=message.conversation_id,
            direction=Message.Direction.OUT,
            status=Message.Status.PENDING,
            channel__isnull=False,
            pk__lt=message.pk,
        )
        .exists()
    )


IN_QUEUE_SECONDS = 120
#: A mark this old, while the queue is empty, is a task a worker took and died before it
#: started it (taking a task and starting it is a matter of milliseconds).
IN_QUEUE_STALE_SECONDS = 5


def _in_queue_key(message_id: int) -> str:
    return f"chattonic.send-in-queue.{message_id}"


def send_enqueue(message_id: int) -> None:
    """Queue the send of ``message_id``, marked as waiting in the queue: the send sweep leaves
    a marked reply alone (under a backlog it would otherwise queue the same send again every
    few seconds, and the queue would fill with repeats). The mark is set before the publish,
    taken off when the task starts (``send_dequeued``) or when the publish fails (the sweep
    then queues the reply), and ends by itself after ``IN_QUEUE_SECONDS`` should the broker
    lose the task. The sweep also ignores a mark older than ``IN_QUEUE_STALE_SECONDS`` while
    the queue is empty: its task was taken by a worker that died before it started it (the
    broker would hand it out again only after its visibility time-out). Never with a
    countdown: waits go through :func:`send_later`."""
    from django.core.cache import cache

    from messaging.tasks import message_send as task

    key = _in_queue_key(message_id)
    try:
        cache.set(key, time.time(), timeout=IN_QUEUE_SECONDS)
    except Exception:  # noqa: BLE001 - Redis not answering: the publish below says so
        logger.warning("message %s: could not mark its send as queued", message_id)
    try:
        task.apply_async((message_id,))
    except Exception:
        with contextlib.suppress(Exception):
            cache.delete(key)
        raise


def send_dequeued(message_id: int) -> None:
    """The send task of ``message_id`` started: it is no longer waiting in the queue."""
    from django.core.cache import cache

    try:
        cache.delete(_in_queue_key(message_id))
    except Exception:  # noqa: BLE001 - the mark then ends by itself
        logger.warning("message %s: could not take its queued mark off", message_id)


_LATER = """
local now = redis.call('TIME')
local due = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[1])
return redis.call('ZADD', KEYS[1], 'LT', due, ARGV[2])
"""

_DUE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms, 'LIMIT', 0, tonumber(ARGV[1]))
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
"""


def _later_key() -> str:
    return f"chattonic.{settings.CHATTONIC_REGION}.sends-due"


def send_later(message_id: int, delay: float) -> None:
    """Queue the send of ``message_id`` ``delay`` seconds from now: an entry in a Redis sorted
    set by due time (Redis's clock), which :func:`sends_due_queue` takes out when due. Nothing
    is held by a worker meanwhile, so a worker that dies loses no wait. An earlier due time
    already there stays."""
    _redis().eval(_LATER, 1, _later_key(), max(0, int(delay * 1000)), message_id)


def sends_due_queue(*, limit: int = 1000) -> int:
    """Queue the sends whose wait (:func:`send_later`) has ended; returns how many. Taken out
    of the set and queued in one go: one that is lost between the two (this process dies) is
    found by the database sweep, :func:`pending_sends_requeue`."""
    due = _redis().eval(_DUE, 1, _later_key(), limit)
    for message_id in due:
        send_enqueue(int(message_id))
    return len(due)


def _waiting_later(message_ids: list[int]) -> set[int]:
    """The ones of ``message_ids`` that wait in the sorted set for a time still to come."""
    if not message_ids:
        return set()
    client = _redis()
    scores = client.zmscore(_later_key(), message_ids)
    seconds, micros = client.time()
    now_ms = seconds * 1000 + micros / 1000
    return {
        m
        for m, score in zip(message_ids, scores, strict=True)
        if score is not None and score > now_ms
    }


def _next_queue(message: Message) -> None:
    """After ``message`` is settled (sent or failed), queue the conversation's next pending
    reply, once this transaction commits (the sweep finds it should this be lost)."""
    following = (
        Message.objects.for_tenant(message.tenant_id)
        .filter(
            conversation_id=message.conversation_id,
            direction=Message.Direction.OUT,
            status=Message.Status.PENDING,
            channel__isnull=False,
            pk__gt=message.pk,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    if following is not None:
        transaction.on_commit(lambda: send_enqueue(following))


def message_send(*, message_id: int, skip_waits: bool = False) -> Outcome:
    """Try to send one outbound message to its channel once; record the attempt and say
    whether (and when) to try again. Never sends a message that is no longer pending.
    ``skip_waits``: in-process runs (tests) do not wait for a back-off to end."""
    message = (
        Message.objects.select_related("conversation", "channel").filter(pk=message_id).first()
    )
    if message is None:
        return Outcome("gone")
    if message.direction != Message.Direction.OUT or message.status != Message.Status.PENDING:
        return Outcome("done")
    conversation = message.conversation
    if conversation.is_sandbox:
        return _fail(message, "Sandbox conversations are never sent to channels.")
    channel = message.channel
    if channel is None or channel.kind == ChannelKind.WEBCHAT:
        return _fail(message, "The conversation has no messaging channel.")
    if channel.status == Channel.Status.DISABLED:
        return _fail(message, "The channel is disabled.")
    try:
        credentials = channel_credentials(channel)
    except CredentialsUnreadable as exc:
        channel_error_record(channel=channel, error=str(exc), disable=True)
        return _fail(message, str(exc))
    connector = get_connector(channel.kind)
    secrets_ = connector.secrets(credentials)  # masked in every error stored or logged
    reply = _outbound(message)

    with _sender(message.pk) as held:
        if held is False:
            # Another run holds the message: it sends it, and queues what follows. (Or the
            # sweep looks whether its sender lives, for a moment: look again soon.)
            return Outcome("busy", retry_in=2.0, counts_as_retry=False)
        return _send(
            message,
            connector=connector,
            credentials=credentials,
            secrets_=secrets_,
            reply=reply,
            sender_known=held is True,
            skip_waits=skip_waits,
        )


def _send(
    message: Message,
    *,
    connector,
    credentials: dict,
    secrets_: list[str],
    reply: OutboundMessage,
    sender_known: bool,
    skip_waits: bool,
) -> Outcome:
    """message_send's claim, request and record. ``sender_known``: this run holds the
    message's send lock (PostgreSQL), so an attempt still "sending" is a dead run's."""
    channel = message.channel
    recipient = message.conversation.recipient_id
    last = DeliveryAttempt.objects.filter(message=message).order_by("-number").first()
    if last is not None and last.outcome == DeliveryAttempt.Outcome.SENT:
        # The platform took it, and the run that sent it stopped (a worker killed) between
        # recording the attempt and the rest: finish the record; nothing is sent again.
        # (Or that run is finishing it now: one of the two does.) This run sent nothing.
        _delivered(message, last.external_id)
        return Outcome("done")

    # Replies go out in order: while an earlier one of this conversation is pending, this one
    # waits; settling the earlier one queues it (_next_queue).
    if _earlier_pending(message):
        return Outcome("waiting")

    now = timezone.now()
    if last is not None and last.outcome == DeliveryAttempt.Outcome.SENDING:
        age = now - last.started_at
        if age < _lease() and not sender_known:
            # Another run is sending it now (or died moments ago): look again after its lease.
            return Outcome(
                "busy", retry_in=(_lease() - age).total_seconds() + 0.1, counts_as_retry=False
            )
        # The worker stopped during the send: the request may have reached the platform.
        last.retry_at = now + timedelta(seconds=_settle_window(connector))
        DeliveryAttempt.objects.filter(pk=last.pk, outcome=DeliveryAttempt.Outcome.SENDING).update(
            outcome=DeliveryAttempt.Outcome.LOST,
            error="The worker stopped during the send; the platform's answer is unknown.",
            finished_at=now,
            retry_at=last.retry_at,
        )
        last.outcome = DeliveryAttempt.Outcome.LOST
    if last is not None and last.retry_at is not None and last.retry_at > now and not skip_waits:
        # A back-off, or a possibly-sent attempt waiting for the platform's status.
        wait = (last.retry_at - now).total_seconds()
        return Outcome("waiting", retry_in=wait, counts_as_retry=False)
    number = (last.number if last else 0) + 1
    # The budget counts the tries since the message became pending (a redelivery resets it).
    tried = DeliveryAttempt.objects.filter(message=message)
    if message.status_at is not None:
        tried = tried.filter(started_at__gte=message.status_at)
    tries = tried.count() + 1
    if tries > settings.CHANNEL_SEND_MAX_ATTEMPTS:
        reason = last.error if last and last.error else "no answer"
        return _fail(message, f"Gave up after {tries - 1} attempts: {reason}")

    wait = rate_limit_take(connector.rate_limits(credentials, recipient, reply))
    max_sleep = settings.CHANNEL_RATE_LIMIT_MAX_SLEEP_MS / 1000
    while 0 < wait <= max_sleep:
        time.sleep(wait)  # a short wait holds the worker less than a round trip through Redis
        wait = rate_limit_take(connector.rate_limits(credentials, recipient, reply))
    if wait > 0:
        return Outcome("throttled", retry_in=wait, counts_as_retry=False)

    try:
        attempt = DeliveryAttempt.objects.create(
            tenant_id=message.tenant_id, channel=channel, message=message, number=number
        )
    except IntegrityError:
        return Outcome("busy", retry_in=1.0, counts_as_retry=False)
    # What we read before the claim may be stale: a run that finished since then committed its
    # attempt and the message's status together, so a look after our claim sees it.
    if not Message.objects.filter(pk=message.pk, status=Message.Status.PENDING).exists():
        attempt.delete()
        return Outcome("done")

    try:
        result = connector.send(
            credentials=credentials,
            recipient_id=recipient,
            message=reply,
            session=_session(),
            timeout=settings.CHANNEL_SEND_TIMEOUT,
            callback_url=webhook_url(channel),
        )
    except RetryableSendError as exc:
        reason = redact(exc.reason, secrets_)
        logger.info("message %s: attempt %s failed, will retry: %s", message.pk, number, reason)
        wait = backoff(tries, exc.retry_after)
        if exc.maybe_sent:
            # The platform may have taken it: wait for its status before sending again.
            wait = max(wait, _settle_window(connector))
        outcome = (
            DeliveryAttempt.Outcome.UNKNOWN if exc.maybe_sent else DeliveryAttempt.Outcome.RETRY
        )
        _finish(attempt, outcome, exc, reason, retry_in=wait)
        if tries >= settings.CHANNEL_SEND_MAX_ATTEMPTS and not exc.maybe_sent:
            channel_error_record(channel=channel, error=reason)
            return _fail(message, f"Gave up after {tries} attempts: {reason}")
        return Outcome("retry", retry_in=wait)
    except PermanentSendError as exc:
        reason = redact(exc.reason, secrets_)
        logger.info("message %s: attempt %s failed for good: %s", message.pk, number, reason)
        _finish(attempt, DeliveryAttempt.Outcome.FAILED, exc, reason)
        # The credentials themselves (not one recipient, e.g. a user who blocked the bot).
        code = (exc.platform_code or "").split("/")[0]
        broken = exc.status_code == 401 or code in ("missing_credentials", "190", "20003")
        channel_error_record(channel=channel, error=reason, disable=broken)
        return _fail(message, reason)
    except Exception as exc:  # a bug or an outage of ours: keep the record honest, retry
        _finish(
            attempt,
            DeliveryAttempt.Outcome.RETRY,
            None,
            redact(f"{type(exc).__name__}: {exc}", secrets_),
        )
        logger.exception("message %s: send failed unexpectedly", message.pk)
        return Outcome("retry", retry_in=backoff(tries))
    external_id = outbound_external_id(channel.kind, recipient, result.external_id)
    _record_sent(attempt.pk, result.status_code, external_id)
    _delivered(message, external_id)
    return Outcome("sent")


_SENT_SQL = """
UPDATE {table} SET outcome = %s, finished_at = %s, status_code = %s, external_id = %s
FROM (SELECT set_config('synchronous_commit', 'off', true)) AS no_wait
WHERE id = %s AND outcome = %s
"""


def _record_sent(attempt_id: int, status_code: int | None, external_id: str) -> None:
    """Record at once that the platform took the attempt: until this is recorded, a worker
    that dies leaves a send that may go out twice where the platform reports no status
    (Telegram). One statement; on PostgreSQL in one round trip that does not wait for the
    commit's flush to disk (``synchronous_commit`` off for this statement's transaction: it
    is visible to every other process at once, and only a crash of the database server in
    the next fraction of a second could lose it, which costs what a lost worker costs: a
    possible second copy). The flush took about 1.7 ms (median), 15 ms (p99) on a busy
    machine, most of the window."""
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(DeliveryAttempt._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                _SENT_SQL.format(table=table),
                [
                    DeliveryAttempt.Outcome.SENT,
                    timezone.now(),
                    status_code,
                    external_id,
                    attempt_id,
                    DeliveryAttempt.Outcome.SENDING,
                ],
            )
        return
    DeliveryAttempt.objects.filter(pk=attempt_id, outcome=DeliveryAttempt.Outcome.SENDING).update(
        outcome=DeliveryAttempt.Outcome.SENT,
        finished_at=timezone.now(),
        status_code=status_code,
        external_id=external_id,
    )


def _finish(
    attempt: DeliveryAttempt, outcome: str, exc, error: str, retry_in: float | None = None
) -> None:
    """Close the attempt with ``error``, its text already redacted; ``retry_in`` seconds
    from now the message is due again. Only an attempt still "sending" is closed: a status
    webhook may have settled it meanwhile (message_settle)."""
    attempt.outcome = outcome
    attempt.finished_at = timezone.now()
    attempt.error = error[:2000]
    if retry_in is not None:
        attempt.retry_at = attempt.finished_at + timedelta(seconds=retry_in)
    if exc is not None:
        attempt.status_code = exc.status_code
        attempt.platform_code = (exc.platform_code or "")[:60]
        attempt.retry_after = getattr(exc, "retry_after", None)
    fields = ["outcome", "finished_at", "status_code", "platform_code", "error", "retry_after"]
    DeliveryAttempt.objects.filter(pk=attempt.pk, outcome=DeliveryAttempt.Outcome.SENDING).update(
        **{name: getattr(attempt, name) for name in [*fields, "retry_at"]}
    )


@transaction.atomic
def _delivered(message: Message, external_id: str) -> bool:
    """The rest of a sent message's record, once its attempt says "sent": the message's
    platform id and status, the channel back from its error state, the next reply queued.
    False when the message is no longer pending (another run, or the platform's status,
    recorded it): nothing is done then."""
    pending = (
        Message.objects.select_for_update()
        .filter(pk=message.pk, status=Message.Status.PENDING)
        .exists()
    )
    if not pending:
        return False
    if external_id:
        try:
            with transaction.atomic():
                Message.objects.filter(pk=message.pk).update(external_id=external_id)
        except IntegrityError:
            logger.warning("message %s: platform id %s already stored", message.pk, external_id)
    message_status_update(message=message, status=Message.Status.SENT)
    Channel.objects.filter(pk=message.channel_id, status=Channel.Status.ERROR).update(
        status=Channel.Status.ACTIVE
    )
    _next_queue(message)
    return True


@transaction.atomic
def message_settle(*, channel: Channel, reference: str, external_id: str) -> bool:
    """A status webhook carrying our reference says that the platform took a message whose
    send we never saw answered (a time-out, a worker killed mid-request): mark it sent with
    the platform's id, close its possibly-sent attempt, and queue the conversation's next
    reply, without sending it again. False when the reference is not a pending reply of the
    channel (already sent: nothing to settle)."""
    if not reference.isdigit():
        return False
    message = (
        Message.objects.for_tenant(channel.tenant_id)
        .select_for_update()
        .filter(
            pk=int(reference),
            channel=channel,
            direction=Message.Direction.OUT,
            status=Message.Status.PENDING,
        )
        .first()
    )
    if message is None:
        return False
    stored = outbound_external_id(channel.kind, message.conversation.recipient_id, external_id)
    attempt = (
        DeliveryAttempt.objects.filter(message=message)
        .filter(outcome__in=[DeliveryAttempt.Outcome.SENDING, *POSSIBLY_SENT])
        .order_by("-number")
        .first()
    )
    if attempt is not None:
        DeliveryAttempt.objects.filter(pk=attempt.pk).update(
            outcome=DeliveryAttempt.Outcome.SENT,
            external_id=stored,
            finished_at=attempt.finished_at or timezone.now(),
            retry_at=None,
            error=(attempt.error + " Settled by the platform's status: it was sent.").strip(),
        )
    try:
        with transaction.atomic():
            Message.objects.filter(pk=message.pk).update(external_id=stored)
    except IntegrityError:
        logger.warning("message %s: platform id %s already stored", message.pk, stored)
    message_status_update(message=message, status=Message.Status.SENT)
    _next_queue(message)
    logger.info("message %s: settled as sent by the platform's status", message.pk)
    return True


# --- Redelivery -------------------------------------------------------------------------------


@transaction.atomic
def message_redeliver(*, message: Message) -> bool:
    """Send a failed outbound channel message again (the dashboard's "redeliver"): it becomes
    pending with a fresh attempt budget. False when it is not a failed channel message."""
    message = Message.objects.select_for_update().select_related("conversation").get(pk=message.pk)
    if (
        message.direction != Message.Direction.OUT
        or message.status != Message.Status.FAILED
        or message.channel_id is None
        or message.conversation.is_sandbox
    ):
        return False
    message.status = Message.Status.PENDING
    message.error = ""
    message.status_at = timezone.now()
    message.save(update_fields=["status", "error", "status_at"])
    # Earlier attempts stay in the log; the attempt budget counts from status_at.
    message_id = message.pk
    transaction.on_commit(lambda: send_enqueue(message_id))
    return True


def pending_heads(*, since):
    """Each conversation's first platform reply still to send, created since ``since`` (the
    sweep's query: the ``message_pending_send`` index holds just those rows)."""
    return (
        Message.objects.filter(
            direction=Message.Direction.OUT,
            status=Message.Status.PENDING,
            channel__isnull=False,
            conversation__is_sandbox=False,
            created_at__gte=since,
        )
        .exclude(channel__kind=ChannelKind.WEBCHAT)
        .values("conversation_id")
        .annotate(head=Min("id"))
        .values_list("head", flat=True)[:5000]
    )


def pending_sends_requeue(*, grace_seconds: float = 10, max_age_hours: int = 24) -> int:
    """The safety net: queue the sends that are due and whose task is not on its way (the due
    set, :func:`sends_due_queue`, queues them on time; this finds what it lost): the first pending
    reply of each conversation (the others follow it) when it has no attempt yet and is
    older than ``grace_seconds`` (its task was lost), when its back-off or its wait for a
    status has ended, or when its sender died (on PostgreSQL its lock is free at once, see
    :func:`_sender`; elsewhere its attempt's lease ran out). Each is queued
    at most once per ``CHANNEL_SEND_REQUEUE_SECONDS``; the task's own checks keep it to one
    send. Returns how many it queued."""
    from django.core.cache import cache

    now = timezone.now()
    heads = list(pending_heads(since=now - timedelta(hours=max_age_hours)))
    last_attempts = {}
    for attempt in (
        DeliveryAttempt.objects.filter(message_id__in=heads)
        .order_by("message_id", "-number")
        .only("message_id", "number", "outcome", "started_at", "retry_at")
    ):
        last_attempts.setdefault(attempt.message_id, attempt)
    created = dict(Message.objects.filter(pk__in=heads).values_list("pk", "created_at"))
    sending = [
        message_id
        for message_id, attempt in last_attempts.items()
        if attempt.outcome == DeliveryAttempt.Outcome.SENDING
        and attempt.started_at >= now - _lease()
    ]
    gone = _senders_gone(sending)  # their worker died: no need to wait for the lease
    due = []
    for message_id in sorted(heads):
        attempt = last_attempts.get(message_id)
        if attempt is None:
            ready = created[message_id] < now - timedelta(seconds=grace_seconds)
        elif attempt.outcome == DeliveryAttempt.Outcome.SENDING:
            ready = attempt.started_at < now - _lease() or message_id in gone
        else:
            ready = attempt.retry_at is None or attempt.retry_at <= now
        if ready:
            due.append(message_id)
    # A reply whose task waits in the queue is left alone (a backlog is no lost task), and so
    # is one waiting in the due set for a time still to come (sends_due_queue queues it).
    waiting = _waiting_later(due)
    due = [message_id for message_id in due if message_id not in waiting]
    marks = cache.get_many([_in_queue_key(message_id) for message_id in due])
    if marks and _send_queue_empty():
        # Nothing waits in the queue: a send marked long enough ago was taken by a worker
        # that died before it started it.
        stale_before = time.time() - IN_QUEUE_STALE_SECONDS
        marks = {key: at for key, at in marks.items() if not 0 < at < stale_before}
    gap = settings.CHANNEL_SEND_REQUEUE_SECONDS
    queued = 0
    for message_id in due:
        if _in_queue_key(message_id) in marks:
            continue
        if cache.add(f"chattonic.send-queued.{message_id}", 1, timeout=gap):
            send_enqueue(message_id)
            queued += 1
    return queued


def _send_queue_empty() -> bool:
    """True when no task waits in the broker's queue of the sends (tasks taken by workers,
    alive or dead, are not in it). False when the broker does not say."""
    from kombu.exceptions import ChannelError

    from messaging.tasks import message_send as task

    queue = task.app.conf.task_default_queue
    try:
        with task.app.connection_for_read() as conn:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count == 0
    except ChannelError:  # the broker keeps no empty queue (Redis): none is an empty one
        return True
    except Exception:  # noqa: BLE001 - the broker not answering: keep to the marks
        logger.warning("the send sweep could not read the queue's length")
        return False


def telegram_callback_answer(*, channel_id: int, callback_query_id: str) -> bool:
    """Answer a tapped inline button's callback query (once, best effort: Telegram forgets
    the query after a few seconds, and the reply itself goes out as a message)."""
    channel = Channel.objects.filter(pk=channel_id, kind=ChannelKind.TELEGRAM).first()
    if channel is None:
        return False
    connector = get_connector("telegram")
    try:
        credentials = channel_credentials(channel)
        connector.answer_callback_query(
            credentials=credentials,
            callback_query_id=callback_query_id,
            session=_session(),
            timeout=settings.CHANNEL_SEND_TIMEOUT,
        )
    except CredentialsUnreadable as exc:
        logger.info("channel %s: callback query not answered: %s", channel_id, exc)
        return False
    except (RetryableSendError, PermanentSendError) as exc:
        reason = redact(exc.reason, connector.secrets(credentials))
        logger.info("channel %s: callback query not answered: %s", channel_id, reason)
        return False
    return True
