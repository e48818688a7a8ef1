"""PostgreSQL: ``pg_dump --format=custom`` from one exported snapshot, ``pg_restore`` back.

The row counts and migrations of the manifest are read in the same snapshot that
``pg_dump`` dumps (``pg_export_snapshot`` + ``--snapshot``), so they describe exactly
what the copy holds even while the platform keeps writing.

The client binaries come from the machine. Their major version must be the server's:
they are looked up in ``BACKUP_PG_BIN_DIR`` when set, else in the usual per-version
directories (Debian/Ubuntu, RHEL, Homebrew), else on ``PATH``.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg
from django.conf import settings
from psycopg import sql

from backups.archive import BLOCK, CopyWriter, Meter, Report, file_digest, size_human
from backups.engines.base import Contents, Database, DumpResult
from backups.errors import BackupError, TargetNotEmpty, ToolUnavailable

# Connection options that libpq understands (Django's OPTIONS may hold others).
LIBPQ_OPTIONS = {
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslcrl",
    "sslpassword",
    "sslcompression",
    "channel_binding",
    "gssencmode",
    "connect_timeout",
    "options",
    "application_name",
    "target_session_attrs",
    "service",
    "passfile",
    "keepalives",
    "keepalives_idle",
}
USER_TABLES = """
    SELECT n.nspname, c.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_%'
    ORDER BY 1, 2
"""
VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class PgTarget:
    """Where a PostgreSQL database is, as libpq parameters (the password kept apart)."""

    dbname: str
    user: str = ""
    password: str = field(default="", repr=False)
    host: str = ""
    port: str = ""
    options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_settings(cls, settings_dict: dict) -> PgTarget:
        options = settings_dict.get("OPTIONS") or {}
        return cls(
            dbname=settings_dict["NAME"],
            user=settings_dict.get("USER") or "",
            password=settings_dict.get("PASSWORD") or "",
            host=settings_dict.get("HOST") or "",
            port=str(settings_dict.get("PORT") or ""),
            options=tuple(sorted((k, str(v)) for k, v in options.items() if k in LIBPQ_OPTIONS)),
        )

    def with_dbname(self, dbname: str) -> PgTarget:
        return replace(self, dbname=dbname)

    def params(self) -> dict[str, str]:
        params = {"dbname": self.dbname, "user": self.user, "host": self.host, "port": self.port}
        params.update(self.options)
        return {k: v for k, v in params.items() if v}

    def conninfo(self) -> str:
        """Without the password: this string goes on the command line of the tools."""
        return psycopg.conninfo.make_conninfo(**self.params())

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password
        env.setdefault("PGAPPNAME", "chattonic-backups")
        return env

    def connect(self, **kwargs) -> psycopg.Connection:
        params = self.params()
        if self.password:
            params["password"] = self.password
        return psycopg.connect(**params, **kwargs)

    @property
    def display(self) -> str:
        host = f"{self.host or 'localhost'}:{self.port or 5432}"
        return f"postgres://{self.user}@{host}/{self.dbname}"


def server_version(conn: psycopg.Connection) -> tuple[int, str]:
    number = conn.info.server_version
    return number // 10000, f"{number // 10000}.{number % 10000}"


def pg_tool(name: str, server_major: int) -> tuple[str, str]:
    """The path and ``--version`` of a client binary of the server's major version."""
    bin_dir = settings.BACKUP_PG_BIN_DIR
    if bin_dir:
        candidates = [Path(bin_dir) / name]
    else:
        candidates = [
            Path(f"/usr/lib/postgresql/{server_major}/bin/{name}"),
            Path(f"/usr/pgsql-{server_major}/bin/{name}"),
            Path(f"/opt/homebrew/opt/postgresql@{server_major}/bin/{name}"),
            Path(f"/usr/local/opt/postgresql@{server_major}/bin/{name}"),
        ]
        on_path = shutil.which(name)
        if on_path:
            candidates.append(Path(on_path))
    found = next((p for p in candidates if p.is_file() and os.access(p, os.X_OK)), None)
    install = (
        f"Install the PostgreSQL {server_major} client (Debian/Ubuntu: "
        f"apt-get install postgresql-client-{server_major}; RHEL: postgresql{server_major}; "
        f"macOS: brew install postgresql@{server_major}), or set BACKUP_PG_BIN_DIR to the "
        "directory that holds its binaries."
    )
    if found is None:
        where = bin_dir or "the usual directories or on PATH"
        raise ToolUnavailable(f"{name} was not found in {where}. {install}")
    try:
        output = subprocess.run(
            [str(found), "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolUnavailable(f"{found} does not run ({exc}). {install}") from None
    match = VERSION_RE.search(output)
    if match is None:
        raise ToolUnavailable(f"{found} --version says {output!r}, not a PostgreSQL version.")
    if int(match.group(1)) != server_major:
        raise ToolUnavailable(
            f"{found} is {name} {match.group(1)}.{match.group(2) or 0}, but the server runs "
            f"PostgreSQL {server_major}: the tools must be of the server's major version. "
            + install
        )
    return str(found), output


class _Tool:
    """A running client binary: its stderr is pumped on a thread, so pipes never fill, and
    its progress (the table it is at) is reported at most every few seconds."""

    EVERY = 3.0

    def __init__(self, args: list[str], *, env, report: Report, progress: re.Pattern, **popen):
        self.args = args
        self.tail: collections.deque[str] = collections.deque(maxlen=40)
        self.report = report
        self.progress = progress
        self.current = ""
        self.started = self._last = time.monotonic()
        self._done = threading.Event()
        self.proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, **popen)
        self._pump = threading.Thread(target=self._read_stderr, daemon=True)
        self._pump.start()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)
        self._beat.start()

    def _say(self, suffix: str = "") -> None:
        self._last = time.monotonic()
        self.report(f"{self.current}{suffix} ({self._last - self.started:.0f}s)")

    def _read_stderr(self) -> None:
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.tail.append(line)
            match = self.progress.search(line)
            if match:
                self.current = match.group(0)
                if time.monotonic() - self._last >= self.EVERY:
                    self._say()

    def _heartbeat(self) -> None:
        while not self._done.wait(self.EVERY):
            if self.current and time.monotonic() - self._last >= self.EVERY:
                self._say(", still at it")

    def wait(self) -> None:
        code = self.proc.wait()
        self._done.set()
        self._pump.join(timeout=10)
        if code != 0:
            name = Path(self.args[0]).name
            errors = [line for line in self.tail if "error" in line.lower()] or list(self.tail)
            detail = "\n".join(errors[-12:])
            raise BackupError(f"{name} failed (exit code {code}):\n{detail}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._done.set()
        self._pump.join(timeout=10)


def _table_key(schema: str, table: str) -> str:
    return table if schema == "public" else f"{schema}.{table}"


def _contents(conn: psycopg.Connection) -> Contents:
    tables = conn.execute(USER_TABLES).fetchall()
    counts, checksums = {}, {}
    if tables:
        # Per table, its rows and the sum of the first 60 bits of each row's MD5 (of the
        # row's text form): order-free, computed in the server, one pass over each table.
        query = sql.SQL(" UNION ALL ").join(
            sql.SQL(
                "SELECT {}, count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))"
                "::bit(60)::bigint::numeric), 0)::text FROM {} AS t"
            ).format(sql.Literal(_table_key(schema, table)), sql.Identifier(schema, table))
            for schema, table in tables
        )
        for name, count, checksum in conn.execute(query).fetchall():
            counts[name], checksums[name] = count, checksum
    migrations = []
    if conn.execute("SELECT to_regclass('django_migrations')").fetchone()[0] is not None:
        rows = conn.execute("SELECT app, name FROM django_migrations").fetchall()
        migrations = sorted(f"{app}.{name}" for app, name in rows)
    return Contents(row_counts=counts, migrations=migrations, checksums=checksums)


class PostgresDatabase(Database):
    engine = "postgresql"
    extension = ".pgdump"

    def __init__(self, target: PgTarget, *, admin: PgTarget | None = None):
        self.target = target
        # Where CREATE/DROP DATABASE of this one is issued from (never itself).
        self.admin = admin

    @property
    def display(self) -> str:
        return self.target.display

    def _connect(self, **kwargs) -> psycopg.Connection:
        try:
            return self.target.connect(**kwargs)
        except psycopg.OperationalError as exc:
            raise BackupError(f"Cannot connect to {self.display}: {exc}".strip()) from None

    # --- Backup --------------------------------------------------------------------------

    def dump(self, *, path: Path, key: bytes | None, report: Report) -> DumpResult:
        with self._connect() as conn:
            major, version = server_version(conn)
            tool, tool_version = pg_tool("pg_dump", major)
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            contents = _contents(conn)
            report(
                f"snapshot {snapshot} of {self.display} (PostgreSQL {version}): "
                f"{len(contents.row_counts)} tables, {sum(contents.row_counts.values())} rows"
            )
            # The transaction that exported the snapshot stays open until pg_dump is done.
            args = [
                tool,
                "--format=custom",
                f"--snapshot={snapshot}",
                "--no-password",
                "--verbose",
                f"--dbname={self.target.conninfo()}",
            ]
            progress = re.compile(r"dumping contents of table .*")
            if key is None:
                size, sha256 = self._dump_to_file(args, path, report, progress)
            else:
                size, sha256 = self._dump_encrypted(args, path, key, report, progress)
            conn.rollback()
        return DumpResult(
            size=size,
            sha256=sha256,
            row_counts=contents.row_counts,
            migrations=contents.migrations,
            checksums=contents.checksums,
            server_version=version,
            tool_version=tool_version,
            dump_format="pg_dump custom",
        )

    def _dump_to_file(self, args, path: Path, report: Report, progress) -> tuple[int, str]:
        # A file (not a pipe) keeps the archive seekable: pg_restore -j works on it.
        partial = path.with_name(path.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        tool = _Tool(
            [*args, f"--file={partial}"],
            env=self.target.env(),
            report=report,
            progress=progress,
            stdout=subprocess.DEVNULL,
        )
        try:
            tool.wait()
            with open(partial, "rb+") as out:
                os.fsync(out.fileno())
            os.replace(partial, path)
        except BaseException:
            tool.kill()
            partial.unlink(missing_ok=True)
            raise
        report(f"dumped {size_human(path.stat().st_size)}")
        return file_digest(path)

    def _dump_encrypted(self, args, path: Path, key, report: Report, progress):
        # Streamed: the plaintext never touches the disk.
        tool = _Tool(
            args,
            env=self.target.env(),
            report=report,
            progress=progress,
            stdout=subprocess.PIPE,
        )
        with CopyWriter(path, key=key, report=report) as writer:
            try:
                while block := tool.proc.stdout.read(BLOCK):
                    writer.write(block)
                tool.wait()
            except BaseException:
                tool.kill()
                raise
            return writer.commit()

    # --- Restore -------------------------------------------------------------------------

    def restore(
        self,
        *,
        manifest: dict,
        report: Report,
        blocks: Iterable[bytes] | None = None,
        path: Path | None = None,
        atomic: bool = True,
    ) -> None:
        with self._connect() as conn:
            major, _ = server_version(conn)
        tool, _ = pg_tool("pg_restore", major)
        dumped_by = VERSION_RE.search(manifest.get("tool_version") or "")
        if dumped_by and int(dumped_by.group(1)) > major:
            raise ToolUnavailable(
                f"The copy was made by pg_dump {dumped_by.group(1)}; pg_restore {major} "
                f"cannot read it. Restore into a PostgreSQL {dumped_by.group(1)} server or newer."
            )
        args = [
            tool,
            f"--dbname={self.target.conninfo()}",
            "--no-password",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--verbose",
        ]
        if atomic:
            args.append("--single-transaction")  # a failure leaves the database empty
        progress = re.compile(r"processing data for table .*|creating (INDEX|CONSTRAINT) .*")
        if path is not None:
            # A seekable file: pg_restore reads it directly, faster than through a pipe.
            _Tool(
                [*args, str(path)],
                env=self.target.env(),
                report=report,
                stdout=subprocess.DEVNULL,
                progress=progress,
            ).wait()
            return
        restore = _Tool(
            args,
            env=self.target.env(),
            report=report,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            progress=progress,
        )
        meter = Meter(report, "restoring", manifest.get("size"))
        source = iter(blocks)
        try:
            for block in source:
                try:
                    restore.proc.stdin.write(block)
                except BrokenPipeError:
                    break  # pg_restore stopped: its exit code says why
                meter.add(len(block))
            for _ in source:
                pass  # the rest is still checked: a damaged copy explains a failed restore
            with contextlib.suppress(BrokenPipeError):
                restore.proc.stdin.close()
        except BaseException:
            restore.kill()
            raise
        restore.wait()

    def contents(self) -> Contents:
        with self._connect() as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            return _contents(conn)

    def tables(self) -> list[str]:
        with self._connect() as conn:
            return [_table_key(s, t) for s, t in conn.execute(USER_TABLES).fetchall()]

    def _admin_connect(self) -> psycopg.Connection:
        """A connection to another database of the server, for CREATE/DROP DATABASE."""
        candidates = [self.admin] if self.admin else []
        candidates += [self.target.with_dbname(name) for name in ("postgres", "template1")]
        error = None
        for candidate in candidates:
            if candidate.dbname == self.target.dbname:
                continue
            try:
                return candidate.connect(autocommit=True)
            except psycopg.OperationalError as exc:
                error = exc
        raise BackupError(f"Cannot connect to the server of {self.display}: {error}")

    def create(self) -> None:
        with self._admin_connect() as conn:
            try:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
                        sql.Identifier(self.target.dbname)
                    )
                )
            except psycopg.errors.InsufficientPrivilege:
                raise BackupError(
                    f"The user {self.target.user or '(default)'} may not create databases: "
                    f"grant it with ALTER ROLE ... CREATEDB, or create {self.target.dbname} first."
                ) from None

    def drop(self) -> None:
        with self._admin_connect() as conn:
            force = " WITH (FORCE)" if server_version(conn)[0] >= 13 else ""
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {}" + force).format(
                    sql.Identifier(self.target.dbname)
                )
            )

    def prepare(self, *, force: bool) -> None:
        try:
            with self.target.connect() as conn:
                tables = [_table_key(s, t) for s, t in conn.execute(USER_TABLES).fetchall()]
        except psycopg.OperationalError as exc:
            if "does not exist" not in str(exc):
                raise BackupError(f"Cannot connect to {self.display}: {exc}".strip()) from None
            self.create()
            return
        if not tables:
            return
        if not force:
            raise TargetNotEmpty(
                f"The database {self.display} is not empty: it has {len(tables)} tables "
                f"({', '.join(tables[:5])}{', ...' if len(tables) > 5 else ''}). Restore into "
                "an empty database, or pass --force to drop and recreate it."
            )
        self.drop()
        self.create()

    def scratch_name(self, *, check_id: int) -> str:
        suffix = f"_{check_id}"
        prefix = settings.BACKUP_SCRATCH_DATABASE_PREFIX or f"{self.target.dbname}_restore_check"
        return prefix[: 63 - len(suffix)] + suffix

    def scratch_discard(self, *, name: str) -> None:
        PostgresDatabase(self.target.with_dbname(name), admin=self.target).drop()

    @contextlib.contextmanager
    def scratch(self, *, name: str) -> Iterator[PostgresDatabase]:
        scratch = PostgresDatabase(self.target.with_dbname(name), admin=self.target)
        scratch.drop()  # a leftover of an interrupted check
        scratch.create()
        try:
            yield scratch
        finally:
            scratch.drop()

    def mark_run_restored(self, *, manifest: dict) -> bool:
        with self._connect(autocommit=True) as conn:
            if conn.execute("SELECT to_regclass('backups_backuprun')").fetchone()[0] is None:
                return False
            cursor = conn.execute(
                "UPDATE backups_backuprun SET status = 'succeeded', finished_at = %s, "
                "size = %s, sha256 = %s WHERE id = %s AND status = 'running'",
                [
                    manifest.get("finished_at"),
                    manifest["size"],
                    manifest["sha256"],
                    manifest.get("run_id"),
                ],
            )
            return cursor.rowcount == 1
