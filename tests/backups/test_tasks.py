"""The worker's side: the beat schedule, and tasks that are safe to run twice."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from backups import services, tasks
from backups.models import BackupRun, RestoreCheck
from tests.factories import BackupRunFactory, RestoreCheckFactory


@pytest.mark.django_db
def test_the_schedule_has_a_daily_backup_at_three_and_a_weekly_restore_check(settings):
    from chattonic.core.services import schedule_install

    schedule_install()
    backup = PeriodicTask.objects.get(task="backups.tasks.backup_create_scheduled")
    assert (backup.crontab.hour, backup.crontab.minute, backup.crontab.day_of_week) == (
        "3",
        "0",
        "*",
    )
    assert str(backup.crontab.timezone) == settings.TIME_ZONE
    check = PeriodicTask.objects.get(task="backups.tasks.restore_check_scheduled")
    assert check.crontab.day_of_week != "*" and check.crontab.day_of_month == "*"


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_scheduled_backup_takes_one_copy():
    tasks.backup_create_scheduled.delay()
    tasks.backup_create_scheduled.delay()
    run = BackupRun.objects.get()
    assert run.trigger == "schedule" and run.status == BackupRun.Status.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_a_queued_run_is_taken_once():
    run = BackupRun.objects.create(trigger="operator")
    tasks.backup_create_task.delay(run.pk)
    run.refresh_from_db()
    first = (run.file_path, run.sha256)
    tasks.backup_create_task.delay(run.pk)
    tasks.backup_create_task.delay(run.pk + 1000)  # gone: nothing happens
    run.refresh_from_db()
    assert (run.file_path, run.sha256) == first
    assert len(list(Path(run.file_path).parent.iterdir())) == 2  # one copy, one manifest


@pytest.mark.django_db(transaction=True)
def test_the_weekly_check_runs_once_and_checks_the_newest_copy():
    tasks.backup_create_scheduled.delay()
    tasks.restore_check_scheduled.delay()
    tasks.restore_check_scheduled.delay()
    check = RestoreCheck.objects.get()
    assert check.status == RestoreCheck.Status.PASSED and check.trigger == "schedule"


@pytest.mark.django_db
def test_runs_and_checks_left_running_by_a_dead_worker_are_marked_interrupted(tmp_path):
    long_ago = timezone.now() - timedelta(days=1)
    partial = tmp_path / "stuck.pgdump"
    (tmp_path / "stuck.pgdump.partial").write_bytes(b"half")
    stuck = BackupRunFactory(
        status=BackupRun.Status.RUNNING,
        created_at=long_ago,
        started_at=long_ago,
        file_path=str(partial),
        finished_at=None,
    )
    lost = BackupRunFactory(status=BackupRun.Status.QUEUED, created_at=long_ago, started_at=None)
    stuck_check = RestoreCheckFactory(
        status=RestoreCheck.Status.RUNNING, created_at=long_ago, scratch_database=""
    )

    services._runs_mark_interrupted()
    services._checks_mark_interrupted(services.deployment_database())

    for obj in (stuck, lost, stuck_check):
        obj.refresh_from_db()
        assert obj.status == "failed"
    assert "Interrupted" in stuck.error and "Never started" in lost.error
    assert not (tmp_path / "stuck.pgdump.partial").exists()
