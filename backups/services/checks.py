"""Restore checks: a copy restored into a scratch database and compared with its manifest."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from backups import archive, selectors
from backups.archive import Report
from backups.engines import Contents, Database
from backups.errors import BackupError, CopyCorrupted, WrongKey
from backups.models import BackupRun, RestoreCheck, Trigger
from backups.services.common import (
    STALE_AFTER,
    _copy_restore,
    _operators_alert,
    _quiet,
    _record_verification,
    _run_copy,
    deployment_database,
)

# --- Comparing a restored database with its manifest ---------------------------------------

logger = logging.getLogger("backups")


@dataclass
class Comparison:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def contents_compare(manifest: dict, contents: Contents) -> Comparison:
    """What differs between a restored database and the manifest of its copy."""
    result = Comparison()
    expected, restored = manifest["row_counts"], contents.row_counts
    for table in sorted(set(expected) - set(restored)):
        result.problems.append(f"table {table} is missing ({expected[table]} rows expected)")
    for table in sorted(set(restored) - set(expected)):
        result.problems.append(f"table {table} is not in the manifest")
    for table in sorted(set(expected) & set(restored)):
        if expected[table] != restored[table]:
            result.problems.append(
                f"table {table} has {restored[table]} rows, the manifest records {expected[table]}"
            )
    if not result.problems:
        result.notes.append(
            f"row counts: {len(restored)} tables, {sum(restored.values())} rows, "
            "all as the manifest records"
        )
    sums = manifest.get("table_checksums")
    if not sums:
        result.notes.append(
            "contents: this manifest has no table checksums (an older copy): rows counted only"
        )
    else:
        differ = sorted(
            t for t in set(sums) & set(contents.checksums) if sums[t] != contents.checksums[t]
        )
        for table in differ:
            result.problems.append(
                f"table {table}: its contents differ from the copy's (checksum "
                f"{contents.checksums[table]}, the manifest records {sums[table]})"
            )
        if not differ:
            result.notes.append(
                f"contents: {len(sums)} table checksums, all as the manifest records"
            )
    applied, recorded = set(contents.migrations), set(manifest["migrations"])
    if not applied:
        result.problems.append("the restored database has no django_migrations table")
    elif applied != recorded:
        missing, extra = sorted(recorded - applied), sorted(applied - recorded)
        result.problems.append(f"migrations differ: missing {missing}, unexpected {extra}")
    else:
        result.notes.append(f"migrations: {len(applied)} applied, as the manifest records")
        known = {f"{app}.{name}" for app, name in MigrationLoader(None).disk_migrations}
        if pending := sorted(known - applied):
            result.notes.append(
                f"this code has {len(pending)} migrations the copy lacks (migrate applies "
                f"them after a restore): {', '.join(pending[:10])}"
            )
        if unknown := sorted(applied - known):
            result.notes.append(
                f"warning: the copy has {len(unknown)} migrations this code does not know "
                f"(restore it with the code version {manifest.get('app_version')}): "
                + ", ".join(unknown[:10])
            )
    if manifest.get("region") and manifest["region"] != settings.CHATTONIC_REGION:
        result.notes.append(
            f"warning: the copy is from the region {manifest['region']}, this deployment is "
            f"{settings.CHATTONIC_REGION}"
        )
    return result


# --- Restore checks ------------------------------------------------------------------------


@transaction.atomic
def restore_check_request(*, backup: BackupRun | None = None, requested_by=None) -> RestoreCheck:
    """Queue a restore check of a copy (the newest by default); sends the task after commit."""
    from backups.tasks import restore_check_task

    check = RestoreCheck.objects.create(
        backup=backup or selectors.backup_newest(),
        trigger=Trigger.OPERATOR,
        requested_by=requested_by,
    )
    transaction.on_commit(lambda: restore_check_task.delay(check.pk))
    return check


def _checks_mark_interrupted(database: Database) -> None:
    cutoff = timezone.now() - STALE_AFTER
    stale = RestoreCheck.objects.filter(
        status__in=[RestoreCheck.Status.QUEUED, RestoreCheck.Status.RUNNING],
        created_at__lt=cutoff,
    )
    for check in stale:
        if check.scratch_database:
            try:
                database.scratch_discard(name=check.scratch_database)
            except BackupError as exc:
                logger.warning("Could not remove %s: %s", check.scratch_database, exc)
        check.status = RestoreCheck.Status.FAILED
        check.finished_at = timezone.now()
        check.details = "Interrupted: the worker stopped before this check finished."
        check.save(update_fields=["status", "finished_at", "details"])


def restore_check_run(
    *,
    check: RestoreCheck | None = None,
    backup: BackupRun | None = None,
    trigger: str = Trigger.COMMAND,
    report: Report | None = None,
) -> RestoreCheck:
    """Restore a copy (the newest by default) into a scratch database, compare its row
    counts, each table's content checksum and its migrations with the manifest, drop the
    scratch database; a failure is recorded and alerts the operators."""
    report = report or _quiet
    database = deployment_database()
    _checks_mark_interrupted(database)
    if check is None:
        check = RestoreCheck.objects.create(
            backup=backup or selectors.backup_newest(), trigger=trigger
        )
    started = timezone.now()
    scratch_name = database.scratch_name(check_id=check.pk)
    claimed = RestoreCheck.objects.filter(pk=check.pk, status=RestoreCheck.Status.QUEUED).update(
        status=RestoreCheck.Status.RUNNING, started_at=started, scratch_database=scratch_name
    )
    check.refresh_from_db()
    if not claimed:
        return check
    clock = time.monotonic()
    lines: list[str] = []
    problems: list[str] = []
    run = check.backup
    try:
        if run is None:
            raise BackupError("There is no successful backup to check.")
        path, manifest = _run_copy(run)
        lines.append(
            f"backup #{run.pk}: {path} ({archive.size_human(run.size)}"
            + (f", encrypted with key {run.key_id})" if run.encrypted else ")")
        )
        if manifest["engine"] != database.engine:
            raise BackupError(
                f"The copy is a {manifest['engine']} copy; this deployment runs "
                f"{database.engine}: check it on a {manifest['engine']} deployment."
            )
        report(f"restore check #{check.pk}: restoring backup #{run.pk} into {scratch_name}")
        with database.scratch(name=scratch_name) as scratch:
            try:
                _copy_restore(scratch, path, manifest, report=report, verified=False, atomic=False)
            except (CopyCorrupted, WrongKey) as exc:
                _record_verification(run, exc.message)
                raise
            if not run.verified:
                _record_verification(run)
            lines.append(f"checksum: ok, restored into {scratch.display}")
            lines.append(f"restored in {time.monotonic() - clock:.1f}s")
            problems.extend(scratch.integrity_problems())
            comparison = contents_compare(manifest, scratch.contents())
        lines.append("scratch database dropped")
        problems.extend(comparison.problems)
        lines.extend(comparison.notes)
    except BackupError as exc:
        problems.append(exc.message)
    except Exception as exc:
        logger.exception("Restore check #%s failed unexpectedly", check.pk)
        problems.append(f"{type(exc).__name__}: {exc}")
    check.finished_at = timezone.now()
    check.duration = timedelta(seconds=time.monotonic() - clock)
    check.status = RestoreCheck.Status.FAILED if problems else RestoreCheck.Status.PASSED
    check.details = "\n".join([*(f"FAILED: {p}" for p in problems), *lines])
    check.save(update_fields=["status", "finished_at", "duration", "details"])
    report(check.details)
    if problems:
        _operators_alert(
            f"Restore check #{check.pk} failed",
            check.details,
            key=f"restore_check.failed:{check.pk}",
        )
    return check
