"""Write our meetings as a Meeting Guide JSON feed that spec readers (tsml-ui) read as we do.

Readers derive attendance themselves: in person when the address is exact (`approximate:
"no"`) and the location is not temporarily closed (TC), online when there is a join link or
dial-in, inactive when neither. So every address says whether it is approximate, a paused
meeting carries TC and no join details, and a zone we do not know is left out, never guessed.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from meeting_finder.feeds.meeting_guide import to_mg_day
from meeting_finder.feeds.types import TEMPORARILY_CLOSED, types_with_access
from storage.models.meetings import Meeting, MeetingStatus


def _hm(value: time | None) -> str | None:
    return value.strftime("%H:%M") if value is not None else None


def _value(field: object) -> str:
    return str(getattr(field, "value", field))


def _joining(meeting: Meeting, active: bool) -> dict[str, Any]:
    """Return the join details; none for a paused meeting, which is not to be joined."""
    if not active:
        return {}
    return {
        "conference_url": meeting.conference_url,
        "conference_url_notes": meeting.conference_url_notes if meeting.conference_url else None,
        "conference_phone": meeting.conference_phone,
        "conference_phone_notes": (
            meeting.conference_phone_notes if meeting.conference_phone else None
        ),
    }


def to_meeting_guide(meeting: Meeting) -> dict[str, Any]:
    """Return one meeting as a Meeting Guide feed row."""
    active = _value(meeting.status) == MeetingStatus.ACTIVE.value
    types = types_with_access(meeting.types, meeting.access)
    exact = bool(meeting.address) and not meeting.approximate
    if not active and exact and TEMPORARILY_CLOSED not in types:
        types.append(TEMPORARILY_CLOSED)  # else readers see a paused meeting as one to go to
    updated: datetime = meeting.updated
    row: dict[str, Any] = {
        "name": meeting.name,
        "slug": meeting.slug,
        "day": to_mg_day(meeting.weekday),
        "time": _hm(meeting.start_time),
        "end_time": _hm(meeting.end_time),
        "timezone": meeting.timezone,
        "location": meeting.venue,
        "location_notes": meeting.location_notes,
        "formatted_address": meeting.address,
        "approximate": ("yes" if meeting.approximate else "no") if meeting.address else None,
        "postal_code": meeting.postcode,
        "region": meeting.region,
        "latitude": meeting.lat,
        "longitude": meeting.lon,
        "types": types,
        "attendance_option": _value(meeting.attendance) if active else "inactive",
        **_joining(meeting, active),
        "group": meeting.group_name,
        "district": meeting.district,
        "contact_1_name": meeting.contact_name,
        "contact_1_phone": meeting.contact_phone,
        "contact_1_email": meeting.contact_email,
        "notes": meeting.notes,
        "updated": updated.strftime("%Y-%m-%d %H:%M:%S") if updated else None,
    }
    return {key: value for key, value in row.items() if value is not None}


def export_meeting_guide(meetings: list[Meeting]) -> list[dict[str, Any]]:
    """Return meetings as a Meeting Guide feed (cancelled ones left out), sorted by slug."""
    kept = [m for m in meetings if _value(m.status) != MeetingStatus.CANCELLED.value]
    return [to_meeting_guide(m) for m in sorted(kept, key=lambda m: m.slug)]
