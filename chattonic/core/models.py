"""The platform's own records: the operators' notices outbox."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class OperatorNotice(models.Model):
    """A notice to the operators (a breached ticket, a failed backup or restore check), kept
    until the mail is sent: written with the change it tells of, sent after the commit, and
    retried by the periodic task while sending fails or no operator address is set."""

    # What the notice is about ("ticket.breach:<ids>", "restore_check.failed:<id>"): the
    # same notice queued twice is one notice.
    key = models.CharField(max_length=200, unique=True)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A sender's claim: another sender leaves the notice alone until then.
    locked_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="operatornotice_unsent",
                condition=models.Q(sent_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return self.subject
