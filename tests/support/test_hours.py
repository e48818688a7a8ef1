"""Support hours and first-response due times: the pure arithmetic of support/hours.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from support.hours import (
    CalendarError,
    SupportCalendar,
    add_support_time,
    add_wall_clock,
    parse_time_zone,
    support_time_between,
)

UTC_MINUS_3 = timezone(timedelta(hours=-3))
SIX_HOURS = timedelta(hours=6)


def at(*args) -> datetime:
    """A moment at UTC-3, the default support time zone."""
    return datetime(*args, tzinfo=UTC_MINUS_3)


def default_calendar(holidays=()) -> SupportCalendar:
    return SupportCalendar.build(
        days=["mon", "tue", "wed", "thu", "fri"],
        start="09:00",
        end="18:00",
        zone="-03:00",
        holidays=holidays,
    )


# --- The two examples of the service terms (issue 8) -----------------------------------------


def test_an_interruption_reported_saturday_2am_is_due_saturday_8am():
    # 2026-03-07 is a Saturday.
    assert at(2026, 3, 7).weekday() == 5
    assert add_wall_clock(at(2026, 3, 7, 2, 0), SIX_HOURS) == at(2026, 3, 7, 8, 0)


def test_an_inquiry_reported_friday_5pm_is_due_monday_2pm():
    assert at(2026, 3, 6).weekday() == 4
    due = add_support_time(at(2026, 3, 6, 17, 0), SIX_HOURS, default_calendar())
    assert due == at(2026, 3, 9, 14, 0)
    assert due.utcoffset() == timedelta(hours=-3)


# --- Nights, weekends, holidays ---------------------------------------------------------------


def test_within_one_day():
    assert add_support_time(at(2026, 3, 4, 9, 30), SIX_HOURS, default_calendar()) == at(
        2026, 3, 4, 15, 30
    )


def test_across_a_night():
    # Wednesday 16:00: two hours left that day, four more on Thursday from 09:00.
    assert add_support_time(at(2026, 3, 4, 16, 0), SIX_HOURS, default_calendar()) == at(
        2026, 3, 5, 13, 0
    )


def test_reported_at_night_counts_from_the_next_opening():
    assert add_support_time(at(2026, 3, 4, 23, 45), SIX_HOURS, default_calendar()) == at(
        2026, 3, 5, 15, 0
    )
    assert add_support_time(at(2026, 3, 5, 3, 0), SIX_HOURS, default_calendar()) == at(
        2026, 3, 5, 15, 0
    )


def test_reported_on_a_weekend_counts_from_monday():
    assert add_support_time(at(2026, 3, 8, 11, 0), SIX_HOURS, default_calendar()) == at(
        2026, 3, 9, 15, 0
    )


def test_ending_exactly_at_closing_time_stays_that_day():
    assert add_support_time(at(2026, 3, 4, 12, 0), SIX_HOURS, default_calendar()) == at(
        2026, 3, 4, 18, 0
    )


def test_a_holiday_is_skipped_like_a_weekend():
    # Monday 2026-03-09 is a holiday: Friday 17:00 + 6 h is due Tuesday 14:00.
    calendar = default_calendar(holidays={date(2026, 3, 9)})
    assert add_support_time(at(2026, 3, 6, 17, 0), SIX_HOURS, calendar) == at(2026, 3, 10, 14, 0)


def test_a_holiday_week_and_a_weekend_in_a_row():
    # Carnival: Monday and Tuesday off, reported on the Friday before at 17:30.
    calendar = default_calendar(holidays={date(2026, 2, 16), date(2026, 2, 17)})
    due = add_support_time(at(2026, 2, 13, 17, 30), SIX_HOURS, calendar)
    assert due == at(2026, 2, 18, 14, 30)


def test_interruptions_ignore_holidays_and_nights():
    assert add_wall_clock(at(2026, 12, 24, 22, 0), SIX_HOURS) == at(2026, 12, 25, 4, 0)


def test_input_in_another_zone_is_converted():
    # Friday 20:00 UTC is Friday 17:00 at UTC-3.
    friday = datetime(2026, 3, 6, 20, 0, tzinfo=UTC)
    assert add_support_time(friday, SIX_HOURS, default_calendar()) == at(2026, 3, 9, 14, 0)


def test_a_longer_target_spans_several_days():
    due = add_support_time(at(2026, 3, 5, 10, 0), timedelta(hours=20), default_calendar())
    # Thu 10-18 (8 h), Fri 9-18 (9 h), Mon 9-12 (3 h).
    assert due == at(2026, 3, 9, 12, 0)


def test_support_time_between_counts_only_support_hours():
    calendar = default_calendar()
    assert support_time_between(at(2026, 3, 6, 17, 0), at(2026, 3, 9, 14, 0), calendar) == (
        SIX_HOURS
    )
    assert support_time_between(at(2026, 3, 7, 0, 0), at(2026, 3, 8, 23, 0), calendar) == (
        timedelta(0)
    )


# --- Configuration ---------------------------------------------------------------------------


def test_configurable_days_hours_and_zone():
    calendar = SupportCalendar.build(
        days=["mon", "tue", "wed", "thu", "fri", "sat"], start="08:00", end="12:00", zone="UTC"
    )
    saturday = datetime(2026, 3, 7, 11, 0, tzinfo=UTC)
    assert add_support_time(saturday, timedelta(hours=3), calendar) == datetime(
        2026, 3, 9, 10, 0, tzinfo=UTC
    )
    assert calendar.describe() == "Mon\u2013Sat 08:00\u201312:00 (UTC)"


def test_iana_zone_names_work():
    calendar = SupportCalendar.build(
        days=["mon", "tue", "wed", "thu", "fri"],
        start="09:00",
        end="18:00",
        zone="America/Sao_Paulo",
    )
    due = add_support_time(at(2026, 3, 6, 17, 0), SIX_HOURS, calendar)
    assert due == at(2026, 3, 9, 14, 0)


@pytest.mark.parametrize("text", ["-03:00", "UTC-3", "UTC\u221203:00", "-0300"])
def test_offsets_parse(text):
    assert parse_time_zone(text).utcoffset(None) == timedelta(hours=-3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"days": [], "start": "09:00", "end": "18:00", "zone": "UTC"},
        {"days": ["mon"], "start": "18:00", "end": "09:00", "zone": "UTC"},
        {"days": ["funday"], "start": "09:00", "end": "18:00", "zone": "UTC"},
        {"days": ["mon"], "start": "9am", "end": "18:00", "zone": "UTC"},
        {"days": ["mon"], "start": "09:00", "end": "18:00", "zone": "Mars/Olympus"},
    ],
)
def test_unusable_calendars_are_refused(kwargs):
    with pytest.raises(CalendarError):
        SupportCalendar.build(**kwargs)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        add_support_time(datetime(2026, 3, 6, 17, 0), SIX_HOURS, default_calendar())
