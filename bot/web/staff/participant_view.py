"""What staff pages show of a participant, built so no channel address can reach a page:
templates get these views, never a `Participant`, `ChannelIdentity` or phone number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from geopy.distance import geodesic

from bot.web.templating import when
from meeting_finder.recurrence import known_zone
from meeting_finder.search import MeetingHit
from scheduler.quiet import zone_of
from storage.caseload_q import AuditLine
from storage.models import Meeting, Participant, ParticipantStatus

HOME_ZONE = "Europe/London"
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CHANNEL_LABELS: dict[str, str] = {"sms": "SMS", "telegram": "Telegram", "console": "Console"}
STATUS_LABELS = {
    ParticipantStatus.ENROLLED: "Enrolled: not linked or not agreed by text yet",
    ParticipantStatus.ACTIVE: "Linked and agreed by text",
    ParticipantStatus.STOPPED: "Stopped all messages (texted STOP)",
    ParticipantStatus.DELETED: "Their data was deleted",
}
KM_PER_MILE = 1.609344
KINDS = [("probation", "Probation"), ("treatment", "Treatment"),
         ("prescription", "Prescription"), ("gp", "GP"), ("housing", "Housing"),
         ("other", "Other")]  # the appointment kinds, as the form offers them
KIND_LABELS = dict(KINDS)


def masked_phone(e164: str | None) -> str | None:
    """Return a mobile number with all but its last three digits hidden: `07*** ***123`."""
    if not e164:
        return None
    digits = "".join(ch for ch in e164 if ch.isdigit())
    national = "0" + digits[2:] if digits.startswith("44") else digits
    return f"{national[:2]}*** ***{national[-3:]}"


def day_label(day: date) -> str:
    """Return a date as people read it: `Thursday 26 November 2026`."""
    return f"{DAYS[day.weekday()]} {day.day} {day:%B %Y}"


def clock(hour: int, minute: int) -> str:
    """Return a time of day as people say it: `7pm`, `7:30pm`."""
    suffix = "am" if hour < 12 else "pm"
    return f"{hour % 12 or 12}{f':{minute:02d}' if minute else ''}{suffix}"


@dataclass(frozen=True)
class ParticipantView:
    """A participant as staff pages show them."""

    id: int
    name: str
    status: str
    release_date: date
    released_at: datetime | None
    release_area: str | None
    mobile: str | None  # masked
    channel: str
    sessions_inside: int
    zone: ZoneInfo
    deleted: bool


def participant_view(p: Participant) -> ParticipantView:
    """Return what staff pages may show of a participant."""
    assert p.id is not None
    return ParticipantView(
        id=p.id, name=p.display_name, status=STATUS_LABELS[ParticipantStatus(p.status)],
        release_date=p.release_date, released_at=p.released_at,
        release_area=p.release_postcode or p.region, mobile=masked_phone(p.phone),
        channel=CHANNEL_LABELS.get(str(p.preferred_channel), str(p.preferred_channel)),
        sessions_inside=p.sessions_inside, zone=zone_of(p),
        deleted=p.status == ParticipantStatus.DELETED)


@dataclass(frozen=True)
class MeetingLine:
    """A meeting as the plan pages list it: name, day, time (its own zone if not UK), miles."""

    id: int
    name: str
    day: str
    time: str
    distance: str
    where: str


def _miles(meeting: Meeting, lat: float | None, lon: float | None) -> float | None:
    if None in (meeting.lat, meeting.lon, lat, lon) or str(meeting.attendance) == "online":
        return None
    return float(geodesic((lat, lon), (meeting.lat, meeting.lon)).km) / KM_PER_MILE


def meeting_line(meeting: Meeting, miles: float | None) -> MeetingLine:
    """Return a meeting's line; `miles` from the release area (None: online)."""
    assert meeting.id is not None
    zone = known_zone(meeting)
    if meeting.start_time is None or zone is None:
        at = "Time not known"
    else:
        at = clock(meeting.start_time.hour, meeting.start_time.minute)
        if zone.key != HOME_ZONE:
            at += f" ({zone.key.replace('_', ' ')} time)"
    online = str(meeting.attendance) == "online"
    distance = "Online" if online or miles is None else f"{miles:.1f} miles"
    where = "Online" if online else ", ".join(
        x for x in (meeting.venue, meeting.postcode or meeting.region) if x)
    return MeetingLine(meeting.id, meeting.name, f"{DAYS[meeting.weekday % 7]}s", at,
                       distance, where)


def hit_line(hit: MeetingHit) -> MeetingLine:
    """Return the line for a meeting the nearest-meetings search found."""
    return meeting_line(hit.meeting, hit.distance_miles)


def chosen_line(meeting: Meeting, participant: Participant) -> MeetingLine:
    """Return the line for a chosen meeting, measured from the participant's release area."""
    return meeting_line(meeting, _miles(meeting, participant.release_lat,
                                        participant.release_lon))


PAGES = {
    "/staff/participants": "the caseload list",
    "/staff/participants/{participant_id}/discreet": "the discreet texts form",
    "/staff/participants/{participant_id}": "their plan",
    "/staff/participants/{participant_id}/release-date": "the release date form",
    "/staff/participants/{participant_id}/released": "the mark as released form",
    "/staff/participants/{participant_id}/code": "a new link code",
    "/staff/participants/{participant_id}/card": "their release card",
    "/staff/participants/{participant_id}/meetings": "meetings near their release area",
    "/staff/participants/{participant_id}/appointments/new": "the appointment form",
    "/staff/participants/{participant_id}/contacts/new": "the key contact form",
}
ACTIONS = {
    "enrol": "Enrolled them",
    "discreet_on": "Turned discreet texts on",
    "discreet_off": "Turned discreet texts off",
    "discreet_default": "Set discreet texts to their channel's default",
    "new_code": "Issued a new link code (older codes stopped working)",
    "goal_added": "Added a goal",
    "goal_removed": "Removed a goal",
    "appointment_added": "Added an appointment",
    "appointment_cancelled": "Removed an appointment",
    "contact_added": "Added a key contact",
    "contact_removed": "Removed a key contact",
    "meeting_chosen": "Chose a meeting for them",
    "meeting_unchosen": "Removed a chosen meeting",
    "link_code": "Linked a phone or Telegram with their code",
    "consent": "Agreed to take part by text",
    "stop": "Stopped all messages",
    "start": "Started messages again",
    "opt_out": "Messages stopped",
    "crisis_reply": "Was sent crisis phone numbers",
    "erase": "Deleted their data",
}


def audit_what(line: AuditLine, tz: ZoneInfo) -> str:
    """Return what an audit row records, in words."""
    event, detail = line.event, line.event.detail or {}
    raw = str(detail.get("page", ""))  # a route's path, with or without the /staff prefix
    page = PAGES.get(raw if raw.startswith("/staff") else f"/staff{raw}", raw or "a page")
    if event.action == "participant_read":
        return f"Looked at {page}"
    if event.action == "participant_change":
        return f"Sent a change from {page}"
    if event.action == "release_date_moved":
        return f"Moved the release date from {detail.get('from')} to {detail.get('to')}"
    if event.action == "marked_released":
        at = datetime.fromisoformat(str(detail.get("at")))
        return f"Marked them as released at {when(at, tz)}"
    return ACTIONS.get(event.action, event.action.replace("_", " ").capitalize())


def audit_who(line: AuditLine) -> str:
    """Return who did what an audit row records."""
    actor = line.event.actor
    if line.staff_email:
        return line.staff_email
    if actor.startswith("participant:"):
        return "The participant"
    return {"cli": "Command line", "system": "The service"}.get(actor, actor)
