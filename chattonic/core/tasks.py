"""Platform housekeeping tasks."""

from celery import shared_task
from django.core.management import call_command


@shared_task
def sessions_clear() -> None:
    """Delete expired sessions from the session store."""
    call_command("clearsessions")
