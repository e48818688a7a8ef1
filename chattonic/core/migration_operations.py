"""Migration operations of our own.

``AddIndexOnline``: an index added while the table keeps taking writes. On PostgreSQL
``CREATE INDEX CONCURRENTLY`` (Django's ``AddIndexConcurrently``): a plain ``CREATE INDEX``
holds a lock that stops every INSERT into the table until the index is built, which on a
large message table means minutes without new messages. Elsewhere (SQLite, one writer
anyway) the plain ``AddIndex``. The migration that uses it sets ``atomic = False`` (an index
built concurrently cannot be built inside a transaction)."""

from __future__ import annotations

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db.migrations import AddIndex


class AddIndexOnline(AddIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)
