"""Retention: the newest BACKUP_KEEP successful copies stay, older files go (their records
stay), and the newest verified copy is never deleted, even when it is the only one."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from backups import archive, services
from backups.models import BackupRun
from tests.factories import BackupRunFactory

pytestmark = pytest.mark.django_db


def copies(count: int, *, verified=True, start=None) -> list[BackupRun]:
    """``count`` successful copies with files, oldest first, one day apart."""
    start = start or timezone.now() - timedelta(days=100)
    runs = []
    for day in range(count):
        started = start + timedelta(days=day)
        path = archive.backup_dir() / f"chattonic-test-{started:%Y%m%d}.sqlite3"
        path.write_bytes(b"copy")
        archive.manifest_path_for(path).write_text("{}")
        runs.append(
            BackupRunFactory(
                started_at=started, created_at=started, file_path=str(path), verified=verified
            )
        )
    return runs


def files_of(run: BackupRun) -> list[Path]:
    path = Path(run.file_path)
    return [p for p in (path, archive.manifest_path_for(path)) if p.exists()]


def kept() -> list[int]:
    return sorted(BackupRun.objects.filter(deleted_at__isnull=True).values_list("pk", flat=True))


def test_keeps_exactly_the_configured_count(settings, django_capture_on_commit_callbacks):
    settings.BACKUP_KEEP = 3
    runs = copies(5)
    with django_capture_on_commit_callbacks(execute=True):
        removed = services.backup_prune()

    assert {r.pk for r in removed} == {runs[0].pk, runs[1].pk}
    assert kept() == sorted(r.pk for r in runs[2:])
    for run in runs[:2]:
        assert files_of(run) == []
        run.refresh_from_db()
        assert run.deleted_at is not None and run.status == BackupRun.Status.SUCCEEDED
    for run in runs[2:]:
        assert len(files_of(run)) == 2


def test_never_deletes_the_only_verified_copy(settings, django_capture_on_commit_callbacks):
    settings.BACKUP_KEEP = 2
    verified = copies(1, verified=True)[0]
    unverified = copies(4, verified=False, start=verified.started_at + timedelta(days=1))

    with django_capture_on_commit_callbacks(execute=True):
        services.backup_prune()

    assert kept() == sorted([verified.pk, unverified[-2].pk, unverified[-1].pk])
    assert len(files_of(verified)) == 2


def test_an_older_verified_copy_goes_once_a_newer_one_is_verified(
    settings, django_capture_on_commit_callbacks
):
    settings.BACKUP_KEEP = 2
    runs = copies(4, verified=True)
    with django_capture_on_commit_callbacks(execute=True):
        services.backup_prune()
    assert kept() == sorted([runs[2].pk, runs[3].pk])


def test_failed_runs_do_not_count_and_are_kept_as_records(
    settings, django_capture_on_commit_callbacks
):
    settings.BACKUP_KEEP = 2
    runs = copies(2)
    failed = BackupRunFactory(status=BackupRun.Status.FAILED, error="pg_dump failed")
    with django_capture_on_commit_callbacks(execute=True):
        removed = services.backup_prune()
    assert removed == []
    assert kept() == sorted([runs[0].pk, runs[1].pk, failed.pk])


@pytest.mark.django_db(transaction=True)
def test_retention_runs_after_each_backup(settings):
    settings.BACKUP_KEEP = 2
    runs = [services.backup_create() for _ in range(3)]
    assert all(run.status == BackupRun.Status.SUCCEEDED for run in runs)
    assert kept() == sorted([runs[1].pk, runs[2].pk])
    assert files_of(runs[0]) == []
    assert sorted(p.name for p in archive.backup_dir().iterdir()) == sorted(
        p.name for run in runs[1:] for p in files_of(run)
    )
