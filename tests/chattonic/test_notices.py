"""Operators' notices (issue 18, finding 6): a breach or a failed restore check is never
lost when mail fails, and waits (retried) while no operator address is set."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from chattonic.core import notices
from chattonic.core.models import OperatorNotice
from chattonic.core.tasks import operator_notices_send
from support import services
from support.models import Ticket
from tests.factories import TicketFactory

pytestmark = pytest.mark.django_db
LOCMEM = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def smtp_down(settings):
    """Mail through SMTP to a port where nothing listens: every send fails."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    settings.ADMINS = [("Operators", "ops@example.com")]
    return settings


def breach(capture) -> Ticket:
    ticket = TicketFactory(first_response_due_at=datetime(2020, 1, 1, tzinfo=UTC))
    with capture(execute=True):
        assert services.sla_breaches_flag() == [ticket.pk]
    return ticket


def test_a_breach_notice_survives_a_mail_failure_and_goes_out_once_mail_works(
    smtp_down, django_capture_on_commit_callbacks
):
    ticket = breach(django_capture_on_commit_callbacks)

    notice = OperatorNotice.objects.get()
    assert notice.sent_at is None and notice.attempts == 1
    assert "Connection" in notice.last_error or "refused" in notice.last_error.lower()
    assert Ticket.objects.get(pk=ticket.pk).breach_flagged_at is not None
    # Not due again before its back-off; the periodic run leaves it.
    operator_notices_send()
    assert OperatorNotice.objects.get().attempts == 1

    later = timezone.now() + timedelta(minutes=2)
    assert notices.notices_send_due(now=later) == 0  # mail still down
    assert OperatorNotice.objects.get().attempts == 2

    smtp_down.EMAIL_BACKEND = LOCMEM
    assert notices.notices_send_due(now=later + timedelta(hours=2)) == 1
    assert len(mail.outbox) == 1
    assert "1 support ticket(s) breached" in mail.outbox[0].subject
    assert f"#{ticket.pk}" in mail.outbox[0].body
    assert OperatorNotice.objects.get().sent_at is not None
    # Sent is sent: nothing goes out twice.
    assert notices.notices_send_due(now=later + timedelta(hours=5)) == 0
    assert len(mail.outbox) == 1


def test_a_notice_that_fails_waits_30_s_doubling_up_to_an_hour(settings):
    """support.md: retried with a back-off, 30 s doubling, up to an hour."""
    settings.ADMINS = []  # every send fails (no address), and says so
    notice = notices.notice_queue(key="k", subject="s", body="b")
    now, waits = timezone.now(), []
    for _ in range(10):
        assert notices.notice_send(notice_id=notice.pk, now=now) is False
        due = OperatorNotice.objects.get(pk=notice.pk).next_attempt_at
        waits.append((due - now).total_seconds())
        now = due
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    # Not before it is due: a run a second early leaves it.
    assert notices.notices_send_due(now=now - timedelta(seconds=1)) == 0
    assert OperatorNotice.objects.get(pk=notice.pk).attempts == 10


def test_without_an_operator_address_the_notice_waits_until_one_is_set(
    settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = LOCMEM
    settings.ADMINS = []
    breach(django_capture_on_commit_callbacks)
    notice = OperatorNotice.objects.get()
    assert notice.sent_at is None and notice.last_error.endswith(notices.NO_ADDRESS)
    assert mail.outbox == []

    settings.ADMINS = [("Operators", "ops@example.com")]
    assert notices.notices_send_due(now=timezone.now() + timedelta(hours=2)) == 1
    assert [m.to for m in mail.outbox] == [["ops@example.com"]]


def test_a_notice_queued_twice_is_one_notice(settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = LOCMEM
    settings.ADMINS = [("Operators", "ops@example.com")]
    with django_capture_on_commit_callbacks(execute=True):
        notices.notice_queue(key="restore_check.failed:7", subject="Restore check #7", body="x")
        notices.notice_queue(key="restore_check.failed:7", subject="Restore check #7", body="x")
    assert OperatorNotice.objects.count() == 1 and len(mail.outbox) == 1


def test_a_rolled_back_change_sends_no_notice(settings):
    from django.db import transaction

    settings.EMAIL_BACKEND = LOCMEM
    with pytest.raises(RuntimeError), transaction.atomic():
        notices.notice_queue(key="k", subject="s", body="b")
        raise RuntimeError
    assert not OperatorNotice.objects.exists() and mail.outbox == []
