"""Copies on disk: where they go, their manifests, and reading and writing them checked.

Each copy is one data file in ``BACKUP_DIR`` with a JSON manifest beside it
(``<base>.manifest.json``) that says everything a restore on a new machine needs: the
engine, size, SHA-256, encryption, row counts per table, migrations and versions. The
manifest is enough: a restore after losing the server does not need the lost database.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings

from backups import crypto
from backups.errors import BackupError, CopyCorrupted, WrongKey

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = "chattonic-backup-manifest"
MANIFEST_VERSION = 1
BLOCK = 1024 * 1024

Report = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


def size_human(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # pragma: no cover - unreachable


class Meter:
    """Reports the progress of a long byte stream at most every ``every`` seconds."""

    def __init__(self, report: Report | None, label: str, total: int | None = None, every=2.0):
        self.report = report or _quiet
        self.label = label
        self.total = total
        self.every = every
        self.done = 0
        self.started = time.monotonic()
        self._last = self.started

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self.report(self._line(now))

    def _line(self, now: float) -> str:
        line = f"{self.label}: {size_human(self.done)}"
        if self.total:
            line += f" of {size_human(self.total)} ({100 * self.done / self.total:.0f}%)"
        return line + f", {now - self.started:.0f}s"


# --- Paths and manifests -------------------------------------------------------------------


def backup_dir() -> Path:
    path = Path(settings.BACKUP_DIR)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"BACKUP_DIR {path} cannot be used: {exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise BackupError(f"BACKUP_DIR {path} is not writable by this process.")
    return path


def manifest_path_for(path: Path) -> Path:
    """The manifest beside a copy (or the manifest itself)."""
    path = Path(path)
    if path.name.endswith(MANIFEST_SUFFIX):
        return path
    return path.with_name(path.name.split(".", 1)[0] + MANIFEST_SUFFIX)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def manifest_write(path: Path, manifest: dict) -> None:
    """Write the manifest atomically (a crash leaves the old one or the new one)."""
    partial = path.with_name(path.name + ".partial")
    data = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    _fsync_dir(path.parent)


def manifest_read(path: Path) -> dict:
    """The manifest of a copy, given the copy or its manifest; raises on anything odd."""
    manifest_path = manifest_path_for(path)
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise CopyCorrupted(
            f"No manifest beside the copy: {manifest_path} is missing. A copy is only "
            "restorable with its manifest."
        ) from None
    except (OSError, ValueError) as exc:
        raise CopyCorrupted(f"The manifest {manifest_path} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise CopyCorrupted(f"{manifest_path} is not a Chat-Tonic backup manifest.")
    if manifest.get("version", 0) > MANIFEST_VERSION:
        raise BackupError(
            f"{manifest_path} was written by a newer Chat-Tonic (manifest version "
            f"{manifest['version']}); restore it with that version."
        )
    for field in ("engine", "file", "size", "sha256", "row_counts", "migrations"):
        if field not in manifest:
            raise CopyCorrupted(f"The manifest {manifest_path} has no {field!r}.")
    return manifest


def data_path(manifest_path: Path, manifest: dict) -> Path:
    return manifest_path_for(manifest_path).with_name(manifest["file"])


# --- Keys ----------------------------------------------------------------------------------


def encryption_key() -> bytes | None:
    """This deployment's key for new copies, or None when copies are not encrypted."""
    value = settings.BACKUP_ENCRYPTION_KEY
    return crypto.key_parse(value) if value else None


def decryption_keys() -> dict[str, bytes]:
    """Every key this deployment can open copies with, by key id (current and old ones)."""
    keys = {}
    values = [settings.BACKUP_ENCRYPTION_KEY, *settings.BACKUP_OLD_ENCRYPTION_KEYS]
    for value in values:
        if value:
            key = crypto.key_parse(value)
            keys[crypto.key_id(key)] = key
    return keys


# --- Writing -------------------------------------------------------------------------------


class CopyWriter:
    """Writes a copy to ``<path>.partial``, encrypting it when given a key and hashing the
    stored bytes; ``commit`` makes it durable under its final name, ``abort`` removes it."""

    def __init__(self, path: Path, *, key: bytes | None, report: Report | None = None):
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.encryptor = crypto.Encryptor(key) if key else None
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.meter = Meter(report, "writing the copy")
        fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._out = os.fdopen(fd, "wb")

    def _put(self, data: bytes) -> None:
        if data:
            self._out.write(data)
            self.sha256.update(data)
            self.size += len(data)

    def write(self, data: bytes) -> None:
        self._put(self.encryptor.update(data) if self.encryptor else data)
        self.meter.add(len(data))

    def commit(self) -> tuple[int, str]:
        if self.encryptor:
            self._put(self.encryptor.finish())
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        os.replace(self.partial, self.path)
        _fsync_dir(self.path.parent)
        return self.size, self.sha256.hexdigest()

    def abort(self) -> None:
        if not self._out.closed:
            self._out.close()
        self.partial.unlink(missing_ok=True)

    def __enter__(self) -> CopyWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def file_blocks(path: Path, meter: Meter | None = None) -> Iterator[bytes]:
    with open(path, "rb") as source:
        while block := source.read(BLOCK):
            if meter:
                meter.add(len(block))
            yield block


def file_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    for block in file_blocks(path):
        digest.update(block)
        size += len(block)
    return size, digest.hexdigest()


# --- Reading -------------------------------------------------------------------------------


class CopyReader:
    """The plaintext of a copy, checked against its manifest while it is read.

    The size is checked before the first byte (a truncated copy fails at once), every
    encrypted chunk is authenticated before it is handed out, and the SHA-256 of the
    stored bytes is compared at the end: iterate to the end before trusting the data.
    """

    def __init__(self, path: Path, manifest: dict, *, report: Report | None = None):
        self.path = Path(path)
        self.manifest = manifest
        self.report = report
        self.encryption = manifest.get("encryption")

    def _check_size(self) -> int:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            raise CopyCorrupted(f"The copy {self.path} is missing.") from None
        expected = self.manifest["size"]
        if size < expected:
            raise CopyCorrupted(
                f"The copy {self.path} is truncated: {size} bytes of the {expected} "
                "its manifest records."
            )
        if size > expected:
            raise CopyCorrupted(
                f"The copy {self.path} has {size - expected} bytes more than its manifest "
                f"records ({expected}): it was altered."
            )
        return size

    def __iter__(self) -> Iterator[bytes]:
        size = self._check_size()
        digest = hashlib.sha256()
        meter = Meter(self.report, "reading the copy", size)

        def stored() -> Iterator[bytes]:
            for block in file_blocks(self.path, meter):
                digest.update(block)
                yield block

        blocks = stored()
        if self.encryption:
            keys = decryption_keys()
            try:
                yield from crypto.decrypt_blocks(blocks, keys, what=f"the copy {self.path}")
            except WrongKey:
                # A damaged header looks like another key: the checksum tells them apart.
                for _ in blocks:
                    pass
                self._check_digest(digest)
                raise
            except CopyCorrupted:
                for _ in blocks:
                    pass
                self._check_digest(digest)
                raise
        else:
            yield from blocks
        for _ in blocks:
            pass  # any trailing bytes are hashed too
        self._check_digest(digest)

    def _check_digest(self, digest) -> None:
        if digest.hexdigest() != self.manifest["sha256"]:
            raise CopyCorrupted(
                f"The copy {self.path} is corrupted: its SHA-256 is {digest.hexdigest()}, "
                f"its manifest records {self.manifest['sha256']}."
            )


def copy_verify(path: Path, manifest: dict, *, report: Report | None = None) -> None:
    """Read a whole copy and check it against its manifest; raises if it does not match."""
    for _ in CopyReader(path, manifest, report=report):
        pass
