"""The meeting form (what a coordinator typed, checked, as Meeting field values) and how a
meeting reads on the pages (its list row, its summary, its coming dates).

`read_meeting_form(form)` returns a `MeetingForm` (values named as Meeting attributes, and
where an in-person meeting lands on the map) or raises `fv.FieldProblems` with a message for
each field, in page order. Places are found offline (meeting_finder.geocode); join links and
dial-in numbers are checked by the same rules as feed imports (offerable, feeds.clean).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from starlette.datastructures import FormData

from bot.web.staff import form_values as fv
from bot.web.staff.participant_view import DAYS, clock, day_label
from meeting_finder.errors import PlaceNotFound
from meeting_finder.feeds.clean import dial_string
from meeting_finder.geocode import Place, normalise_postcode, resolve_place
from meeting_finder.offerable import is_join_link
from meeting_finder.recurrence import DEFAULT_ZONE, meeting_zone, next_occurrence, occurrence_on
from storage.models import Attendance, Meeting, MeetingStatus

DAY_OPTIONS = [(str(number), name) for number, name in enumerate(DAYS)]
ATTENDANCE_OPTIONS = [(Attendance.IN_PERSON.value, "In person"),
                      (Attendance.ONLINE.value, "Online"), (Attendance.HYBRID.value, "Both")]
# Form fields in page order, with the label each message is about.
LABELS = {
    "name": "Name", "weekday": "Day", "start_time": "Start time", "end_time": "End time",
    "timezone": "Time zone", "attendance": "Attendance", "venue": "Venue", "address": "Address",
    "postcode": "Postcode", "region": "Town/region", "conference_url": "Online join link",
    "conference_phone": "Dial-in number", "notes": "Notes", "contact": "Contact",
}
LIMITS = {"name": 300, "venue": 300, "address": 500, "postcode": 20, "region": 200,
          "conference_url": 500, "conference_phone": 100, "notes": 2000, "contact": 300,
          "timezone": 64}
IN_PERSON = (Attendance.IN_PERSON.value, Attendance.HYBRID.value)
ONLINE = (Attendance.ONLINE.value, Attendance.HYBRID.value)
_POSTCODE_IN_TEXT = re.compile(r"\b([A-Z]{1,2}[0-9][A-Z0-9]?\s*[0-9][A-Z]{2})\b", re.IGNORECASE)


@dataclass(frozen=True)
class Where:
    """Where a meeting lands on the map, as the page previews it."""

    label: str  # the place found: "ST1 1HE", "Hanley"
    lat: float
    lon: float
    note: str | None = None  # said when only a coarser area was found

    @property
    def map_url(self) -> str:
        """Return an OpenStreetMap link at these coordinates (the browser follows it)."""
        return (f"https://www.openstreetmap.org/?mlat={self.lat:.5f}&mlon={self.lon:.5f}"
                f"#map=16/{self.lat:.5f}/{self.lon:.5f}")


@dataclass(frozen=True)
class MeetingForm:
    """A checked meeting form: Meeting attribute values, and where it lands (if located)."""

    values: dict[str, Any]
    where: Where | None


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def clean_text(raw: object, *, multiline: bool = False) -> str:
    """Return typed text without control characters (NULs and the like), spaces tidied."""
    if not isinstance(raw, str):
        return ""
    keep = "\n" if multiline else ""
    text = "".join(ch if ch in keep or unicodedata.category(ch)[0] != "C" else " "
                   for ch in raw.replace("\r\n", "\n")[:20_000])
    if multiline:
        return "\n".join(" ".join(line.split()) for line in text.split("\n")).strip()
    return " ".join(text.split())


class _Reader:
    """Collects each field's value or problem, so every problem shows at once."""

    def __init__(self, form: FormData) -> None:
        self.form = form
        self.problems: dict[str, str] = {}

    def text(self, name: str, *, multiline: bool = False) -> str:
        value = clean_text(self.form.get(name), multiline=multiline)
        if len(value) > LIMITS[name]:
            self.problems[name] = f"{LABELS[name]} must be {LIMITS[name]} characters or fewer"
        return value

    def weekday(self) -> int | None:
        raw = clean_text(self.form.get("weekday")).lower()[:20]
        names = [d.lower() for d in DAYS]
        if raw.isdigit() and int(raw) < 7:
            return int(raw)
        for number, name in enumerate(names):
            if raw and (raw == name or raw == name[:3]):
                return number
        self.problems["weekday"] = "Choose the day of the week the meeting is on"
        return None

    def clock(self, name: str, *, required: bool) -> time | None:
        if not required and not clean_text(self.form.get(name)):
            return None
        try:
            return fv.read_time(self.form, name, LABELS[name])
        except fv.FieldProblem as exc:
            self.problems[name] = exc.message
            return None

    def zone(self) -> str:
        zone = clean_text(self.form.get("timezone"))[:100] or DEFAULT_ZONE
        if zone not in _zones():
            self.problems["timezone"] = "Time zone must be a real zone name, like Europe/London"
        return zone

    def attendance(self) -> str:
        raw = clean_text(self.form.get("attendance"))[:20]
        if raw not in {value for value, _ in ATTENDANCE_OPTIONS}:
            self.problems["attendance"] = "Choose how people attend: in person, online or both"
        return raw


def _found(place: Place) -> Where:
    return Where(place.label, place.lat, place.lon, place.note)


def _postcode_place(postcode: str) -> Where:
    """Return where a full postcode lands, or raise FieldProblem."""
    canonical = normalise_postcode(postcode)
    if canonical is None:
        raise fv.FieldProblem("postcode", "Enter a full postcode, like ST1 1HE")
    try:
        return _found(resolve_place(canonical))
    except PlaceNotFound as exc:
        hint = f" Did you mean {' or '.join(exc.suggestions)}?" if exc.suggestions else ""
        raise fv.FieldProblem("postcode", f"Postcode {canonical} is not one we can find. "
                                          f"Check it, or leave it empty and enter the "
                                          f"address.{hint}") from None


def _address_place(address: str) -> Where:
    """Return where an address lands (by its postcode, else its town), or raise."""
    inside = _POSTCODE_IN_TEXT.search(address)
    if inside is not None:
        return _postcode_place(inside.group(1))
    town = address.rsplit(",", 1)[-1].strip()
    try:
        place = resolve_place(town)
    except PlaceNotFound:
        raise fv.FieldProblem("address", "We cannot find where this address is. Add its "
                                         "postcode") from None
    note = f"Placed at the middle of {place.label}: add the postcode to place it exactly"
    return Where(place.label, place.lat, place.lon, place.note or note)


def locate(*, postcode: str, address: str, attendance: str) -> Where | None:
    """Return where the meeting lands; an in-person one must land somewhere (FieldProblem)."""
    if postcode:
        return _postcode_place(postcode)
    if attendance in IN_PERSON and not address:
        raise fv.FieldProblem("postcode", "Enter the postcode or the address of the meeting, "
                                          "so people can find it")
    if address and attendance in IN_PERSON:
        return _address_place(address)
    return None  # an online meeting with no postcode has no place on the map


def _online(reader: _Reader, attendance: str) -> dict[str, str | None]:
    """Check the join link and dial-in; an online meeting needs at least one."""
    url = reader.text("conference_url")
    phone_typed = reader.text("conference_phone")
    if url and not (url.lower().startswith("https://") and is_join_link(url)):
        reader.problems["conference_url"] = "Enter the whole join link, starting https://"
    phone = dial_string(phone_typed, region="GB") if phone_typed else None
    if phone_typed and (phone is None or len(phone) > LIMITS["conference_phone"]):
        reader.problems["conference_phone"] = ("Enter a dial-in number that works, like "
                                               "020 3481 5237 or +1 929 205 6099")
    if attendance in ONLINE and not url and not phone_typed:
        reader.problems["conference_url"] = "Enter a join link or a dial-in number, so people " \
                                            "can join online"
    return {"conference_url": url or None, "conference_phone": phone}


def read_meeting_form(form: FormData) -> MeetingForm:
    """Return the form's checked values, or raise fv.FieldProblems (every problem, in order)."""
    r = _Reader(form)
    name = r.text("name")
    if not name:
        r.problems["name"] = "Enter the meeting's name"
    weekday, start = r.weekday(), r.clock("start_time", required=True)
    end = r.clock("end_time", required=False)
    if start is not None and end is not None and end <= start:
        r.problems["end_time"] = "End time must be after the start time"
    zone, attendance = r.zone(), r.attendance()
    venue, address, region = r.text("venue"), r.text("address"), r.text("region")
    postcode = r.text("postcode")
    online = _online(r, attendance)
    notes, contact = r.text("notes", multiline=True), r.text("contact")
    where = None
    if "postcode" not in r.problems and "address" not in r.problems and "attendance" \
            not in r.problems:
        try:
            where = locate(postcode=postcode, address=address, attendance=attendance)
        except fv.FieldProblem as exc:
            r.problems[exc.field] = exc.message
    if r.problems:
        raise fv.FieldProblems({f: r.problems[f] for f in LABELS if f in r.problems})
    values: dict[str, Any] = {
        "name": name, "weekday": weekday, "start_time": start, "end_time": end,
        "timezone": zone, "attendance": attendance, "venue": venue or None,
        "address": address or None, "approximate": attendance not in IN_PERSON and bool(address),
        "postcode": normalise_postcode(postcode) if postcode else None,
        "region": region or None, "lat": where.lat if where else None,
        "lon": where.lon if where else None, **online, "notes": notes or None,
        "contact": contact or None,
    }
    return MeetingForm(values, where)


def preview(form: FormData) -> Where | None:
    """Return where the typed postcode or address lands, if it can be found."""
    try:
        return locate(postcode=clean_text(form.get("postcode"))[:20],
                      address=clean_text(form.get("address"))[:500],
                      attendance=Attendance.IN_PERSON.value)
    except fv.FieldProblem:
        return None


def _same_place(meeting: Meeting, values: dict[str, Any]) -> bool:
    postcode = normalise_postcode(meeting.postcode or "") or meeting.postcode
    attendance = str(getattr(meeting.attendance, "value", meeting.attendance))
    return postcode == values["postcode"] and meeting.address == values["address"] \
        and (attendance in IN_PERSON) == (values["attendance"] in IN_PERSON)


def changed_values(meeting: Meeting, values: dict[str, Any]) -> dict[str, Any]:
    """Return only the values that differ from the meeting's; an unchanged postcode and
    address keep the meeting's own coordinates (a feed's may be more exact than ours)."""
    changed = {k: v for k, v in values.items() if getattr(meeting, k) != v}
    if _same_place(meeting, values):
        for name in ("lat", "lon", "approximate"):
            changed.pop(name, None)
    return changed


def _clock_value(at: time | None) -> str:
    return f"{at:%H:%M}" if at is not None else ""


def form_values(meeting: Meeting) -> dict[str, str]:
    """Return a meeting's fields as the edit form shows them."""
    shown = {name: str(getattr(meeting, name) or "") for name in LABELS}
    attendance = getattr(meeting.attendance, "value", meeting.attendance)
    return {**shown, "weekday": str(meeting.weekday), "attendance": str(attendance),
            "start_time": _clock_value(meeting.start_time),
            "end_time": _clock_value(meeting.end_time),
            "timezone": meeting.timezone or DEFAULT_ZONE}


def where_of(meeting: Meeting) -> Where | None:
    """Return where a saved meeting sits on the map, if it has coordinates."""
    if meeting.lat is None or meeting.lon is None:
        return None
    label = meeting.postcode or meeting.region or meeting.address or "Its saved position"
    return Where(label, meeting.lat, meeting.lon)


# How a meeting reads on the pages.

STATUS_LABELS = {MeetingStatus.ACTIVE: "Running", MeetingStatus.SUSPENDED: "Suspended",
                 MeetingStatus.CANCELLED: "Cancelled"}
ATTENDANCE_LABELS = dict(ATTENDANCE_OPTIONS)
UPCOMING = 6  # dates shown on a meeting's page
SHOWN_ROWS = 500  # rows a list shows; a search narrows it


def told_phrase(told: int) -> str:
    """Return how many people were told, as the banner says it."""
    if told == 0:
        return "No one needed to be told."
    return "1 person was told." if told == 1 else f"{told} people were told."


def _status(meeting: Meeting) -> MeetingStatus:
    return MeetingStatus(getattr(meeting.status, "value", meeting.status))


def _zone_note(meeting: Meeting) -> str:
    if not meeting.timezone:
        return " (time zone not known)"
    return "" if meeting.timezone == DEFAULT_ZONE else f" ({meeting.timezone} time)"


def when_label(meeting: Meeting) -> str:
    """Return the meeting's day and time in its own zone: `Tuesday 6pm to 7:30pm`."""
    day = DAYS[meeting.weekday] if 0 <= meeting.weekday < 7 else "Day not known"
    start, end = meeting.start_time, meeting.end_time
    if start is None:
        return f"{day}, time not known"
    hours = clock(start.hour, start.minute)
    if end is not None:
        hours += f" to {clock(end.hour, end.minute)}"
    return f"{day} {hours}{_zone_note(meeting)}"


def where_label(meeting: Meeting) -> str:
    """Return where the meeting is, briefly: venue and postcode or town, and/or Online."""
    attendance = str(getattr(meeting.attendance, "value", meeting.attendance))
    place = ", ".join(p for p in (meeting.venue, meeting.postcode or meeting.region) if p)
    if attendance == Attendance.ONLINE.value:
        return "Online"
    if attendance == Attendance.HYBRID.value:
        return f"{place or 'In person'} and online"
    return place or meeting.address or "Not known"


def next_label(meeting: Meeting, now: datetime) -> str:
    """Return when it next runs, in its own zone, or why it does not."""
    status = _status(meeting)
    if status != MeetingStatus.ACTIVE:
        return f"None: {STATUS_LABELS[status].lower()}"
    start = next_occurrence(meeting, now)
    if start is None:
        return "Not known"
    return f"{start:%a} {start.day} {start:%b}, {clock(start.hour, start.minute)}" \
           f"{_zone_note(meeting)}"


@dataclass(frozen=True)
class MeetingRow:
    """One line of the meetings list."""

    id: int
    name: str
    when: str
    where: str
    status: str
    chosen: int
    next: str


def meeting_rows(meetings: list[Meeting], chosen: dict[int, int], *, now: datetime
                 ) -> list[MeetingRow]:
    """Return the list's rows for these meetings (at most SHOWN_ROWS)."""
    return [MeetingRow(m.id or 0, m.name, when_label(m), where_label(m),
                       STATUS_LABELS[_status(m)], chosen.get(m.id or 0, 0), next_label(m, now))
            for m in meetings[:SHOWN_ROWS]]


SHOWN_FIELDS = ("id", "name", "venue", "address", "postcode", "region", "conference_url",
                "conference_phone", "notes", "contact", "source")


def meeting_summary(meeting: Meeting) -> dict[str, Any]:
    """Return what the meeting's page shows of it, its status and times in words."""
    attendance = str(getattr(meeting.attendance, "value", meeting.attendance))
    return {**{name: getattr(meeting, name) for name in SHOWN_FIELDS},
            "status": STATUS_LABELS[_status(meeting)], "when": when_label(meeting),
            "attendance": ATTENDANCE_LABELS.get(attendance, attendance)}


@dataclass(frozen=True)
class UpcomingDate:
    """One coming date of a weekly meeting."""

    day: date
    label: str  # "Tuesday 1 December 2026"
    cancelled: bool


def upcoming_dates(meeting: Meeting, now: datetime, count: int = UPCOMING) -> list[UpcomingDate]:
    """Return the meeting's next dates in its own zone (cancelled ones included, marked)."""
    if not 0 <= meeting.weekday < 7:
        return []
    zone = meeting_zone(meeting)
    today = now.astimezone(zone).date()
    day = today + timedelta(days=(meeting.weekday - today.weekday()) % 7)
    if meeting.start_time is not None and occurrence_on(meeting, day) <= now:
        day += timedelta(days=7)  # today's has started
    cancelled = set(meeting.cancelled_dates or ())
    days = [day + timedelta(days=7 * week) for week in range(count)]
    return [UpcomingDate(d, day_label(d), d.isoformat() in cancelled) for d in days]
