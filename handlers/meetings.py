"""Finding meetings: MEETINGS [place|TODAY|TOMORROW|day], ONLINE, MORE, SAVE, UNSAVE, INFO.

Numbers run on across pages, so SAVE n, UNSAVE n and INFO n work from any page; after PLAN
they mean PLAN's numbers. A group that meets on several days takes one number and one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from handlers.channels import traits
from handlers.conversation import Conversation
from handlers.meeting_info import info_text
from handlers.meeting_text import (
    LEVELS,
    clip_words,
    fits_sms,
    groups,
    how_to_join,
    meeting_name,
    meeting_place,
    reader_zone,
    short_name,
    tidy,
    weekday_name,
    when_for,
)
from handlers.menu import show_help  # imported first, so INFO n is ours and INFO alone HELP
from handlers.registry import flow, keyword
from handlers.texts import t
from handlers.types import Choice, Reply
from meeting_finder.errors import PlaceNotFound
from meeting_finder.geocode import Place, resolve_place
from meeting_finder.search import NEAR_ENOUGH_MILES, MeetingHit, find_nearest
from storage.meeting_views_q import chosen_ids, unsubscribe
from storage.meetings_q import meetings_by_id
from storage.models import Meeting
from storage.subscriptions import subscribe

DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
DAY_ABBR = {d[:3]: i for i, d in enumerate(DAYS)} | {d: i for i, d in enumerate(DAYS)}
QUERY_MAX = 30


@dataclass
class Entry:
    """One numbered line: a meeting, or a group that meets on several days."""

    hits: list[MeetingHit]

    @property
    def meeting(self) -> Meeting:
        """Return the first (soonest) meeting of the entry."""
        return self.hits[0].meeting

    @property
    def ids(self) -> list[int]:
        """Return the ids of every meeting in the entry."""
        return [h.meeting.id or 0 for h in self.hits]


def group_hits(hits: list[MeetingHit]) -> list[Entry]:
    """Merge a group's meetings on different days into one entry, in order of first sight."""
    merged = groups(hits, lambda h: h.meeting, lambda h: h.next_start is not None)
    return [Entry(sorted(g, key=lambda h: h.next_start or datetime.max.replace(tzinfo=UTC)))
            for g in merged]


def _parse_filters(args: str) -> tuple[str | None, int | None, str]:
    """Split `TODAY ST3 2QH` into (day filter, weekday, place)."""
    day_filter: str | None = None
    weekday: int | None = None
    rest = []
    for w in args.split():
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


def entry_line(entry: Entry, n: int, *, zone: ZoneInfo, now: datetime, plain: bool,
               level: int = 0) -> str:
    """Return one entry of a list, its name and place shortened to the level's rule."""
    m = entry.meeting
    name = meeting_name(m, plain=plain, level=level)
    when = when_for([h.meeting for h in entry.hits], zone, now)
    miles = entry.hits[0].distance_miles
    if miles is None:
        return t("meetings.line_online", n=n, name=name, when=when, how=how_to_join(m))
    return t("meetings.line", n=n, name=name, when=when, miles=f"{miles:.1f}",
             where=meeting_place(m, plain=plain, level=level))


def _page(conv: Conversation, entries: list[Entry], first: int, head: list[str],
          foot: str) -> str:
    """Return a page: whole on Telegram; by SMS shortened by rule until three segments hold it."""
    plain = conv.channel != "telegram"
    zone = reader_zone(conv.participant, conv.ctx.timezone)
    body = ""
    for level in range(LEVELS if plain else 1):
        lines = [entry_line(e, n, zone=zone, now=conv.now, plain=plain, level=level)
                 for n, e in enumerate(entries, start=first)]
        body = "\n".join([*head, *lines, foot])
        if not plain or fits_sms(body):
            break
    return tidy(body)


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


def _shown_ids(search: dict[str, Any]) -> list[list[int]]:
    """Return the ids behind each number shown so far (older states kept one id a number)."""
    return [[i] if isinstance(i, int) else list(i) for i in search.get("ids", [])]


async def _collect(conv: Conversation, search: dict[str, Any]
                   ) -> tuple[list[MeetingHit], list[MeetingHit], bool]:
    """Return the hits not shown yet, the online ones alongside, and whether there are more.

    Each page searches again from the top and leaves out what was shown, rather than
    skipping a count: meetings the same distance away keep one order that way.
    """
    per_page = conv.ctx.meetings_per_page
    before = {i for ids in _shown_ids(search) for i in ids}
    result = await find_nearest(
        conv.session, lat=search["lat"], lon=search["lon"], now=conv.now,
        limit=len(before) + 4 * per_page, weekday=search.get("weekday"),
        day_filter=search.get("day_filter"), online_only=search.get("online", False),
        tz=reader_zone(conv.participant, conv.ctx.timezone), online_below=per_page)
    fresh = [h for h in result.hits if h.meeting.id not in before]
    near = sum(1 for h in result.hits if (h.distance_miles or 0.0) <= NEAR_ENOUGH_MILES)
    online = [h for h in result.online if h.meeting.id not in before] if near < per_page else []
    return fresh, online, result.has_more


def _header(search: dict[str, Any], conv: Conversation) -> str:
    place = clip_words(conv.echo(str(search.get("label", ""))), QUERY_MAX)
    if search.get("online"):
        return t("meetings.header_online")
    if search.get("day_filter"):
        return t(f"meetings.header_{search['day_filter']}", place=place)
    if search.get("weekday") is not None:
        return t("meetings.header_day", place=place, day=weekday_name(search["weekday"]))
    return t("meetings.header", place=place)


async def _search_reply(conv: Conversation, search: dict[str, Any]) -> list[Reply]:
    per_page = conv.ctx.meetings_per_page
    fresh, online, more = await _collect(conv, search)
    near = group_hits(fresh)
    if not near and not online:
        return [Reply(t("meetings.no_more" if search.get("ids") else "meetings.none_found"))]
    if online and len(near) >= per_page:
        # Few near: keep the page short (3 segments on SMS) by swapping the farthest for one
        # that can be joined from anywhere.
        near = near[: per_page - 1]
    near = near[:per_page]
    shown = near + group_hits(online)[: max(0, per_page - len(near))]
    more = more or sum(len(e.hits) for e in near) < len(fresh)
    ids = _shown_ids(search) + [e.ids for e in shown]
    first = len(ids) - len(shown) + 1  # numbers run on across pages, as SAVE uses them
    conv.update(_search={**search, "ids": ids}, _numbers="search")
    note = search.get("note") if first == 1 else None
    head = [clip_words(conv.echo(note), 120)] if note else []
    foot = t("meetings.footer" if more else "meetings.footer_last", n=first)
    body = _page(conv, shown, first, [*head, _header(search, conv)], foot)
    choices = (Choice(t("meetings.more_label"), "MORE"),) if more else ()
    return [Reply(body, choices=choices)]


@keyword("MEETINGS", "MEETING", "FIND", "NEAR", "MEET")
async def find_meetings(conv: Conversation, args: str) -> list[Reply]:
    """List the nearest open meetings to a place, the release area, or a shared location."""
    day_filter, weekday, query = _parse_filters(args)
    try:
        place = await _place_for(conv, query)
    except PlaceNotFound as exc:
        q = clip_words(conv.echo(query), QUERY_MAX)
        if exc.suggestions:
            said = " or ".join(conv.echo(s) for s in exc.suggestions[:3])
            return [Reply(t("meetings.did_you_mean", query=q, suggestions=said))]
        return [Reply(t("meetings.not_found", query=q))]
    if place is None:
        conv.goto("meetings", "place", {"day_filter": day_filter, "weekday": weekday})
        can_share = traits(conv.channel).location
        key = "meetings.ask_place_telegram" if can_share else "meetings.ask_place"
        return [Reply(t(key), request_location=can_share)]
    conv.reset()
    conv.update(_place={"lat": place.lat, "lon": place.lon, "label": place.label,
                        "precision": place.precision})
    search = {"lat": place.lat, "lon": place.lon, "label": place.label,
              "day_filter": day_filter, "weekday": weekday, "ids": [],
              "note": t("meetings.area_fallback", asked=place.asked, used=place.label)
              if place.note and place.asked else place.note}
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
    search = {"lat": 52.5, "lon": -1.5, "label": "online", "online": True, "ids": []}
    return await _search_reply(conv, search)


@keyword("MORE", "NEXT")
async def more_meetings(conv: Conversation, args: str) -> list[Reply]:
    """Show the next page of the last search."""
    search = conv.data.get("_search")
    if not search:
        return [Reply(t("meetings.no_search"))]
    return await _search_reply(conv, search)


async def _numbered(conv: Conversation, args: str) -> tuple[int, list[Meeting]] | None:
    """Return the number asked for and its meetings, from the list the person saw last."""
    word = args.strip().split(" ")[0].strip(".#") if args.strip() else ""
    if conv.data.get("_numbers") == "plan":
        listed = [list(ids) for ids in conv.data.get("_plan", [])]
    else:
        listed = _shown_ids(conv.data.get("_search") or {})
    if not word.isdigit() or not 1 <= int(word) <= len(listed):
        return None
    ids = listed[int(word) - 1]
    found = await meetings_by_id(conv.session, ids)
    meetings = [found[i] for i in ids if i in found]
    return (int(word), meetings) if meetings else None


def _name(conv: Conversation, meeting: Meeting) -> str:
    return short_name(meeting, plain=conv.channel != "telegram")


@keyword("SAVE", "CHOOSE", "REMINDME")
async def save_meeting(conv: Conversation, args: str) -> list[Reply]:
    """Choose a listed meeting (every day of a group), so reminders come before it."""
    found = await _numbered(conv, args)
    if found is None:
        return [Reply(t("meetings.save_which"))]
    n, meetings = found
    for meeting in meetings:
        await subscribe(conv.session, participant_id=conv.participant.id or 0,
                        meeting_id=meeting.id or 0, now=conv.now)
    zone = reader_zone(conv.participant, conv.ctx.timezone)
    return [Reply(tidy(t("meetings.saved", name=_name(conv, meetings[0]), n=n,
                         when=when_for(meetings, zone, conv.now))))]


@keyword("UNSAVE", "UNCHOOSE")
async def unsave_meeting(conv: Conversation, args: str) -> list[Reply]:
    """Drop a chosen meeting, and the reminders for it."""
    found = await _numbered(conv, args)
    if found is None:
        return [Reply(t("meetings.unsave_which"))]
    _n, meetings = found
    dropped = await unsubscribe(conv.session, participant_id=conv.participant.id or 0,
                                meeting_ids=[m.id or 0 for m in meetings], now=conv.now)
    key = "meetings.unsaved" if dropped else "meetings.not_saved"
    return [Reply(tidy(t(key, name=_name(conv, meetings[0]))))]


@keyword("INFO", "DETAILS")
async def meeting_info(conv: Conversation, args: str) -> list[Reply]:
    """Give a listed meeting's address, directions, joining details, contact and notes."""
    if not args.strip() or not args.split()[0].strip(".#").isdigit():
        return await show_help(conv, args)
    found = await _numbered(conv, args)
    if found is None:
        return [Reply(t("meetings.info_which"))]
    n, meetings = found
    chosen = await chosen_ids(conv.session, conv.participant.id or 0)
    saved = any(m.id in chosen for m in meetings)
    return [Reply(info_text(meetings, n=n, saved=saved, now=conv.now,
                            zone=reader_zone(conv.participant, conv.ctx.timezone),
                            telegram=traits(conv.channel).rich_text))]
