"""Conversation housekeeping and delivery tasks."""

from __future__ import annotations

from celery import shared_task


@shared_task
def sandbox_purge() -> int:
    """Delete sandbox conversations older than a week."""
    from conversations.services import sandbox_purge as purge

    return purge()
