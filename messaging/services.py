"""Messaging channels: set-up (credentials encrypted at rest), and what their webhooks bring in.

A webhook is verified and parsed by its connector (``conversations/connectors/``); the view
then calls :func:`webhook_receive`, which has the receive service store every message of the
batch idempotently (``conversations.receive.channel_messages_receive``: the unique constraint
on (tenant, channel, external id) makes a redelivery a no-op, however many arrive at once),
applies every status without ever moving one backwards, and queues the bot's turn
(``receive.messages_answer``) in a Celery task after the commit, so that the platform gets
its 200 quickly and only once the message is durable.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from bots.models import Bot
from chattonic.core import credentials as vault
from chattonic.core import outbound
from chattonic.core.errors import ValidationFailed
from chattonic.core.public_urls import absolute_url
from chattonic.core.publish import Batcher
from chattonic.core.redact import redact
from chattonic.regions import sequences
from chattonic.tenancy.models import Tenant
from conversations.models import ChannelKind, Message
from conversations.receive import channel_messages_receive
from conversations.services import message_status_update
from leads.models import LeadWebhook
from messaging.connectors import (
    CONNECTORS,
    ParsedWebhook,
    PermanentSendError,
    SendError,
    StatusUpdate,
    get_connector,
)
from messaging.models import Channel

logger = logging.getLogger(__name__)

STATUS_MAP = {
    "sent": Message.Status.SENT,
    "delivered": Message.Status.DELIVERED,
    "read": Message.Status.READ,
    "failed": Message.Status.FAILED,
}


# --- Set-up -----------------------------------------------------------------------------------


def webhook_url(channel: Channel, request: HttpRequest | None = None) -> str:
    """The public URL the platform must call for this channel: on ``PUBLIC_BASE_URL``, or,
    when none is configured, on the host the dashboard was asked on (``request``); a task
    (Twilio's status callback) uses the configured or guessed base."""
    return webhook_url_for(channel.kind, channel.pk, request)


def webhook_url_for(kind: str, channel_id: int, request: HttpRequest | None = None) -> str:
    """``webhook_url`` of a channel of ``kind`` with this id, saved or only reserved."""
    path = reverse("channel-webhook", kwargs={"kind": kind, "channel_id": channel_id})
    return absolute_url(path, request)


def channel_id_reserve() -> int:
    """A new channel's id, taken before the channel is saved, so that the add page shows the
    webhook URL it will have (``channel_create(channel_id=...)``). An id never used is a gap."""
    return sequences.id_reserve(Channel)


# The channels webhooks found, per process, for CHANNEL_CACHE_SECONDS: a webhook then makes
# one round trip to the database (its INSERT), not two. A change made in this process (save,
# delete, channel_error_record) drops the entry at once; other processes see it within the
# TTL (a secret rotated meanwhile is refused, and the platform delivers the webhook again).
_webhook_channels: dict[tuple[str, int], tuple[float, Channel | None]] = {}
_WEBHOOK_CHANNELS_MAX = 10_000


def channel_for_webhook(kind: str, channel_id: int) -> Channel | None:
    """The channel a webhook names (its bot's region in ``bot_region``), or None when it is
    unknown, of another kind or disabled."""
    key = (kind, channel_id)
    now = time.monotonic()
    cached = _webhook_channels.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    # Plain SQL skips the ORM's query compilation (about a millisecond of CPU).
    channels_table, bots_table = Channel._meta.db_table, Bot._meta.db_table
    found = list(
        Channel.objects.raw(
            f"SELECT c.*, b.region AS bot_region FROM {channels_table} c "  # noqa: S608
            f"JOIN {bots_table} b ON b.id = c.bot_id "
            "WHERE c.id = %s AND c.kind = %s AND c.status <> %s",
            [channel_id, kind, Channel.Status.DISABLED],
        )
    )
    channel = found[0] if found else None
    if settings.CHANNEL_CACHE_SECONDS > 0:
        if len(_webhook_channels) >= _WEBHOOK_CHANNELS_MAX:
            _webhook_channels.clear()
        _webhook_channels[key] = (now + settings.CHANNEL_CACHE_SECONDS, channel)
    return channel


def channel_forget(channel_id: int | None = None) -> None:
    """Drop a channel (or, without an id, every channel) from this process's webhook cache."""
    if channel_id is None:
        _webhook_channels.clear()
        return
    for key in [key for key in list(_webhook_channels) if key[1] == channel_id]:
        _webhook_channels.pop(key, None)


def _bot_forget(bot_id: int) -> None:
    for key, (_, channel) in list(_webhook_channels.items()):
        if channel is not None and channel.bot_id == bot_id:
            _webhook_channels.pop(key, None)


# Forgotten at once and again after the commit: a webhook of another thread may have read
# (and kept) the old row in between.
@receiver([post_save, post_delete], sender=Channel)
def _channel_changed(sender, instance: Channel, **kwargs) -> None:
    channel_id = instance.pk
    channel_forget(channel_id)
    transaction.on_commit(lambda: channel_forget(channel_id), robust=True)


@receiver([post_save, post_delete], sender=Bot)
def _bot_changed(sender, instance: Bot, **kwargs) -> None:
    bot_id = instance.pk
    _bot_forget(bot_id)
    transaction.on_commit(lambda: _bot_forget(bot_id), robust=True)


def channel_credentials(channel: Channel) -> dict:
    """The channel's decrypted credentials."""
    return vault.decrypt(channel.credentials_encrypted)


def channel_credentials_check(*, kind: str, credentials: dict, creating: bool = False) -> dict:
    """The credentials as they would be stored for a channel of ``kind`` (values trimmed,
    empty ones dropped), or ValidationFailed naming the credential (``credentials.<key>``).
    ``creating``: an API channel's signing secret may be missing (channel_create chooses one)."""
    connector = get_connector(kind)
    allowed = set(connector.required_credentials) | set(connector.optional_credentials)
    if not isinstance(credentials, dict):
        raise ValidationFailed.for_field("credentials", "Expected an object.")
    unknown = sorted(set(credentials) - allowed)
    if unknown:
        raise ValidationFailed.for_field(
            f"credentials.{unknown[0]}",
            f"Not a {connector.display_name} credential; expected some of {sorted(allowed)}.",
        )
    clean = {k: str(v).strip() for k, v in credentials.items() if str(v).strip()}
    missing = connector.missing_credentials(clean)
    if creating and kind == ChannelKind.API:
        missing = [key for key in missing if key != "signing_secret"]
    if missing:
        raise ValidationFailed(
            f"Missing credentials: {', '.join(missing)}.",
            fields={f"credentials.{key}": ["This credential is required."] for key in missing},
        )
    for key in connector.url_credentials:
        problem = outbound.url_problem(clean[key]) if key in clean else None
        if problem:
            raise ValidationFailed.for_field(f"credentials.{key}", problem)
    problems = connector.credential_problems(clean)
    if problems:
        raise ValidationFailed(
            " ".join(problems.values()),
            fields={f"credentials.{key}": [problem] for key, problem in problems.items()},
        )
    return clean


def channel_webhook_register(*, kind: str, credentials: dict, url: str) -> bool:
    """Point the platform at the channel's webhook ``url`` where we do it ourselves
    (``Connector.registers_webhook``: Telegram's setWebhook, with the channel's secret
    token); False for a platform whose console takes the URL. A refusal raises
    ValidationFailed saying what to do: a token the platform does not know (named on its
    input), a URL it will not call (Telegram calls HTTPS addresses it can reach, only), or
    the platform out of reach."""
    connector = get_connector(kind)
    if not connector.registers_webhook:
        return False
    platform = connector.display_name or kind
    try:
        with outbound.session() as session:
            connector.set_webhook(
                credentials=credentials,
                url=url,
                session=session,
                timeout=settings.CHANNEL_SEND_TIMEOUT,
            )
    except PermanentSendError as exc:
        reason = redact(str(exc))
        if exc.status_code is None:  # no answer: our guard refused the address, say
            raise ValidationFailed(
                f"{platform} could not be reached to register the webhook URL ({reason}). "
                "Nothing was saved."
            ) from None
        if exc.status_code in (401, 404) and connector.required_credentials:
            # Telegram answers a token it does not know with 401 (and a malformed one 404).
            key = connector.required_credentials[0]
            raise ValidationFailed.for_field(
                f"credentials.{key}",
                f"{platform} refused this token ({reason}): copy it again from the platform.",
            ) from None
        raise ValidationFailed(
            f"{platform} refused the webhook URL {url} ({reason}). It calls only an HTTPS "
            "address it can reach from the internet: set PUBLIC_BASE_URL to this "
            "deployment's public https:// address. Nothing was saved."
        ) from None
    except SendError as exc:
        raise ValidationFailed(
            f"{platform} could not be reached to register the webhook URL "
            f"({redact(str(exc))}). Nothing was saved: try again in a moment."
        ) from None
    return True


@transaction.atomic
def channel_create(
    *,
    tenant: Tenant,
    bot: Bot,
    kind: str,
    name: str,
    credentials: dict,
    channel_id: int | None = None,
) -> Channel:
    """Create a channel of the bot with its credentials encrypted; with ``channel_id`` (from
    ``channel_id_reserve``), under that id, so that a webhook URL shown before is its own."""
    if kind not in CONNECTORS:
        raise ValidationFailed.for_field("kind", f"Must be one of {sorted(CONNECTORS)}.")
    if bot.tenant_id != tenant.pk:
        raise ValidationFailed.for_field("bot", "No such bot.")
    name = (name or "").strip()
    if not name:
        raise ValidationFailed.for_field("name", "A channel needs a name.")
    credentials = dict(credentials or {})
    if kind == ChannelKind.API and not str(credentials.get("signing_secret") or "").strip():
        # Ours to choose: the dashboard shows it once, the tenant checks our signatures with it.
        credentials["signing_secret"] = secrets.token_urlsafe(32)
    encrypted = vault.encrypt(channel_credentials_check(kind=kind, credentials=credentials))
    if channel_id is not None and Channel.objects.filter(pk=channel_id).exists():
        raise ValidationFailed.for_field(
            "webhook", "A channel was already saved with this webhook URL."
        )
    try:
        with transaction.atomic():
            return Channel.objects.create(
                pk=channel_id,
                tenant=tenant,
                bot=bot,
                kind=kind,
                name=name[:120],
                credentials_encrypted=encrypted,
            )
    except IntegrityError:
        if channel_id is None:
            raise
        # Saved twice at once with the same reserved id: the other one has it.
        raise ValidationFailed.for_field(
            "webhook", "A channel was already saved with this webhook URL."
        ) from None


@transaction.atomic
def channel_credentials_set(*, channel: Channel, credentials: dict, merge: bool = True) -> Channel:
    """Replace (or, with ``merge``, update) the channel's credentials; blank values keep the
    stored ones when merging. A channel in error is active again (a disabled one stays so)."""
    channel = Channel.objects.select_for_update().get(pk=channel.pk)
    current = channel_credentials(channel) if merge else {}
    updates = {k: v for k, v in credentials.items() if str(v).strip() or not merge}
    channel.credentials_encrypted = vault.encrypt(
        channel_credentials_check(kind=channel.kind, credentials={**current, **updates})
    )
    if channel.status == Channel.Status.ERROR:  # new credentials: tried again (not if disabled)
        channel.status = Channel.Status.ACTIVE
    channel.last_error = ""
    channel.save(update_fields=["credentials_encrypted", "status", "last_error"])
    return channel


def channel_error_record(*, channel: Channel, error: str, disable: bool = False) -> None:
    """Note the channel's last error (shown in the dashboard); ``disable`` marks it broken.
    The caller masks the channel's own secrets; what looks like one is masked here too."""
    fields = {"last_error": redact(error)[:2000], "last_error_at": timezone.now()}
    if disable:
        fields["status"] = Channel.Status.ERROR
    Channel.objects.filter(pk=channel.pk).update(**fields)
    channel_forget(channel.pk)
    channel_id = channel.pk
    transaction.on_commit(lambda: channel_forget(channel_id), robust=True)


# --- In ---------------------------------------------------------------------------------------


@dataclass
class WebhookOutcome:
    received: int = 0
    duplicates: int = 0
    statuses: int = 0


def webhook_receive(*, channel: Channel, parsed: ParsedWebhook) -> WebhookOutcome:
    """Store every message of a webhook once (conversations.receive) and queue the bot's
    turns after the commit; apply its statuses. Each message commits on its own, so that
    one bad message never costs the others."""
    outcome = WebhookOutcome()
    for message_id, created in channel_messages_receive(channel=channel, inbound=parsed.messages):
        if created:
            outcome.received += 1
            transaction.on_commit(lambda message_id=message_id: handle_later.submit(message_id))
        else:
            outcome.duplicates += 1
    for status in parsed.statuses:
        outcome.statuses += channel_status_apply(channel=channel, status=status)
    return outcome


def _handle_published(message_ids: list[int]) -> None:
    from messaging.tasks import conversation_handle, conversations_handle

    if len(message_ids) == 1:
        conversation_handle.delay(message_ids[0])
    else:
        conversations_handle.delay(message_ids)


# The bot's turns for stored channel messages, published off the webhook's thread (one task
# call per burst); what a dying process had not published yet, channel_sweep finds again.
handle_later = Batcher("conversation-handle", _handle_published, max_batch=20, linger=0.01)


def unhandled_messages_requeue(*, older_than_seconds: int = 60, max_age_hours: int = 24) -> int:
    """Queue the bot's turn again for channel messages stored but never handled (the broker
    was down when the webhook stored them, or the task was lost): the safety net behind the
    publish that follows each webhook. Returns how many conversations it queued."""
    from messaging.tasks import conversation_handle

    now = timezone.now()
    stuck = Message.objects.filter(
        direction=Message.Direction.IN,
        channel__isnull=False,
        handled_at=None,
        created_at__lt=now - timedelta(seconds=older_than_seconds),
        created_at__gte=now - timedelta(hours=max_age_hours),
    ).order_by("id")
    queued: dict[int, int] = {}
    for message_id, conversation_id in stuck.values_list("id", "conversation_id")[:1000]:
        queued.setdefault(conversation_id, message_id)
    for message_id in queued.values():
        conversation_handle.delay(message_id)
    return len(queued)


def channel_status_apply(*, channel: Channel, status: StatusUpdate, retry: bool = True) -> int:
    """Apply a platform's delivery status to our outbound message(s); never backwards.
    Returns how many messages it moved; an unknown id is looked up again later (``retry``)."""
    from messaging.delivery import message_settle  # delivery reads channels: no cycle

    target = STATUS_MAP.get(status.status)
    if target is None:
        return 0
    outbound = Message.objects.for_tenant(channel.tenant_id).filter(
        channel=channel, direction=Message.Direction.OUT
    )
    if status.reference and status.external_id:
        # Our reference on the status: a send whose answer we never read (a time-out, a worker
        # killed mid-request) reached the platform; it is settled, never sent again.
        message_settle(channel=channel, reference=status.reference, external_id=status.external_id)
    if status.external_id:
        messages = list(outbound.filter(external_id=status.external_id[:200]))
    elif status.up_to is not None and status.recipient_id:
        # A watermark (Messenger): everything sent to that person up to then.
        messages = list(
            outbound.filter(
                conversation__recipient_id=status.recipient_id,
                created_at__lte=status.up_to,
                status__in=[Message.Status.SENT, Message.Status.DELIVERED],
            )
        )
    else:
        messages = []
    if not messages and status.external_id and retry:
        # The platform's status may overtake our own record of the send (a fast "sent"):
        # look again a little later, a few times, before letting it go.
        from messaging.tasks import channel_status_later

        later = {
            "external_id": status.external_id,
            "status": status.status,
            "timestamp": status.timestamp.isoformat() if status.timestamp else None,
            "error": status.error,
            "recipient_id": status.recipient_id,
        }
        channel_id = channel.pk
        transaction.on_commit(lambda: channel_status_later.delay(channel_id, later))
    moved = 0
    for message in messages:
        before = message.status
        updated = message_status_update(
            message=message, status=target, at=_aware(status.timestamp), error=status.error or ""
        )
        moved += updated.status != before
    return moved


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and timezone.is_naive(value):
        return timezone.make_aware(value, timezone.utc)
    return value


def secrets_rotate() -> dict[str, int]:
    """Re-encrypt every stored secret (channel credentials, lead webhook signing secrets)
    with the newest key of ``CHATTONIC_ENCRYPTION_KEY``, row by row; returns how many of
    each. Run after putting a new key first; then the old keys can be dropped."""
    counts = {"channels": 0, "lead_webhooks": 0}
    for model, column, label in (
        (Channel, "credentials_encrypted", "channels"),
        (LeadWebhook, "signing_secret_encrypted", "lead_webhooks"),
    ):
        for pk in model.objects.exclude(**{column: ""}).values_list("pk", flat=True).iterator():
            with transaction.atomic():
                row = model.objects.select_for_update().filter(pk=pk).first()
                if row is None:
                    continue
                setattr(row, column, vault.rotate(getattr(row, column)))
                row.save(update_fields=[column])
                counts[label] += 1
    return counts
