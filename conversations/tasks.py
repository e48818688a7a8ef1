"""Celery tasks of the conversations."""

from __future__ import annotations

from celery import shared_task

from conversations.services import sandbox_purge as purge


@shared_task
def sandbox_purge() -> int:
    """Delete sandbox conversations older than a week."""
    return purge()
