"""Which meetings may ever be offered to a participant."""

from __future__ import annotations

import re

from meeting_finder.feeds.types import SMART_FAMILY
from meeting_finder.places import fold
from storage.models.meetings import Access, Attendance, Meeting, MeetingStatus

IN_PERSON = frozenset({Attendance.IN_PERSON.value, Attendance.HYBRID.value})
ONLINE = frozenset({Attendance.ONLINE.value, Attendance.HYBRID.value})
_PLACEHOLDER_ADDRESSES = frozenset(
    {"online", "virtual", "zoom", "tbd", "tba", "tbc", "n a", "na", "none", "unknown", "various"}
)
_URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+\.[A-Za-z]{2,}(:\d+)?(/\S*)?$")


def _value(field: object) -> str:
    return str(getattr(field, "value", field) or "")


def is_real_address(address: str | None) -> bool:
    """Say whether an address names a place you can walk to (not "Online" or "TBD")."""
    return bool(address and address.strip() and fold(address) not in _PLACEHOLDER_ADDRESSES)


def is_join_link(url: str | None) -> bool:
    """Say whether a conference URL is a well-formed http(s) link."""
    return bool(url and _URL_RE.match(url.strip()))


def is_open_and_active(meeting: Meeting) -> bool:
    """Say whether the meeting is running and open to anyone."""
    return (
        _value(meeting.status) == MeetingStatus.ACTIVE.value
        and _value(meeting.access) == Access.OPEN.value
    )


def is_for_family(meeting: Meeting) -> bool:
    """Say whether the meeting is for family and friends: never offered to participants."""
    # They are for those affected by someone else's use; participants are in recovery.
    return SMART_FAMILY in (meeting.types or [])


def _offerable(meeting: Meeting) -> bool:
    """Say whether the meeting is open, active, for participants, and has a known zone."""
    return is_open_and_active(meeting) and not is_for_family(meeting) and bool(meeting.timezone)


def has_venue(meeting: Meeting) -> bool:
    """Say whether the meeting can be attended in person at a real, located address."""
    return (
        _value(meeting.attendance) in IN_PERSON
        and meeting.lat is not None
        and meeting.lon is not None
        and not meeting.approximate  # only a town or area: not somewhere to go
        and is_real_address(meeting.address)
    )


def has_join(meeting: Meeting) -> bool:
    """Say whether the meeting can be joined remotely (a join link, or a dial-in number)."""
    return _value(meeting.attendance) in ONLINE and (
        is_join_link(meeting.conference_url) or bool((meeting.conference_phone or "").strip())
    )


def is_offerable(meeting: Meeting) -> bool:
    """Say whether the meeting may be offered: open, active, with an address or a join link."""
    return _offerable(meeting) and (has_venue(meeting) or has_join(meeting))


def offerable_in_person(meeting: Meeting) -> bool:
    """Say whether the meeting may be offered as somewhere to go."""
    return _offerable(meeting) and has_venue(meeting)


def offerable_online(meeting: Meeting) -> bool:
    """Say whether the meeting may be offered as something to join remotely."""
    return _offerable(meeting) and has_join(meeting)
