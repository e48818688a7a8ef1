"""Deployment checks (``manage.py check --deploy``) for the mail that staff and operators get."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

# Backends that deliver nothing: the console writes each message (invitation links
# included) to the web process's log, the others keep or drop it.
UNDELIVERED_MAIL = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
}


@register(Tags.security, deploy=True)
def mail_delivery_check(app_configs=None, **kwargs) -> list[Warning]:
    if settings.DEBUG or settings.EMAIL_BACKEND not in UNDELIVERED_MAIL:
        return []
    return [
        Warning(
            f"EMAIL_BACKEND is {settings.EMAIL_BACKEND} with DEBUG off: staff invitations "
            "(one-time links that make an account) are written to the log or dropped, never "
            "delivered.",
            hint="Set EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST "
            "(README, Environment).",
            id="tenancy.W001",
        )
    ]


@register(Tags.security)
def operator_emails_check(app_configs=None, **kwargs) -> list[Error]:
    """Not only at deployment: every command that runs the checks (migrate, runserver,
    check) refuses to go on, since a breach or a failed backup would reach no one."""
    if settings.DEBUG or settings.ADMINS:
        return []
    return [
        Error(
            "OPERATOR_EMAILS is empty with DEBUG off: failed backups and restore checks, "
            "support tickets past their response target and server errors would reach no one "
            "(their notices would wait, unsent, in the outbox).",
            hint="Set OPERATOR_EMAILS to the operators' addresses, comma-separated.",
            id="tenancy.E002",
        )
    ]
