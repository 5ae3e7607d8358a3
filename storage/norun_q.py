"""Queries behind "it didn't run" (NORUN) answers: which meetings may have stopped running.

A NORUN answer is an AttendanceRecord with outcome NOT_RUNNING. A meeting is stale (it may
not be running) when, within a window (14 days), at least two different people said so, it
is still active, and no coordinator has confirmed it runs since those answers:
`Meeting.confirmed_running_at` answers every report made before it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AttendanceOutcome, AttendanceRecord, Meeting, MeetingStatus

STALE_WINDOW = timedelta(days=14)
STALE_PEOPLE = 2
DEFAULT_ZONE = "Europe/London"


@dataclass(frozen=True)
class StaleMeeting:
    """An active meeting that enough different people recently said did not run."""

    meeting: Meeting
    reporters: int  # different people
    reports: int
    last_reported_at: datetime


@dataclass(frozen=True)
class DateReports:
    """The NORUN answers about one date of a meeting (its local date, in its own zone)."""

    day: date
    people: int  # different people who said it did not run
    reports: int
    last_reported_at: datetime
    answered: bool  # every answer came before a coordinator confirmed it runs


@dataclass(frozen=True)
class MeetingReports:
    """One meeting's NORUN answers, newest date first."""

    meeting: Meeting
    dates: list[DateReports]
    last_reported_at: datetime


def _zone(meeting: Meeting) -> ZoneInfo:
    try:
        return ZoneInfo(meeting.timezone or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def _person(record: AttendanceRecord) -> str:
    """Return who answered; an answer with no participant counts as one person of its own."""
    if record.participant_id is not None:
        return f"p{record.participant_id}"
    return f"r{record.id}"


def _answered(meeting: Meeting, record: AttendanceRecord) -> bool:
    confirmed = meeting.confirmed_running_at
    return confirmed is not None and record.reported_at <= confirmed


async def _norun_rows(
    session: AsyncSession, meetings: Sequence[Meeting], *, since: datetime,
    until: datetime | None
) -> dict[int, list[AttendanceRecord]]:
    """Return the NORUN answers reported from `since` (up to `until`), by meeting id."""
    wanted = {m.id for m in meetings if m.id is not None}
    if not wanted:
        return {}
    # NORUN answers are few, so filter the meetings here rather than send a huge IN list.
    query = (select(AttendanceRecord)
             .where(col(AttendanceRecord.outcome) == str(AttendanceOutcome.NOT_RUNNING))
             .where(col(AttendanceRecord.reported_at) >= since)
             .order_by(col(AttendanceRecord.reported_at), col(AttendanceRecord.id)))
    if until is not None:
        query = query.where(col(AttendanceRecord.reported_at) <= until)
    rows = await session.exec(query)
    found: dict[int, list[AttendanceRecord]] = defaultdict(list)
    for row in rows.all():
        if row.meeting_id in wanted:
            found[row.meeting_id].append(row)
    return found


async def stale_meetings(
    session: AsyncSession,
    meetings: Sequence[Meeting],
    *,
    now: datetime,
    window: timedelta = STALE_WINDOW,
    min_people: int = STALE_PEOPLE,
) -> list[StaleMeeting]:
    """Return the active meetings that `min_people` people said did not run within `window`."""
    active = [m for m in meetings if m.status == MeetingStatus.ACTIVE]
    found = await _norun_rows(session, active, since=now - window, until=now)
    stale = []
    for meeting in active:
        counted = [r for r in found.get(meeting.id or 0, []) if not _answered(meeting, r)]
        people = len({_person(r) for r in counted})
        if counted and people >= min_people:
            stale.append(StaleMeeting(meeting, people, len(counted),
                                      max(r.reported_at for r in counted)))
    stale.sort(key=lambda s: (-s.reporters, -s.last_reported_at.timestamp(),
                              s.meeting.name.lower()))
    return stale


def _date_reports(meeting: Meeting, records: list[AttendanceRecord]) -> list[DateReports]:
    zone = _zone(meeting)
    by_day: dict[date, list[AttendanceRecord]] = defaultdict(list)
    for r in records:
        by_day[(r.occurrence_start or r.reported_at).astimezone(zone).date()].append(r)
    return [DateReports(day=day, people=len({_person(r) for r in rows}), reports=len(rows),
                        last_reported_at=max(r.reported_at for r in rows),
                        answered=all(_answered(meeting, r) for r in rows))
            for day, rows in sorted(by_day.items(), reverse=True)]


async def norun_reports(
    session: AsyncSession, meetings: Sequence[Meeting], *, since: datetime,
    until: datetime | None = None,
) -> list[MeetingReports]:
    """Return the NORUN answers since a moment, per meeting and date, latest answer first."""
    found = await _norun_rows(session, meetings, since=since, until=until)
    grouped = [MeetingReports(meeting=m, dates=_date_reports(m, found[m.id or 0]),
                              last_reported_at=found[m.id or 0][-1].reported_at)
               for m in meetings if found.get(m.id or 0)]
    grouped.sort(key=lambda g: (-g.last_reported_at.timestamp(), g.meeting.name.lower()))
    return grouped
