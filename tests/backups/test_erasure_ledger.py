"""An erased contact does not come back with a restore (issue 18, finding 4): the erasure
ledger, kept with the backups, is re-applied by ``restore`` (and by ``migrate``)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from backups import ledger
from backups.models import BackupRun
from contacts.models import Contact
from privacy import services as privacy
from privacy.models import PrivacyAudit
from tests.backups.helpers import query, raw_connection
from tests.factories import ContactFactory
from tests.privacy.test_privacy import EMAIL, erin  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/contacts/"


def run_command(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_a_contact_erased_after_a_backup_stays_erased_after_restoring_it(
    erin,  # noqa: F811 - the fixture
    api,
    restore_url,
):
    other = ContactFactory(tenant=erin.tenant, email="stays@example.com")
    run_command("backup")
    run = BackupRun.objects.get()

    response = api.post(f"{URL}{erin.pk}/erase/", {}, format="json")
    assert response.status_code == 200, response.content
    entries = ledger.ledger_read()
    assert len(entries) == 1 and entries[0]["tenant"] == erin.tenant_id
    assert sorted(pk for pk, _ in entries[0]["contacts"])[0] == erin.pk
    assert EMAIL not in ledger.ledger_path().read_text()  # nothing personal in the ledger

    output = run_command("restore", str(run.pk), "--into", restore_url)

    assert f"Erasure re-applied: contact #{erin.pk} of tenant #{erin.tenant_id}" in output
    assert "checked; 1 re-applied now." in output
    assert "Restored backup" in output

    def restored(sql: str, *params) -> list[tuple]:
        if not restore_url.startswith("sqlite"):
            sql = sql.replace("?", "%s")
        return query(restore_url, sql, params)

    assert restored("SELECT email FROM conversations_contact WHERE id = ?", erin.pk) == []
    assert restored(
        "SELECT count(*) FROM conversations_message WHERE text LIKE ?", f"%{EMAIL}%"
    ) == [(0,)]
    assert restored("SELECT count(*) FROM conversations_lead WHERE contact_id = ?", erin.pk) == [
        (0,)
    ]
    assert restored("SELECT count(*) FROM support_ticket WHERE reporter_email = ?", EMAIL) == [(0,)]
    # Everyone else is as the copy holds them.
    assert restored("SELECT email FROM conversations_contact WHERE id = ?", other.pk) == [
        ("stays@example.com",)
    ]
    audits = restored("SELECT door FROM conversations_privacyaudit WHERE contact_ref = ?", erin.pk)
    assert ("restore",) in audits


def test_a_restore_whose_ledger_cannot_be_re_applied_fails_saying_not_to_start(
    erin,  # noqa: F811 - the fixture
    api,
    restore_url,
    monkeypatch,
):
    """docs/restore.md: "Restored, but re-applying the erasure ledger failed": the command
    exits with an error. (Here the re-applying process cannot even start: its settings name
    a region that does not exist.)"""
    run_command("backup")
    run = BackupRun.objects.get()
    assert api.post(f"{URL}{erin.pk}/erase/", {}, format="json").status_code == 200
    monkeypatch.setenv("CHATTONIC_REGION", "nowhere")
    with pytest.raises(CommandError, match="Restored, but re-applying the erasure ledger failed"):
        run_command("restore", str(run.pk), "--into", restore_url)


def test_migrate_re_applies_the_ledger_too_and_a_new_contact_with_a_reused_id_is_kept(
    tenant, settings
):
    """A database restored by hand (pg_restore): ``migrate`` erases again what the ledger
    names. A contact made later that got the erased one's id (sequences restored to the
    copy's) is another contact: its creation time differs, it is kept."""
    gone = ContactFactory(tenant=tenant, email="gone@example.com")
    ledger.erasure_record(
        privacy.Erasure(
            tenant_id=tenant.pk,
            contacts=[(gone.pk, gone.created_at)],
            erased_at=gone.created_at,
        )
    )
    reused = ContactFactory(tenant=tenant, email="new@example.com")
    ledger.erasure_record(
        privacy.Erasure(
            tenant_id=tenant.pk,
            contacts=[(reused.pk, reused.created_at.replace(year=2001))],
            erased_at=reused.created_at,
        )
    )
    output = run_command("migrate", "--verbosity", "1")
    assert f"Erasure re-applied: contact #{gone.pk} of tenant #{tenant.pk}" in output
    assert not Contact.objects.filter(pk=gone.pk).exists()
    assert Contact.objects.filter(pk=reused.pk).exists()
    assert PrivacyAudit.objects.get(contact_ref=gone.pk).door == "restore"
    # Re-applied erases are not recorded again.
    assert len(ledger.ledger_read()) == 2
    assert "0 re-applied now" in run_command("erasures_reapply")


def test_an_erase_whose_ledger_cannot_be_written_does_not_happen(tenant, settings, tmp_path):
    contact = ContactFactory(tenant=tenant, email="kept@example.com")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    settings.BACKUP_DIR = blocker / "backups"  # cannot be created
    with pytest.raises(OSError):
        privacy.contact_erase(contact=contact, door=PrivacyAudit.Door.API)
    assert Contact.objects.filter(pk=contact.pk).exists()
    assert not PrivacyAudit.objects.exists()


def test_a_torn_last_line_is_skipped(tenant):
    path = ledger.ledger_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"tenant": tenant.pk, "contacts": [], "erased_at": ""}) + "\n{")
    assert len(ledger.ledger_read()) == 1


def test_re_applying_into_a_copy_older_than_the_code_migrates_it_first(tenant, restore_url):
    from backups import services
    from backups.services.restore import erasures_reapply_into

    contact = ContactFactory(tenant=tenant, email="old@example.com")
    run = services.backup_create()
    services.backup_restore(source=str(run.pk), into=restore_url)
    # The copy as an older code left it: its newest migration (an index) not applied yet.
    mark = "%s" if restore_url.startswith("postgres") else "?"
    with raw_connection(restore_url) as conn:
        conn.execute(
            f"DELETE FROM django_migrations WHERE app = {mark} AND name = {mark}",  # noqa: S608
            ("conversations", "0014_message_pending_send"),
        )
        conn.execute("DROP INDEX message_pending_send")
        conn.commit()
    ledger.erasure_record(
        privacy.Erasure(
            tenant_id=tenant.pk,
            contacts=[(contact.pk, contact.created_at)],
            erased_at=contact.created_at,
        )
    )

    lines = erasures_reapply_into(restore_url)

    assert "Bringing the schema forward (migrate) to re-apply erasures." in lines
    assert any(f"Erasure re-applied: contact #{contact.pk}" in line for line in lines), lines
    assert query(restore_url, "SELECT count(*) FROM conversations_contact") == [(0,)]
    assert query(
        restore_url,
        f"SELECT count(*) FROM django_migrations WHERE name = {mark}",  # noqa: S608
        ("0014_message_pending_send",),
    ) == [(1,)]
    assert Contact.objects.filter(pk=contact.pk).exists()  # the live database is untouched
