"""``manage.py regions_pull``: copy the other regions' identity rows here now."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from chattonic.regions.exchange import identities_pull_all


class Command(BaseCommand):
    help = (
        "Copy the tenants, staff, memberships and API keys' public parts of every other "
        "region's deployment here (docs/regions.md). Nothing else crosses."
    )

    def handle(self, *args, **options):
        failed = False
        for region, result in identities_pull_all().items():
            if isinstance(result, str):
                failed = True
                self.stderr.write(f"{region}: {result}")
            else:
                counts = ", ".join(f"{count} {kind}" for kind, count in result.items())
                self.stdout.write(f"{region}: {counts}")
        if failed:
            raise CommandError("Some regions could not be pulled.")
