"""Channels, contacts, conversations and messages."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from chattonic.tenancy.models import TenantOwned


class ChannelKind(models.TextChoices):
    WEBCHAT = "webchat", "Web chat"
    WHATSAPP = "whatsapp", "WhatsApp Cloud API"
    MESSENGER = "messenger", "Messenger"
    TELEGRAM = "telegram", "Telegram"
    TWILIO = "twilio", "Twilio (SMS / WhatsApp)"
    API = "api", "API"


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
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class Contact(TenantOwned):
    """A person who talked to a tenant's bots, on one channel or several."""

    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True, db_index=True)
    phone = models.CharField(max_length=40, blank=True, db_index=True)
    attributes = models.JSONField(default=dict, blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name or self.email or self.phone or f"Contact #{self.pk}"


class ContactIdentity(TenantOwned):
    """How a channel knows a contact: a widget session, a phone number, a Telegram user."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(max_length=12, choices=ChannelKind.choices)
    # Blank for the web chat, whose visitor ids are our own.
    channel = models.ForeignKey(
        Channel, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    external_id = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name_plural = "contact identities"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "kind", "channel", "external_id"],
                name="identity_channel_unique",
                condition=Q(channel__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["tenant", "kind", "external_id"],
                name="identity_webchat_unique",
                condition=Q(channel__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.external_id}"


class Conversation(TenantOwned):
    """A conversation of a contact with a bot and, after a handoff, with agents."""

    class Status(models.TextChoices):
        BOT = "bot", "With the bot"
        QUEUED = "queued", "Waiting for an agent"
        ASSIGNED = "assigned", "With an agent"
        RESOLVED = "resolved", "Resolved"

    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="conversations")
    # The published version it runs on; stays while the conversation lasts. Blank in the
    # sandbox, which runs the bot's draft.
    bot_version = models.ForeignKey(
        "bots.BotVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="conversations")
    channel_kind = models.CharField(max_length=12, choices=ChannelKind.choices)
    channel = models.ForeignKey(
        Channel, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    # Where replies go on the channel: a phone number, a chat id, a widget visitor id.
    recipient_id = models.CharField(max_length=200, blank=True)
    is_sandbox = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.BOT)
    assigned_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_conversations",
    )
    team = models.ForeignKey(
        "agents.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    handoff_reason = models.CharField(max_length=20, blank=True)
    engine_state = models.JSONField(null=True, blank=True)
    # The id of the bot's HTTP action the engine waits for, so that a retried task answers once.
    awaiting_action = models.CharField(max_length=64, blank=True)
    language = models.CharField(max_length=2, default="en")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_message_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    first_agent_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_message_at"]
        indexes = [models.Index(fields=["tenant", "status", "last_message_at"])]

    def __str__(self) -> str:
        return f"Conversation #{self.pk} with {self.contact}"


class Message(TenantOwned):
    """One message in or out. ``external_id`` makes a redelivery a no-op."""

    class Direction(models.TextChoices):
        IN = "in", "Inbound"
        OUT = "out", "Outbound"

    class Sender(models.TextChoices):
        CONTACT = "contact", "Contact"
        BOT = "bot", "Bot"
        AGENT = "agent", "Agent"
        SYSTEM = "system", "System"

    class Kind(models.TextChoices):
        TEXT = "text", "Text"
        BUTTON = "button", "Button reply"
        MEDIA = "media", "Media"
        LOCATION = "location", "Location"
        CONTACTS = "contacts", "Contacts"
        UNSUPPORTED = "unsupported", "Unsupported"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        READ = "read", "Read"
        FAILED = "failed", "Failed"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    channel = models.ForeignKey(
        Channel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    direction = models.CharField(max_length=3, choices=Direction.choices)
    sender = models.CharField(max_length=8, choices=Sender.choices)
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.TEXT)
    text = models.TextField(blank=True)
    # Quick replies, media, location, contacts, a button's payload: what the kind needs.
    data = models.JSONField(default=dict, blank=True)
    # The platform's message id, or the widget's client message id, for deduplication.
    external_id = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    status_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["conversation", "created_at"])]
        constraints = [
            # A platform redelivering a message: one row, whatever the concurrency.
            models.UniqueConstraint(
                fields=["tenant", "channel", "external_id"],
                name="message_channel_external_id_unique",
                condition=Q(channel__isnull=False) & ~Q(external_id=""),
            ),
            # A widget resending a message after a dropped connection: one row.
            models.UniqueConstraint(
                fields=["tenant", "conversation", "direction", "external_id"],
                name="message_conversation_external_id_unique",
                condition=Q(channel__isnull=True) & ~Q(external_id=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} #{self.pk}: {self.text[:40]}"


class Lead(TenantOwned):
    """What a bot or an agent collected about a prospect."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        CONTACTED = "contacted", "Contacted"
        QUALIFIED = "qualified", "Qualified"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    class Source(models.TextChoices):
        BOT = "bot", "Bot"
        AGENT = "agent", "Agent"
        AWAY_FORM = "away_form", "Away form"
        API = "api", "API"

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="leads")
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads"
    )
    bot = models.ForeignKey(
        "bots.Bot", null=True, blank=True, on_delete=models.SET_NULL, related_name="leads"
    )
    channel_kind = models.CharField(max_length=12, choices=ChannelKind.choices, blank=True)
    fields = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.BOT)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Lead #{self.pk} ({self.get_status_display()})"
