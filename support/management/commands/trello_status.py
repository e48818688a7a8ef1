"""``manage.py trello_status [--sync]``: the Trello mirror's status; --sync carries what waits."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from support import selectors
from support.trello import sync


class Command(BaseCommand):
    help = (
        "Show whether tickets are mirrored to Trello and how the mirror is doing. With --sync, "
        "first register the board's webhook if needed and carry every due change (the "
        "periodic catch-up, run now)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--sync", action="store_true", help="Run the catch-up now.")

    def handle(self, *args, **options):
        if options.get("sync"):
            summary = sync.outbox_catch_up()
            self.stdout.write(
                f"Carried {summary['done']} change(s) for {summary['tickets']} ticket(s)."
            )
        status = selectors.trello_status()
        self.stdout.write(status.message)
        if not status.enabled:
            return
        rows = [
            ("Board", status.board_id),
            ("Webhook", status.webhook),
            ("Last sync", status.last_success_at or "never"),
            ("Last change from Trello", status.last_webhook_at or "none yet"),
            ("Waiting", f"{status.pending} (oldest since {status.oldest_pending_at or '-'})"),
            ("Failed for good", status.failed),
            (
                "Last error",
                f"{status.last_error} ({status.last_error_at})" if status.last_error else "none",
            ),
        ]
        for name, value in rows:
            self.stdout.write(f"{name}: {value}")
