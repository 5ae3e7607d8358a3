"""What the voice line says: meetings read aloud on the caller's clock, and the text of key 2.

Everything here is written with t() for the current reader (`reading_as(language)`), so a
Welsh participant hears Welsh; the route module only wraps it in TwiML.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.meeting_text import (
    LEVELS,
    fits_sms,
    is_running,
    meeting_name,
    meeting_place,
    reader_zone,
    tidy,
    when_for,
)
from handlers.meetings import Entry, entry_line
from handlers.texts import t
from meeting_finder.errors import PlaceNotFound
from meeting_finder.geocode import Place, resolve_place
from meeting_finder.recurrence import next_occurrence
from meeting_finder.search import MeetingHit, find_nearest
from storage.meeting_views_q import chosen_ids
from storage.meetings_q import meetings_by_id
from storage.models import Attendance, Meeting, Participant

PAGE = 3  # meetings read out at a time: more than three is hard to hold in your head
DAY_KEYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_SPOKEN_PLACE = 60  # a town name the caller said, as far as we search for it


@dataclass
class Listing:
    """One page of meetings near a place, as read out and as a text would list them."""

    place: Place
    page: int
    hits: list[MeetingHit]
    more: bool


def spoken_clock(moment: datetime, zone: ZoneInfo) -> str:
    """Return e.g. "7 p.m." or "10:30 a.m." on the caller's clock, said in their language."""
    local = moment.astimezone(zone)
    minute = "" if local.minute == 0 else f":{local.minute:02d}"
    part = ("voice.morning" if local.hour < 12
            else "voice.afternoon" if local.hour < 18 else "voice.evening")
    return f"{local.hour % 12 or 12}{minute} {t(part)}"


def spoken_when(moment: datetime, zone: ZoneInfo, now: datetime) -> str:
    """Return "today at 7 p.m.", "tomorrow at ..." or "on Tuesday at ..." for the caller."""
    local = moment.astimezone(zone)
    time = spoken_clock(moment, zone)
    ahead = (local.date() - now.astimezone(zone).date()).days
    if ahead == 0:
        return t("voice.today", time=time)
    if ahead == 1:
        return t("voice.tomorrow", time=time)
    return t("voice.on_day", day=t(f"voice.days.{DAY_KEYS[local.weekday()]}"), time=time)


def _miles(miles: float) -> str:
    return f"{miles:.1f}" if miles < 10 else f"{miles:.0f}"


def spoken_line(hit: MeetingHit, n: int, *, zone: ZoneInfo, now: datetime) -> str:
    """Return one meeting read out: number, name, when, how far and where."""
    m = hit.meeting
    name = meeting_name(m, plain=True, level=1)
    when = spoken_when(hit.next_start, zone, now) if hit.next_start else t("meetings.no_time")
    if hit.distance_miles is None:
        return t("voice.line_online", n=n, name=name, when=when)
    return t("voice.line", n=n, name=name, when=when, miles=_miles(hit.distance_miles),
             place=meeting_place(m, plain=True, level=1))


def home_place(participant: Participant) -> Place | None:
    """Return the participant's release area as a place to search from, if known."""
    p = participant
    label = p.release_postcode or p.region or ""
    if p.release_lat is not None and p.release_lon is not None:
        return Place(lat=p.release_lat, lon=p.release_lon, label=label, precision="postcode")
    return spoken_place(p.release_postcode) if p.release_postcode else None


def spoken_place(said: str | None) -> Place | None:
    """Return the place a caller said (or we carried in a URL), or None if it is not one."""
    text = (said or "").strip().strip(".!?,")[:MAX_SPOKEN_PLACE]
    if not text:
        return None
    try:
        return resolve_place(text)
    except PlaceNotFound:
        return None


async def listing(session: AsyncSession, *, place: Place, page: int, zone: ZoneInfo,
                  now: datetime) -> Listing:
    """Return one page of the nearest open meetings (online ones too on the first page)."""
    result = await find_nearest(session, lat=place.lat, lon=place.lon, now=now, limit=PAGE,
                                offset=page * PAGE, tz=zone)
    hits = list(result.hits)
    if page == 0:
        hits += result.online[: max(0, PAGE - len(hits))]
    return Listing(place, page, hits, result.has_more)


def listing_lines(found: Listing, *, zone: ZoneInfo, now: datetime) -> list[str]:
    """Return a page read out: a heading and a line a meeting, or that there are none."""
    if not found.hits:
        return [t("voice.no_more") if found.page else
                t("voice.none_found", place=found.place.label)]
    head = (t("voice.nearest", place=found.place.label) if found.page == 0
            else t("voice.more_nearest"))
    first = found.page * PAGE + 1
    return [head, *(spoken_line(h, n, zone=zone, now=now)
                    for n, h in enumerate(found.hits, start=first))]


async def next_chosen(session: AsyncSession, participant: Participant, now: datetime
                      ) -> tuple[Meeting, datetime] | None:
    """Return the participant's soonest chosen meeting that is running, and when it starts."""
    found = await meetings_by_id(session, sorted(await chosen_ids(session, participant.id or 0)))
    soonest: tuple[Meeting, datetime] | None = None
    for meeting in found.values():
        start = next_occurrence(meeting, now) if is_running(meeting) else None
        if start is not None and (soonest is None or start < soonest[1]):
            soonest = (meeting, start)
    return soonest


def chosen_line(chosen: tuple[Meeting, datetime], *, zone: ZoneInfo, now: datetime) -> str:
    """Return the next chosen meeting read out."""
    meeting, start = chosen
    name, when = meeting_name(meeting, plain=True, level=1), spoken_when(start, zone, now)
    if str(meeting.attendance) == Attendance.ONLINE.value:
        return t("voice.next_chosen_online", name=name, when=when)
    return t("voice.next_chosen", name=name, when=when,
             place=meeting_place(meeting, plain=True, level=1))


def text_of(found: Listing, chosen: tuple[Meeting, datetime] | None, *,
            participant: Participant, default_zone: ZoneInfo, now: datetime) -> str:
    """Return the text key 2 sends: what was read out, shortened by rule to three segments."""
    zone = reader_zone(participant, default_zone)
    head = [t("voice.sms_header")]
    if chosen is not None:
        meeting = chosen[0]
        head.append(t("voice.sms_chosen", name=meeting_name(meeting, plain=True, level=1),
                      when=when_for([meeting], zone, now)))
    first = found.page * PAGE + 1
    body = ""
    for level in range(LEVELS):
        lines = [entry_line(Entry([h]), n, zone=zone, now=now, plain=True, level=level)
                 for n, h in enumerate(found.hits, start=first)]
        body = "\n".join([*head, *lines])
        if fits_sms(body):
            break
    return tidy(body)
