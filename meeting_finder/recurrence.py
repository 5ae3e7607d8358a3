"""When a weekly meeting next happens, in its own time zone (DST-correct via zoneinfo)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from storage.models.meetings import Meeting

DEFAULT_ZONE = "Europe/London"


def meeting_zone(meeting: Meeting) -> ZoneInfo:
    """Return the meeting's zone, or Europe/London if its zone name is unknown."""
    try:
        return ZoneInfo(meeting.timezone or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def known_zone(meeting: Meeting) -> ZoneInfo | None:
    """Return the meeting's zone, or None when the feed never said (or said nonsense)."""
    if not meeting.timezone:
        return None
    try:
        return ZoneInfo(meeting.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_start(day: date, at: time, zone: ZoneInfo) -> datetime:
    """Return wall-clock `at` on `day` in `zone`; a time skipped by the clocks moves forward."""
    naive = datetime.combine(day, at.replace(tzinfo=None))
    wall = naive.replace(tzinfo=zone)
    # Round-tripping through UTC turns 01:30 on a spring-forward night into 02:30 BST.
    return wall.astimezone(UTC).astimezone(zone)


def occurrence_on(meeting: Meeting, day: date) -> datetime:
    """Return when the meeting starts on `day` (its local date); ValueError if it has no time."""
    if meeting.start_time is None:
        raise ValueError(f"meeting {meeting.slug!r} has no start time")
    return local_start(day, meeting.start_time, meeting_zone(meeting))


SKIP_WEEKS = 12  # weeks looked at past cancelled dates


def next_occurrence(meeting: Meeting, now: datetime) -> datetime | None:
    """Return the next start strictly after `now` in the meeting's zone; None without a time
    or without a known zone (a guessed zone would give a wrong time: such a meeting has no
    next start, so it is never offered or reminded)."""
    if meeting.start_time is None or known_zone(meeting) is None:
        return None
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zone = meeting_zone(meeting)
    today = now.astimezone(zone).date()
    ahead = (meeting.weekday - today.weekday()) % 7
    skipped = set(meeting.cancelled_dates or ())
    for week in range(SKIP_WEEKS):
        day = today + timedelta(days=ahead + 7 * week)
        if day.isoformat() in skipped:
            continue  # a coordinator cancelled this one week
        start = occurrence_on(meeting, day)
        if start > now:
            return start
    return None  # every week in reach was cancelled
