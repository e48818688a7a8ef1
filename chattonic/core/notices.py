"""Notices to the operators, through a durable outbox: never lost when mail fails.

``notice_queue`` records the notice inside the caller's transaction (with the change it
tells of) and tries to send it right after the commit; ``notices_send_due`` (every minute,
from beat) retries what is still unsent, with a back-off, until the mail goes out. A notice
waits, and says why in the log, while ``OPERATOR_EMAILS`` is empty (a system check refuses
to start without it when DEBUG is off).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import mail_admins
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from chattonic.core.models import OperatorNotice

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
BACKOFF_BASE, BACKOFF_CAP = 30.0, 3600.0
BATCH = 100
NO_ADDRESS = "No operator address: set OPERATOR_EMAILS."


def notice_queue(*, key: str, subject: str, body: str) -> OperatorNotice:
    """Record a notice (once per key) and send it after the commit."""
    notice, _ = OperatorNotice.objects.get_or_create(
        key=key[:200], defaults={"subject": subject[:300], "body": body}
    )
    logger.error("operator notice: %s\n%s", subject, body)
    notice_id = notice.pk
    transaction.on_commit(lambda: notice_send(notice_id=notice_id), robust=True)
    return notice


def notice_send(*, notice_id: int, now: datetime | None = None) -> bool:
    """Send one notice by mail to the operators (ADMINS), unless sent or taken; on failure
    it waits its back-off. True when this call sent it."""
    now = now or timezone.now()
    claimed = (
        OperatorNotice.objects.filter(pk=notice_id, sent_at__isnull=True)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=now + LEASE, attempts=F("attempts") + 1)
    )
    if not claimed:
        return False
    notice = OperatorNotice.objects.get(pk=notice_id)
    try:
        if not settings.ADMINS:
            raise RuntimeError(NO_ADDRESS)
        mail_admins(f"[{settings.CHATTONIC_REGION}] {notice.subject}", notice.body)
    except Exception as exc:  # noqa: BLE001 - any failure to send: wait and try again
        delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (notice.attempts - 1))
        OperatorNotice.objects.filter(pk=notice_id).update(
            locked_until=None,
            next_attempt_at=now + timedelta(seconds=delay),
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        logger.error("operator notice #%s not sent (%s); retry in %.0fs", notice_id, exc, delay)
        return False
    OperatorNotice.objects.filter(pk=notice_id).update(
        sent_at=timezone.now(), locked_until=None, last_error=""
    )
    return True


def notices_send_due(*, now: datetime | None = None) -> int:
    """Send every unsent notice whose time has come (oldest first); how many went out."""
    now = now or timezone.now()
    due = OperatorNotice.objects.filter(sent_at__isnull=True, next_attempt_at__lte=now)
    ids = list(due.order_by("created_at", "id").values_list("pk", flat=True)[:BATCH])
    return sum(notice_send(notice_id=pk, now=now) for pk in ids)
