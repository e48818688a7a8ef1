"""chattonic.core.migration_operations: an index added while the table keeps taking writes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader


@pytest.mark.django_db(transaction=True)  # CONCURRENTLY refuses to run inside a transaction
def test_the_pending_send_index_is_built_concurrently_on_postgresql():
    loader = MigrationLoader(connection)
    before = loader.project_state(("conversations", "0013_models_move_to_apps"))
    after = loader.project_state(("conversations", "0014_message_pending_send"))
    migration = loader.get_migration("conversations", "0014_message_pending_send")
    assert migration.atomic is False
    (operation,) = migration.operations
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        operation.database_forwards("conversations", editor, before, after)
    sql = " ".join(editor.collected_sql)
    assert "message_pending_send" in sql
    assert ("CONCURRENTLY" in sql) == (connection.vendor == "postgresql")
