"""Restoring a copy into a database given by URL (the operators' ``restore`` command)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from backups import archive
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
    return RestoreResult(
        manifest=manifest,
        target=target.display,
        seconds=time.monotonic() - clock,
        comparison=comparison,
        run_marked=run_marked,
    )
