from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from backups import selectors, services
from backups.errors import BackupError
from backups.management.commands._progress import Progress
from backups.models import BackupRun, RestoreCheck, Trigger


class Command(BaseCommand):
    help = (
        "Verify a copy against its manifest (size, SHA-256, decryption with the key): a "
        "backup id, a copy file or its manifest; by default the newest copy. With "
        "--restore-check, also restore it into a scratch database and compare."
    )

    def add_arguments(self, parser):
        parser.add_argument("backup", nargs="?", help="backup id, copy file or manifest")
        parser.add_argument(
            "--restore-check",
            action="store_true",
            help="also restore the copy into a scratch database and compare it with the manifest",
        )

    def handle(self, *args, backup=None, restore_check=False, **options):
        report = Progress(self.stdout, verbosity=options["verbosity"])
        if backup and not backup.isdigit():
            if restore_check:
                raise CommandError("--restore-check takes a backup id (a copy with a record).")
            try:
                manifest = services.copy_verify_file(path=Path(backup), report=report)
            except BackupError as exc:
                raise CommandError(exc.message) from None
            self.stdout.write(
                self.style.SUCCESS(f"{manifest['file']} matches its manifest: verified.")
            )
            return
        run = (
            BackupRun.objects.filter(pk=int(backup)).first()
            if backup
            else selectors.backup_newest()
        )
        if run is None:
            raise CommandError(f"There is no backup #{backup}." if backup else "There is no copy.")
        try:
            services.backup_verify(run=run, report=report)
        except BackupError as exc:
            raise CommandError(exc.message) from None
        if not run.verified:
            raise CommandError(f"Backup #{run.pk} fails verification: {run.verification_error}")
        self.stdout.write(self.style.SUCCESS(f"Backup #{run.pk} is verified: {run.file_path}"))
        if restore_check:
            check = services.restore_check_run(backup=run, trigger=Trigger.COMMAND, report=report)
            if check.status != RestoreCheck.Status.PASSED:
                raise CommandError(f"Restore check #{check.pk} failed.")
            self.stdout.write(self.style.SUCCESS(f"Restore check #{check.pk} passed."))
