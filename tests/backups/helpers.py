"""Helpers of the backups tests: which database the suite runs on, and reading a database
(the test database or a restored one) directly, outside Django."""

from __future__ import annotations

import contextlib
import sqlite3

import dj_database_url
import pytest
from django.conf import settings
from django.db import connection

from backups.engines.postgres import PgTarget

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def postgres_only(test):
    """Mark a test as needing PostgreSQL: it skips on the SQLite run."""
    skip = pytest.mark.skipif(
        not ON_POSTGRES, reason="needs PostgreSQL (DATABASE_URL=postgres://...)"
    )
    return pytest.mark.postgres(skip(test))


sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="SQLite only (the embedded default)")
#: The database name the run was started with (the test database is "test_<it>").
BASE_NAME = dj_database_url.parse(settings.DATABASE_URL)["NAME"]
TEST_KEY = "3q2+7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhs="
OTHER_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


@contextlib.contextmanager
def raw_connection(url: str | None = None):
    """A DB-API connection to ``url`` (default: the test database), outside Django."""
    if url is None:
        db = connection.settings_dict
        if not ON_POSTGRES:
            url = f"sqlite:///{db['NAME']}"
        else:
            host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
            url = f"postgres://{db['USER']}@{host}/{db['NAME']}"
    parsed = dj_database_url.parse(url)
    if parsed["ENGINE"].endswith("sqlite3"):
        conn = sqlite3.connect(parsed["NAME"])
    else:
        conn = PgTarget.from_settings(parsed).connect()
    try:
        yield conn
    finally:
        conn.close()


def query(url: str | None, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of ``sql`` (parameters in the DB-API style of the engine: ? or %s)."""
    with raw_connection(url) as conn:
        rows = conn.execute(sql, params).fetchall()
    return [tuple(row) for row in rows]


def table_rows(url: str | None, table: str) -> list[tuple]:
    rows = query(url, f'SELECT * FROM "{table}"')  # noqa: S608 - test helper
    return sorted(rows, key=repr)
