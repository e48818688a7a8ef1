"""The hot paths' plain SQL (conversations.sql.execute) on PostgreSQL: its INSERTs prepared,
parsed and planned once per connection, not for every batch (README: DATABASE_PREPARED); its
lookups planned at each run, with their tables as they are; and its times read by psycopg's
own loader, the instants the ORM reads."""

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

from conversations.models import Message
from conversations.sql import Statement, execute, found_statements
from tests.factories import ConversationFactory, MessageFactory

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
            assert execute([Statement(SQL, [ids], prepare=True)]) == [[(0,)]]
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


def _index_reads(name: str) -> int:
    with connection.cursor() as cursor:
        # This transaction's entries read from the index (pg_stat_user_indexes' idx_tup_read).
        cursor.execute("SELECT pg_stat_get_xact_tuples_returned(%s::regclass)", [name])
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_lookup_keeps_to_its_index_as_its_table_grows():
    """A statement keeps the plan PostgreSQL cached for it at its sixth run for the
    connection's life (statistics never gathered: a new database, autovacuum off). The
    widget's resent-message lookup, cached while the table held a thousand messages, had got
    the tenant's messages index (a tie of costs at that size) and then read every message of
    the tenant for each lookup as the table grew: lookups are planned at each run
    (``Statement.prepare``), with the table as it is."""
    connection.close()  # a new connection: no plan cached by an earlier test
    message = MessageFactory(external_id="")
    key = (message.tenant_id, message.conversation_id, "in", "resent-client-id")
    lookup = found_statements(
        Message,
        ("id",),
        ("tenant_id", "conversation_id", "direction", "external_id"),
        [key],
        where="t.channel_id IS NULL AND NOT (t.external_id = '')",
    )
    fields = [f for f in Message._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    # Copies of the message, every other one with a client id (as a visitor's are).
    values = ", ".join(
        "CASE WHEN g %% 2 = 0 THEN 'c' || g ELSE '' END" if f.name == "external_id" else f.column
        for f in fields
    )

    def copies(first: int, count: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO conversations_message ({columns}) SELECT {values} "  # noqa: S608
                "FROM conversations_message, generate_series(%s, %s) AS g WHERE id = %s",
                [first, first + count - 1, message.pk],
            )

    with transaction.atomic():
        copies(1, 1000)
        for _ in range(8):  # past PostgreSQL's five custom plans of a prepared statement
            assert execute(lookup) == [[]]
        copies(1001, 5000)
        before = _index_reads("message_tenant_created")
        assert execute(lookup) == [[]]
        assert _index_reads("message_tenant_created") - before < 100
