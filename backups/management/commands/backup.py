from django.core.management.base import BaseCommand, CommandError

from backups import services
from backups.archive import size_human
from backups.management.commands._progress import Progress
from backups.models import BackupRun, Trigger


class Command(BaseCommand):
    help = (
        "Take a copy of the database now into BACKUP_DIR, with its manifest; verify it "
        "and keep the last BACKUP_KEEP copies. Exits non-zero if anything fails."
    )

    def handle(self, *args, **options):
        report = Progress(self.stdout, verbosity=options["verbosity"])
        run = services.backup_create(trigger=Trigger.COMMAND, report=report)
        if run.status != BackupRun.Status.SUCCEEDED:
            raise CommandError(f"Backup #{run.pk} failed: {run.error}")
        if not run.verified:
            raise CommandError(
                f"Backup #{run.pk} was written but fails verification: {run.verification_error}"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Backup #{run.pk} succeeded and is verified: {run.file_path} "
                f"({size_human(run.size)}, {len(run.row_counts)} tables, {run.total_rows} rows)."
            )
        )
