"""iCalendar export of one weekly meeting, with its VTIMEZONE and a weekly RRULE."""

from __future__ import annotations

from datetime import datetime, timedelta

from icalendar import Calendar, Event, vRecur

from meeting_finder.errors import ExportError
from meeting_finder.recurrence import meeting_zone, next_occurrence
from storage.models.meetings import Meeting

BYDAY = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
DEFAULT_LENGTH = timedelta(minutes=90)
YEARS_COVERED = timedelta(days=366 * 10)
PRODID = "-//throughcare//meeting finder//EN"


def meeting_to_ics(meeting: Meeting, *, now: datetime, uid_domain: str = "throughcare") -> bytes:
    """Return a VCALENDAR with one weekly event for the meeting, starting at its next time."""
    if not meeting.timezone:
        raise ExportError(f"meeting {meeting.slug!r} has no time zone, so it has no calendar")
    start = next_occurrence(meeting, now)
    if start is None:
        raise ExportError(f"meeting {meeting.slug!r} has no start time, so it has no calendar")
    zone = meeting_zone(meeting)
    start = start.astimezone(zone)
    if meeting.end_time is not None:
        end = datetime.combine(start.date(), meeting.end_time, tzinfo=zone)
        if end <= start:
            end += timedelta(days=1)  # runs past midnight
    else:
        end = start + DEFAULT_LENGTH
    event = Event()
    event.add("uid", f"{meeting.slug}@{uid_domain}")
    event.add("dtstamp", now)
    event.add("summary", meeting.name)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("rrule", vRecur(freq="WEEKLY", byday=BYDAY[meeting.weekday]))
    location = ", ".join(p for p in (meeting.venue, meeting.address, meeting.postcode) if p)
    if location:
        event.add("location", location)
    if meeting.lat is not None and meeting.lon is not None:
        event.add("geo", (meeting.lat, meeting.lon))
    if meeting.conference_url:
        event.add("url", meeting.conference_url)
    lines = [meeting.notes or "", f"Join: {meeting.conference_url}" if meeting.conference_url
             else "", f"Dial in: {meeting.conference_phone}" if meeting.conference_phone else "",
             f"First time? Contact: {meeting.contact}" if meeting.contact else ""]
    description = "\n".join(line for line in lines if line)
    if description:
        event.add("description", description)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add_component(event)
    # The VTIMEZONE covers the years a participant may use it; clients know the TZID anyway.
    calendar.add_missing_timezones(
        first_date=start.date() - timedelta(days=366), last_date=start.date() + YEARS_COVERED
    )
    return calendar.to_ical()
