"""What every database engine offers backups: dump, restore, inspect, and scratch copies."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from backups.archive import Report


@dataclass
class DumpResult:
    """A copy written to disk, and what it holds (taken from the same snapshot)."""

    size: int
    sha256: str
    row_counts: dict[str, int]
    migrations: list[str]
    server_version: str
    tool_version: str
    dump_format: str
    extra: dict = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)


@dataclass
class Contents:
    row_counts: dict[str, int]
    migrations: list[str]
    #: Per table, a checksum of its rows' contents (order-free: the sum of each row's hash),
    #: so that a restore is compared with its copy value by value, not only counted.
    checksums: dict[str, str] = field(default_factory=dict)


class Database:
    """A database that backups can be taken from or restored into."""

    engine: str = ""
    #: The data file's extension, without the encryption suffix.
    extension: str = ""

    @property
    def display(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def dump(self, *, path: Path, key: bytes | None, report: Report) -> DumpResult:
        """Write a consistent copy to ``path`` (encrypted with ``key`` when given)."""
        raise NotImplementedError

    def restore(
        self,
        *,
        manifest: dict,
        report: Report,
        blocks: Iterable[bytes] | None = None,
        path: Path | None = None,
        atomic: bool = True,
    ) -> None:
        """Load a copy into this (empty) database: its plaintext as ``blocks``, or an
        unencrypted copy already verified at ``path``. ``atomic``: all or nothing."""
        raise NotImplementedError

    def contents(self) -> Contents:
        """Row counts and content checksums per table, and the applied migrations, read in
        one snapshot."""
        raise NotImplementedError

    def tables(self) -> list[str]:
        """The tables this database has (any table means it is not empty)."""
        raise NotImplementedError

    def prepare(self, *, force: bool) -> None:
        """Make sure this database exists and is empty, dropping its contents if ``force``."""
        raise NotImplementedError

    def integrity_problems(self) -> list[str]:
        """What the engine's own integrity check finds (empty when it is sound)."""
        return []

    def scratch_name(self, *, check_id: int) -> str:
        """The name of the scratch database of a restore check."""
        raise NotImplementedError

    @contextlib.contextmanager
    def scratch(self, *, name: str) -> Iterator[Database]:
        """A temporary empty database of the same engine, dropped on exit."""
        raise NotImplementedError
        yield  # pragma: no cover

    def scratch_discard(self, *, name: str) -> None:
        """Remove what an interrupted restore check left behind."""
        raise NotImplementedError

    def mark_run_restored(self, *, manifest: dict) -> bool:
        """In a restored database, record the run that took the copy as it ended: the copy
        was taken while that run was still running. Returns whether a row was updated."""
        raise NotImplementedError
