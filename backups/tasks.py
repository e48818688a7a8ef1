"""Backups on the worker: the daily copy, the weekly restore check, and operators' requests."""

from __future__ import annotations

from celery import shared_task

from backups import selectors, services
from backups.errors import BackupError
from backups.models import BackupRun, RestoreCheck, Trigger


@shared_task
def backup_create_scheduled() -> None:
    """Take the daily copy (skipped when the schedule already has one under way or done)."""
    if selectors.backup_scheduled_recently():
        return
    services.backup_create(trigger=Trigger.SCHEDULE)


@shared_task
def backup_create_task(run_id: int) -> None:
    """Take the copy an operator queued (a run already taken or gone is left alone)."""
    run = BackupRun.objects.filter(pk=run_id, status=BackupRun.Status.QUEUED).first()
    if run is None:
        return
    services.backup_create(run=run, trigger=run.trigger)


@shared_task
def backup_verify_task(run_id: int) -> None:
    """Verify a copy against its manifest and record the outcome."""
    run = BackupRun.objects.filter(pk=run_id).first()
    if run is None or not run.has_file:
        return
    try:
        services.backup_verify(run=run)
    except BackupError:
        return  # the copy went away meanwhile (retention)


@shared_task
def restore_check_scheduled() -> None:
    """Run the weekly restore check of the newest copy (skipped if one ran just now)."""
    if selectors.restore_check_scheduled_recently():
        return
    services.restore_check_run(trigger=Trigger.SCHEDULE)


@shared_task
def restore_check_task(check_id: int) -> None:
    """Run the restore check an operator queued (one already taken or gone is left alone)."""
    check = RestoreCheck.objects.filter(pk=check_id, status=RestoreCheck.Status.QUEUED).first()
    if check is None:
        return
    services.restore_check_run(check=check)
