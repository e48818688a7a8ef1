"""The service terms' first-response targets, from the settings and the holidays.

A service interruption is answered within ``SUPPORT_INTERRUPTION_TARGET_HOURS`` of its
report, around the clock; everything else within ``SUPPORT_RESPONSE_TARGET_HOURS`` of
support time (``SUPPORT_DAYS``, ``SUPPORT_HOURS_START``-``SUPPORT_HOURS_END`` in
``SUPPORT_TIME_ZONE``, less ``SUPPORT_HOLIDAYS`` and the holidays in the dashboard).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from support.hours import (
    SupportCalendar,
    add_support_time,
    add_wall_clock,
    parse_time_zone,
    zone_label,
)
from support.models import SupportHoliday, Ticket


def _setting_holidays() -> set[date]:
    return {date.fromisoformat(day) for day in settings.SUPPORT_HOLIDAYS}


def support_calendar() -> SupportCalendar:
    holidays = _setting_holidays() | set(SupportHoliday.objects.values_list("date", flat=True))
    return SupportCalendar.build(
        days=settings.SUPPORT_DAYS,
        start=settings.SUPPORT_HOURS_START,
        end=settings.SUPPORT_HOURS_END,
        zone=settings.SUPPORT_TIME_ZONE,
        holidays=holidays,
    )


def first_response_due(
    *, created_at: datetime, severity: str, calendar: SupportCalendar | None = None
) -> datetime:
    """When the first answer to a ticket of ``severity`` reported at ``created_at`` is due."""
    if severity == Ticket.Severity.INTERRUPTION:
        return add_wall_clock(
            created_at, timedelta(hours=settings.SUPPORT_INTERRUPTION_TARGET_HOURS)
        )
    return add_support_time(
        created_at,
        timedelta(hours=settings.SUPPORT_RESPONSE_TARGET_HOURS),
        calendar or support_calendar(),
    )


@dataclass(frozen=True)
class ResponseState:
    """Where a ticket stands against its first-response target."""

    state: str  # "due" (counting down), "met", "breached", "closed" (by the reporter first)
    due_at: datetime
    remaining: timedelta  # until due (negative once past); zero once answered

    @property
    def label(self) -> str:
        if self.state == "met":
            return "Met"
        if self.state == "breached":
            return "Breached"
        if self.state == "closed":
            return "Not needed: closed"
        return f"Due in {format_duration(self.remaining)}"


def response_state(ticket: Ticket, now: datetime | None = None) -> ResponseState:
    now = now or timezone.now()
    due = ticket.first_response_due_at
    if ticket.first_response_at is not None:
        state = "met" if ticket.first_response_at <= due else "breached"
        return ResponseState(state, due, timedelta(0))
    if ticket.status == Ticket.Status.CLOSED:
        # The reporter closed it before support answered: nothing is due any more (it read
        # "Due in 16 h" on a closed ticket, and would have been flagged as breached).
        return ResponseState("closed", due, timedelta(0))
    if now > due:
        return ResponseState("breached", due, due - now)
    return ResponseState("due", due, due - now)


def format_duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d"] if days else []
    if hours or days:
        parts.append(f"{hours} h")
    parts.append(f"{minutes} min")
    return " ".join(parts)


def format_local(moment: datetime, *, short: bool = False) -> str:
    """A moment in the support time zone, e.g. ``"Mon 2026-03-02 14:00 (UTC-03:00)"``
    (short: ``"Mon 03-02 14:00 UTC-03:00"``)."""
    zone = parse_time_zone(settings.SUPPORT_TIME_ZONE)
    if short:
        return f"{moment.astimezone(zone):%a %m-%d %H:%M} {zone_label(zone)}"
    return f"{moment.astimezone(zone):%a %Y-%m-%d %H:%M} ({zone_label(zone)})"


def expectation(ticket: Ticket, calendar: SupportCalendar | None = None) -> str:
    """What the reporter may expect, in words."""
    due = format_local(ticket.first_response_due_at)
    if ticket.first_response_at is not None:
        return f"Support answered on {format_local(ticket.first_response_at)}."
    if response_state(ticket).state == "closed":
        return "Closed before an answer: nothing more is due. A new problem is a new report."
    if ticket.severity == Ticket.Severity.INTERRUPTION:
        return (
            f"Expect a first answer by {due}: service interruptions are answered within "
            f"{settings.SUPPORT_INTERRUPTION_TARGET_HOURS} hours, around the clock."
        )
    return (
        f"Expect a first answer by {due}: we answer within "
        f"{settings.SUPPORT_RESPONSE_TARGET_HOURS} support hours: "
        f"{(calendar or support_calendar()).describe()}."
    )
