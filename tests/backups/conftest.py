"""Backups tests: each test gets its own BACKUP_DIR, operators to mail, and a database to
restore into."""

from __future__ import annotations

import uuid

import dj_database_url
import pytest
from django.db import connection

from backups.engines.postgres import PgTarget, PostgresDatabase
from tests.backups.helpers import BASE_NAME, ON_POSTGRES


@pytest.fixture(autouse=True)
def backup_settings(settings, tmp_path):
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_KEEP = 30
    settings.BACKUP_ENCRYPTION_KEY = ""
    settings.BACKUP_OLD_ENCRYPTION_KEYS = []
    settings.BACKUP_PG_BIN_DIR = ""
    # This worker's own test database's name: two xdist workers each have a restore check #5
    # (their databases count apart), and a shared "test_check_5" was dropped by one while the
    # other restored into it.
    settings.BACKUP_SCRATCH_DATABASE_PREFIX = f"{connection.settings_dict['NAME']}_check"
    settings.ADMINS = [("Operators", "ops@example.com")]
    return settings


@pytest.fixture
def restore_url(tmp_path):
    """The URL of an empty database to restore into (dropped after the test)."""
    if not ON_POSTGRES:
        yield f"sqlite:///{tmp_path / 'restored.sqlite3'}"
        return
    name = f"{BASE_NAME}_restored_{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"
    yield url
    PostgresDatabase(PgTarget.from_settings(dj_database_url.parse(url))).drop()
