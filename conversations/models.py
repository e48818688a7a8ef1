"""Channels, contacts, conversations and messages."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from chattonic.tenancy.models import Tenant, TenantOwned


class ChannelKind(models.TextChoices):
    WEBCHAT = "webchat", "Web chat"
    WHATSAPP = "whatsapp", "WhatsApp Cloud API"
    MESSENGER = "messenger", "Messenger"
    TELEGRAM = "telegram", "Telegram"
    TWILIO = "twilio", "Twilio (SMS / WhatsApp)"
    API = "api", "API"


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
        # The dashboard's list, newest first, without sorting every contact of the tenant.
        indexes = [models.Index(fields=["tenant", "-created_at"], name="contact_tenant_newest")]

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
        Channel,
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


class DailyStat(TenantOwned):
    """The statistics of one bot on one kind of channel on one day (UTC): counts and the
    samples that medians need, without personal data. Sandbox conversations never count.

    ``live`` rows are rebuilt from the conversations by a periodic task; ``erased`` rows hold
    what erased contacts contributed, so that erasing a contact keeps the statistics.
    """

    class Part(models.TextChoices):
        LIVE = "live", "Live"
        ERASED = "erased", "Erased contacts"

    day = models.DateField()
    bot = models.ForeignKey("bots.Bot", null=True, blank=True, on_delete=models.CASCADE)
    channel_kind = models.CharField(max_length=12, choices=ChannelKind.choices, blank=True)
    part = models.CharField(max_length=6, choices=Part.choices, default=Part.LIVE)
    conversations = models.PositiveIntegerField(default=0)
    messages_in = models.PositiveIntegerField(default=0)
    messages_out = models.PositiveIntegerField(default=0)
    contained = models.PositiveIntegerField(default=0)
    handoffs = models.PositiveIntegerField(default=0)
    leads = models.PositiveIntegerField(default=0)
    # Seconds from the handoff to the first agent reply, and from the start to the resolution.
    first_response_seconds = models.JSONField(default=list, blank=True)
    resolution_seconds = models.JSONField(default=list, blank=True)
    # How many ratings of 1, 2, 3, 4 and 5.
    csat_counts = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-day", "bot_id", "channel_kind"]
        indexes = [models.Index(fields=["tenant", "day"], name="dailystat_tenant_day")]

    def __str__(self) -> str:
        return f"{self.day} bot {self.bot_id} {self.channel_kind} ({self.part})"


class PrivacyAudit(TenantOwned):
    """A record that a contact's data was exported or erased: who, when, how much. It keeps
    the contact's former id only, never its personal data."""

    class Action(models.TextChoices):
        EXPORT = "export", "Export"
        ERASE = "erase", "Erase"

    class Door(models.TextChoices):
        DASHBOARD = "dashboard", "Dashboard"
        API = "api", "API"
        RESTORE = "restore", "Restore (re-applied from the erasure ledger)"

    action = models.CharField(max_length=6, choices=Action.choices)
    contact_ref = models.PositiveBigIntegerField(help_text="The contact's id at the time.")
    door = models.CharField(max_length=10, choices=Door.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(
        "tenancy.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} of contact #{self.contact_ref}"


class LeadWebhook(TenantOwned):
    """Where a tenant wants new leads POSTed, signed like the API channel's deliveries; the
    signing secret is stored encrypted (conversations/credentials.py), shown once."""

    url = models.URLField(max_length=500)
    signing_secret_encrypted = models.TextField(editable=False)
    is_active = models.BooleanField(default=True)
    last_status = models.CharField(max_length=200, blank=True, editable=False)
    last_delivery_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "url"], name="leadwebhook_tenant_url_unique")
        ]

    def __str__(self) -> str:
        return self.url


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
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="delivery_attempts")
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
        ordering = ["-started_at", "-id"]
        constraints = [
            # Two runs of a send task claiming the same attempt: one wins, the other backs off.
            models.UniqueConstraint(
                fields=["tenant", "message", "number"], name="delivery_attempt_number_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"Attempt {self.number} of message #{self.message_id}: {self.outcome}"
