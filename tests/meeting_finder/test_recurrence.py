"""Next occurrence in local time, across both UK clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from meeting_finder.recurrence import next_occurrence, occurrence_on
from storage.models.meetings import Meeting


def make_meeting(weekday: int, start: time | None, zone: str = "Europe/London") -> Meeting:
    return Meeting(slug="m", name="m", weekday=weekday, start_time=start, timezone=zone)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Spring forward on Sunday 2026-03-29: Monday 19:00 is BST (+01:00) the day after.
        ("2026-03-28T12:00:00+00:00", "2026-03-30T19:00:00+01:00"),
        ("2026-03-23T12:00:00+00:00", "2026-03-23T19:00:00+00:00"),
        # Fall back on Sunday 2026-10-25: Monday 19:00 is GMT (+00:00) the day after.
        ("2026-10-24T12:00:00+00:00", "2026-10-26T19:00:00+00:00"),
        ("2026-10-19T12:00:00+00:00", "2026-10-19T19:00:00+01:00"),
    ],
)
def test_monday_evening_across_clock_changes(now: str, expected: str) -> None:
    start = next_occurrence(make_meeting(0, time(19, 0)), at(now))
    assert start is not None
    assert start.isoformat() == expected


def test_later_today_is_today() -> None:
    start = next_occurrence(make_meeting(0, time(19, 0)), at("2026-03-30T17:59:00+01:00"))
    assert start == at("2026-03-30T19:00:00+01:00")


@pytest.mark.parametrize("now", ["2026-03-30T19:00:00+01:00", "2026-03-30T19:30:00+01:00"])
def test_started_today_moves_to_next_week(now: str) -> None:
    start = next_occurrence(make_meeting(0, time(19, 0)), at(now))
    assert start == at("2026-04-06T19:00:00+01:00")


def test_time_skipped_by_spring_forward_moves_forward() -> None:
    start = next_occurrence(make_meeting(6, time(1, 30)), at("2026-03-28T12:00:00+00:00"))
    assert start is not None
    assert start.isoformat() == "2026-03-29T02:30:00+01:00"


def test_repeated_hour_in_autumn_is_the_first() -> None:
    start = next_occurrence(make_meeting(6, time(1, 30)), at("2026-10-24T12:00:00+00:00"))
    assert start is not None
    assert start.astimezone(UTC) == at("2026-10-25T00:30:00+00:00")


def test_other_zone() -> None:
    meeting = make_meeting(5, time(9, 0), "America/Los_Angeles")
    start = next_occurrence(meeting, at("2026-03-28T12:00:00+00:00"))
    assert start is not None
    assert start.isoformat() == "2026-03-28T09:00:00-07:00"


def test_no_start_time() -> None:
    assert next_occurrence(make_meeting(0, None), at("2026-03-28T12:00:00+00:00")) is None
    with pytest.raises(ValueError):
        occurrence_on(make_meeting(0, None), date(2026, 3, 30))


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        next_occurrence(make_meeting(0, time(19, 0)), datetime(2026, 3, 28, 12))  # noqa: DTZ001


def test_every_day_of_a_year_gives_the_right_weekday_and_wall_time() -> None:
    meeting = make_meeting(2, time(18, 30))
    now = at("2026-01-01T00:00:00+00:00")
    for _ in range(365):
        start = next_occurrence(meeting, now)
        assert start is not None and start > now
        assert start.weekday() == 2 and (start.hour, start.minute) == (18, 30)
        assert start - now <= timedelta(days=7)
        now += timedelta(hours=23)


def test_occurrence_on_a_date() -> None:
    start = occurrence_on(make_meeting(0, time(19, 0)), date(2026, 10, 26))
    assert start.isoformat() == "2026-10-26T19:00:00+00:00"
