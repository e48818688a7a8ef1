"""The daily statistics of each bot and kind of channel."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from chattonic.core.kinds import ChannelKind
from chattonic.tenancy.models import TenantOwned


class DailyStat(TenantOwned):
    """The statistics of one bot on one kind of channel on one day (UTC): counts and the
    samples that medians need, without personal data. Sandbox conversations never count.

    ``live`` rows are rebuilt from the conversations by a periodic task; ``erased`` rows hold
    what erased contacts contributed, so that erasing a contact keeps the statistics.
    """

    class Part(models.TextChoices):
        LIVE = "live", "Live"
        ERASED = "erased", "Erased contacts"

    day = models.DateField()
    bot = models.ForeignKey("bots.Bot", null=True, blank=True, on_delete=models.CASCADE)
    channel_kind = models.CharField(max_length=12, choices=ChannelKind.choices, blank=True)
    part = models.CharField(max_length=6, choices=Part.choices, default=Part.LIVE)
    conversations = models.PositiveIntegerField(default=0)
    messages_in = models.PositiveIntegerField(default=0)
    messages_out = models.PositiveIntegerField(default=0)
    contained = models.PositiveIntegerField(default=0)
    handoffs = models.PositiveIntegerField(default=0)
    leads = models.PositiveIntegerField(default=0)
    # Seconds from the handoff to the first agent reply, and from the start to the resolution.
    first_response_seconds = models.JSONField(default=list, blank=True)
    resolution_seconds = models.JSONField(default=list, blank=True)
    # How many ratings of 1, 2, 3, 4 and 5.
    csat_counts = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # The table keeps the name it had in the conversations app (moved without copying).
        db_table = "conversations_dailystat"
        ordering = ["-day", "bot_id", "channel_kind"]
        # The page is the Statistics; a row is one day's figures (not a "daily stat").
        verbose_name = "day's statistics"
        verbose_name_plural = "statistics"
        indexes = [models.Index(fields=["tenant", "day"], name="dailystat_tenant_day")]

    def __str__(self) -> str:
        return f"{self.day} bot {self.bot_id} {self.channel_kind} ({self.part})"
