"""Whether a moment falls within a bot's business hours (pure)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def within_business_hours(hours: dict, time_zone: str, now: datetime) -> bool:
    """True if ``now`` (aware) is inside one of the weekday's ["HH:MM", "HH:MM") ranges."""
    local = now.astimezone(ZoneInfo(time_zone or "UTC"))
    clock = local.strftime("%H:%M")
    return any(
        start <= clock < end for start, end in (hours or {}).get(WEEKDAYS[local.weekday()], [])
    )
