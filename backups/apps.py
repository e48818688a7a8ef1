import sys

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _erasures_reapply(sender, using="default", **kwargs):
    """After every migrate: a database restored by hand (pg_restore) forgets no erase."""
    from backups import ledger

    if using == "default":
        ledger.erasures_reapply_report(kwargs.get("stdout") or sys.stdout)


class BackupsConfig(AppConfig):
    name = "backups"

    def ready(self):
        # why: ready() runs once every app's models are loaded, which these modules import.
        from backups import (
            checks,  # noqa: F401 - registers the system checks
            ledger,
        )
        from privacy import hooks  # why: as above (registers this app's answers)

        hooks.erasure_recorded_register(ledger.erasure_record)
        post_migrate.connect(
            _erasures_reapply, sender=self, dispatch_uid="backups.erasures_reapply"
        )
