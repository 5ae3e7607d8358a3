"""How a meeting reads: times on the reader's own clock, names and places shortened by rule.

Shortening follows one order, so a text never ends mid-word or inside a number: drop the
"SMART Recovery" every meeting shares, then "(demo)", then the venue (the postcode stays),
and only then cut a name at a space, never inside a number, postcode or dial string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from handlers.textin import plain_letters
from handlers.texts import current_reader, t
from meeting_finder.offerable import is_join_link
from meeting_finder.places import fold
from meeting_finder.recurrence import next_occurrence
from storage.models import Meeting, MeetingStatus, Participant

UK = "Europe/London"
SMS_ROOM = 459  # septets in three GSM-7 segments (3 x 153)
_EXT = frozenset("^{}\\[~]|\u20ac\f")  # GSM-7 extension characters take two septets each
_PREFIX = re.compile(r"^\s*smart\s+recovery\b\s*[:,-]?\s*", re.IGNORECASE)
_DEMO = re.compile(r"\s*\(demo(?: address)?\)", re.IGNORECASE)
# Spans cut as one word: a UK postcode, and digits with spaces or dial pauses between them.
_WHOLE = re.compile(
    r"\b[A-Z]{1,2}\d[A-Z\d]?\s+\d[A-Z]{2}\b|\+?\(?\d[\d\s().,#*-]*\d#?", re.IGNORECASE
)
_DOTS = re.compile(r"\.{4,}")
DIAL_SHOWN = 32  # a dial string longer than this is left to INFO rather than cut
# Name length by shortening level (None: whole); the place drops its venue from PLACE_BARE.
NAME_LIMITS: tuple[int | None, ...] = (None, None, 60, 60, 44, 30)
PLACE_BARE = 3
LEVELS = len(NAME_LIMITS)
T = TypeVar("T")
# Welsh dates and times, written the way Welsh public services and phones show them:
# short day and month names (Maw 3 Meh; March stays "Mawrth", so it is never read as the
# Tuesday "Maw"), and the clock with yb (y bore, before noon) and yh (yr hwyr, after noon),
# as Welsh speakers write 7yh where English writes 7pm. English stays "Tue 3 Jun 7pm".
_DAYS = {"en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
         "cy": ("Llun", "Maw", "Mer", "Iau", "Gwe", "Sad", "Sul")}
_DAY_NAMES = {"en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                     "Sunday"),
              "cy": ("dydd Llun", "dydd Mawrth", "dydd Mercher", "dydd Iau", "dydd Gwener",
                     "dydd Sadwrn", "dydd Sul")}
_MONTHS = {"en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                  "Nov", "Dec"),
           "cy": ("Ion", "Chwef", "Mawrth", "Ebr", "Mai", "Meh", "Gorff", "Awst", "Medi",
                  "Hyd", "Tach", "Rhag")}
_RELATIVE = {"en": ("Today", "Tomorrow"), "cy": ("Heddiw", "Yfory")}
_HALF_DAY = {"en": ("am", "pm"), "cy": ("yb", "yh")}


def _lang() -> str:
    return current_reader().language if current_reader().language in _DAYS else "en"


def weekday_name(weekday: int) -> str:
    """Return the reader's full name of a weekday (0 is Monday): "Monday", "dydd Llun"."""
    return _DAY_NAMES[_lang()][weekday]


def septets(text: str) -> int:
    """Count GSM-7 septets (extension characters count twice)."""
    return sum(2 if ch in _EXT else 1 for ch in text)


def fits_sms(text: str, room: int = SMS_ROOM) -> bool:
    """Say whether a plain-lettered text fits in `room` septets (three segments by default)."""
    return septets(text) <= room


def tidy(text: str) -> str:
    """Never let a cut name and a full stop make four dots."""
    return _DOTS.sub("...", text)


def clip_words(text: str, limit: int, ellipsis: str = "...") -> str:
    """Shorten to `limit` characters at a space, never inside a word, number or postcode."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    glued = _WHOLE.sub(lambda m: m.group().replace(" ", "\0"), text)
    kept = ""
    for word in glued.split(" "):
        longer = f"{kept} {word}" if kept else word
        if len(longer) + len(ellipsis) > limit:
            break
        kept = longer
    kept = kept.rstrip(" ,;:-&/(.")
    return kept.replace("\0", " ") + ellipsis if kept else ""


def reader_zone(participant: Participant | None, default: ZoneInfo | None = None) -> ZoneInfo:
    """Return the zone a participant reads times in (Europe/London unless theirs says else)."""
    name = participant.timezone if participant is not None else None
    try:
        return ZoneInfo(name) if name else (default or ZoneInfo(UK))
    except (ZoneInfoNotFoundError, ValueError):
        return default or ZoneInfo(UK)


def clock(moment: datetime, zone: ZoneInfo) -> str:
    """Return e.g. "1:30pm" or "7pm" on the reader's clock."""
    local = moment.astimezone(zone)
    minute = "" if local.minute == 0 else f":{local.minute:02d}"
    return f"{local.hour % 12 or 12}{minute}{_HALF_DAY[_lang()][local.hour >= 12]}"


def zone_note(moments: Sequence[datetime], zone: ZoneInfo) -> str:
    """Return " (UK time)" when a meeting keeps another zone's clock, else ""."""
    if all(m.utcoffset() == m.astimezone(zone).utcoffset() for m in moments):
        return ""
    uk = zone.key == UK or zone.key.startswith("GB")
    return " " + t("meetings.uk_time" if uk else "meetings.your_time")


def short_date(day: date) -> str:
    """Return e.g. "19 Nov 2026" ("19 Tach 2026" for a Welsh reader)."""
    return f"{day.day} {_MONTHS[_lang()][day.month - 1]} {day.year}"


def day_word(moment: datetime, zone: ZoneInfo, now: datetime | None) -> str:
    """Return "Today", "Tomorrow" or e.g. "Tue 1 Dec" on the reader's calendar."""
    local, lang = moment.astimezone(zone), _lang()
    month = _MONTHS[lang][local.month - 1]
    if now is not None:
        ahead = (local.date() - now.astimezone(zone).date()).days
        if ahead in (0, 1):
            return f"{_RELATIVE[lang][ahead]} {local.day} {month}"
    return f"{_DAYS[lang][local.weekday()]} {local.day} {month}"


def when(moment: datetime, zone: ZoneInfo, now: datetime | None = None) -> str:
    """Return e.g. "Tue 1 Dec 1:30pm (UK time)": the reader's day and clock."""
    return f"{day_word(moment, zone, now)} {clock(moment, zone)}{zone_note([moment], zone)}"


def weekly(starts: Sequence[datetime], zone: ZoneInfo) -> str:
    """Return the days of a group that meets on several, e.g. "Mon & Wed 6:30pm"."""
    local = sorted((s.astimezone(zone) for s in starts), key=lambda s: s.weekday())
    times = {clock(s, zone) for s in local}
    names = _DAYS[_lang()]
    parts = [names[s.weekday()] if len(times) == 1 else f"{names[s.weekday()]} {clock(s, zone)}"
             for s in local]
    days = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} & {parts[-1]}"
    same = f" {times.pop()}" if len(times) == 1 else ""
    return f"{days}{same}{zone_note(starts, zone)}"


def next_starts(meetings: Sequence[Meeting], now: datetime) -> list[datetime]:
    """Return the next start of each running meeting that has a time."""
    starts = [next_occurrence(m, now) for m in meetings if is_running(m)]
    return sorted(s for s in starts if s is not None)


def is_running(meeting: Meeting) -> bool:
    """Say whether the meeting is on (not paused or stopped)."""
    return str(getattr(meeting.status, "value", meeting.status)) == MeetingStatus.ACTIVE.value


def when_for(meetings: Sequence[Meeting], zone: ZoneInfo, now: datetime) -> str:
    """Return when a meeting (or a group on several days) is next, on the reader's clock."""
    if not any(is_running(m) for m in meetings):
        return t("meetings.not_running")
    starts = next_starts(meetings, now)
    if not starts:
        return t("meetings.no_time")
    if len(starts) == 1:
        return when(starts[0], zone, now)
    return t("meetings.when_group", days=weekly(starts, zone),
             next=mid_sentence(day_word(starts[0], zone, now)))


def mid_sentence(text: str) -> str:
    """Lower-case a leading "Today" or "Tomorrow", for use after a word like "next"."""
    relative = tuple(word for words in _RELATIVE.values() for word in words)
    return text[0].lower() + text[1:] if text.startswith(relative) else text


def meeting_name(meeting: Meeting, *, plain: bool, level: int = 0) -> str:
    """Return the meeting's name without the shared prefix, shortened to the level's rule."""
    name = _PREFIX.sub("", meeting.name)
    if not name or name[0].islower():  # "SMART Recovery online, Monday" keeps its start
        name = meeting.name
    name = plain_letters(name) if plain else " ".join(name.split())
    if level >= 1:
        name = _DEMO.sub("", name) or name
    limit = NAME_LIMITS[min(level, LEVELS - 1)]
    return name if limit is None else clip_words(name, limit) or name


def short_name(meeting: Meeting, *, plain: bool, limit: int = 60) -> str:
    """Return the name whole if it is short enough, else shortened by rule to `limit`."""
    name = meeting_name(meeting, plain=plain)
    if len(name) <= limit:
        return name
    name = meeting_name(meeting, plain=plain, level=1)
    return name if len(name) <= limit else clip_words(name, limit) or name


def meeting_place(meeting: Meeting, *, plain: bool, level: int = 0) -> str:
    """Return where to go: venue and postcode; at PLACE_BARE, the postcode alone."""
    venue, postcode, address = meeting.venue or "", meeting.postcode or "", meeting.address or ""
    if level >= 1:
        venue, address = _DEMO.sub("", venue), _DEMO.sub("", address)
    if level >= PLACE_BARE and postcode:
        venue = ""
    text = ", ".join(p for p in (venue, postcode) if p) or address
    text = plain_letters(text) if plain else " ".join(text.split())
    return clip_words(text, 40) or text if level >= PLACE_BARE else text


def full_address(meeting: Meeting, *, plain: bool) -> str:
    """Return the venue, street address and postcode, each once."""
    parts = [p for p in (meeting.venue, meeting.address) if p]
    if parts and meeting.venue and meeting.address and fold(meeting.venue) in fold(
            meeting.address):
        parts = [meeting.address]
    text = ", ".join(parts)
    if meeting.postcode and fold(meeting.postcode) not in fold(text):
        text = f"{text}, {meeting.postcode}" if text else meeting.postcode
    return plain_letters(text) if plain else text


def how_to_join(meeting: Meeting) -> str:
    """Return how a list says to join: online, by phone, or the whole dial string."""
    link = is_join_link(meeting.conference_url)
    phone = (meeting.conference_phone or "").strip()
    if phone and len(phone) <= DIAL_SHOWN:
        return t("meetings.how_online_dial" if link else "meetings.how_dial", phone=phone)
    if phone:
        return t("meetings.how_online_phone" if link else "meetings.how_phone")
    return t("meetings.how_online")


def contact_of(meeting: Meeting, *, plain: bool) -> str:
    """Return who to ask before going: name, phone and email, or the feed's contact line."""
    parts = [p for p in (meeting.contact_name, meeting.contact_phone, meeting.contact_email) if p]
    text = ", ".join(parts) if meeting.contact_phone or meeting.contact_email else (
        meeting.contact or "")
    return plain_letters(text) if plain else text


def group_key(meeting: Meeting) -> tuple[str, ...]:
    """Return what makes meetings one group: the same name, place and way of joining."""
    place = meeting.address or meeting.venue or ""
    return (fold(meeting.name), fold(place), meeting.conference_url or "",
            meeting.conference_phone or "", str(meeting.attendance))


def groups(items: Sequence[T], meeting_of: Callable[[T], Meeting],
           timed: Callable[[T], bool]) -> list[list[T]]:
    """Gather a group's meetings on different days together, in order of first sight."""
    out: list[list[T]] = []
    keys: list[tuple[str, ...]] = []  # each group's key, worked out once
    for item in items:
        m = meeting_of(item)
        key = group_key(m)
        home = next((g for g, k in zip(out, keys, strict=True) if timed(item) and timed(g[0])
                     and k == key and m.weekday not in {meeting_of(i).weekday for i in g}),
                    None)
        if home is None:
            out.append([item])
            keys.append(key)
        else:
            home.append(item)
    return out
