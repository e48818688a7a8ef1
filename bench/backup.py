"""Backup bench: our backup + verification + restore check against raw pg_dump + pg_restore.

Fills a PostgreSQL database of its own with 1 million messages (``conversations_message``,
through SQL ``generate_series``, not the ORM), then, in each round and on the same
database, times:

- raw:  ``pg_dump --format=custom`` to a file, then ``pg_restore`` into a new database;
- ours: ``backup_create`` (pg_dump from an exported snapshot with row counts, SHA-256,
  manifest, verification, retention), then ``restore_check_run`` (a scratch database,
  the copy checked then pg_restore'd, row counts and migrations compared, drop);
- ours again with BACKUP_ENCRYPTION_KEY set (chunked AES-256-GCM: the copy is streamed
  through pg_dump's stdout and decrypted into pg_restore's stdin), for information.

Every timed step starts after a CHECKPOINT, and the variants take turns going first, so
that none pays for the WAL of another. It prints the medians and the ratio ours / raw
(goal: at most 1.5x), and ends with "goal met" or "goal not met". The database is created
at the start and dropped at the end (``--keep`` keeps it, and a later run with ``--keep``
reuses it instead of filling again).

    .venv/bin/python bench/backup.py [--messages 1000000] [--rounds 5] [--keep]
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/helper_backups_bench (default)
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/helper_backups_bench"
GOAL_RATIO = 1.5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the database")
    parser.add_argument("--no-encrypted", action="store_true", help="skip the encrypted runs")
    return parser.parse_args()


def setup_django(url: str, workdir: Path) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "1")
    os.environ["CHATTONIC_VAR_DIR"] = str(workdir / "var")
    os.environ["BACKUP_DIR"] = str(workdir / "backups")
    os.environ["BACKUP_ENCRYPTION_KEY"] = ""
    os.environ["DJANGO_SETTINGS_MODULE"] = "chattonic.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- Filling -------------------------------------------------------------------------------


def minimal_row(model, cache: dict, tenant_id: int | None):
    """A saved instance of ``model`` with every required field given a plain value and
    every required foreign key pointing at a minimal row of its own (made once)."""
    from django.db import models
    from django.utils import timezone

    if model in cache:
        return cache[model]
    values = {}
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        if field.is_relation:
            if field.name == "tenant" and tenant_id is not None:
                values["tenant_id"] = tenant_id
            elif not field.null:
                values[field.name] = minimal_row(field.related_model, cache, tenant_id)
            continue
        if field.has_default() or field.null:
            continue
        if field.choices:
            values[field.name] = field.choices[0][0]
        elif isinstance(field, models.JSONField):
            values[field.name] = {}
        elif isinstance(field, models.DateTimeField):
            values[field.name] = timezone.now()
        elif isinstance(field, models.BooleanField):
            values[field.name] = False
        elif isinstance(field, (models.IntegerField, models.FloatField, models.DecimalField)):
            values[field.name] = 0
        elif isinstance(field, models.EmailField):
            values[field.name] = f"bench-{model._meta.model_name}@example.com"
        else:
            text = f"bench-{model._meta.model_name}-{field.name}"
            values[field.name] = text[: field.max_length] if field.max_length else text
    obj = model._default_manager.create(**values)
    cache[model] = obj
    return obj


def sql_value(field) -> str:
    """The SQL expression of a Message column for row ``i`` of generate_series."""
    from django.db import models

    name = field.column
    if field.name == "text":
        return (
            "'Hello! A question about my order #' || i || ', could you tell me when it "
            "arrives? Ref ' || md5(i::text)"
        )
    if field.name == "external_id":
        return "'bench.' || i"
    if field.name == "created_at":
        return "now() - ((10000000 - i) || ' seconds')::interval"
    if field.choices:
        choices = ", ".join("'" + str(c).replace("'", "''") + "'" for c, _ in field.choices)
        return f"(ARRAY[{choices}])[1 + mod(i, {len(field.choices)})]"
    if field.null:
        return "NULL"
    if isinstance(field, models.JSONField):
        return "'{}'::jsonb"
    if isinstance(field, models.BooleanField):
        return "false"
    if isinstance(field, (models.IntegerField, models.FloatField, models.DecimalField)):
        return "0"
    if isinstance(field, models.DateTimeField):
        return "now()"
    if isinstance(field, (models.CharField, models.TextField)):
        return "''"
    raise SystemExit(f"bench: no filler for the required column {name} ({type(field).__name__})")


def fill(messages: int, conversations: int) -> None:
    from django.core.management import call_command
    from django.db import connection

    from chattonic.tenancy.models import Tenant
    from conversations.models import Conversation, Message

    call_command("migrate", verbosity=0)
    tenant = Tenant.objects.create(name="Bench", slug="bench")
    cache: dict = {Tenant: tenant}
    template = minimal_row(Conversation, cache, tenant.pk)
    table = connection.ops.quote_name(Conversation._meta.db_table)
    columns = [
        connection.ops.quote_name(f.column)
        for f in Conversation._meta.concrete_fields
        if not f.primary_key
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - column names from the model
            f"SELECT {', '.join(columns)} FROM {table}, generate_series(2, %s) WHERE id = %s",
            [conversations, template.pk],
        )
    parents = {}
    for field in Message._meta.concrete_fields:
        if field.is_relation and not field.null and field.name not in ("tenant", "conversation"):
            parents[field.column] = minimal_row(field.related_model, cache, tenant.pk).pk
    names, values = [], []
    for field in Message._meta.concrete_fields:
        if field.primary_key:
            continue
        names.append(connection.ops.quote_name(field.column))
        if field.name == "tenant":
            values.append(str(tenant.pk))
        elif field.name == "conversation":
            values.append("c.ids[1 + mod(i, array_length(c.ids, 1))]")
        elif field.column in parents:
            values.append(str(parents[field.column]))
        elif field.is_relation:
            values.append("NULL")
        else:
            values.append(sql_value(field))
    message_table = connection.ops.quote_name(Message._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH c AS (SELECT array_agg(id ORDER BY id) AS ids FROM {table}) "  # noqa: S608
            f"INSERT INTO {message_table} ({', '.join(names)}) "
            f"SELECT {', '.join(values)} FROM c, generate_series(1, %s) AS i",
            [messages],
        )
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


# --- Timing --------------------------------------------------------------------------------


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def checkpoint(db) -> None:
    """Start each timed step from a clean state: the previous step's WAL flushed."""
    with db.target.connect(autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def raw_round(db, workdir: Path) -> dict[str, float]:
    """pg_dump to a file, then pg_restore of that file into a new database."""
    from backups.engines.postgres import PostgresDatabase, pg_tool, server_version

    with db.target.connect() as conn:
        major, _ = server_version(conn)
    pg_dump, _ = pg_tool("pg_dump", major)
    pg_restore, _ = pg_tool("pg_restore", major)
    dump = workdir / "raw.pgdump"
    env = db.target.env()

    def run(args):
        subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL)

    checkpoint(db)
    dump_s, _ = timed(
        lambda: run(
            [pg_dump, "--format=custom", f"--file={dump}", f"--dbname={db.target.conninfo()}"]
        )
    )
    target = PostgresDatabase(db.target.with_dbname(db.target.dbname + "_raw"), admin=db.target)
    target.drop()
    checkpoint(db)
    restore_s, _ = timed(
        lambda: (
            target.create(),
            run([pg_restore, "--no-owner", f"--dbname={target.target.conninfo()}", str(dump)]),
        )
    )
    target.drop()
    dump.unlink()
    return {"dump": dump_s, "restore": restore_s, "total": dump_s + restore_s}


def ours_round(db, *, encrypted: bool) -> dict[str, float]:
    from django.conf import settings

    from backups import services
    from backups.models import BackupRun, RestoreCheck

    settings.BACKUP_ENCRYPTION_KEY = (
        base64.b64encode(secrets.token_bytes(32)).decode() if encrypted else ""
    )
    checkpoint(db)
    backup_s, run = timed(lambda: services.backup_create())
    assert run.status == BackupRun.Status.SUCCEEDED and run.verified, run.error
    checkpoint(db)
    check_s, check = timed(lambda: services.restore_check_run(backup=run))
    assert check.status == RestoreCheck.Status.PASSED, check.details
    # Measured apart, to show its share (it is already inside the backup's time).
    verify_s, _ = timed(lambda: services.backup_verify(run=run))
    return {
        "backup": backup_s,
        "verify": verify_s,
        "check": check_s,
        "total": backup_s + check_s,
        "size": run.size,
    }


def main() -> None:
    args = parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    workdir = Path(tempfile.mkdtemp(prefix="chattonic-backup-bench-"))
    try:
        run(args, url, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, url: str, workdir: Path) -> None:
    setup_django(url, workdir)

    import dj_database_url

    from backups.engines.postgres import PgTarget, PostgresDatabase, server_version
    from conversations.models import Message

    db = PostgresDatabase(PgTarget.from_settings(dj_database_url.parse(url)))
    reuse = False
    if args.keep:
        try:
            reuse = Message.objects.count() >= args.messages
        except Exception:  # noqa: BLE001 - no database or no table yet: fill it
            reuse = False
    if not reuse:
        db.drop()
        db.create()
        fill_s, _ = timed(lambda: fill(args.messages, args.conversations))
    with db.target.connect() as conn:
        _, version = server_version(conn)
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    count = Message.objects.count()
    print(
        f"Backup bench: {count:,} messages in {db.display} (PostgreSQL {version}), "
        f"database {size / 2**20:.0f} MB, {args.rounds} rounds, medians"
    )
    if not reuse:
        print(f"fill (migrate + generate_series + VACUUM ANALYZE): {fill_s:.1f}s")

    variants = {
        "raw": lambda: raw_round(db, workdir),
        "ours": lambda: ours_round(db, encrypted=False),
    }
    if not args.no_encrypted:
        variants["ours, encrypted"] = lambda: ours_round(db, encrypted=True)
    results: dict[str, list[dict]] = {name: [] for name in variants}
    names = list(variants)
    try:
        for round_no in range(args.rounds):
            # A different order each round, so no variant always runs after another.
            order = names[round_no % len(names) :] + names[: round_no % len(names)]
            for name in order:
                results[name].append(variants[name]())
            print(
                f"  round {round_no + 1}: "
                + ", ".join(f"{name} {results[name][-1]['total']:.1f}s" for name in names),
                flush=True,
            )
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            db.drop()
    raw = results["raw"]
    plain = results["ours"]
    encrypted = results.get("ours, encrypted", [])

    def med(rows, key):
        return statistics.median(row[key] for row in rows)

    print()
    print(f"{'raw pg_dump --format=custom':<68}{med(raw, 'dump'):7.1f}s")
    print(f"{'raw pg_restore into a new database':<68}{med(raw, 'restore'):7.1f}s")
    print(f"{'raw total':<68}{med(raw, 'total'):7.1f}s")
    for label, rows in (("ours", plain), ("ours, encrypted", encrypted)):
        if not rows:
            continue
        print(
            f"{label + ': backup (snapshot, dump, sha256, manifest, verify)':<68}"
            f"{med(rows, 'backup'):7.1f}s  ({med(rows, 'size') / 2**20:.0f} MB copy)"
        )
        print(f"{'    of which verification (measured apart)':<68}{med(rows, 'verify'):7.2f}s")
        print(
            f"{label + ': restore check (scratch db, restore, compare)':<68}"
            f"{med(rows, 'check'):7.1f}s"
        )
        ratio = med(rows, "total") / med(raw, "total")
        print(
            f"{label + ' total':<68}{med(rows, 'total'):7.1f}s  "
            f"ratio {ratio:.2f}x raw (goal <= 1.5x)"
        )
    ratio = med(plain, "total") / med(raw, "total")
    print("goal met" if ratio <= GOAL_RATIO else "goal not met")


if __name__ == "__main__":
    main()
