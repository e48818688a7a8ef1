"""Platform housekeeping tasks."""

from celery import shared_task
from django.core.management import call_command

from chattonic.core import notices


@shared_task
def sessions_clear() -> None:
    """Delete expired sessions from the session store."""
    call_command("clearsessions")


@shared_task
def operator_notices_send() -> None:
    """Send the operators' notices that are still unsent (mail failed, or no address yet)."""
    notices.notices_send_due()
