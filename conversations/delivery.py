"""Sending outbound messages to the platforms: attempts, retries, rate limits, exactly once.

One Celery task per message (``conversations.tasks.message_send``) calls :func:`message_send`,
which answers what the task should do next. Each try is a :class:`DeliveryAttempt` row,
committed *before* the request goes out:

- a message that is no longer pending (sent, failed) is never sent again, so a task run twice
  (a redelivered broker message, a retry racing a late answer) sends nothing the second time;
- two runs claiming the same attempt number collide on a unique constraint: one backs off;
- an attempt left "sending" (the worker died mid-request) blocks new tries until its lease
  (twice the time-out) has passed, then is marked "lost" and the message is tried again.

Retries: 429, 5xx, time-outs and connection errors back off exponentially with jitter, never
sooner than the platform's hint (``Retry-After``, Telegram's ``retry_after``). Permanent errors
mark the message failed with the platform's reason. The platforms' rate limits (the connectors'
``rate_limits``) are kept in Redis by every worker together.
"""

from __future__ import annotations

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
from django.db import IntegrityError, transaction
from django.utils import timezone

from chattonic.core import outbound
from chattonic.core.redact import redact
from chattonic.tenancy.selectors import staff_public_name
from conversations.channels import channel_credentials, channel_error_record, webhook_url
from conversations.connectors import (
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    SendResult,
    get_connector,
)
from conversations.credentials import CredentialsUnreadable
from conversations.models import Channel, ChannelKind, DeliveryAttempt, Message

logger = logging.getLogger(__name__)

BACKOFF_BASE = 2.0  # seconds before the second attempt, doubling after
BACKOFF_CAP = 900.0  # at most 15 minutes between attempts (unless the platform asks more)
ORDER_WAIT = 0.5  # seconds before looking again when an earlier reply is still on its way
ORDER_WINDOW = timedelta(minutes=5)  # an older pending message no longer holds later ones


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


def _lease() -> timedelta:
    return timedelta(seconds=2 * settings.CHANNEL_SEND_TIMEOUT + 5)


def _fail(message: Message, reason: str) -> Outcome:
    from conversations.services import message_status_update

    message_status_update(message=message, status=Message.Status.FAILED, error=reason)
    return Outcome("failed")


def message_send(*, message_id: int) -> Outcome:
    """Try to send one outbound message to its channel once; record the attempt and say
    whether (and when) to try again. Never sends a message that is no longer pending."""
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
    recipient = conversation.recipient_id

    # Replies go out in order: wait while an earlier one of this conversation is on its way.
    earlier = (
        Message.objects.for_tenant(message.tenant_id)
        .filter(
            conversation=conversation,
            direction=Message.Direction.OUT,
            status=Message.Status.PENDING,
            pk__lt=message.pk,
            created_at__gte=timezone.now() - ORDER_WINDOW,
        )
        .exists()
    )
    if earlier:
        return Outcome("waiting", retry_in=ORDER_WAIT, counts_as_retry=False)

    last = DeliveryAttempt.objects.filter(message=message).order_by("-number").first()
    if last is not None and last.outcome == DeliveryAttempt.Outcome.SENDING:
        age = timezone.now() - last.started_at
        if age < _lease():
            # Another run is sending it now (or died moments ago): look again after its lease.
            return Outcome(
                "busy", retry_in=(_lease() - age).total_seconds() + 0.1, counts_as_retry=False
            )
        DeliveryAttempt.objects.filter(pk=last.pk, outcome=DeliveryAttempt.Outcome.SENDING).update(
            outcome=DeliveryAttempt.Outcome.LOST,
            error="The worker stopped during the send; the platform's answer is unknown.",
            finished_at=timezone.now(),
        )
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
        _finish(attempt, DeliveryAttempt.Outcome.RETRY, exc, reason)
        if tries >= settings.CHANNEL_SEND_MAX_ATTEMPTS:
            channel_error_record(channel=channel, error=reason)
            return _fail(message, f"Gave up after {tries} attempts: {reason}")
        return Outcome("retry", retry_in=backoff(tries, exc.retry_after))
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
    _delivered(message, attempt, result, channel.kind, recipient)
    return Outcome("sent")


def _finish(attempt: DeliveryAttempt, outcome: str, exc, error: str) -> None:
    """Close the attempt with ``error``, its text already redacted."""
    attempt.outcome = outcome
    attempt.finished_at = timezone.now()
    attempt.error = error[:2000]
    if exc is not None:
        attempt.status_code = exc.status_code
        attempt.platform_code = (exc.platform_code or "")[:60]
        attempt.retry_after = getattr(exc, "retry_after", None)
    attempt.save(
        update_fields=[
            "outcome",
            "finished_at",
            "status_code",
            "platform_code",
            "error",
            "retry_after",
        ]
    )


@transaction.atomic
def _delivered(
    message: Message, attempt: DeliveryAttempt, result: SendResult, kind: str, recipient: str
) -> None:
    from conversations.services import message_status_update

    external_id = outbound_external_id(kind, recipient, result.external_id)
    attempt.outcome = DeliveryAttempt.Outcome.SENT
    attempt.finished_at = timezone.now()
    attempt.status_code = result.status_code
    attempt.external_id = external_id
    attempt.save(update_fields=["outcome", "finished_at", "status_code", "external_id"])
    try:
        with transaction.atomic():
            Message.objects.filter(pk=message.pk).update(external_id=external_id)
    except IntegrityError:
        logger.warning("message %s: platform id %s already stored", message.pk, external_id)
    message_status_update(message=message, status=Message.Status.SENT)
    Channel.objects.filter(pk=message.channel_id, status=Channel.Status.ERROR).update(
        status=Channel.Status.ACTIVE
    )


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
    from conversations.tasks import message_send as task

    message_id = message.pk
    transaction.on_commit(lambda: task.delay(message_id))
    return True


def pending_sends_requeue(*, older_than_seconds: int = 600, max_age_hours: int = 24) -> int:
    """Queue the send again for outbound channel messages still pending long after they were
    written (their task was lost with a broker's data): the task's own checks keep it to
    one send. Returns how many it queued."""
    from conversations.tasks import message_send as task

    now = timezone.now()
    stuck = (
        Message.objects.filter(
            direction=Message.Direction.OUT,
            status=Message.Status.PENDING,
            channel__isnull=False,
            conversation__is_sandbox=False,
            created_at__lt=now - timedelta(seconds=older_than_seconds),
            created_at__gte=now - timedelta(hours=max_age_hours),
        )
        .exclude(channel__kind=ChannelKind.WEBCHAT)
        .order_by("id")
        .values_list("id", flat=True)[:1000]
    )
    ids = list(stuck)
    for message_id in ids:
        task.delay(message_id)
    return len(ids)


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
