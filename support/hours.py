"""Support hours and first-response due times: pure arithmetic, no settings, no database.

A :class:`SupportCalendar` says when support works: some weekdays, one daily window
(``start`` to ``end``, local time), a time zone and holidays. :func:`add_support_time` counts
a duration in support time only (nights, weekends and holidays do not count);
:func:`add_wall_clock` counts around the clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+\-\u2212])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
# A calendar with support on some day gets there within a few weeks even through long
# holiday seasons; this bound only stops a calendar without any support day from looping.
_MAX_DAYS = 3 * 366


class CalendarError(ValueError):
    """The support hours are not usable (no weekday, an empty window, an unknown zone)."""


def parse_time_zone(value: str) -> tzinfo:
    """``"-03:00"``, ``"UTC-3"`` or ``"UTC"`` (a fixed offset), or an IANA name."""
    text = (value or "UTC").strip()
    if text.upper() in ("UTC", "GMT", "Z"):
        return UTC
    match = _OFFSET.match(text)
    if match:
        sign = -1 if match.group(1) in "-\u2212" else 1
        hours, minutes = int(match.group(2)), int(match.group(3) or 0)
        if hours > 14 or minutes > 59:
            raise CalendarError(f"{value!r} is not a UTC offset")
        offset = timedelta(hours=hours, minutes=minutes) * sign
        return timezone(offset, name=f"UTC{format_offset(offset)}")
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarError(f"{value!r} is neither a UTC offset nor a time zone name") from None


def format_offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def parse_clock(value: str) -> time:
    try:
        hours, minutes = (int(part) for part in value.strip().split(":"))
        if hours == 24 and minutes == 0:
            return time.max
        return time(hours, minutes)
    except (ValueError, TypeError):
        raise CalendarError(f"{value!r} is not a time of day (HH:MM)") from None


@dataclass(frozen=True)
class SupportCalendar:
    """When support works. ``days`` are weekday numbers (0 = Monday)."""

    days: frozenset[int]
    start: time
    end: time
    zone: tzinfo
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self):
        if not self.days:
            raise CalendarError("Support hours need at least one weekday.")
        if not self.start < self.end:
            raise CalendarError("Support hours must start before they end.")

    @classmethod
    def build(
        cls,
        *,
        days: list[str] | tuple[str, ...],
        start: str,
        end: str,
        zone: str,
        holidays: list[date] | set[date] | tuple[date, ...] = (),
    ) -> SupportCalendar:
        """A calendar from the settings' words: ``["mon", ...]``, ``"09:00"``, ``"-03:00"``."""
        numbers = set()
        for day in days:
            key = day.strip().lower()[:3]
            if key not in WEEKDAYS:
                raise CalendarError(f"{day!r} is not a weekday (mon, tue, ...)")
            numbers.add(WEEKDAYS.index(key))
        return cls(
            days=frozenset(numbers),
            start=parse_clock(start),
            end=parse_clock(end),
            zone=parse_time_zone(zone),
            holidays=frozenset(holidays),
        )

    def is_support_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def window(self, day: date) -> tuple[datetime, datetime]:
        """The support window of a local day, as aware datetimes in the calendar's zone."""
        opens = datetime.combine(day, self.start, tzinfo=self.zone)
        if self.end == time.max:
            closes = datetime.combine(day + timedelta(days=1), time.min, tzinfo=self.zone)
        else:
            closes = datetime.combine(day, self.end, tzinfo=self.zone)
        return opens, closes

    def describe(self) -> str:
        """E.g. ``"Mon-Fri 09:00-18:00 (UTC-03:00)"`` (with en dashes)."""
        names = [WEEKDAYS[n].capitalize() for n in sorted(self.days)]
        numbers = sorted(self.days)
        if len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1)):
            days = f"{names[0]}\u2013{names[-1]}"
        else:
            days = ", ".join(names)
        end = "24:00" if self.end == time.max else self.end.strftime("%H:%M")
        return f"{days} {self.start.strftime('%H:%M')}\u2013{end} ({zone_label(self.zone)})"


def zone_label(zone: tzinfo) -> str:
    if isinstance(zone, ZoneInfo):
        return zone.key
    return str(zone)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("support-time arithmetic needs aware datetimes")
    return moment


def add_wall_clock(start: datetime, duration: timedelta) -> datetime:
    """``start`` plus ``duration`` around the clock."""
    return _aware(start) + duration


def add_support_time(start: datetime, duration: timedelta, calendar: SupportCalendar) -> datetime:
    """The moment when ``duration`` of support time has passed since ``start``.

    Time outside the support windows (nights, non-support weekdays, holidays) does not
    count. A duration that ends exactly at a window's close ends there, not at the next
    opening. The result is in the calendar's zone.
    """
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    cursor = _aware(start).astimezone(calendar.zone)
    remaining = duration
    day = cursor.date()
    for _ in range(_MAX_DAYS):
        if calendar.is_support_day(day):
            opens, closes = calendar.window(day)
            begin = max(cursor, opens)
            if begin < closes:
                available = closes - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
        day += timedelta(days=1)
        cursor = datetime.combine(day, time.min, tzinfo=calendar.zone)
    raise CalendarError("no support hours in the next three years")


def support_time_between(start: datetime, end: datetime, calendar: SupportCalendar) -> timedelta:
    """How much support time lies between ``start`` and ``end`` (zero if end <= start)."""
    start = _aware(start).astimezone(calendar.zone)
    end = _aware(end).astimezone(calendar.zone)
    total = timedelta(0)
    day = start.date()
    while day <= end.date():
        if calendar.is_support_day(day):
            opens, closes = calendar.window(day)
            begin, finish = max(start, opens), min(end, closes)
            if begin < finish:
                total += finish - begin
        day += timedelta(days=1)
    return total
