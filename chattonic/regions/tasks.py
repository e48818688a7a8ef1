"""Periodic: copy the other regions' identity rows here."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from chattonic.regions.exchange import identities_pull_all


@shared_task
def identities_pull() -> dict:
    """Pull every other region's identity rows (tenants, staff, memberships, API keys' public
    parts); nothing when the exchange is off (no CHATTONIC_REGIONS_SECRET). Safe to run twice."""
    if not settings.CHATTONIC_REGIONS_SECRET:
        return {}
    return identities_pull_all()
