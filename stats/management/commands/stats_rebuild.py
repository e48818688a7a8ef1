"""Rebuild the daily statistics of past days (a backfill; the periodic task keeps the last two).

manage.py stats_rebuild --days 365
manage.py stats_rebuild --start 2026-01-01 --end 2026-03-31 [--tenant 7]
"""

from __future__ import annotations

from datetime import UTC, date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from chattonic.tenancy.models import Tenant
from stats.services import stats_rebuild


class Command(BaseCommand):
    help = "Rebuild the daily statistics of a range of days (UTC), for every tenant or one."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, help="The last N days, today included.")
        parser.add_argument("--start", type=date.fromisoformat)
        parser.add_argument("--end", type=date.fromisoformat)
        parser.add_argument("--tenant", type=int, help="A tenant id; every tenant by default.")

    def handle(self, *args, days=None, start=None, end=None, tenant=None, **options):
        today = timezone.now().astimezone(UTC).date()
        if days is not None:
            if days < 1:
                raise CommandError("--days must be 1 or more.")
            start, end = today - timedelta(days=days - 1), today
        if start is None:
            raise CommandError("Give --days, or --start (and --end, by default today).")
        end = end or today
        if end < start:
            raise CommandError("--end is before --start.")
        tenants = Tenant.objects.order_by("pk")
        if tenant is not None:
            tenants = tenants.filter(pk=tenant)
            if not tenants.exists():
                raise CommandError(f"No tenant {tenant}.")
        rows = 0
        for tenant_id in tenants.values_list("pk", flat=True):
            # A month at a time, so that each transaction stays short.
            day = start
            while day <= end:
                last = min(end, day + timedelta(days=30))
                rows += stats_rebuild(tenant_id=tenant_id, start=day, end=last)
                day = last + timedelta(days=1)
        self.stdout.write(f"Rebuilt {start}..{end}: {rows} daily rows.")
