from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from backups import ledger


class Command(BaseCommand):
    help = (
        "Erase again every contact of the erasure ledger that the database holds (after a "
        "restore of a copy taken before those erases). `restore` runs it; so does every "
        "`migrate`. See docs/restore.md."
    )
    # The schema may be older than the code (a restored copy): migrate first, then check.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--ledger",
            dest="ledger_file",
            help="the ledger file (default: BACKUP_DIR/erasure-ledger.jsonl)",
        )

    def handle(self, *args, ledger_file: str | None = None, **options):
        path = Path(ledger_file) if ledger_file else None
        shown = path or ledger_default()
        if not ledger_entries(path):
            self.stdout.write(f"Erasure ledger {shown}: nothing to re-apply.")
            return
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            # This code's models need the newer schema; migrate re-applies them (post_migrate).
            self.stdout.write("Bringing the schema forward (migrate) to re-apply erasures.")
            call_command("migrate", interactive=False, verbosity=0, stdout=self.stdout)
        done = ledger.erasures_reapply_report(self.stdout, path=path)
        self.stdout.write(f"Erasure ledger {shown}: checked; {len(done)} re-applied now.")


def ledger_default() -> Path:
    return ledger.ledger_path()


def ledger_entries(path: Path | None) -> list[dict]:
    return ledger.ledger_read(path)
