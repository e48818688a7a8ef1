"""SQLite: the online backup API, so the copy is consistent while the platform writes.

``Connection.backup`` with the default ``pages=-1`` copies every page in one step, inside
one read transaction: in WAL mode the platform's writers carry on, and the copy is the
database as of that transaction's start. (A page-by-page backup would restart each time
another connection writes, and might never finish on a busy database.)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from backups.archive import CopyWriter, Meter, Report, file_blocks, file_digest, size_human
from backups.engines.base import Contents, Database, DumpResult
from backups.errors import BackupError, CopyCorrupted, TargetNotEmpty

USER_TABLES = (
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
    "ESCAPE '\\' ORDER BY name"
)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _contents(conn: sqlite3.Connection) -> Contents:
    tables = [row[0] for row in conn.execute(USER_TABLES)]
    counts, checksums = {}, {}
    for table in tables:
        counts[table], checksums[table] = _table_checksum(conn, table)
    migrations = []
    if "django_migrations" in counts:
        rows = conn.execute("SELECT app, name FROM django_migrations").fetchall()
        migrations = sorted(f"{app}.{name}" for app, name in rows)
    return Contents(row_counts=counts, migrations=migrations, checksums=checksums)


def _table_checksum(conn: sqlite3.Connection, table: str) -> tuple[int, str]:
    """The table's row count, and the sum (mod 2**64) of a 64-bit BLAKE2b of each row's
    values: any changed, missing or extra value changes it, whatever the rows' order."""
    count, total = 0, 0
    for row in conn.execute(f"SELECT * FROM {_quote(table)}"):  # noqa: S608 - a table name
        digest = hashlib.blake2b(repr(tuple(row)).encode(), digest_size=8).digest()
        total = (total + int.from_bytes(digest, "big")) % CHECKSUM_MODULUS
        count += 1
    return count, f"{total:016x}"


CHECKSUM_MODULUS = 2**64


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


class SqliteDatabase(Database):
    engine = "sqlite"
    extension = ".sqlite3"

    def __init__(self, path: str | Path):
        if str(path) in ("", ":memory:") or str(path).startswith("file::memory:"):
            raise BackupError("An in-memory SQLite database cannot be backed up or restored.")
        self.path = Path(path)

    @property
    def display(self) -> str:
        return f"sqlite:///{self.path}"

    def _connect(self, *, readonly: bool = False) -> sqlite3.Connection:
        if readonly:
            if not self.path.exists():
                raise BackupError(f"The SQLite database {self.path} does not exist.")
            uri = f"file:{quote(str(self.path))}?mode=ro"
            return sqlite3.connect(uri, uri=True, timeout=30)
        return sqlite3.connect(self.path, timeout=30)

    # --- Backup --------------------------------------------------------------------------

    def dump(self, *, path: Path, key: bytes | None, report: Report) -> DumpResult:
        plain = path.with_name(path.name + (".plain.partial" if key else ".partial"))
        plain.unlink(missing_ok=True)
        try:
            self._copy_online(plain, report)
            with contextlib.closing(sqlite3.connect(plain)) as copy:
                contents = _contents(copy)
            report(
                f"copy of {self.path}: {len(contents.row_counts)} tables, "
                f"{sum(contents.row_counts.values())} rows"
            )
            if key is None:
                _fsync(plain)
                os.replace(plain, path)
                size, sha256 = file_digest(path)
            else:
                with CopyWriter(path, key=key, report=report) as writer:
                    for block in file_blocks(plain):
                        writer.write(block)
                    size, sha256 = writer.commit()
        finally:
            plain.unlink(missing_ok=True)
        return DumpResult(
            size=size,
            sha256=sha256,
            row_counts=contents.row_counts,
            migrations=contents.migrations,
            checksums=contents.checksums,
            server_version=sqlite3.sqlite_version,
            tool_version=f"SQLite {sqlite3.sqlite_version} online backup API",
            dump_format="sqlite3 database",
        )

    def _copy_online(self, plain: Path, report: Report) -> None:
        fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        started = time.monotonic()
        report(f"copying {self.path} with the online backup API")
        with (
            contextlib.closing(self._connect(readonly=True)) as source,
            contextlib.closing(sqlite3.connect(plain)) as target,
        ):
            source.backup(target)
            # One self-contained file: no -wal or -shm beside the copy.
            target.execute("PRAGMA journal_mode=DELETE")
        report(f"copied {size_human(plain.stat().st_size)} in {time.monotonic() - started:.1f}s")

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
        # Always atomic: the file is written beside the target and moved into place.
        if path is not None:
            blocks = file_blocks(path)
        partial = self.path.with_name(self.path.name + ".restoring")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        meter = Meter(report, "restoring", manifest.get("size"))
        try:
            with os.fdopen(fd, "wb") as out:
                for block in blocks:
                    out.write(block)
                    meter.add(len(block))
                out.flush()
                os.fsync(out.fileno())
            problems = SqliteDatabase(partial).integrity_problems()
            if problems:
                raise CopyCorrupted(
                    "The restored SQLite file fails PRAGMA integrity_check: " + "; ".join(problems)
                )
            # A stale journal beside the target would be replayed into the new file.
            for suffix in ("-wal", "-shm", "-journal"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            os.replace(partial, self.path)
        finally:
            partial.unlink(missing_ok=True)

    def contents(self) -> Contents:
        with contextlib.closing(self._connect(readonly=True)) as conn:
            conn.execute("BEGIN")
            return _contents(conn)

    def tables(self) -> list[str]:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return []
        with contextlib.closing(self._connect(readonly=True)) as conn:
            return [row[0] for row in conn.execute(USER_TABLES)]

    def integrity_problems(self) -> list[str]:
        try:
            with contextlib.closing(self._connect(readonly=True)) as conn:
                rows = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
        except sqlite3.DatabaseError as exc:
            return [str(exc)]
        return [] if rows == ["ok"] else rows

    def prepare(self, *, force: bool) -> None:
        if not self.path.parent.is_dir():
            raise BackupError(f"The directory {self.path.parent} does not exist.")
        try:
            tables = self.tables()
        except sqlite3.DatabaseError as exc:
            tables = [f"(unreadable: {exc})"]
        if tables and not force:
            raise TargetNotEmpty(
                f"The database {self.path} is not empty: it has {len(tables)} tables "
                f"({', '.join(tables[:5])}{', ...' if len(tables) > 5 else ''}). Restore into "
                "a new file, or pass --force to replace it."
            )

    def scratch_name(self, *, check_id: int) -> str:
        return f"restore-check-{check_id}"

    def scratch_discard(self, *, name: str) -> None:
        for leftover in self.path.parent.glob(f"{name}-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    @contextlib.contextmanager
    def scratch(self, *, name: str) -> Iterator[SqliteDatabase]:
        with tempfile.TemporaryDirectory(prefix=f"{name}-", dir=self.path.parent) as tmp:
            yield SqliteDatabase(Path(tmp) / f"{name}.sqlite3")

    def mark_run_restored(self, *, manifest: dict) -> bool:
        with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as conn:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'backups_backuprun'"
            ).fetchone()
            if not exists:
                return False
            finished = manifest.get("finished_at")
            if finished:
                # Django keeps SQLite datetimes as naive UTC text with a space.
                moment = datetime.fromisoformat(finished).astimezone(UTC).replace(tzinfo=None)
                finished = moment.isoformat(" ")
            with conn:
                cursor = conn.execute(
                    "UPDATE backups_backuprun SET status = 'succeeded', finished_at = ?, "
                    "size = ?, sha256 = ? WHERE id = ? AND status = 'running'",
                    [finished, manifest["size"], manifest["sha256"], manifest.get("run_id")],
                )
            return cursor.rowcount == 1
