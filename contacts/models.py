"""Contacts and how each channel knows them (identities)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from chattonic.core.kinds import ChannelKind
from chattonic.tenancy.models import TenantOwned


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
        # The table keeps the name it had in the conversations app (moved without copying).
        db_table = "conversations_contact"
        ordering = ["-created_at"]
        # The dashboard's list, newest first, without sorting every contact of the tenant.
        indexes = [models.Index(fields=["tenant", "-created_at"], name="contact_tenant_newest")]

    def __str__(self) -> str:
        # No name, email or phone: a web chat visitor (the widget knows only a browser's key,
        # which is internal, never a name) or a platform's sender who gave none ("Web visitor"
        # would be wrong for an SMS sender, and telling the two apart costs a query per row).
        return self.name or self.email or self.phone or f"Visitor #{self.pk}"


class ContactIdentity(TenantOwned):
    """How a channel knows a contact: a widget session, a phone number, a Telegram user."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(max_length=12, choices=ChannelKind.choices)
    # Blank for the web chat, whose visitor ids are our own.
    channel = models.ForeignKey(
        "messaging.Channel", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    external_id = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        # The table keeps the name it had in the conversations app (moved without copying).
        db_table = "conversations_contactidentity"
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
        # A web visitor's id is the widget's random key for a browser: internal, not an address.
        where = "a web browser" if self.kind == ChannelKind.WEBCHAT else self.external_id
        return f"{self.get_kind_display()}: {where}"
