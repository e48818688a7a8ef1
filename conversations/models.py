"""Conversations and their messages: the kinds of channel and the reasons of a handoff."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from chattonic.core.kinds import ChannelKind
from chattonic.tenancy.models import Tenant, TenantOwned


class HandoffReason(models.TextChoices):
    """Why a conversation's handoff state changed (agents.HandoffEvent.Reason)."""

    VISITOR_REQUEST = "visitor_request", "Asked by the visitor"
    FLOW = "flow", "The flow's handoff node"
    FALLBACK_LIMIT = "fallback_limit", "The bot's fallback limit"
    AGENT_TAKEOVER = "agent_takeover", "An agent took over"
    CLAIM = "claim", "Claimed from the queue"
    AUTO_ASSIGN = "auto_assign", "Assigned automatically"
    TRANSFER = "transfer", "Transferred"
    RESOLVE = "resolve", "Resolved"
    HANDBACK = "handback", "Handed back to the bot"
    AGENT_OFFLINE = "agent_offline", "The agent went offline"
    BOT_ERROR = "bot_error", "The bot failed"


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
    contact = models.ForeignKey(
        "contacts.Contact", on_delete=models.CASCADE, related_name="conversations"
    )
    channel_kind = models.CharField(max_length=12, choices=ChannelKind.choices)
    channel = models.ForeignKey(
        "messaging.Channel",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="conversations",
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
    handoff_reason = models.CharField(max_length=20, blank=True, choices=HandoffReason.choices)
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
    # The contact's satisfaction rating (1 to 5), asked for when the conversation is resolved.
    csat = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-last_message_at"]
        indexes = [
            # Not last_message_at, which every message sets: an UPDATE that changes no
            # indexed column is HOT on PostgreSQL (no index entries written; the table's
            # fillfactor leaves room on its page), and a bot's turn is one such UPDATE. The
            # lists sorted by it sort a tenant's conversations of a status (agents' queues
            # are small; measured: the web chat's batch UPDATE 2-3 ms instead of 5-8).
            models.Index(fields=["tenant", "status"]),
            # The dashboard's list, newest first: 50 rows read from the index, not a sort of
            # every conversation of the tenant (created_at never changes: no cost to a turn).
            models.Index(fields=["tenant", "-created_at"], name="conversation_tenant_newest"),
            # A webhook finds the sender's open conversation on the channel by this.
            models.Index(fields=["channel", "recipient_id"]),
        ]

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

    # Every message is inserted on a hot path, and each index costs its INSERT: the tenant's
    # and the conversation's own indexes are left out (the composite indexes below start
    # with them), the channel's and the agent's hold only the rows that have one.
    # The tenant is the conversation's (every writer copies it from there), so the database
    # checks the conversation's key only: a key check on the tenant locks the tenant's one row
    # for every message, and concurrent batches then share that lock (a MultiXact per
    # transaction); measured on PostgreSQL, 1 ms per 120 rows of a web chat batch. Deleting
    # a tenant still deletes its messages (Django's cascade).
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    channel = models.ForeignKey(
        "messaging.Channel",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    direction = models.CharField(max_length=3, choices=Direction.choices)
    sender = models.CharField(max_length=8, choices=Sender.choices)
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
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
    # When the bot (or the agents' routing) took an inbound channel message: a webhook stores
    # it, a task hands it on, and a repeated task skips what is already handled.
    handled_at = models.DateTimeField(null=True, blank=True)
    # Bot turns that crashed on it; at CHANNEL_HANDLE_MAX_FAILURES a person takes over.
    handle_failures = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["conversation", "created_at"]),
            # The statistics' daily rebuild reads one tenant's messages of a day.
            models.Index(fields=["tenant", "created_at"], name="message_tenant_created"),
            models.Index(
                fields=["channel"], name="message_channel", condition=Q(channel__isnull=False)
            ),
            models.Index(fields=["agent"], name="message_agent", condition=Q(agent__isnull=False)),
            # The delivery sweep (messaging.delivery.pending_sends_requeue, every few seconds)
            # reads the platform replies still to send: an index of those alone, so that it
            # reads the few waiting rows, not every platform message of the day.
            models.Index(
                fields=["created_at"],
                name="message_pending_send",
                condition=Q(direction="out", status="pending", channel__isnull=False),
            ),
        ]
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
