"""Errors of backups, verification and restores; each says what went wrong and what to do."""

from __future__ import annotations

from chattonic.core.errors import Conflict, ServiceError


class BackupError(ServiceError):
    """A backup, verification or restore could not be done."""

    code = "backup_failed"


class ToolUnavailable(BackupError):
    """A PostgreSQL client binary is missing or of another major version than the server."""

    code = "backup_tool_unavailable"


class CopyCorrupted(BackupError):
    """A copy does not match its manifest: truncated, altered or unreadable."""

    code = "backup_corrupted"


class WrongKey(BackupError):
    """A copy was encrypted with a key that this deployment does not have."""

    code = "backup_wrong_key"


class TargetNotEmpty(Conflict):
    """A restore would write over a database that has data."""

    code = "restore_target_not_empty"
