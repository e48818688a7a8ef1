"""Leads a bot or an agent collected, and where a tenant wants them POSTed."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from chattonic.core.kinds import ChannelKind
from chattonic.tenancy.models import TenantOwned


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

    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="leads")
    conversation = models.ForeignKey(
        "conversations.Conversation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leads",
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
        # The table keeps the name it had in the conversations app (moved without copying).
        db_table = "conversations_lead"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Lead #{self.pk} ({self.get_status_display()})"


class LeadWebhook(TenantOwned):
    """Where a tenant wants new leads POSTed, signed like the API channel's deliveries; the
    signing secret is stored encrypted (chattonic/core/credentials.py), shown once."""

    url = models.URLField(max_length=500)
    signing_secret_encrypted = models.TextField(editable=False)
    is_active = models.BooleanField(default=True)
    last_status = models.CharField(max_length=200, blank=True, editable=False)
    last_delivery_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        # The table keeps the name it had in the conversations app (moved without copying).
        db_table = "conversations_leadwebhook"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "url"], name="leadwebhook_tenant_url_unique")
        ]

    def __str__(self) -> str:
        return self.url
