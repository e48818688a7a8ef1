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
