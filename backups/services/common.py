"""What the backup services share: the deployment's database, alerts, reading a run's
copy, and loading a copy into a database."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.utils import timezone

from backups import archive
from backups.archive import Report
from backups.engines import Database, database_from_settings
from backups.errors import BackupError, CopyCorrupted
from backups.models import BackupRun
from chattonic.core import notices

logger = logging.getLogger("backups")

#: A run or check still "running" after this long was interrupted (its worker died).
STALE_AFTER = timedelta(hours=12)


def _quiet(message: str) -> None:
    pass


def deployment_database() -> Database:
    """The database this deployment runs on (the one backups copy)."""
    return database_from_settings(connections["default"].settings_dict)


def app_version() -> str:
    """``CHATTONIC_VERSION``, else the checkout's git commit, else ``unknown``."""
    if settings.CHATTONIC_VERSION:
        return settings.CHATTONIC_VERSION
    git = Path(settings.BASE_DIR) / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:12]
        ref = head[5:]
        if (git / ref).exists():
            return (git / ref).read_text().strip()[:12]
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0][:12]
    except OSError:
        pass
    return "unknown"


def _operators_alert(subject: str, body: str, *, key: str) -> None:
    """Tell the operators through the notices outbox (retried until the mail is sent)."""
    notices.notice_queue(key=key, subject=subject, body=body)


def _run_copy(run: BackupRun) -> tuple[Path, dict]:
    """A run's copy and manifest, after checking that the manifest is the run's."""
    if not run.has_file:
        raise BackupError(
            f"Backup #{run.pk} has no copy: "
            + ("retention removed it." if run.deleted_at else f"it is {run.status}.")
        )
    path = Path(run.file_path)
    manifest = archive.manifest_read(path)
    if (manifest.get("run_id"), manifest["sha256"], manifest["size"]) != (
        run.pk,
        run.sha256,
        run.size,
    ):
        raise CopyCorrupted(
            f"The manifest beside {path} does not describe backup #{run.pk} "
            "(run id, size or SHA-256 differ from the record): it was replaced or altered."
        )
    return path, manifest


def _record_verification(run: BackupRun, error: str = "") -> None:
    run.verified = not error
    run.verified_at = timezone.now()
    run.verification_error = error
    run.save(update_fields=["verified", "verified_at", "verification_error"])
    if error:
        _operators_alert(
            f"Backup #{run.pk} failed verification",
            error,
            key=f"backup.verification_failed:{run.pk}:{timezone.now().isoformat()}",
        )


def _copy_restore(
    database: Database, path: Path, manifest: dict, *, report: Report, verified: bool, atomic: bool
) -> None:
    """Load a copy into ``database``, checking it on the way unless already ``verified``."""
    if manifest.get("encryption"):
        # Decrypted on the fly, each chunk authenticated: no plaintext on disk.
        blocks = archive.CopyReader(path, manifest, report=report)
        database.restore(manifest=manifest, report=report, blocks=blocks, atomic=atomic)
        return
    if not verified:
        archive.copy_verify(path, manifest, report=report)  # one quick read
    database.restore(manifest=manifest, report=report, path=path, atomic=atomic)
