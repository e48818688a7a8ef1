"""The database engines backups support: PostgreSQL (production) and SQLite (embedded)."""

from __future__ import annotations

import dj_database_url

from backups.engines.base import Contents, Database, DumpResult
from backups.engines.postgres import PgTarget, PostgresDatabase
from backups.engines.sqlite import SqliteDatabase
from backups.errors import BackupError

__all__ = ["Contents", "Database", "DumpResult", "database_from_settings", "database_from_url"]


def database_from_settings(settings_dict: dict) -> Database:
    """The database a Django connection's settings point at."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return SqliteDatabase(settings_dict["NAME"])
    if "postgresql" in engine or "postgis" in engine:
        return PostgresDatabase(PgTarget.from_settings(settings_dict))
    raise BackupError(f"Backups support PostgreSQL and SQLite, not {engine}.")


def database_from_url(url: str) -> Database:
    """The database of a URL such as postgres://user@host/db or sqlite:////path/db.sqlite3."""
    try:
        return database_from_settings(dj_database_url.parse(url))
    except (ValueError, KeyError) as exc:
        raise BackupError(f"{url!r} is not a database URL: {exc}") from None
