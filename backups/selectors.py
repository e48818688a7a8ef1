"""Reads of backup runs and restore checks shared by the services, tasks and dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from backups.models import BackupRun, RestoreCheck, Trigger


def backups_with_files() -> QuerySet[BackupRun]:
    """Successful copies whose files are still kept, newest first."""
    return BackupRun.objects.filter(
        status=BackupRun.Status.SUCCEEDED, deleted_at__isnull=True
    ).order_by("-started_at", "-id")


def backup_newest() -> BackupRun | None:
    return backups_with_files().first()


def backup_newest_verified() -> BackupRun | None:
    return backups_with_files().filter(verified=True).first()


def backup_scheduled_recently(*, within: timedelta = timedelta(hours=12)) -> bool:
    """Whether the schedule already has a backup under way or done (a redelivered task)."""
    return (
        BackupRun.objects.filter(trigger=Trigger.SCHEDULE, created_at__gte=timezone.now() - within)
        .exclude(status=BackupRun.Status.FAILED)
        .exists()
    )


def restore_check_scheduled_recently(*, within: timedelta = timedelta(hours=12)) -> bool:
    return (
        RestoreCheck.objects.filter(
            trigger=Trigger.SCHEDULE, created_at__gte=timezone.now() - within
        )
        .exclude(status=RestoreCheck.Status.FAILED)
        .exists()
    )


@dataclass
class BackupsSummary:
    latest_run: BackupRun | None
    newest_copy: BackupRun | None
    newest_verified: BackupRun | None
    latest_check: RestoreCheck | None
    latest_passed_check: RestoreCheck | None
    copies_kept: int

    @property
    def problems(self) -> list[str]:
        """What an operator must look at now, worded for the dashboard."""
        problems = []
        if self.latest_run and self.latest_run.status == BackupRun.Status.FAILED:
            problems.append(f"The latest backup (#{self.latest_run.pk}) failed.")
        if self.newest_copy is None:
            problems.append("There is no backup copy.")
        elif self.newest_copy.started_at < timezone.now() - timedelta(hours=26):
            problems.append(f"The newest copy (#{self.newest_copy.pk}) is more than a day old.")
        if self.newest_copy and self.newest_copy.verification_error:
            problems.append(f"The newest copy (#{self.newest_copy.pk}) fails verification.")
        if self.newest_copy and self.newest_verified is None:
            problems.append("No copy has been verified.")
        if self.latest_check and self.latest_check.status == RestoreCheck.Status.FAILED:
            problems.append(f"The latest restore check (#{self.latest_check.pk}) failed.")
        return problems


def backups_summary() -> BackupsSummary:
    finished = [RestoreCheck.Status.PASSED, RestoreCheck.Status.FAILED]
    checks = RestoreCheck.objects.select_related("backup")
    return BackupsSummary(
        latest_run=BackupRun.objects.exclude(status=BackupRun.Status.QUEUED).first(),
        newest_copy=backup_newest(),
        newest_verified=backup_newest_verified(),
        latest_check=checks.filter(status__in=finished).first(),
        latest_passed_check=checks.filter(status=RestoreCheck.Status.PASSED).first(),
        copies_kept=backups_with_files().count(),
    )
