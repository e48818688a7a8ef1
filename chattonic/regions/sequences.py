"""Each region hands out database ids from its own block (``Region.id_floor`` onwards), so an
id in a URL (a bot, a webhook's channel, a conversation) names its region without a lookup.

After every ``migrate``, the next id of every table with a 64-bit key is raised into this
region's block when it is below it; ids already given are untouched. Tables with 32-bit keys
(Django's own: users, content types, …) never reach a door by id and stay as they are.

``id_reserve`` takes a table's next id ahead of its row: the channel's add page shows the
webhook URL (which names the channel's id) before the channel is saved.
"""

from __future__ import annotations

from django.apps import apps
from django.db import connections, transaction

from chattonic.regions import here


def _region_tables() -> list[tuple[str, str]]:
    """(table, key column) of every installed model whose key is a BigAutoField."""
    tables = []
    for model in apps.get_models(include_auto_created=True):
        pk = model._meta.pk
        if pk is not None and pk.get_internal_type() == "BigAutoField":
            tables.append((model._meta.db_table, pk.column))
    return sorted(set(tables))


def sequences_raise(*, using: str = "default") -> list[str]:
    """Raise each table's next id to this region's floor; returns the tables raised."""
    floor = here().id_floor
    if floor == 0:
        return []
    connection = connections[using]
    existing = set(connection.introspection.table_names())
    raised = []
    with connection.cursor() as cursor:
        for table, column in _region_tables():
            if table not in existing:
                continue
            raise_one = _RAISERS.get(connection.vendor)
            if raise_one is not None and raise_one(cursor, table, column, floor):
                raised.append(table)
    return raised


def _postgres_raise(cursor, table: str, column: str, floor: int) -> bool:
    cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, column])
    sequence = cursor.fetchone()[0]
    if sequence is None:
        return False
    cursor.execute(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608 - a catalog name
    last_value, is_called = cursor.fetchone()
    if (last_value + 1 if is_called else last_value) >= floor:
        return False
    cursor.execute("SELECT setval(%s, %s, false)", [sequence, floor])
    return True


def _sqlite_raise(cursor, table: str, column: str, floor: int) -> bool:
    # Django makes SQLite's keys AUTOINCREMENT: the next id is one more than the larger of
    # sqlite_sequence's entry and the table's largest id.
    quoted_table, quoted_column = f'"{table}"', f'"{column}"'
    cursor.execute(f"SELECT MAX({quoted_column}) FROM {quoted_table}")  # noqa: S608
    largest = cursor.fetchone()[0] or 0
    cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
    row = cursor.fetchone()
    if max(largest, row[0] if row else 0) + 1 >= floor:
        return False
    if row:
        cursor.execute("UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [floor - 1, table])
    else:
        cursor.execute(
            "INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, floor - 1]
        )
    return True


_RAISERS = {"postgresql": _postgres_raise, "sqlite": _sqlite_raise}


def id_reserve(model, *, using: str = "default") -> int:
    """Take the next id of ``model``'s table before its row exists (a page shows an address
    that names it, then the row is created with it): later rows never get it, and an id
    taken and never used is a gap. In this region's block like every id of the table."""
    connection = connections[using]
    reserve = _RESERVERS.get(connection.vendor)
    if reserve is None:
        raise NotImplementedError(f"No id reservation on {connection.vendor}.")
    table, column = model._meta.db_table, model._meta.pk.column
    with transaction.atomic(using=using), connection.cursor() as cursor:
        return reserve(cursor, table, column)


def _postgres_reserve(cursor, table: str, column: str) -> int:
    cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s))", [table, column])
    return cursor.fetchone()[0]


def _sqlite_reserve(cursor, table: str, column: str) -> int:
    # The next AUTOINCREMENT id is one more than the larger of sqlite_sequence's entry and the
    # table's largest id: raising the entry to the id taken keeps it from any later row.
    cursor.execute(f'SELECT MAX("{column}") FROM "{table}"')  # noqa: S608
    largest = cursor.fetchone()[0] or 0
    cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
    row = cursor.fetchone()
    reserved = max(largest, row[0] if row else 0) + 1
    if row:
        cursor.execute("UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [reserved, table])
    else:
        cursor.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, reserved])
    return reserved


_RESERVERS = {"postgresql": _postgres_reserve, "sqlite": _sqlite_reserve}
