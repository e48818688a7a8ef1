"""Re-encrypt every stored secret with the newest key of CHATTONIC_ENCRYPTION_KEY.

1. Put a new key first: CHATTONIC_ENCRYPTION_KEY=<new>,<old> (every process).
2. manage.py secrets_rotate
3. Drop the old key: CHATTONIC_ENCRYPTION_KEY=<new>.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from messaging.services import secrets_rotate


class Command(BaseCommand):
    help = "Re-encrypt channel credentials and lead webhook secrets with the newest key."

    def handle(self, *args, **options):
        counts = secrets_rotate()
        self.stdout.write(
            f"re-encrypted {counts['channels']} channels' credentials and "
            f"{counts['lead_webhooks']} lead webhooks' signing secrets with the newest key"
        )
