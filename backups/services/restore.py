"""Restoring a copy into a database given by URL (the operators' ``restore`` command)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from backups import archive, ledger
from backups.archive import Report
from backups.engines import database_from_url
from backups.errors import BackupError, CopyCorrupted
from backups.models import BackupRun
from backups.services.checks import Comparison, contents_compare
from backups.services.common import _copy_restore, _quiet, _run_copy


@dataclass
class RestoreResult:
    manifest: dict
    target: str
    seconds: float
    comparison: Comparison
    run_marked: bool
    erasures: list[str]  # what re-applying the erasure ledger said, line by line


def _restore_source(source: str) -> tuple[Path, dict]:
    if source.isdigit():
        run = BackupRun.objects.filter(pk=int(source)).first()
        if run is None:
            raise BackupError(f"There is no backup #{source}.")
        return _run_copy(run)
    path = Path(source).expanduser().resolve()
    manifest = archive.manifest_read(path)
    data = archive.data_path(path, manifest)
    if not path.name.endswith(archive.MANIFEST_SUFFIX) and data != path:
        raise CopyCorrupted(f"The manifest beside {path} describes another file ({data.name}).")
    return data, manifest


def backup_restore(
    *, source: str, into: str, force: bool = False, report: Report | None = None
) -> RestoreResult:
    """Restore a copy (a backup id, a copy file or its manifest) into the database at the
    URL ``into``: verified first, refused over a database that has data unless ``force``
    (which drops it), then compared with the manifest. Writes only to that database."""
    report = report or _quiet
    clock = time.monotonic()
    path, manifest = _restore_source(source)
    target = database_from_url(into)
    if manifest["engine"] != target.engine:
        raise BackupError(
            f"{path.name} is a {manifest['engine']} copy; it restores into a "
            f"{manifest['engine']} database, not {target.engine}."
        )
    if not force:
        target.prepare(force=False)  # refuse a database with data before reading the copy
    report(f"verifying {path} against its manifest")
    archive.copy_verify(path, manifest, report=report)
    if force:
        report(f"verified; dropping and recreating {target.display}")
        target.prepare(force=True)
    report(f"restoring into {target.display}")
    _copy_restore(target, path, manifest, report=report, verified=True, atomic=True)
    comparison = contents_compare(manifest, target.contents())
    comparison.problems.extend(target.integrity_problems())
    run_marked = target.mark_run_restored(manifest=manifest) if not comparison.problems else False
    erasures: list[str] = []
    if not comparison.problems:
        report("re-applying the erasure ledger (erases made after the copy was taken)")
        erasures = erasures_reapply_into(into)
    return RestoreResult(
        manifest=manifest,
        target=target.display,
        seconds=time.monotonic() - clock,
        comparison=comparison,
        run_marked=run_marked,
        erasures=erasures,
    )


def erasures_reapply_into(url: str) -> list[str]:
    """Erase again, in the database at ``url``, every contact of the erasure ledger that it
    holds: ``manage.py erasures_reapply`` in a process of its own whose database is that
    one. Its output, line by line; BackupError if it fails (the restore must not be used)."""
    path = ledger.ledger_path()
    env = {**os.environ, "DATABASE_URL": url, "BACKUP_DIR": str(path.parent)}
    result = subprocess.run(
        [
            sys.executable,
            str(Path(settings.BASE_DIR) / "manage.py"),
            "erasures_reapply",
            "--ledger",
            str(path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0:
        raise BackupError(
            "Restored, but re-applying the erasure ledger failed: erased contacts may be back. "
            "Do not start the platform on this database; run `manage.py erasures_reapply` "
            f"against it and read its error:\n{result.stderr.strip()[-2000:]}"
        )
    return lines
