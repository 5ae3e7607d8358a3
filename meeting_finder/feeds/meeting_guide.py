"""Meeting Guide JSON (https://github.com/code4recovery/spec): one feed row <-> our meetings.

Reading: `day` is 0 = Sunday ... 6 = Saturday (ours is 0 = Monday), or an array of days, which
becomes one meeting per day with the slug suffixed by the day ("group-7-mon"). `time` and
`end_time` are "HH:MM" and may be missing. `timezone` is per meeting, else the default zone.
`attendance_option` is in_person, online, hybrid or inactive (inactive -> suspended). Types we
do not know are kept. A feed row with `approximate: "yes"` has no real address (only a town),
so it is never offered as somewhere to go.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from meeting_finder import postcodes
from meeting_finder.feeds.types import ONLINE_TYPE, TEMPORARILY_CLOSED, access_from_types
from meeting_finder.feeds.types import types_with_access as _types_with_access
from meeting_finder.geocode import normalise_postcode
from meeting_finder.offerable import is_join_link, is_real_address
from storage.models.meetings import Attendance, Meeting, MeetingStatus

DAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ATTENDANCE_OPTIONS = ("in_person", "online", "hybrid", "inactive")
_TIME_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")
_UK_POSTCODE_IN_TEXT = re.compile(r"\b([A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2})\b", re.IGNORECASE)
_LIMITS = {
    "name": 300, "venue": 300, "address": 500, "postcode": 20, "region": 200,
    "conference_phone": 100, "contact": 300, "notes": 2000,
}
MAX_SLUG = 190  # leaves room for a day suffix within the 200-character column
COMPARED = (
    "name", "weekday", "start_time", "end_time", "timezone", "venue", "address", "postcode",
    "region", "lat", "lon", "attendance", "access", "conference_url", "conference_phone",
    "types", "contact", "notes", "status",
)


class RowError(ValueError):
    """One feed row cannot be used; the message is the reason shown in the import summary."""


def from_mg_day(day: int) -> int:
    """Turn a Meeting Guide day (0 = Sunday) into ours (0 = Monday)."""
    return (day - 1) % 7


def to_mg_day(weekday: int) -> int:
    """Turn our weekday (0 = Monday) into a Meeting Guide day (0 = Sunday)."""
    return (weekday + 1) % 7


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    return text or None


def _clip(field: str, value: str | None) -> str | None:
    limit = _LIMITS.get(field)
    if value is None or limit is None or len(value) <= limit:
        return value
    return value[: limit - 1] + "…"


def parse_time(value: Any, field: str = "time") -> time | None:
    """Read "HH:MM" (or "HH:MM:SS"); empty means no time; anything else is a RowError."""
    text = _text(value)
    if text is None:
        return None
    match = _TIME_RE.match(text)
    if not match:
        raise RowError(f"bad {field} {text[:20]!r}")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if hours == 24 and minutes == 0:
        return time(0, 0)
    if hours > 23 or minutes > 59:
        raise RowError(f"bad {field} {text[:20]!r}")
    return time(hours, minutes)


def _days(value: Any) -> tuple[list[int], bool]:
    """Return our weekdays for a row's `day`, and whether it was an array."""
    is_array = isinstance(value, list)
    raw = value if is_array else [value]
    if value is None or value == "" or not raw:
        raise RowError("no day (by appointment meetings are not listed)")
    days: list[int] = []
    for item in raw:
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise RowError(f"bad day {str(item)[:20]!r}")
        if isinstance(item, str) and not item.strip().isdigit():
            raise RowError(f"bad day {item[:20]!r}")
        number = int(item)
        if not 0 <= number <= 6:
            raise RowError(f"bad day {number}")
        if from_mg_day(number) not in days:
            days.append(from_mg_day(number))
    return days, is_array


def _coordinate(value: Any, limit: float) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if abs(number) <= limit and number == number else None


def _types(value: Any) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise RowError("types must be a list")
    return [str(t).strip()[:40] for t in items if _text(t)]


def _address(row: dict[str, Any]) -> str | None:
    formatted = _text(row.get("formatted_address"))
    if formatted:
        return formatted
    parts = [_text(row.get(k)) for k in ("address", "city", "state", "postal_code", "country")]
    return ", ".join(p for p in parts if p) or None


def _postcode(row: dict[str, Any], address: str | None) -> str | None:
    raw = _text(row.get("postal_code"))
    if raw:
        return normalise_postcode(raw) or raw
    if address:
        found = _UK_POSTCODE_IN_TEXT.search(address)
        if found:
            return normalise_postcode(found.group(1))
    return None


def _geocode_postcode(postcode: str | None) -> tuple[float, float] | None:
    """Place a row with no coordinates at its UK postcode (or sector) centroid, offline."""
    canonical = normalise_postcode(postcode or "")
    if canonical is None:
        return None
    outward, inward = canonical.split(" ")
    return postcodes.lookup_full(canonical) or postcodes.lookup_sector(f"{outward} {inward[0]}")


def _contact(row: dict[str, Any]) -> str | None:
    for prefix in ("contact_1_", "contact_2_"):
        parts = [_text(row.get(prefix + k)) for k in ("name", "phone", "email")]
        if any(parts):
            return " ".join(p for p in parts if p)
    parts = [_text(row.get(k)) for k in ("phone", "email")]
    return " ".join(p for p in parts if p) or None


def _attendance(
    row: dict[str, Any], types: list[str], has_address: bool, has_join: bool
) -> tuple[Attendance, MeetingStatus]:
    option = _text(row.get("attendance_option"))
    status = MeetingStatus.ACTIVE
    if option is not None and option not in ATTENDANCE_OPTIONS:
        raise RowError(f"bad attendance_option {option[:20]!r}")
    if option == "inactive":
        status, option = MeetingStatus.SUSPENDED, None
    if option is None:
        if has_join and has_address:
            option = "hybrid"
        elif has_join or (ONLINE_TYPE in types and not has_address):
            option = "online"
        else:
            option = "in_person"
    attendance = Attendance(option)
    if TEMPORARILY_CLOSED in types and attendance != Attendance.ONLINE:
        if attendance == Attendance.HYBRID and has_join:
            attendance = Attendance.ONLINE  # the room is closed for now; the call goes on
        else:
            status = MeetingStatus.SUSPENDED
    return attendance, status


def parse_row(row: Any, *, default_tz: str) -> list[dict[str, Any]]:
    """Turn one feed row into field values for one meeting per day; RowError if unusable."""
    if not isinstance(row, dict):
        raise RowError("not a JSON object")
    slug = _text(row.get("slug"))
    if slug is None:
        raise RowError("no slug")
    if len(slug) > MAX_SLUG:
        raise RowError("slug too long")
    name = _text(row.get("name"))
    if name is None:
        raise RowError("no name")
    days, is_array = _days(row.get("day"))
    start, end = parse_time(row.get("time")), parse_time(row.get("end_time"), "end_time")
    zone = _text(row.get("timezone")) or default_tz
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise RowError(f"unknown time zone {zone[:40]!r}") from None
    types = _types(row.get("types"))
    address = _address(row)
    approximate = str(row.get("approximate") or "").lower() == "yes"
    real_address = is_real_address(address) and not approximate
    url = _text(row.get("conference_url"))
    url = url if url and len(url) <= 500 and is_join_link(url) else None
    phone = _text(row.get("conference_phone"))
    attendance, status = _attendance(row, types, real_address, bool(url or phone))
    lat, lon = _coordinate(row.get("latitude"), 90), _coordinate(row.get("longitude"), 180)
    postcode = _postcode(row, address)
    if (lat is None or lon is None) or (lat == 0 and lon == 0):
        lat, lon = _geocode_postcode(postcode) or (None, None)
    fields: dict[str, Any] = {
        "name": name,
        "start_time": start,
        "end_time": end,
        "timezone": zone,
        "venue": _text(row.get("location")),
        "address": address if real_address else None,
        "postcode": postcode,
        "region": _text(row.get("region")) or _text(row.get("city")),
        "lat": lat,
        "lon": lon,
        "attendance": attendance.value,
        "access": access_from_types(types).value,
        "conference_url": url,
        "conference_phone": phone,
        "types": types,
        "contact": _contact(row),
        "notes": _text(row.get("notes")),
        "status": status.value,
    }
    for key in _LIMITS:
        fields[key] = _clip(key, fields[key])
    out = []
    for weekday in days:
        suffix = f"-{DAY_CODES[weekday]}" if is_array else ""
        out.append({**fields, "slug": slug + suffix, "weekday": weekday})
    return out


def _hm(value: time | None) -> str | None:
    return value.strftime("%H:%M") if value is not None else None


def to_meeting_guide(meeting: Meeting) -> dict[str, Any]:
    """Return one meeting as a Meeting Guide feed row."""
    attendance = str(getattr(meeting.attendance, "value", meeting.attendance))
    active = str(getattr(meeting.status, "value", meeting.status)) == MeetingStatus.ACTIVE.value
    updated: datetime = meeting.updated
    row: dict[str, Any] = {
        "name": meeting.name,
        "slug": meeting.slug,
        "day": to_mg_day(meeting.weekday),
        "time": _hm(meeting.start_time),
        "end_time": _hm(meeting.end_time),
        "timezone": meeting.timezone,
        "location": meeting.venue,
        "formatted_address": meeting.address,
        "postal_code": meeting.postcode,
        "region": meeting.region,
        "latitude": meeting.lat,
        "longitude": meeting.lon,
        "types": _types_with_access(meeting.types, meeting.access),
        "attendance_option": attendance if active else "inactive",
        "conference_url": meeting.conference_url,
        "conference_phone": meeting.conference_phone,
        "notes": meeting.notes,
        "updated": updated.strftime("%Y-%m-%d %H:%M:%S") if updated else None,
    }
    return {key: value for key, value in row.items() if value is not None}


def export_meeting_guide(meetings: list[Meeting]) -> list[dict[str, Any]]:
    """Return meetings as a Meeting Guide feed (cancelled ones left out), sorted by slug."""
    kept = [
        m for m in meetings
        if str(getattr(m.status, "value", m.status)) != MeetingStatus.CANCELLED.value
    ]
    return [to_meeting_guide(m) for m in sorted(kept, key=lambda m: m.slug)]
