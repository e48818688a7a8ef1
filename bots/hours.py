"""A bot's business hours (pure): whether a moment falls within them, and their one stored form.

``{"mon": [["09:00", "12:00"], ["13:00", "18:00"]], "sat": [["10:00", "14:00"]]}``: per weekday,
its opening ranges in the bot's time zone, from "HH:MM" up to (not including) "HH:MM", in order
and apart; "24:00" ends a range at midnight. A weekday that is not there is closed.
"""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = dict(
    zip(
        WEEKDAYS,
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        strict=True,
    )
)
MIDNIGHT = "24:00"
MAX_RANGES_A_DAY = 12


def within_business_hours(hours: dict, time_zone: str, now: datetime) -> bool:
    """True if ``now`` (aware) is inside one of the weekday's ["HH:MM", "HH:MM") ranges."""
    local = now.astimezone(ZoneInfo(time_zone or "UTC"))
    clock = local.strftime("%H:%M")
    return any(
        start <= clock < end for start, end in (hours or {}).get(WEEKDAYS[local.weekday()], [])
    )


def is_clock_time(value: object, *, end: bool = False) -> bool:
    """ "HH:MM" from 00:00 to 23:59 (and "24:00" for the end of a range)."""
    if end and value == MIDNIGHT:
        return True
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        return False
    hours, minutes = value[:2], value[3:]
    return hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60


def business_hours_normalize(hours: object) -> dict[str, list[list[str]]]:
    """``hours`` in the stored form (open days only, ranges in order); a ValueError says what
    is wrong, naming the weekday."""
    shape = 'Per weekday (mon … sun) a list of ["HH:MM", "HH:MM"] ranges.'
    if not isinstance(hours, dict) or set(hours) - set(WEEKDAYS):
        raise ValueError(shape)
    normalized: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        ranges = hours.get(day) or []
        name = WEEKDAY_NAMES[day]
        if not isinstance(ranges, list):
            raise ValueError(shape)
        if len(ranges) > MAX_RANGES_A_DAY:
            raise ValueError(f"{name}: at most {MAX_RANGES_A_DAY} ranges.")
        pairs: list[list[str]] = []
        for pair in ranges:
            if not (
                isinstance(pair, list | tuple)
                and len(pair) == 2
                and is_clock_time(pair[0])
                and is_clock_time(pair[1], end=True)
            ):
                raise ValueError(
                    f'{name}: each range is ["HH:MM", "HH:MM"], such as 09:00 to 18:00.'
                )
            start, end = pair
            if start >= end:
                raise ValueError(
                    f"{name}: {start} to {_shown(end)} must end after it starts (a range past "
                    f"midnight is two: until 00:00, then from 00:00 the next day)."
                )
            pairs.append([start, end])
        pairs.sort()
        for before, after in pairwise(pairs):
            if after[0] < before[1]:
                raise ValueError(
                    f"{name}: {before[0]} to {_shown(before[1])} and "
                    f"{after[0]} to {_shown(after[1])} overlap."
                )
        if pairs:
            normalized[day] = pairs
    return normalized


def _shown(end: str) -> str:
    return "00:00" if end == MIDNIGHT else end
