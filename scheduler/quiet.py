"""Quiet hours: no non-urgent message between 21:00 and 08:00 participant-local by default."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from storage.models import MessageKind, Participant

NEVER_QUIET = frozenset({MessageKind.REPLY, MessageKind.CRISIS})


class QuietPrefs(Protocol):
    """A person's zone and quiet hours (a Participant, or the dispatcher's Recipient)."""

    @property
    def timezone(self) -> str | None: ...
    @property
    def quiet_start_hour(self) -> int: ...
    @property
    def quiet_end_hour(self) -> int: ...


def zone_of(participant: QuietPrefs | None) -> ZoneInfo:
    """Return the participant's zone, Europe/London if unknown."""
    try:
        return ZoneInfo((participant.timezone if participant else None) or "Europe/London")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Europe/London")


def _in_quiet(hour: int, start: int, end: int) -> bool:
    if start == end:
        return False
    if start > end:  # spans midnight, e.g. 21 -> 8
        return hour >= start or hour < end
    return start <= hour < end


def _hours(participant: QuietPrefs | None) -> tuple[int, int]:
    start = participant.quiet_start_hour if participant else 21
    end = participant.quiet_end_hour if participant else 8
    if not (0 <= start <= 23 and 0 <= end <= 23):
        return 21, 8
    return start, end


def quiet_until(participant: QuietPrefs | None, now: datetime) -> datetime | None:
    """Return when quiet time ends if `now` is inside it for this person, else None."""
    start, end = _hours(participant)
    zone = zone_of(participant)
    local = now.astimezone(zone)
    if not _in_quiet(local.hour, start, end):
        return None
    day = local.date() if local.hour < end else local.date() + timedelta(days=1)
    wall = datetime.combine(day, time(end)).replace(tzinfo=zone)
    return wall.astimezone(UTC)


def may_defer(kind: str) -> bool:
    """Say whether quiet hours apply to this kind of message."""
    return kind not in NEVER_QUIET


def before_quiet(
    participant: Participant | None, moment: datetime, *, margin: timedelta = timedelta(hours=1)
) -> datetime:
    """Return `moment`, or `margin` before quiet hours begin that day if it falls after.

    For messages that must go on a given day ("tomorrow" reminders): quiet hours would hold
    a 9pm message until the next morning, so it goes earlier the same evening instead.
    """
    start, end = _hours(participant)
    zone = zone_of(participant)
    local = moment.astimezone(zone)
    if not (start > end and local.hour >= start):
        return moment  # not quiet, or quiet that ends later the same day
    wall = datetime.combine(local.date(), time(start)).replace(tzinfo=zone)
    return min(moment, wall.astimezone(UTC) - margin)
