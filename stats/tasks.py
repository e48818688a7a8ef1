"""Celery tasks of the statistics."""

from __future__ import annotations

from celery import shared_task

from stats.services import stats_rebuild_recent as rebuild


@shared_task
def stats_rebuild_recent() -> int:
    """Recompute every tenant's statistics of today and yesterday."""
    return rebuild(days=2)
