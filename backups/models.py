"""Backup runs and restore checks: platform-level records, for the operators only."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Trigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    OPERATOR = "operator", "Operator (dashboard)"
    COMMAND = "command", "Command"


class BackupRun(models.Model):
    """One copy of the database: how it was taken, where it is, what it holds."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    engine = models.CharField(max_length=20, blank=True)
    database_name = models.CharField(max_length=500, blank=True)
    server_version = models.CharField(max_length=100, blank=True)
    tool_version = models.CharField(max_length=200, blank=True)
    region = models.CharField(max_length=40, blank=True)
    app_version = models.CharField(max_length=100, blank=True)

    file_path = models.CharField(max_length=1000, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    encrypted = models.BooleanField(default=False)
    key_id = models.CharField(max_length=32, blank=True)
    row_counts = models.JSONField(default=dict, blank=True)
    migrations = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    verified = models.BooleanField(default=False)
    verified_at = models.DateTimeField(null=True, blank=True)
    verification_error = models.TextField(blank=True)
    #: When retention removed the files; the record stays.
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "-created_at"])]

    def __str__(self) -> str:
        return f"Backup #{self.pk} ({self.get_status_display().lower()})"

    @property
    def has_file(self) -> bool:
        return self.status == self.Status.SUCCEEDED and self.deleted_at is None

    @property
    def total_rows(self) -> int:
        return sum(self.row_counts.values()) if self.row_counts else 0


class RestoreCheck(models.Model):
    """A copy restored into a scratch database and compared with its manifest."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"

    backup = models.ForeignKey(
        BackupRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="restore_checks"
    )
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    scratch_database = models.CharField(max_length=500, blank=True)
    details = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Restore check #{self.pk} ({self.get_status_display().lower()})"
