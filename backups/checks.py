"""System checks: a bad backup setting fails ``manage.py check`` and startup, not 03:00."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

from backups import crypto
from backups.errors import BackupError


@register()
def backup_settings_check(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    named = [("BACKUP_ENCRYPTION_KEY", settings.BACKUP_ENCRYPTION_KEY)] + [
        ("BACKUP_OLD_ENCRYPTION_KEYS", value) for value in settings.BACKUP_OLD_ENCRYPTION_KEYS
    ]
    for name, value in named:
        if not value:
            continue
        try:
            crypto.key_parse(value, name=name)
        except BackupError as exc:
            errors.append(Error(exc.message, id="backups.E001"))
    if settings.BACKUP_KEEP < 1:
        errors.append(
            Error(f"BACKUP_KEEP must be at least 1, not {settings.BACKUP_KEEP}.", id="backups.E002")
        )
    return errors
