"""Read Meeting Guide JSON rows (https://github.com/code4recovery/spec) into our meetings.

`day` is 0 = Sunday ... 6 = Saturday (ours is 0 = Monday), or an array of days, which
becomes one meeting per day with the slug suffixed by the day ("group-7-mon"). `time` and
`end_time` are "HH:MM" and may be missing. `timezone` is per meeting, else the import's zone,
else unknown (None): a zone is never guessed. `attendance_option` is in_person, online, hybrid
or inactive (inactive -> suspended). Types we do not know are kept.

Every text field is plain text: HTML tags are stripped and entities decoded. An address that
is only a town or area (`approximate: "yes"`, or city/state/country with no street) is kept
with `approximate` set, for the online meeting it belongs to, but is never somewhere to go:
such a meeting is online if it has a join link or dial-in, else suspended, as readers of the
spec (tsml-ui) see it. A dial-in must be a valid phone number (phonenumbers); invalid ones
are dropped, and notes about a join link or dial-in that was dropped go with it.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from meeting_finder import postcodes
from meeting_finder.feeds.clean import country_region, dial_string, plain_text
from meeting_finder.feeds.types import ONLINE_TYPE, TEMPORARILY_CLOSED, access_from_types
from meeting_finder.geocode import normalise_postcode
from meeting_finder.offerable import is_join_link, is_real_address
from storage.models.meetings import Attendance, MeetingStatus

DAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ATTENDANCE_OPTIONS = ("in_person", "online", "hybrid", "inactive")
_TIME_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")
_UK_POSTCODE_IN_TEXT = re.compile(r"\b([A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2})\b", re.IGNORECASE)
_LIMITS = {
    "name": 300, "venue": 300, "address": 500, "postcode": 20, "region": 200, "contact": 300,
    "notes": 2000, "location_notes": 2000, "conference_url_notes": 1000,
    "conference_phone_notes": 1000, "contact_name": 300, "contact_phone": 100,
    "contact_email": 300, "group_name": 300, "district": 200,
}
MAX_SLUG = 190  # leaves room for a day suffix within the 200-character column
MAX_DIAL = 100  # a dial string cut short would dial the wrong meeting, so longer ones go
COMPARED = (
    "name", "weekday", "start_time", "end_time", "timezone", "venue", "address", "approximate",
    "location_notes", "postcode", "region", "lat", "lon", "attendance", "access",
    "conference_url", "conference_url_notes", "conference_phone", "conference_phone_notes",
    "types", "contact", "contact_name", "contact_phone", "contact_email", "group_name",
    "district", "notes", "status",
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
    return plain_text(value)


def _notes(value: Any) -> str | None:
    return plain_text(value, multiline=True)


def _clip(field: str, value: str | None) -> str | None:
    limit = _LIMITS.get(field)
    if value is None or limit is None or len(value) <= limit:
        return value
    return value[: limit - 1] + "…"


def rows_without_zone(rows: list[Any]) -> int:
    """Count the feed rows that give no `timezone` of their own."""
    return sum(1 for row in rows if isinstance(row, dict) and not _text(row.get("timezone")))


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


def _zone(value: Any, default_tz: str | None) -> str | None:
    zone = _text(value) or default_tz
    if zone is None:
        return None
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise RowError(f"unknown time zone {zone[:40]!r}") from None
    return zone


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
    return [text[:40] for text in map(_text, items) if text]


def _address(row: dict[str, Any]) -> tuple[str | None, bool]:
    """Return the row's address, and whether it names only an area (no street)."""
    formatted = _text(row.get("formatted_address"))
    if formatted:
        return (formatted, False) if is_real_address(formatted) else (None, False)
    street = _text(row.get("address"))
    street = street if is_real_address(street) else None
    state_zip = " ".join(p for p in (_text(row.get(k)) for k in ("state", "postal_code")) if p)
    parts = [street, _text(row.get("city")), state_zip, _text(row.get("country"))]
    joined = ", ".join(p for p in parts if p)
    return (joined, street is None) if is_real_address(joined) else (None, False)


def _approximate(value: Any, by_shape: bool) -> bool:
    if isinstance(value, bool):
        return value
    word = (_text(value) or "").lower()
    return word == "yes" if word in ("yes", "no") else by_shape


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


def _place(row: dict[str, Any]) -> dict[str, Any]:
    """Return where the meeting is: address (exact or approximate), postcode, coordinates."""
    address, by_shape = _address(row)
    lat, lon = _coordinate(row.get("latitude"), 90), _coordinate(row.get("longitude"), 180)
    postcode = _postcode(row, address)
    if (lat is None or lon is None) or (lat == 0 and lon == 0):
        lat, lon = _geocode_postcode(postcode) or (None, None)
    return {
        "venue": _text(row.get("location")),
        "address": address,
        "approximate": address is not None and _approximate(row.get("approximate"), by_shape),
        "location_notes": _notes(row.get("location_notes")),
        "postcode": postcode,
        "region": _text(row.get("region")) or _text(row.get("city")),
        "lat": lat,
        "lon": lon,
    }


def _online(row: dict[str, Any], phone_region: str | None) -> dict[str, Any]:
    """Return how to join remotely: a join link and a valid dial-in, each with its notes."""
    url = _text(row.get("conference_url"))
    url = url if url and len(url) <= 500 and is_join_link(url) else None
    country = _text(row.get("country")) or (_text(row.get("formatted_address")) or "")
    region = country_region(country.rsplit(",", 1)[-1]) or phone_region
    phone = dial_string(row.get("conference_phone"), region=region)
    phone = phone if phone and len(phone) <= MAX_DIAL else None
    return {
        "conference_url": url,
        "conference_url_notes": _notes(row.get("conference_url_notes")) if url else None,
        "conference_phone": phone,
        "conference_phone_notes": _notes(row.get("conference_phone_notes")) if phone else None,
    }


def _people(row: dict[str, Any]) -> dict[str, Any]:
    """Return who to ask (the first contact given) and the group and district."""
    found: tuple[str | None, ...] = (None, _text(row.get("phone")), _text(row.get("email")))
    for prefix in ("contact_1_", "contact_2_", "contact_3_"):
        parts = tuple(_text(row.get(prefix + k)) for k in ("name", "phone", "email"))
        if any(parts):
            found = parts
            break
    name, phone, email = found
    return {
        "contact": " ".join(p for p in found if p) or None,
        "contact_name": name,
        "contact_phone": phone,
        "contact_email": email,
        "group_name": _text(row.get("group")),
        "district": _text(row.get("district")),
    }


def _attendance(
    row: dict[str, Any], types: list[str], place: dict[str, Any], has_join: bool
) -> tuple[Attendance, MeetingStatus]:
    has_address = place["address"] is not None
    room = has_address and not place["approximate"]
    option = _text(row.get("attendance_option"))
    status = MeetingStatus.ACTIVE
    if option is not None and option not in ATTENDANCE_OPTIONS:
        raise RowError(f"bad attendance_option {option[:20]!r}")
    if option == "inactive":
        status, option = MeetingStatus.SUSPENDED, None
    if option is None:
        if has_join and room:
            option = "hybrid"
        elif has_join or (ONLINE_TYPE in types and not room):
            option = "online"
        else:
            option = "in_person"
    attendance = Attendance(option)
    # No room to go to: the location is temporarily closed, or only its area is known.
    if (TEMPORARILY_CLOSED in types or (has_address and not room)) and (
        attendance != Attendance.ONLINE
    ):
        if has_join:
            attendance = Attendance.ONLINE  # the room is closed; the call goes on
        else:
            status = MeetingStatus.SUSPENDED
    return attendance, status


def _slug(value: Any) -> str:
    # The slug is the meeting's identity, so it is kept exactly (only trimmed).
    if value is None or isinstance(value, (dict, list, bool)) or not str(value).strip():
        raise RowError("no slug")
    slug = str(value).strip()
    if len(slug) > MAX_SLUG:
        raise RowError("slug too long")
    return slug


def parse_row(
    row: Any, *, default_tz: str | None = None, phone_region: str | None = None
) -> list[dict[str, Any]]:
    """Turn one feed row into field values for one meeting per day; RowError if unusable."""
    if not isinstance(row, dict):
        raise RowError("not a JSON object")
    slug = _slug(row.get("slug"))
    name = _text(row.get("name"))
    if name is None:
        raise RowError("no name")
    days, is_array = _days(row.get("day"))
    start, end = parse_time(row.get("time")), parse_time(row.get("end_time"), "end_time")
    zone = _zone(row.get("timezone"), default_tz)
    types = _types(row.get("types"))
    place, online = _place(row), _online(row, phone_region)
    has_join = bool(online["conference_url"] or online["conference_phone"])
    attendance, status = _attendance(row, types, place, has_join)
    fields: dict[str, Any] = {
        "name": name,
        "start_time": start,
        "end_time": end,
        "timezone": zone,
        **place,
        "attendance": attendance.value,
        "access": access_from_types(types).value,
        **online,
        "types": types,
        **_people(row),
        "notes": _notes(row.get("notes")),
        "status": status.value,
    }
    for key in _LIMITS:
        fields[key] = _clip(key, fields[key])
    out = []
    for weekday in days:
        suffix = f"-{DAY_CODES[weekday]}" if is_array else ""
        out.append({**fields, "slug": slug + suffix, "weekday": weekday})
    return out
