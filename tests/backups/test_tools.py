"""PostgreSQL's client binaries: a missing one or one of another major version is a clear
error that says what to install, recorded on the run."""

from __future__ import annotations

import pytest

from backups import services
from backups.engines.postgres import pg_tool
from backups.errors import ToolUnavailable
from backups.models import BackupRun
from tests.backups.helpers import postgres_only


def fake_tool(directory, name: str, version: str) -> None:
    tool = directory / name
    tool.write_text(f"#!/bin/sh\necho '{name} (PostgreSQL) {version}'\n")
    tool.chmod(0o755)


def test_a_missing_tool_says_what_to_install(settings, tmp_path):
    settings.BACKUP_PG_BIN_DIR = str(tmp_path)
    with pytest.raises(ToolUnavailable) as caught:
        pg_tool("pg_dump", 15)
    assert "pg_dump was not found" in caught.value.message
    assert "postgresql-client-15" in caught.value.message


def test_a_tool_of_another_major_version_is_refused(settings, tmp_path):
    settings.BACKUP_PG_BIN_DIR = str(tmp_path)
    fake_tool(tmp_path, "pg_dump", "16.4")
    with pytest.raises(ToolUnavailable) as caught:
        pg_tool("pg_dump", 15)
    assert "pg_dump 16.4" in caught.value.message and "PostgreSQL 15" in caught.value.message


def test_a_tool_of_the_server_version_is_found(settings, tmp_path):
    settings.BACKUP_PG_BIN_DIR = str(tmp_path)
    fake_tool(tmp_path, "pg_restore", "15.20")
    path, version = pg_tool("pg_restore", 15)
    assert path == str(tmp_path / "pg_restore") and "15.20" in version


@postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("installed", [None, "99.1"], ids=["missing", "other major"])
def test_a_backup_without_the_right_pg_dump_fails_clearly(
    settings, tmp_path, installed, mailoutbox
):
    settings.BACKUP_PG_BIN_DIR = str(tmp_path)
    if installed:
        fake_tool(tmp_path, "pg_dump", installed)

    run = services.backup_create()

    assert run.status == BackupRun.Status.FAILED
    assert ("not found" if installed is None else "major version") in run.error
    assert list(settings.BACKUP_DIR.iterdir()) == []
    assert len(mailoutbox) == 1 and f"Backup #{run.pk} failed" in mailoutbox[0].subject
