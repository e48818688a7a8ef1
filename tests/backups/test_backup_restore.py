"""Backups against the real engine of the run (SQLite, or PostgreSQL with DATABASE_URL):
a copy restores into an empty database with the same data, verification catches every
kind of damage, and a copy taken under writes restores to a consistent state."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
from django.core import mail
from django.db import connection, transaction

from backups import archive, services
from backups.engines import database_from_url
from backups.errors import BackupError, TargetNotEmpty
from backups.models import BackupRun, RestoreCheck
from chattonic.tenancy.models import ApiKey, Tenant
from tests.backups.helpers import OTHER_KEY, TEST_KEY, query, raw_connection, table_rows
from tests.factories import ApiKeyFactory, MembershipFactory, TenantFactory
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def data():
    """Some tenants, staff and API keys for a copy to hold."""
    tenants = TenantFactory.create_batch(3)
    for tenant in tenants:
        MembershipFactory(tenant=tenant, role="owner")
        ApiKeyFactory.create_batch(2, tenant=tenant)
    return tenants


@pytest.fixture(params=["plain", "encrypted"])
def encryption(request, settings):
    settings.BACKUP_ENCRYPTION_KEY = TEST_KEY if request.param == "encrypted" else ""
    return request.param


def take_backup(**kwargs) -> BackupRun:
    run = services.backup_create(**kwargs)
    assert run.status == BackupRun.Status.SUCCEEDED, run.error
    return run


def damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        del data[len(data) * 2 // 3 :]
    elif how == "flipped byte":
        data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


# --- Backup and restore --------------------------------------------------------------------


def test_a_copy_restores_into_an_empty_database_with_the_same_data(data, encryption, restore_url):
    run = take_backup()

    path = Path(run.file_path)
    assert path.exists() and path.parent == archive.backup_dir()
    assert run.verified and not run.verification_error
    assert run.encrypted is (encryption == "encrypted")
    manifest = json.loads(archive.manifest_path_for(path).read_text())
    assert manifest["sha256"] == run.sha256 and manifest["size"] == path.stat().st_size
    assert manifest["row_counts"]["tenancy_tenant"] == 3
    assert manifest["row_counts"]["tenancy_apikey"] == 6
    applied = {f"{a}.{n}" for a, n in query(None, "SELECT app, name FROM django_migrations")}
    assert set(manifest["migrations"]) == applied
    if encryption == "encrypted":
        assert b"tenant-" not in path.read_bytes()  # the names are not readable in the file

    result = services.backup_restore(source=str(path), into=restore_url)

    assert result.comparison.problems == []
    for table in manifest["row_counts"]:
        if table.startswith("backups_"):
            continue  # the running backup's own row moved on after the copy was taken
        assert table_rows(restore_url, table) == table_rows(None, table), table
    # The run that took the copy is recorded as succeeded in the restored database.
    statuses = dict(query(restore_url, "SELECT id, status FROM backups_backuprun"))
    assert statuses[run.pk] == "succeeded"


def test_restore_takes_a_backup_id_or_the_manifest(data, restore_url, tmp_path):
    run = take_backup()
    result = services.backup_restore(source=str(run.pk), into=restore_url)
    assert result.manifest["run_id"] == run.pk and not result.comparison.problems

    manifest_path = archive.manifest_path_for(Path(run.file_path))
    result = services.backup_restore(source=str(manifest_path), into=restore_url, force=True)
    assert not result.comparison.problems


def test_restore_refuses_a_database_that_has_data_unless_forced(data, restore_url):
    run = take_backup()
    services.backup_restore(source=str(run.pk), into=restore_url)
    Tenant.objects.create(name="Only in the source", slug="only-in-source")
    second = take_backup()
    before = table_rows(restore_url, "tenancy_tenant")

    with pytest.raises(TargetNotEmpty) as refused:
        services.backup_restore(source=str(second.pk), into=restore_url)
    assert "--force" in refused.value.message
    assert table_rows(restore_url, "tenancy_tenant") == before

    services.backup_restore(source=str(second.pk), into=restore_url, force=True)
    assert ("only-in-source",) in query(restore_url, "SELECT slug FROM tenancy_tenant")


def test_a_sqlite_restore_leaves_no_stale_journal_to_replay(data, restore_url):
    """restore.md: the restore removes the target's stale -wal/-shm files before it moves the
    new file in; left there, SQLite would replay the old database's pages into the copy."""
    if not restore_url.startswith("sqlite:"):
        pytest.skip("SQLite's journal files (this run restores into PostgreSQL)")
    import shutil
    import sqlite3

    run = take_backup()
    services.backup_restore(source=str(run.pk), into=restore_url)
    target = Path(restore_url.removeprefix("sqlite:///"))
    wal, shm = Path(f"{target}-wal"), Path(f"{target}-shm")
    # A write the target's WAL still holds when its process dies: copied aside while open.
    conn = sqlite3.connect(target)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE stale_only (x)")
    conn.execute("DELETE FROM tenancy_apikey")
    conn.commit()
    shutil.copy(wal, f"{wal}.kept")
    shutil.copy(shm, f"{shm}.kept")
    conn.close()
    Path(f"{wal}.kept").rename(wal)
    Path(f"{shm}.kept").rename(shm)
    stale = "SELECT name FROM sqlite_master WHERE name = 'stale_only'"
    assert query(restore_url, stale) and not table_rows(restore_url, "tenancy_apikey")

    result = services.backup_restore(source=str(run.pk), into=restore_url, force=True)

    assert not wal.exists() and not shm.exists()
    assert not result.comparison.problems
    assert not query(restore_url, stale)
    assert table_rows(restore_url, "tenancy_apikey") == table_rows(None, "tenancy_apikey")


def test_restore_refuses_a_copy_of_another_engine(data, tmp_path):
    run = take_backup()
    other = (
        f"sqlite:///{tmp_path / 'x.sqlite3'}"
        if run.engine == "postgresql"
        else "postgres://postgres@127.0.0.1:5432/helper_backups_never_created"
    )
    with pytest.raises(BackupError, match="restores into a"):
        services.backup_restore(source=str(run.pk), into=other)


# --- Verification --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["truncated", "flipped byte"])
def test_verification_detects_a_damaged_copy(data, encryption, how):
    run = take_backup()
    damage(Path(run.file_path), how)

    services.backup_verify(run=run)

    run.refresh_from_db()
    assert not run.verified and run.verified_at is not None
    expected = "truncated" if how == "truncated" else "(corrupted|altered)"
    assert run.verification_error
    assert re.search(expected, run.verification_error), run.verification_error
    assert len(mail.outbox) == 1 and "failed verification" in mail.outbox[0].subject


def test_verification_detects_a_wrong_key(data, settings):
    settings.BACKUP_ENCRYPTION_KEY = TEST_KEY
    run = take_backup()
    settings.BACKUP_ENCRYPTION_KEY = OTHER_KEY

    services.backup_verify(run=run)

    run.refresh_from_db()
    assert not run.verified
    assert "key" in run.verification_error and run.key_id in run.verification_error


def test_an_old_key_still_opens_old_copies_after_rotation(data, settings):
    settings.BACKUP_ENCRYPTION_KEY = TEST_KEY
    run = take_backup()
    settings.BACKUP_ENCRYPTION_KEY = OTHER_KEY
    settings.BACKUP_OLD_ENCRYPTION_KEYS = [TEST_KEY]

    services.backup_verify(run=run)

    run.refresh_from_db()
    assert run.verified, run.verification_error


def test_a_replaced_manifest_is_detected(data):
    run = take_backup()
    manifest_path = archive.manifest_path_for(Path(run.file_path))
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))

    services.backup_verify(run=run)

    run.refresh_from_db()
    assert not run.verified and "does not describe backup" in run.verification_error


# --- Consistency under writes --------------------------------------------------------------


def test_a_copy_taken_while_writes_continue_restores_to_a_consistent_state(restore_url):
    """A writer thread keeps committing (tenant, API key) pairs in single transactions;
    the copy is taken in the middle. The restored database has whole pairs only, exactly
    the rows its manifest records, and fewer than the writer wrote in the end."""
    stop = threading.Event()
    written = [0]
    failures = []

    def writer():
        try:
            while not stop.is_set():
                n = written[0]
                with transaction.atomic():
                    tenant = Tenant.objects.create(name=f"W{n}", slug=f"w-{n}")
                    ApiKey.objects.create(
                        tenant=tenant,
                        name="k",
                        prefix=f"w{n:011d}",
                        secret_hash="0" * 64,
                        scopes=["read"],
                    )
                written[0] = n + 1
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        wait_for(lambda: written[0] >= 20 or failures, what="the writer to start")

        def report(message: str) -> None:
            # Hold the copy until more writes committed after it began: they overlap.
            if message.startswith(("snapshot", "copying")):
                target = written[0] + 20
                wait_for(lambda: written[0] >= target or failures, what="writes during the copy")

        run = take_backup(report=report)
        wait_for(lambda: written[0] >= run.row_counts["tenancy_tenant"] + 20 or failures)
    finally:
        stop.set()
        thread.join()
    assert not failures, failures

    services.backup_restore(source=str(run.pk), into=restore_url)

    tenants = query(
        restore_url, "SELECT count(*) FROM tenancy_tenant WHERE substr(slug, 1, 2) = 'w-'"
    )[0][0]
    keys = query(
        restore_url,
        "SELECT count(*) FROM tenancy_apikey k JOIN tenancy_tenant t ON t.id = k.tenant_id "
        "WHERE substr(t.slug, 1, 2) = 'w-'",
    )[0][0]
    assert tenants == keys == run.row_counts["tenancy_tenant"] == run.row_counts["tenancy_apikey"]
    assert 20 <= tenants < written[0]
    # The copy holds the first N pairs with no gap: nothing later slipped in.
    slugs = {row[0] for row in query(restore_url, "SELECT slug FROM tenancy_tenant")}
    assert slugs == {f"w-{n}" for n in range(tenants)}


# --- Restore checks ------------------------------------------------------------------------


def test_a_restore_check_restores_the_newest_copy_compares_it_and_drops_the_scratch(
    data, encryption
):
    take_backup()
    newest = take_backup()

    check = services.restore_check_run()

    assert check.status == RestoreCheck.Status.PASSED, check.details
    assert check.backup == newest and check.duration is not None
    assert "all as the manifest records" in check.details
    assert "migrations:" in check.details
    assert check.scratch_database
    if connection.vendor == "postgresql":
        databases = {row[0] for row in query(None, "SELECT datname FROM pg_database")}
        assert check.scratch_database not in databases
    else:
        leftovers = list(Path(connection.settings_dict["NAME"]).parent.glob("restore-check-*"))
        assert leftovers == []
    assert mail.outbox == []


def test_a_failed_restore_check_is_recorded_and_notifies_the_operators(data, caplog):
    run = take_backup()
    damage(Path(run.file_path), "flipped byte")

    with caplog.at_level("ERROR", logger="backups"):
        check = services.restore_check_run()

    assert check.status == RestoreCheck.Status.FAILED
    assert check.details.startswith("FAILED:") and "corrupted" in check.details
    run.refresh_from_db()
    assert not run.verified and run.verification_error
    subjects = [m.subject for m in mail.outbox]
    assert any(f"Restore check #{check.pk} failed" in s for s in subjects), subjects
    assert all(m.to == ["ops@example.com"] for m in mail.outbox)
    assert any(f"Restore check #{check.pk} failed" in r.getMessage() for r in caplog.records)


def test_a_restore_check_compares_row_counts_with_the_manifest(data):
    run = take_backup()
    manifest_path = archive.manifest_path_for(Path(run.file_path))
    manifest = json.loads(manifest_path.read_text())
    manifest["row_counts"]["tenancy_tenant"] += 1
    manifest_path.write_text(json.dumps(manifest))

    check = services.restore_check_run()

    assert check.status == RestoreCheck.Status.FAILED
    assert "table tenancy_tenant has 3 rows, the manifest records 4" in check.details


def test_a_restore_is_compared_with_its_copy_value_by_value_not_only_counted(data, restore_url):
    """Each table's content checksum is in the manifest: one changed value, the row count
    unchanged, is found and named."""
    run = take_backup()
    manifest = archive.manifest_read(archive.manifest_path_for(Path(run.file_path)))
    assert set(manifest["table_checksums"]) == set(manifest["row_counts"])
    result = services.backup_restore(source=str(run.pk), into=restore_url)
    assert result.comparison.problems == []
    assert any("table checksums, all as the manifest records" in n for n in result.comparison.notes)

    target = database_from_url(restore_url)
    mark = "%s" if restore_url.startswith("postgres") else "?"
    with raw_connection(restore_url) as conn:
        conn.execute(
            f"UPDATE tenancy_tenant SET name = {mark} WHERE id = {mark}",  # noqa: S608
            ("Renamed", data[0].pk),
        )
        conn.commit()
    comparison = services.contents_compare(manifest, target.contents())
    # (The restore itself marked its run "restored" in backups_backuprun, after comparing.)
    problems = [p for p in comparison.problems if "backups_backuprun" not in p]
    assert problems == [
        "table tenancy_tenant: its contents differ from the copy's (checksum "
        f"{target.contents().checksums['tenancy_tenant']}, the manifest records "
        f"{manifest['table_checksums']['tenancy_tenant']})"
    ]


def test_an_older_manifest_is_compared_by_row_counts_only():
    """docs/restore.md: "this manifest has no table checksums" (an older copy: compared by
    row counts only), and a count that differs names its table."""
    from backups.engines.base import Contents

    migrations = ["tenancy.0001_initial"]
    manifest = {"row_counts": {"t": 2, "u": 1}, "migrations": migrations}
    same = services.contents_compare(manifest, Contents({"t": 2, "u": 1}, migrations))
    assert same.problems == []
    assert any("this manifest has no table checksums" in n for n in same.notes)
    fewer = services.contents_compare(manifest, Contents({"t": 1, "u": 1}, migrations))
    assert fewer.problems == ["table t has 1 rows, the manifest records 2"]


def test_a_restore_check_without_any_copy_fails_loudly():
    check = services.restore_check_run()
    assert check.status == RestoreCheck.Status.FAILED
    assert "no successful backup" in check.details
    assert len(mail.outbox) == 1


def test_a_restore_that_fails_midway_leaves_the_target_empty(data, restore_url):
    """A copy whose manifest was rewritten to match its damage passes the checksum; the
    restore itself then fails, and leaves no half-restored database behind."""
    run = take_backup()
    path = Path(run.file_path)
    path.write_bytes(path.read_bytes()[: run.size // 2])
    manifest = archive.manifest_read(path)
    manifest["size"], manifest["sha256"] = archive.file_digest(path)
    archive.manifest_write(archive.manifest_path_for(path), manifest)

    with pytest.raises(BackupError):
        services.backup_restore(source=str(path), into=restore_url)

    assert database_from_url(restore_url).tables() == []
