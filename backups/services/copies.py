"""Taking copies, verifying them, and keeping the last BACKUP_KEEP."""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backups import archive, crypto, selectors
from backups.archive import Report
from backups.errors import BackupError
from backups.models import BackupRun, Trigger
from backups.services.common import (
    STALE_AFTER,
    _operators_alert,
    _quiet,
    _record_verification,
    _run_copy,
    app_version,
    deployment_database,
)

logger = logging.getLogger("backups")


@transaction.atomic
def backup_request(*, requested_by=None) -> BackupRun:
    """Queue a backup for the worker; sends the task after commit."""
    from backups.tasks import backup_create_task

    run = BackupRun.objects.create(trigger=Trigger.OPERATOR, requested_by=requested_by)
    transaction.on_commit(lambda: backup_create_task.delay(run.pk))
    return run


def _runs_mark_interrupted() -> None:
    cutoff = timezone.now() - STALE_AFTER
    stale = BackupRun.objects.filter(
        status__in=[BackupRun.Status.QUEUED, BackupRun.Status.RUNNING], created_at__lt=cutoff
    )
    for run in stale:
        if run.file_path:
            for suffix in (".partial", ".plain.partial"):
                Path(run.file_path + suffix).unlink(missing_ok=True)
        run.status = BackupRun.Status.FAILED
        run.finished_at = timezone.now()
        run.error = (
            "Interrupted: the worker stopped before this backup finished."
            if run.started_at
            else "Never started: the task was lost before a worker took it."
        )
        run.save(update_fields=["status", "finished_at", "error"])


def _file_base(run: BackupRun, started) -> str:
    return f"chattonic-{settings.CHATTONIC_REGION}-{started:%Y%m%dT%H%M%SZ}-{run.pk}"


def backup_create(
    *,
    trigger: str = Trigger.COMMAND,
    run: BackupRun | None = None,
    requested_by=None,
    report: Report | None = None,
) -> BackupRun:
    """Take a copy of the database into BACKUP_DIR with its manifest, verify it and apply
    retention; a failure is recorded on the run and alerts the operators."""
    report = report or _quiet
    _runs_mark_interrupted()
    if run is None:
        run = BackupRun.objects.create(trigger=trigger, requested_by=requested_by)
    started = timezone.now()
    try:
        database = deployment_database()
        key = archive.encryption_key()
        path = archive.backup_dir() / (
            _file_base(run, started) + database.extension + (".enc" if key else "")
        )
    except BackupError as exc:
        BackupRun.objects.filter(pk=run.pk, status=BackupRun.Status.QUEUED).update(
            status=BackupRun.Status.FAILED,
            started_at=started,
            finished_at=timezone.now(),
            error=exc.message,
        )
        run.refresh_from_db()
        _operators_alert(f"Backup #{run.pk} failed", exc.message, key=f"backup.failed:{run.pk}")
        return run
    fields = {
        "status": BackupRun.Status.RUNNING,
        "started_at": started,
        "engine": database.engine,
        "database_name": database.display,
        "region": settings.CHATTONIC_REGION,
        "app_version": app_version(),
        "file_path": str(path),
        "encrypted": key is not None,
        "key_id": crypto.key_id(key) if key else "",
    }
    # Claim the run: a task delivered twice finds it taken and leaves it alone.
    if not BackupRun.objects.filter(pk=run.pk, status=BackupRun.Status.QUEUED).update(**fields):
        run.refresh_from_db()
        return run
    run.refresh_from_db()
    report(f"backup #{run.pk} of {database.display} into {path}")
    try:
        result = database.dump(path=path, key=key, report=report)
        manifest = _manifest(run, result)
        archive.manifest_write(archive.manifest_path_for(path), manifest)
    except Exception as exc:
        if not isinstance(exc, BackupError):
            logger.exception("Backup #%s failed unexpectedly", run.pk)
        for leftover in (path, archive.manifest_path_for(path)):
            leftover.unlink(missing_ok=True)
        run.status = BackupRun.Status.FAILED
        run.finished_at = timezone.now()
        run.error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        run.save(update_fields=["status", "finished_at", "error"])
        _operators_alert(f"Backup #{run.pk} failed", run.error, key=f"backup.failed:{run.pk}")
        return run
    run.status = BackupRun.Status.SUCCEEDED
    run.finished_at = timezone.now()
    run.size, run.sha256 = result.size, result.sha256
    run.row_counts, run.migrations = result.row_counts, result.migrations
    run.server_version, run.tool_version = result.server_version, result.tool_version
    run.save()
    report(f"backup #{run.pk}: {archive.size_human(run.size)}, sha256 {run.sha256}")
    backup_verify(run=run, report=report)
    removed = backup_prune()
    if removed:
        report(
            f"retention removed {len(removed)} older copies: "
            + ", ".join(f"#{r.pk}" for r in removed)
        )
    return run


def _manifest(run: BackupRun, result) -> dict:
    return {
        "format": archive.MANIFEST_FORMAT,
        "version": archive.MANIFEST_VERSION,
        "run_id": run.pk,
        "region": run.region,
        "app_version": run.app_version,
        "started_at": run.started_at.isoformat(),
        "finished_at": timezone.now().isoformat(),
        "engine": run.engine,
        "database": run.database_name,
        "server_version": result.server_version,
        "tool_version": result.tool_version,
        "dump_format": result.dump_format,
        "file": Path(run.file_path).name,
        "size": result.size,
        "sha256": result.sha256,
        "encryption": (
            {"scheme": crypto.SCHEME, "key_id": run.key_id, "chunk_size": crypto.CHUNK_SIZE}
            if run.encrypted
            else None
        ),
        "row_counts": result.row_counts,
        "table_checksums": result.checksums,
        "migrations": result.migrations,
    }


# --- Verification ------------------------------------------------------------------------


def backup_verify(*, run: BackupRun, report: Report | None = None) -> BackupRun:
    """Check a copy against its manifest and record (size, SHA-256, decryption with the
    key); a failure marks it unverified and alerts the operators."""
    if not run.has_file:
        raise BackupError(f"Backup #{run.pk} has no copy to verify ({run.get_status_display()}).")
    try:
        path, manifest = _run_copy(run)
        archive.copy_verify(path, manifest, report=report)
    except BackupError as exc:
        _record_verification(run, exc.message)
        return run
    _record_verification(run)
    (report or _quiet)(f"backup #{run.pk} verified")
    return run


def backup_verify_request(*, run: BackupRun) -> None:
    """Queue the verification of a copy for the worker; sends the task after commit."""
    from backups.tasks import backup_verify_task

    if not run.has_file:
        raise BackupError(f"Backup #{run.pk} has no copy to verify ({run.get_status_display()}).")
    transaction.on_commit(lambda: backup_verify_task.delay(run.pk))


def copy_verify_file(*, path: Path, report: Report | None = None) -> dict:
    """Check a copy file (or its manifest) on its own, without a run record; returns the
    manifest. Writes nothing."""
    manifest = archive.manifest_read(path)
    archive.copy_verify(archive.data_path(path, manifest), manifest, report=report)
    return manifest


# --- Retention -----------------------------------------------------------------------------


def backup_prune(*, keep: int | None = None) -> list[BackupRun]:
    """Delete the files of successful copies past the newest ``keep`` (BACKUP_KEEP), never
    the newest verified copy; the records stay, marked deleted."""
    keep = max(1, settings.BACKUP_KEEP if keep is None else keep)
    with transaction.atomic():
        runs = list(selectors.backups_with_files().select_for_update())
        newest_verified = next((run for run in runs if run.verified), None)
        doomed = [run for run in runs[keep:] if run != newest_verified]
        now = timezone.now()
        BackupRun.objects.filter(pk__in=[run.pk for run in doomed]).update(deleted_at=now)

        def remove_files() -> None:
            for run in doomed:
                path = Path(run.file_path)
                for file in (path, archive.manifest_path_for(path)):
                    try:
                        file.unlink(missing_ok=True)
                    except OSError:
                        logger.exception("Could not delete %s of backup #%s", file, run.pk)

        transaction.on_commit(remove_files)
    for run in doomed:
        run.deleted_at = now
    return doomed
