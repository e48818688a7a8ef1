"""Channels (a bot on a messaging platform) and the delivery log of what was sent to them."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone

from chattonic.core.kinds import ChannelKind
from chattonic.tenancy.models import TenantOwned


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class Channel(TenantOwned):
    """A bot's presence on a messaging platform; its credentials are encrypted at rest."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ERROR = "error", "Error"
        DISABLED = "disabled", "Disabled"

    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="channels")
    kind = models.CharField(max_length=12, choices=ChannelKind.choices)
    name = models.CharField(max_length=120)
    credentials_encrypted = models.TextField(blank=True, editable=False)
    webhook_secret = models.CharField(max_length=64, default=new_webhook_secret, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        # The table keeps the name it had in the conversations app (moved without copying).
        db_table = "conversations_channel"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class DeliveryAttempt(TenantOwned):
    """One try at sending an outbound message to its channel (a platform, or for the API
    channel the tenant's webhook URL). Recorded before the request goes out, so that a task
    run again after a crash knows what was tried."""

    class Outcome(models.TextChoices):
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        RETRY = "retry", "Failed, will retry"
        FAILED = "failed", "Failed"
        LOST = "lost", "Worker lost mid-send: possibly sent"
        UNKNOWN = "unknown", "No answer: possibly sent"

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="delivery_attempts")
    message = models.ForeignKey(
        "conversations.Message", on_delete=models.CASCADE, related_name="delivery_attempts"
    )
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.SENDING)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    platform_code = models.CharField(max_length=60, blank=True)
    error = models.TextField(blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    retry_after = models.FloatField(null=True, blank=True)
    # When the message may be tried again (a back-off, or the wait for the platform's status
    # of a possibly-sent attempt); the send sweep queues it then.
    retry_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The table keeps the name it had in the conversations app (moved without copying).
        db_table = "conversations_deliveryattempt"
        ordering = ["-started_at", "-id"]
        constraints = [
            # Two runs of a send task claiming the same attempt: one wins, the other backs off.
            models.UniqueConstraint(
                fields=["tenant", "message", "number"], name="delivery_attempt_number_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"Attempt {self.number} of message #{self.message_id}: {self.outcome}"
