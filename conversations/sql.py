"""Plain-SQL writes on the messages' hot paths (a webhook's ack, a web chat frame), where the
ORM would compile the same statement again for every message.

Needs INSERT ... RETURNING: PostgreSQL, or SQLite 3.35 or newer."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import orjson
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction


def row(model, **values) -> dict:
    """One row of ``model``, named: every concrete field but the id, from ``values`` (by
    attribute name: ``conversation_id``) or else the field's default. The one way the hot
    paths build rows: a name the model lacks raises, and a field added to the model takes
    its default here without anyone listing it."""
    fields, constant, computed = _fields(model)
    if not values.keys() <= fields.keys():
        unknown = sorted(set(values) - fields.keys())
        raise TypeError(f"{model.__name__} has no field {unknown}")
    built = {**constant, **values}
    for name in computed:
        if name not in values:
            built[name] = fields[name].get_default()
    return built


_FIELDS: dict = {}


def _fields(model) -> tuple[dict, dict, list]:
    """The model's fields by attribute name (the id left out, the order the model's), the
    constant defaults, and the names whose default is computed for each row."""
    found = _FIELDS.get(model)
    if found is None:
        fields = {f.attname: f for f in model._meta.concrete_fields if not f.primary_key}
        computed = [name for name, f in fields.items() if f.has_default() and callable(f.default)]
        constant = {
            name: (None if name in computed else f.get_default()) for name, f in fields.items()
        }
        found = _FIELDS[model] = (fields, constant, computed)
    return found


def row_insert(
    model,
    values: dict,
    *,
    subquery: tuple[str, str, list] | None = None,
    skip_conflicts: bool = False,
    savepoint: bool = False,
) -> int | None:
    """INSERT one named row (``row``) and return its id.

    ``subquery``: (attribute name, SQL in parentheses, its parameters) for one column,
    instead of its value. ``skip_conflicts``: a row a unique constraint refuses is skipped
    (``ON CONFLICT DO NOTHING``) and None returned; without it the refusal raises
    IntegrityError. ``savepoint``: inside a transaction, run in a savepoint, so that a
    refused INSERT leaves the transaction usable (a skipped row needs none)."""
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    fields = _fields(model)[0]
    columns, marks, params = [], [], []
    for name, value in values.items():
        field = fields[name]
        columns.append(quote(field.column))
        if subquery is not None and name == subquery[0]:
            marks.append(subquery[1])
            params.extend(subquery[2])
        else:
            marks.append("%s")
            params.append(field.get_db_prep_save(value, connection))
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
        f"VALUES ({', '.join(marks)})"
        f"{' ON CONFLICT DO NOTHING' if skip_conflicts else ''} "
        f"RETURNING {quote(model._meta.pk.column)}"
    )
    inner = savepoint and connection.in_atomic_block and not skip_conflicts
    with transaction.atomic() if inner else contextlib.nullcontext(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    return None if found is None else found[0]


# Rows per statement on SQLite: well under its 32,766 parameters and its 500 terms of a
# compound SELECT. PostgreSQL takes all the rows as one JSON parameter (``_Columns.document``).
MAX_PARAMETERS = 30_000
MAX_LOOKUPS = 400


_TYPES: dict[tuple, list[str]] = {}  # PostgreSQL's column types, per model and columns


class _Columns:
    """Columns of a model (attribute names) as the hot paths' statements use them."""

    def __init__(self, model, names: tuple[str, ...], connection):
        self.connection = connection
        self.quote = connection.ops.quote_name
        self.table = self.quote(model._meta.db_table)
        self.fields = [model._meta.get_field(name) for name in names]
        self.names = [self.quote(f.column) for f in self.fields]
        self.postgresql = connection.vendor == "postgresql"
        # SQLite binds each value (``values``); PostgreSQL takes one document of the rows.
        self.prepare = [] if self.postgresql else [_preparer(f, connection) for f in self.fields]

    def values(self, rows: list[tuple]) -> list[list]:
        """The rows' parameters, prepared (SQLite)."""
        return [
            [
                v if prep is None or v is None else prep(v)
                for v, prep in zip(row, self.prepare, strict=True)
            ]
            for row in rows
        ]

    def document(self, rows: list[tuple]) -> tuple[str, list[str]]:
        """PostgreSQL: the rows as one JSON parameter, and a SELECT of them in order (columns
        ``c0``, ``c1``...). orjson (datetimes in ISO 8601, dicts as JSON) and PostgreSQL's
        JSON parser cost far less than binding each value of each row."""
        key = (self.fields[0].model, tuple(self.fields))
        types = _TYPES.get(key)
        if types is None:
            types = _TYPES[key] = [f.db_type(self.connection) for f in self.fields]
        columns = ", ".join(
            f"t.e -> {n} AS c{n}" if kind == "jsonb" else f"(t.e ->> {n})::{kind} AS c{n}"
            for n, kind in enumerate(types)
        )
        select = (
            f"SELECT {columns} FROM jsonb_array_elements(%s::jsonb) "  # noqa: S608 - names
            "WITH ORDINALITY AS t(e, n) ORDER BY t.n"
        )
        return select, [_json(rows)]


@dataclass
class Statement:
    """One statement for ``execute``: SQL with the connection's placeholders, its parameters
    (a list of parameter lists when ``many``: executemany, no rows back). ``prepare``
    (PostgreSQL): parsed and planned once per connection; only for a statement with one
    possible plan (an INSERT of rows). One that looks rows up or joins them is planned at
    each run: a plan cached while its table was small (a new database; statistics never
    gathered, autovacuum off) is kept for the connection's life, and one such plan read a
    tenant's every message for each lookup (``message_tenant_created`` instead of the
    unique index: bench/webchat.py's third round on a new database did 136 messages a
    second, against 4,300 with the unique index)."""

    sql: str
    params: list
    many: bool = False
    prepare: bool = False


def _mark(connection) -> str:
    return "?" if connection.vendor == "sqlite" else "%s"


def execute(*groups: list[Statement]) -> list[list[tuple]]:
    """Run each group's statements, in order, in the caller's transaction; returns each
    group's rows. On PostgreSQL they all go in one round trip (a psycopg pipeline), each
    on a server-side binding cursor (Django's client-side one parses every long statement
    again in Python), the INSERTs prepared (the hot paths' statements are the same for any
    number of rows: the server parses and plans each once per connection; see
    ``Statement.prepare``); elsewhere one after the other on the driver's own cursor (no
    Django wrapper rewriting each statement's placeholders). An error rolls the transaction
    back as any other would."""
    results: list[list[tuple]] = [[] for _ in groups]
    if not any(groups):
        return results  # nothing to send: no round trip (an empty pipeline still syncs)
    connection = transaction.get_connection()
    connection.ensure_connection()
    raw = connection.connection
    if connection.vendor == "postgresql":
        import psycopg
        from psycopg.types.datetime import TimestamptzLoader

        cursors = []
        with raw.pipeline():
            for index, group in enumerate(groups):
                for statement in group:
                    cursor = psycopg.Cursor(raw)
                    # psycopg's own (C) reading of times, not Django's Python subclass of it
                    # (which only sets the tzinfo the session's UTC already gives).
                    cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
                    if statement.many:
                        cursor.executemany(statement.sql, statement.params)
                    else:
                        cursor.execute(statement.sql, statement.params, prepare=statement.prepare)
                    cursors.append((index, cursor, statement.many))
        for index, cursor, many in cursors:
            if not many and cursor.description is not None:  # a statement with rows
                results[index] += cursor.fetchall()
            cursor.close()
        return results
    with contextlib.closing(raw.cursor()) as cursor:
        for index, group in enumerate(groups):
            for statement in group:
                if statement.many:
                    cursor.executemany(statement.sql, statement.params)
                else:
                    cursor.execute(statement.sql, statement.params)
                    results[index] += cursor.fetchall()
    return results


def insert_statements(model, rows: list[dict]) -> list[Statement]:
    """INSERT named ``rows`` (``row``'s, all of the same fields), returning their new ids in
    the rows' order (RETURNING's, as Django's ``bulk_create`` relies on too): one statement
    (per MAX_PARAMETERS on SQLite), plain SQL, no model instances."""
    if not rows:
        return []
    connection = transaction.get_connection()
    meta = model._meta
    names = tuple(rows[0])
    table = _Columns(model, names, connection)
    head = f"INSERT INTO {table.table} ({', '.join(table.names)}) "
    returning = f" RETURNING {table.quote(meta.pk.column)}"
    full = [tuple(values.values()) for values in rows]
    if table.postgresql:
        select, params = table.document(full)
        return [Statement(f"{head}{select}{returning}", params, prepare=True)]
    one = "(" + ", ".join([_mark(connection)] * len(names)) + ")"
    per_statement = max(1, MAX_PARAMETERS // len(names))
    statements = []
    for start in range(0, len(full), per_statement):
        chunk = table.values(full[start : start + per_statement])
        sql = f"{head}VALUES {', '.join([one] * len(chunk))}{returning}"
        statements.append(Statement(sql, [value for row in chunk for value in row]))
    return statements


def rows_insert(model, rows: list[dict]) -> list[int]:
    """``insert_statements`` run: the new ids, in the rows' order."""
    return [found[0] for found in execute(insert_statements(model, rows))[0]]


def update_statements(model, rows: list[dict]) -> list[Statement]:
    """UPDATE the rows named by each dict's ``id``, setting its other keys (the same in
    every dict): one statement (PostgreSQL), or one prepared statement run for each."""
    if not rows:
        return []
    columns = tuple(name for name in rows[0] if name != "id")
    values = [(changes["id"], *(changes[name] for name in columns)) for changes in rows]
    connection = transaction.get_connection()
    table = _Columns(model, (model._meta.pk.attname, *columns), connection)
    if table.postgresql:
        select, params = table.document(values)
        sets = ", ".join(f"{name} = v.c{n + 1}" for n, name in enumerate(table.names[1:]))
        sql = (
            f"UPDATE {table.table} SET {sets} FROM ({select}) AS v "  # noqa: S608 - names
            f"WHERE {table.table}.{table.names[0]} = v.c0"
        )
        return [Statement(sql, params)]
    mark = _mark(connection)
    sets = ", ".join(f"{name} = {mark}" for name in table.names[1:])
    sql = f"UPDATE {table.table} SET {sets} WHERE {table.names[0]} = {mark}"  # noqa: S608
    return [Statement(sql, [row[1:] + row[:1] for row in table.values(values)], many=True)]


def found_statements(
    model, found: tuple[str, ...], keys: tuple[str, ...], values: list[tuple], where: str = ""
) -> list[Statement]:
    """SELECT the ``found`` columns of the rows whose ``keys`` columns hold one of
    ``values`` (tuples), each row found through a unique index on the keys: one statement
    (per MAX_LOOKUPS on SQLite: a UNION ALL of single-row lookups; IN lists, or an OR of the
    lookups, scan instead). ``where``: a further condition on the table's columns (``t.``)."""
    if not values:
        return []
    connection = transaction.get_connection()
    table = _Columns(model, keys, connection)
    quote = table.quote
    meta = model._meta
    selected = ", ".join(f"t.{quote(meta.get_field(name).column)}" for name in found)
    extra = f" AND {where}" if where else ""
    if table.postgresql:
        # LATERAL ... LIMIT 1 (never flattened into a join): one index lookup per key,
        # whatever the planner's statistics say (a hash join reads the whole index).
        select, params = table.document(values)
        lookup = " AND ".join(f"t.{name} = k.c{n}" for n, name in enumerate(table.names))
        sql = (
            f"SELECT f.* FROM ({select}) AS k CROSS JOIN LATERAL "  # noqa: S608 - names
            f"(SELECT {selected} FROM {table.table} t WHERE {lookup}{extra} LIMIT 1) AS f"
        )
        return [Statement(sql, params)]
    mark = _mark(connection)
    lookup = " AND ".join(f"t.{name} = {mark}" for name in table.names)
    one = f"SELECT {selected} FROM {table.table} t WHERE {lookup}{extra}"  # noqa: S608
    statements = []
    for start in range(0, len(values), MAX_LOOKUPS):
        chunk = table.values(values[start : start + MAX_LOOKUPS])
        sql = " UNION ALL ".join([one] * len(chunk))
        statements.append(Statement(sql, [v for row in chunk for v in row]))
    return statements


def _preparer(field, connection):
    """How a value of ``field`` is turned into a parameter (None: as it is)."""
    internal = field.get_internal_type()
    if internal == "JSONField" and field.encoder is None:
        # orjson (as the PostgreSQL documents); most messages' data is empty: no encoding.
        return lambda value: "{}" if value == {} else _json(value)
    if internal == "JSONField":
        return lambda value: connection.ops.adapt_json_value(value, field.encoder)
    if internal == "DateTimeField":
        return _last_one(connection.ops.adapt_datetimefield_value)
    return None


# What orjson does not know (Decimal, lazy strings...), as Django's JSON fields encode it.
_JSON_DEFAULT = DjangoJSONEncoder().default


def _json(value) -> str:
    return orjson.dumps(value, default=_JSON_DEFAULT).decode()


def _last_one(prepare):
    """``prepare`` remembering its last value: rows written together share their times."""
    last: list = [None, None]

    def prepared(value):
        if value is not last[0]:
            last[:] = [value, prepare(value)]
        return last[1]

    return prepared
