"""The audit of contacts' data exported or erased."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from chattonic.tenancy.models import TenantOwned


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
        # The table keeps the name it had in the conversations app (moved without copying).
        db_table = "conversations_privacyaudit"
        ordering = ["-created_at", "-id"]
        # What the dashboard's navigation calls the page: "privacy audit" named the model.
        verbose_name = "data export or erasure"
        verbose_name_plural = "data exports and erasures"

    def __str__(self) -> str:
        return f"{self.get_action_display()} of contact #{self.contact_ref}"
