"""The operators' dashboard: runs and checks listed, failures in red, and buttons that
queue a backup or a restore check. Tenant staff can neither see nor press them."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from backups.models import BackupRun, RestoreCheck
from tests.factories import BackupRunFactory, MembershipFactory, RestoreCheckFactory

pytestmark = pytest.mark.django_db

RUNS = "/dashboard/backups/backuprun/"
CHECKS = "/dashboard/backups/restorecheck/"


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create_superuser("ops@example.com", "ops@example.com", "x")
    client.force_login(user)
    return client


@pytest.fixture
def tenant_owner(client, tenant):
    client.force_login(MembershipFactory(tenant=tenant, role="owner").user)
    return client


def test_operators_see_runs_checks_and_failures(operator):
    ok = BackupRunFactory(verified=True)
    failed = BackupRunFactory(status=BackupRun.Status.FAILED, error="pg_dump failed: disk full")
    check = RestoreCheckFactory(
        backup=ok, status=RestoreCheck.Status.FAILED, details="FAILED: table x has 1 rows"
    )

    runs = operator.get(RUNS)
    assert runs.status_code == 200
    page = runs.content.decode()
    assert {ok.pk, failed.pk} == {run.pk for run in runs.context["cl"].result_list}
    assert "pg_dump failed: disk full" in page
    assert f"The latest backup (#{failed.pk}) failed." in page
    assert f"The latest restore check (#{check.pk}) failed." in page
    assert "Start a backup now" in page

    checks = operator.get(CHECKS)
    page = checks.content.decode()
    assert "FAILED: table x has 1 rows" in page and "Run a restore check now" in page
    assert operator.get(f"{CHECKS}{check.pk}/change/").status_code == 200
    assert operator.get(f"{RUNS}{ok.pk}/change/").status_code == 200


def test_records_cannot_be_added_changed_or_deleted_from_the_dashboard(operator):
    run = BackupRunFactory()
    assert operator.get(f"{RUNS}add/").status_code == 403
    assert operator.post(f"{RUNS}{run.pk}/change/", {"status": "failed"}).status_code == 403
    assert operator.post(f"{RUNS}{run.pk}/delete/", {"post": "yes"}).status_code == 403
    run.refresh_from_db()
    assert run.status == BackupRun.Status.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_an_operator_starts_a_backup_and_a_restore_check(operator):
    response = operator.post(f"{RUNS}start/")
    assert response.status_code == 302
    run = BackupRun.objects.get()
    # Tests run tasks eagerly: the queued run was taken by the "worker" on commit.
    assert run.trigger == "operator" and run.requested_by.username == "ops@example.com"
    assert run.status == BackupRun.Status.SUCCEEDED and run.verified

    response = operator.post(f"{CHECKS}start/")
    assert response.status_code == 302
    check = RestoreCheck.objects.get()
    assert check.backup == run and check.status == RestoreCheck.Status.PASSED, check.details


@pytest.mark.django_db(transaction=True)
def test_actions_verify_and_restore_check_the_selected_copies(operator):
    operator.post(f"{RUNS}start/")
    run = BackupRun.objects.get()
    BackupRun.objects.filter(pk=run.pk).update(verified=False)

    operator.post(RUNS, {"action": "verify_selected", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert run.verified

    operator.post(RUNS, {"action": "restore_check_selected", "_selected_action": [run.pk]})
    assert RestoreCheck.objects.get().status == RestoreCheck.Status.PASSED


def test_starting_needs_a_post(operator):
    assert operator.get(f"{RUNS}start/").status_code == 405
    assert BackupRun.objects.count() == 0


def test_tenant_staff_can_neither_see_nor_start_backups(tenant_owner):
    BackupRunFactory()
    assert tenant_owner.get(RUNS).status_code == 403
    assert tenant_owner.get(CHECKS).status_code == 403
    assert tenant_owner.post(f"{RUNS}start/").status_code == 403
    assert tenant_owner.post(f"{CHECKS}start/").status_code == 403
    assert BackupRun.objects.count() == 1 and RestoreCheck.objects.count() == 0
