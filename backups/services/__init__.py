"""Writes of backups: take a copy, verify it, keep the last N, check that it restores.

Taking a copy or running a restore check lasts minutes, so those services are not one
transaction: each state change of the run (queued, running, finished) is committed on its
own, and the copy itself includes the run's "running" row. Everything that can go wrong is
recorded on the run or check, logged, and mailed to the operators (``settings.ADMINS``).
"""

from backups.services.checks import (
    Comparison,
    _checks_mark_interrupted,
    contents_compare,
    restore_check_request,
    restore_check_run,
)
from backups.services.common import (
    STALE_AFTER,
    app_version,
    deployment_database,
)
from backups.services.copies import (
    _runs_mark_interrupted,
    backup_create,
    backup_prune,
    backup_request,
    backup_verify,
    backup_verify_request,
    copy_verify_file,
)
from backups.services.restore import RestoreResult, backup_restore

__all__ = [
    "STALE_AFTER",
    "Comparison",
    "RestoreResult",
    "_checks_mark_interrupted",
    "_runs_mark_interrupted",
    "app_version",
    "backup_create",
    "backup_prune",
    "backup_request",
    "backup_restore",
    "backup_verify",
    "backup_verify_request",
    "contents_compare",
    "copy_verify_file",
    "deployment_database",
    "restore_check_request",
    "restore_check_run",
]
