from django.core.management.base import BaseCommand, CommandError

from backups import services
from backups.management.commands._progress import Progress
from chattonic.core.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Restore a copy (a backup id, a copy file or its manifest) into the database at "
        "--into. The copy is verified first; a database that has data is refused unless "
        "--force, which drops and recreates it. See docs/restore.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("backup", help="backup id, copy file or its manifest")
        parser.add_argument(
            "--into",
            required=True,
            metavar="DATABASE_URL",
            help="e.g. postgres://user:pass@host:5432/chattonic or sqlite:////path/db.sqlite3",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="restore over a database that has data (dropping everything in it)",
        )

    def handle(self, *args, backup, into, force=False, **options):
        report = Progress(self.stdout, verbosity=options["verbosity"])
        try:
            result = services.backup_restore(source=backup, into=into, force=force, report=report)
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        manifest = result.manifest
        for note in result.comparison.notes:
            self.stdout.write(f"  {note}")
        if result.comparison.problems:
            problems = "\n".join(f"  - {p}" for p in result.comparison.problems)
            raise CommandError(
                f"Restored into {result.target}, but it does not match the manifest:\n{problems}"
            )
        for line in result.erasures:
            self.stdout.write(f"  {line}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Restored backup #{manifest.get('run_id')} (taken {manifest.get('started_at')}, "
                f"app version {manifest.get('app_version')}) into {result.target} "
                f"in {result.seconds:.1f}s."
            )
        )
        self.stdout.write(
            "Next: point DATABASE_URL at it, run `python manage.py migrate`, then start the "
            "platform (see docs/restore.md)."
        )
