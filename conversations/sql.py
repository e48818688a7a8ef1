"""Plain-SQL writes on the messages' hot paths (a webhook's ack, a web chat frame), where the
ORM would compile the same statement again for every message.

Needs INSERT ... RETURNING: PostgreSQL, or SQLite 3.35 or newer."""

from __future__ import annotations

import contextlib

from django.db import transaction

from conversations.models import Message


def message_insert(
    message: Message,
    *,
    conversation: tuple[str, list] | None = None,
    skip_conflicts: bool = False,
    savepoint: bool = False,
) -> int | None:
    """INSERT ``message`` in one statement and set its id, which it returns.

    ``conversation``: a subquery (SQL in parentheses, its parameters) for the conversation
    column, instead of ``message.conversation_id``. ``skip_conflicts``: a row a unique
    constraint refuses is skipped (``ON CONFLICT DO NOTHING``) and None returned; without
    it the refusal raises IntegrityError. ``savepoint``: inside a transaction, run in a
    savepoint, so that a refused INSERT leaves the transaction usable (a skipped row needs
    none)."""
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    columns, values, params = [], [], []
    for field in Message._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(quote(field.column))
        if field.attname == "conversation_id" and conversation is not None:
            values.append(conversation[0])
            params.extend(conversation[1])
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(getattr(message, field.attname), connection))
    sql = (
        f"INSERT INTO {quote(Message._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
        f"VALUES ({', '.join(values)})"
        f"{' ON CONFLICT DO NOTHING' if skip_conflicts else ''} "
        f"RETURNING {quote(Message._meta.pk.column)}"
    )
    inner = savepoint and connection.in_atomic_block and not skip_conflicts
    with transaction.atomic() if inner else contextlib.nullcontext(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    message.pk = row[0]
    message._state.adding = False
    message._state.db = connection.alias
    return message.pk


def row_update(instance, fields: list[str]) -> None:
    """``instance.save(update_fields=fields)`` as one plain ``UPDATE`` (no signals: for models
    that have none, on hot paths)."""
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    meta = type(instance)._meta
    sets, params = [], []
    for name in fields:
        field = meta.get_field(name)
        sets.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(getattr(instance, field.attname), connection))
    params.append(instance.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} SET {', '.join(sets)} "  # noqa: S608 - names
            f"WHERE {quote(meta.pk.column)} = %s",
            params,
        )


# Rows per INSERT: well under SQLite's 32,766 and PostgreSQL's 65,535 parameters.
MAX_PARAMETERS = 30_000


@contextlib.contextmanager
def raw_cursor():
    """``with raw_cursor() as (cursor, mark)``: the database connection's own DB-API cursor
    and its parameter placeholder. No Django wrapper (which rewrites each statement's
    placeholders for SQLite and wraps each call), for statements with many parameters on
    hot paths. In the caller's transaction; an error rolls it back as any other would."""
    connection = transaction.get_connection()
    connection.ensure_connection()
    cursor = connection.connection.cursor()
    try:
        yield cursor, "?" if connection.vendor == "sqlite" else "%s"
    finally:
        cursor.close()


def rows_insert(model, columns: tuple[str, ...], rows: list[tuple]) -> list[int]:
    """INSERT ``rows`` (tuples of values of ``columns``, which are attribute names; the other
    fields take their defaults) in as few statements as the parameter limits allow; returns
    their new ids in the rows' order (the order of RETURNING, as Django's ``bulk_create``
    relies on too). Plain SQL, no model instances: many rows per call on hot paths."""
    if not rows:
        return []
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    meta = model._meta
    fields = [meta.get_field(name) for name in columns]
    prepare = [_preparer(f, connection) for f in fields]
    others = [f for f in meta.concrete_fields if not f.primary_key and f.attname not in columns]
    constant = [f.get_db_prep_save(f.get_default(), connection) for f in others]
    names = ", ".join(quote(f.column) for f in [*fields, *others])
    per_statement = max(1, MAX_PARAMETERS // (len(fields) + len(others)))
    ids: list[int] = []
    with raw_cursor() as (cursor, mark):
        one = "(" + ", ".join([mark] * (len(fields) + len(others))) + ")"
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            params: list = []
            for row in chunk:
                params += [
                    value if prep is None or value is None else prep(value)
                    for value, prep in zip(row, prepare, strict=True)
                ]
                params += constant
            cursor.execute(
                f"INSERT INTO {quote(meta.db_table)} ({names}) "  # noqa: S608 - names
                f"VALUES {', '.join([one] * len(chunk))} RETURNING {quote(meta.pk.column)}",
                params,
            )
            ids += [row[0] for row in cursor.fetchall()]
    return ids


def _preparer(field, connection):
    """How a value of ``field`` is turned into a parameter (None: as it is)."""
    internal = field.get_internal_type()
    if internal == "JSONField":
        return lambda value: connection.ops.adapt_json_value(value, field.encoder)
    if internal == "DateTimeField":
        return _last_one(connection.ops.adapt_datetimefield_value)
    return None


def _last_one(prepare):
    """``prepare`` remembering its last value: rows written together share their times."""
    last: list = [None, None]

    def prepared(value):
        if value is not last[0]:
            last[:] = [value, prepare(value)]
        return last[1]

    return prepared
