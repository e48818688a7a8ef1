"""The hot paths' plain SQL (conversations.sql.execute) is prepared on PostgreSQL: parsed and
planned once per connection, not for every batch (README: DATABASE_PREPARED); and its times
are read by psycopg's own loader, the instants the ORM reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from conversations.sql import Statement, execute
from tests.factories import ConversationFactory

pytestmark = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3",
    reason="server-side prepared statements are PostgreSQL's",
)

SQL = "SELECT count(*) FROM conversations_message WHERE conversation_id = ANY(%s::bigint[])"


def prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_a_hot_path_statement_is_prepared_once_per_connection():
    with transaction.atomic():
        for ids in ([1], [1, 2, 3], [4]):  # the same statement for any number of values
            assert execute([Statement(SQL, [ids])]) == [[(0,)]]
    assert prepared().count(SQL.replace("%s", "$1")) == 1


def test_database_prepared_0_turns_them_off():
    """For a transaction-mode pooler that drops them (PgBouncer before 1.21)."""
    read = (
        "import json; from django.conf import settings; "
        "print(json.dumps(settings.DATABASES['default']['OPTIONS'].get('prepare_threshold')))"
    )
    env = {
        "PATH": os.environ["PATH"],
        "DEBUG": "1",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "CHATTONIC_VAR_DIR": os.environ.get("CHATTONIC_VAR_DIR", ""),
    }
    for value, threshold in (("0", None), ("", 5)):
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", read],
            cwd=settings.BASE_DIR,
            env={**env, "DATABASE_PREPARED": value} if value else env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1]) == threshold


@pytest.mark.django_db
def test_times_read_on_the_hot_paths_are_the_orms_in_utc():
    conversation = ConversationFactory(resolved_at=timezone.now())
    sql = "SELECT created_at, resolved_at FROM conversations_conversation WHERE id = %s"
    with transaction.atomic():
        [[(created_at, resolved_at)]] = execute([Statement(sql, [conversation.pk])])
    conversation.refresh_from_db()
    assert (created_at, resolved_at) == (conversation.created_at, conversation.resolved_at)
    for read in (created_at, resolved_at):
        assert read.tzinfo is UTC  # the session's zone, as Django's own loader gives it


@pytest.mark.django_db
def test_nothing_to_run_costs_no_round_trip(monkeypatch):
    """A conversation opened for a known contact has no contact to insert: its empty group
    sends nothing (an empty psycopg pipeline still waits for the server's answer to its
    Sync)."""
    import psycopg

    pipelines = []
    pipeline = psycopg.Connection.pipeline

    def counted(self, *args, **kwargs):
        pipelines.append(True)
        return pipeline(self, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "pipeline", counted)
    with transaction.atomic():
        assert execute([], []) == [[], []]
        assert pipelines == []
        assert execute([Statement(SQL, [[1]])], []) == [[(0,)], []]
        assert pipelines == [True]
