"""What an import would change, meeting by meeting, worded for people (page and CLI alike).

An `ImportSummary` (importer.py) carries one `MeetingLine` per meeting added, updated or
cancelled; an updated one lists each `Change` (field, old value, new value) as people read
them ("Start time: 19:00 → 19:30"). `diff_lines` is the plain-text form the CLI prints;
the staff page renders the same lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from enum import Enum
from typing import Any

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
NONE_SHOWN = "(none)"
MAX_SHOWN = 120  # characters of one value shown; long notes are cut with "..."
LABELS = {
    "weekday": "Day", "start_time": "Start time", "end_time": "End time",
    "timezone": "Time zone", "lat": "Latitude", "lon": "Longitude",
    "approximate": "Address is only an area", "conference_url": "Join link",
    "conference_url_notes": "Join link notes", "conference_phone": "Dial-in number",
    "conference_phone_notes": "Dial-in notes", "contact_name": "Contact name",
    "contact_phone": "Contact phone", "contact_email": "Contact email",
    "group_name": "Group", "access": "Who may come", "types": "Types",
}


@dataclass(frozen=True)
class Change:
    """One field of a meeting that an import changes, as people read it."""

    field: str  # the label, e.g. "Start time"
    old: str
    new: str


@dataclass(frozen=True)
class MeetingLine:
    """One meeting an import adds, updates or cancels."""

    slug: str
    name: str
    when: str  # "Monday 19:00 (Europe/London)"
    changes: tuple[Change, ...] = ()


def label(field: str) -> str:
    """Return the words for a meeting field ("start_time" -> "Start time")."""
    return LABELS.get(field, field.replace("_", " ").capitalize())


def show(field: str, value: Any) -> str:
    """Return one field's value as people read it."""
    value = value.value if isinstance(value, Enum) else value
    if value is None or value == "" or value == []:
        return NONE_SHOWN
    if field == "weekday" and isinstance(value, int) and 0 <= value < len(DAY_NAMES):
        return DAY_NAMES[value]
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".")
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def meeting_line(
    slug: str, fields: Mapping[str, Any], changes: tuple[Change, ...] = ()
) -> MeetingLine:
    """Describe one meeting from its fields (a feed row's or a stored meeting's)."""
    weekday, start, zone = fields.get("weekday"), fields.get("start_time"), fields.get("timezone")
    when = show("weekday", weekday)
    when += f" {show('start_time', start)}" if start is not None else ", time not set"
    when += f" ({zone})" if zone else ", time zone unknown"
    return MeetingLine(slug=slug, name=show("name", fields.get("name")), when=when,
                       changes=changes)


def change(field: str, old: Any, new: Any) -> Change:
    """Describe one changed field."""
    return Change(field=label(field), old=show(field, old), new=show(field, new))


def diff_lines(
    *,
    added: list[MeetingLine],
    updated: list[MeetingLine],
    cancelled: list[MeetingLine],
    skipped: list[tuple[str, str]],
) -> list[str]:
    """Return the diff as plain text lines, section by section (empty sections left out)."""
    out: list[str] = []
    for title, lines in (("Added", added), ("Updated", updated), ("Cancelled", cancelled)):
        if not lines:
            continue
        out.append(f"{title} ({len(lines)}):")
        for line in lines:
            out.append(f"  {line.name} [{line.slug}], {line.when}")
            out.extend(f"    {c.field}: {c.old} -> {c.new}" for c in line.changes)
    if skipped:
        out.append(f"Skipped ({len(skipped)}):")
        out.extend(f"  {row}: {reason}" for row, reason in skipped)
    return out
