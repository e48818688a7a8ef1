"""The operators' commands: backup, verify_backup, restore; with progress and exit codes."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from backups import archive
from backups.models import BackupRun, RestoreCheck
from tests.backups.helpers import query
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)

PROGRESS = re.compile(r"^\[\s*\d+\.\ds\] ", re.MULTILINE)


def run_command(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_backup_verify_and_restore_from_the_command_line(restore_url):
    TenantFactory.create_batch(2)

    output = run_command("backup")
    run = BackupRun.objects.get()
    assert run.status == BackupRun.Status.SUCCEEDED and run.verified
    assert f"Backup #{run.pk} succeeded and is verified" in output
    assert PROGRESS.search(output), output

    assert f"Backup #{run.pk} is verified" in run_command("verify_backup")
    assert "matches its manifest" in run_command("verify_backup", run.file_path)

    output = run_command("verify_backup", str(run.pk), "--restore-check")
    check = RestoreCheck.objects.get()
    assert check.status == RestoreCheck.Status.PASSED
    assert f"Restore check #{check.pk} passed" in output

    output = run_command("restore", str(run.pk), "--into", restore_url)
    assert "Restored backup" in output and "migrate" in output
    assert query(restore_url, "SELECT count(*) FROM tenancy_tenant") == [(2,)]

    with pytest.raises(CommandError, match="not empty"):
        run_command("restore", run.file_path, "--into", restore_url)
    assert "Restored backup" in run_command(
        "restore", run.file_path, "--into", restore_url, "--force"
    )


def test_a_copy_restored_into_another_regions_deployment_is_warned_about(restore_url, settings):
    """regions.md: the copy's manifest names its region; restoring it in another region's
    deployment says so (the restore goes ahead: an operator moving data means it)."""
    TenantFactory()
    run_command("backup")
    run = BackupRun.objects.get()
    output = run_command("restore", str(run.pk), "--into", restore_url)
    assert "region" not in output  # same region: nothing to say
    settings.CHATTONIC_REGION = "eu-frankfurt"
    output = run_command("restore", str(run.pk), "--into", restore_url, "--force")
    assert "warning: the copy is from the region us-central, this deployment is eu-frankfurt" in (
        output
    )
    assert "Restored backup" in output


def test_verify_backup_and_restore_fail_on_a_damaged_copy(restore_url):
    run_command("backup")
    run = BackupRun.objects.get()
    path = Path(run.file_path)
    path.write_bytes(path.read_bytes()[:-10])

    with pytest.raises(CommandError, match="truncated"):
        run_command("verify_backup", str(run.pk))
    with pytest.raises(CommandError, match="truncated"):
        run_command("verify_backup", str(archive.manifest_path_for(path)))
    with pytest.raises(CommandError, match="truncated"):
        run_command("restore", str(run.pk), "--into", restore_url)


def test_commands_explain_missing_copies():
    with pytest.raises(CommandError, match="no copy"):
        run_command("verify_backup")
    with pytest.raises(CommandError, match="no backup #42"):
        run_command("restore", "42", "--into", "sqlite:////tmp/never.sqlite3")
    with pytest.raises(CommandError, match="No manifest"):
        run_command("restore", "/tmp/nothing-here.pgdump", "--into", "sqlite:////tmp/x.sqlite3")


def test_backup_exits_non_zero_when_the_backup_fails(settings, tmp_path):
    settings.BACKUP_DIR = tmp_path / "not-a-dir"
    settings.BACKUP_DIR.write_text("a file where the directory should be")
    with pytest.raises(CommandError, match="failed"):
        run_command("backup")
