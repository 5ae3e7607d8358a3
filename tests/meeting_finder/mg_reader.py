"""An independent Meeting Guide reader, for tests: the spec, read the way tsml-ui reads it.

Written from the spec (code4recovery/spec README) and tsml-ui's loader
(code4recovery/tsml-ui src/helpers/load-meeting-data.ts), not from our importer, so that the
two can disagree. What it keeps, as tsml-ui does:

- a meeting needs a unique slug and some address (`formatted_address`, or address, city,
  state, postal_code, country); one with a day and time also needs a zone (its own
  `timezone`, else the site's): others are dropped with a reason;
- `approximate` is "yes"/"no" (or a boolean); when absent, an address of fewer than four
  comma-separated parts is approximate;
- a join link counts only on a known conference provider; a dial-in only with at least ten
  of its digits, "+", "," and "#"; notes about a link or dial-in that does not count go;
- attendance ignores `attendance_option`: in person when the address is exact and the type
  TC (location temporarily closed) is absent; online with a join link or dial-in; hybrid with
  both; inactive with neither.

Text is compared as a reader shows it: tags stripped, entities decoded, spaces collapsed.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# tsml-ui src/hooks/settings.tsx `conference_providers`
CONFERENCE_DOMAINS = (
    "bluejeans.com", "discord.gg", "freeconference.com", "freeconferencecall.com", "goto.com",
    "gotomeet.me", "gotomeeting.com", "horizon.meta.com", "maps.secondlife.com",
    "meet.google.com", "meet.jit.si", "meetings.dialpad.com", "signal.group", "skype.com",
    "slurl.com", "teams.live.com", "teams.microsoft.com", "vrchat.com", "webex.com", "zoho.com",
    "zoom.us",
)
_TAG = re.compile(r"<[^>]*>")


def shown(value: Any) -> str | None:
    """Return a value as a reader shows it: tags stripped, entities decoded, spaces collapsed."""
    if value is None or isinstance(value, (dict, list)):
        return None
    text = " ".join(html.unescape(_TAG.sub(" ", str(value))).split())
    return text or None


@dataclass(frozen=True)
class Listing:
    """One meeting as a reader lists it."""

    slug: str
    name: str | None
    day: int | None
    time: str | None
    timezone: str | None
    formatted_address: str
    approximate: bool
    attendance: str  # in_person | online | hybrid | inactive
    location: str | None
    location_notes: str | None
    group: str | None
    district: str | None
    conference_url: str | None
    conference_url_notes: str | None
    conference_phone: str | None  # digits, "+", "," and "#" only, as tsml-ui keeps it
    conference_phone_notes: str | None
    contacts: frozenset[str]  # every contact name, email and phone, wherever given


@dataclass
class Reading:
    """What a reader made of a feed."""

    meetings: dict[str, Listing] = field(default_factory=dict)
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (slug or "?", why)

    def by_attendance(self) -> Counter[str]:
        """Count the meetings per attendance option."""
        return Counter(m.attendance for m in self.meetings.values())


def _flatten(rows: list[Any]) -> list[dict[str, Any]]:
    """Give a meeting with several days one row per day (slug "<slug>-<day>")."""
    flat: list[dict[str, Any]] = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        days = row.get("day")
        if isinstance(days, list):
            flat.extend({**row, "day": d, "slug": f"{row.get('slug')}-{d}"} for d in days)
        else:
            flat.append(row)
    return flat


def _formatted_address(row: dict[str, Any]) -> str | None:
    if shown(row.get("formatted_address")):
        return shown(row.get("formatted_address"))
    state_zip = " ".join(p for p in (shown(row.get("state")), shown(row.get("postal_code"))) if p)
    parts = (shown(row.get("address")), shown(row.get("city")), state_zip,
             shown(row.get("country")))
    return ", ".join(p for p in parts if p) or None


def _is_approximate(row: dict[str, Any], address: str) -> bool:
    value = row.get("approximate")
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() == "yes"
    return len(address.split(",")) < 4


def _conference_url(value: Any) -> str | None:
    url = str(value).strip() if value else ""
    parts = url.split("/")
    if len(parts) < 3 or not parts[2].lower().endswith(CONFERENCE_DOMAINS):
        return None
    return url


def _conference_phone(value: Any) -> str | None:
    kept = re.sub(r"[^\d,+#]", "", str(value)) if value else ""
    return kept if len(kept) >= 10 else None


def _contacts(row: dict[str, Any]) -> frozenset[str]:
    keys = ["email", "phone"] + [
        f"contact_{n}_{part}" for n in (1, 2, 3) for part in ("name", "email", "phone")
    ]
    return frozenset(text for text in (shown(row.get(k)) for k in keys) if text)


def _zone(row: dict[str, Any], site_timezone: str | None) -> tuple[str | None, str]:
    """Return the row's zone and, if it must be dropped for want of one, why."""
    zone = shown(row.get("timezone")) or site_timezone
    if row.get("day") is None or not row.get("time"):
        return zone, ""  # by appointment: no zone needed
    if zone is None:
        return None, "no timezone"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None, f"invalid timezone {zone}"
    return zone, ""


def _attendance(online: bool, in_person: bool) -> str:
    if online and in_person:
        return "hybrid"
    return "online" if online else "in_person" if in_person else "inactive"


def _listing(row: dict[str, Any], slug: str, address: str, zone: str | None) -> Listing:
    approximate = _is_approximate(row, address)
    types = [str(t).strip() for t in row.get("types") or [] if t is not None]
    url = _conference_url(row.get("conference_url"))
    phone = _conference_phone(row.get("conference_phone"))
    in_person = "TC" not in types and not approximate
    day = row.get("day")
    return Listing(
        slug=slug,
        name=shown(row.get("name")),
        day=int(day) if day is not None and str(day).strip().isdigit() else None,
        time=shown(row.get("time")),
        timezone=zone,
        formatted_address=address,
        approximate=approximate,
        attendance=_attendance(bool(url or phone), in_person),
        location=shown(row.get("location")),
        location_notes=shown(row.get("location_notes")),
        group=shown(row.get("group")),
        district=shown(row.get("district")),
        conference_url=url,
        conference_url_notes=shown(row.get("conference_url_notes")) if url else None,
        conference_phone=phone,
        conference_phone_notes=shown(row.get("conference_phone_notes")) if phone else None,
        contacts=_contacts(row),
    )


def read_feed(rows: list[Any], *, site_timezone: str | None = None) -> Reading:
    """Read a Meeting Guide feed as tsml-ui would, on a site in `site_timezone` (if any)."""
    reading = Reading()
    for row in _flatten(rows):
        slug = shown(row.get("slug"))
        address = _formatted_address(row)
        zone, why = _zone(row, site_timezone)
        if slug is None:
            reading.dropped.append(("?", "no slug"))
        elif slug in reading.meetings:
            reading.dropped.append((slug, "duplicate slug"))
        elif address is None:
            reading.dropped.append((slug, "no address information"))
        elif why:
            reading.dropped.append((slug, why))
        else:
            reading.meetings[slug] = _listing(row, slug, address, zone)
    return reading
