"""Finding meetings: MEETINGS [place|TODAY|TOMORROW|day], ONLINE, MORE, SAVE n."""

from __future__ import annotations

import re
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.conversation import Conversation
from handlers.registry import flow, keyword
from handlers.texts import t
from handlers.types import Choice, Reply
from meeting_finder.errors import PlaceNotFound
from meeting_finder.geocode import Place, resolve_place
from meeting_finder.search import MeetingHit, find_nearest
from storage.models import Meeting
from storage.subscriptions import subscribe

DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
DAY_ABBR = {d[:3]: i for i, d in enumerate(DAYS)} | {d: i for i, d in enumerate(DAYS)}
NAME_MAX = 34
WHERE_MAX = 40
_PREFIX = re.compile(r"^\s*smart\s+recovery\s*[:-]?\s*", re.IGNORECASE)


def _parse_filters(args: str) -> tuple[str | None, int | None, str]:
    """Split `TODAY ST3 2QH` into (day filter, weekday, place)."""
    words = args.split()
    day_filter: str | None = None
    weekday: int | None = None
    rest = []
    for w in words:
        u = w.upper().strip(",.")
        if u in ("TODAY", "TONIGHT") and day_filter is None and weekday is None:
            day_filter = "today"
        elif u == "TOMORROW" and day_filter is None and weekday is None:
            day_filter = "tomorrow"
        elif u in DAY_ABBR and day_filter is None and weekday is None:
            weekday = DAY_ABBR[u]
        else:
            rest.append(w)
    return day_filter, weekday, " ".join(rest)


def _when(start: datetime | None, now: datetime) -> str:
    if start is None:
        return "time not listed"
    local_now = now.astimezone(start.tzinfo)
    day = start.strftime("%a")
    if start.date() == local_now.date():
        day = "Today"
    elif (start.date() - local_now.date()).days == 1:
        day = "Tomorrow"
    hour = start.strftime("%I").lstrip("0")
    minute = "" if start.minute == 0 else start.strftime(":%M")
    date_part = start.strftime("%d %b").lstrip("0")
    return f"{day} {date_part} {hour}{minute}{start.strftime('%p').lower()}"


def _short(text: str | None, limit: int) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _where(meeting: Meeting) -> str:
    parts = [p for p in (meeting.venue, meeting.postcode) if p]
    return _short(", ".join(parts) or meeting.address, WHERE_MAX)


def _display_name(meeting: Meeting) -> str:
    """Drop the "SMART Recovery" every meeting shares, to keep texts short."""
    return _short(_PREFIX.sub("", meeting.name) or meeting.name, NAME_MAX)


def format_hits(hits: list[MeetingHit], start: int, now: datetime) -> list[str]:
    """Return one short line per meeting, numbered from `start`."""
    lines = []
    for n, hit in enumerate(hits, start=start):
        m = hit.meeting
        if hit.distance_miles is None:
            how = f"dial {_short(m.conference_phone, 24)}" if m.conference_phone else "online"
            lines.append(t("meetings.line_online", n=n, name=_display_name(m),
                           when=_when(hit.next_start, now), how=how))
        else:
            lines.append(t("meetings.line", n=n, name=_display_name(m),
                           when=_when(hit.next_start, now),
                           miles=f"{hit.distance_miles:.1f}", where=_where(m)))
    return lines


async def _place_for(conv: Conversation, query: str) -> Place | None:
    if conv.inbound.location is not None:
        lat, lon = conv.inbound.location
        return Place(lat=lat, lon=lon, label="you", precision="latlon")
    if query:
        return resolve_place(query)
    remembered = conv.data.get("_place")
    if remembered:
        return Place(**remembered)
    p = conv.participant
    if p.release_lat is not None and p.release_lon is not None:
        return Place(lat=p.release_lat, lon=p.release_lon,
                     label=p.release_postcode or p.region or "your area",
                     precision="postcode")
    if p.release_postcode:
        return resolve_place(p.release_postcode)
    return None


async def _search_reply(conv: Conversation, search: dict) -> list[Reply]:
    session: AsyncSession = conv.session
    per_page = conv.ctx.meetings_per_page
    result = await find_nearest(
        session, lat=search["lat"], lon=search["lon"], now=conv.now, limit=per_page,
        offset=search["offset"], weekday=search.get("weekday"),
        day_filter=search.get("day_filter"), online_only=search.get("online", False),
        tz=conv.ctx.timezone,
    )
    hits = result.hits
    if not hits and not result.online:
        return [Reply(t("meetings.no_more" if search["offset"] else "meetings.none_found"))]
    if search.get("online"):
        header = t("meetings.header_online")
    elif search.get("day_filter"):
        header = t(f"meetings.header_{search['day_filter']}", place=search["label"])
    elif search.get("weekday") is not None:
        header = t("meetings.header_day", place=search["label"],
                   day=DAYS[search["weekday"]].title())
    else:
        header = t("meetings.header", place=search["label"])
    start = len(search.get("ids", [])) + 1  # numbers run on across pages, as SAVE uses them
    online = [] if search.get("online") else result.online
    if online and len(hits) >= per_page:
        # Few near: keep the page short (3 segments on SMS) by swapping the farthest for one
        # that can be joined from anywhere.
        hits = hits[: per_page - 1]
    shown = hits + online[: max(0, per_page - len(hits))]
    lines = format_hits(shown, start, conv.now)
    ids = list(search.get("ids", [])) + [h.meeting.id for h in shown]
    conv.update(_search={**search, "offset": search["offset"] + len(hits), "ids": ids})
    note = search.get("note")
    body = "\n".join(([note] if note and search["offset"] == 0 else []) + [header, *lines])
    choices: tuple[Choice, ...] = ()
    if result.has_more:
        body += "\n" + t("meetings.footer")
        choices = (Choice(t("meetings.more_label"), "MORE"),)
    else:
        body += "\n" + t("meetings.footer_last")
    return [Reply(body, choices=choices)]


@keyword("MEETINGS", "MEETING", "FIND", "NEAR", "MEET")
async def find_meetings(conv: Conversation, args: str) -> list[Reply]:
    """List the nearest open meetings to a place, the release area, or a shared location."""
    day_filter, weekday, query = _parse_filters(args)
    try:
        place = await _place_for(conv, query)
    except PlaceNotFound as exc:
        q = _short(query, 30)
        if exc.suggestions:
            return [Reply(t("meetings.did_you_mean", query=q,
                            suggestions=" or ".join(exc.suggestions[:3])))]
        return [Reply(t("meetings.not_found", query=q))]
    if place is None:
        conv.goto("meetings", "place", {"day_filter": day_filter, "weekday": weekday})
        key = "meetings.ask_place_telegram" if conv.channel == "telegram" else "meetings.ask_place"
        return [Reply(t(key), request_location=conv.channel == "telegram")]
    conv.reset()
    conv.update(_place={"lat": place.lat, "lon": place.lon, "label": place.label,
                        "precision": place.precision})
    search = {"lat": place.lat, "lon": place.lon, "label": place.label, "offset": 0,
              "day_filter": day_filter, "weekday": weekday, "note": place.note, "ids": []}
    return await _search_reply(conv, search)


@flow("meetings")
async def meetings_place_step(conv: Conversation, text: str) -> list[Reply]:
    """Take the place a person sends after MEETINGS asked for one."""
    extra = " ".join(x for x in (conv.data.get("day_filter"), ) if x)
    return await find_meetings(conv, f"{extra} {text}".strip())


@keyword("ONLINE")
async def online_meetings(conv: Conversation, args: str) -> list[Reply]:
    """List meetings that can be joined online or by phone."""
    conv.reset()
    search = {"lat": 52.5, "lon": -1.5, "label": "online", "offset": 0, "online": True, "ids": []}
    return await _search_reply(conv, search)


@keyword("MORE", "NEXT")
async def more_meetings(conv: Conversation, args: str) -> list[Reply]:
    """Show the next page of the last search."""
    search = conv.data.get("_search")
    if not search:
        return [Reply(t("meetings.no_search"))]
    return await _search_reply(conv, search)


@keyword("SAVE", "CHOOSE", "REMINDME")
async def save_meeting(conv: Conversation, args: str) -> list[Reply]:
    """Choose a listed meeting, so reminders come before it."""
    search = conv.data.get("_search") or {}
    ids = search.get("ids", [])
    word = args.strip().split(" ")[0] if args.strip() else ""
    if not word.isdigit() or not 1 <= int(word) <= len(ids):
        return [Reply(t("meetings.save_which"))]
    meeting = await conv.session.get(Meeting, ids[int(word) - 1])
    if meeting is None:
        return [Reply(t("meetings.save_which"))]
    await subscribe(conv.session, participant_id=conv.participant.id or 0,
                    meeting_id=meeting.id or 0, now=conv.now)
    return [Reply(t("meetings.saved", name=_short(meeting.name, NAME_MAX)))]

