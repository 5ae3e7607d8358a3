"""Find the nearest open meetings to a place, widening the radius until enough are found."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from geopy.distance import geodesic
from sqlmodel.ext.asyncio.session import AsyncSession

from meeting_finder.offerable import (
    is_offerable,
    offerable_in_person,
    offerable_online,
)
from meeting_finder.recurrence import next_occurrence
from meeting_finder.spatial import (
    NO_TIME,
    WEEK_MINUTES,
    DayFilter,
    MeetingIndex,
    PointSet,
    get_index,
    invalidate_index,
)
from storage.meetings_q import meetings_by_id
from storage.models.meetings import Meeting

__all__ = [
    "MeetingHit",
    "SearchResult",
    "directions_url",
    "find_nearest",
    "invalidate_index",
    "is_offerable",
]

logger = logging.getLogger(__name__)

RADII_MILES = (3, 5, 10, 15, 25, 50, 100, 200, 400, 800, 1600, 3200, 12500)
NEAR_ENOUGH_MILES = 25.0  # fewer than `limit` meetings this close: offer online ones too
ONLINE_ALONGSIDE = 2
EXTRA_CANDIDATES = 5  # clock changes can swap the order of online meetings; re-rank a few more
SPARE_NEAR = 2  # in-person candidates read beyond those needed, for meetings changed since the
# index was built (each read row costs; another read is made if these run out)
KM_PER_MILE = 1.609344
_GEODESIC = geodesic()  # reused: building one per call costs more than the distance


@functools.lru_cache(maxsize=8192)
def geodesic_miles(lat: float, lon: float, to_lat: float, to_lon: float) -> float:
    """Return the distance in miles on the ellipsoid (remembered: a pure-Python geodesic
    is a third of a search's time, and people near one prison ask from one place)."""
    return float(_GEODESIC.measure((lat, lon), (to_lat, to_lon))) / KM_PER_MILE
DAY_FILTERS = ("today", "tomorrow")


@dataclass
class MeetingHit:
    """One meeting found for a participant."""

    meeting: Meeting
    distance_miles: float | None  # None for online meetings
    next_start: datetime | None  # aware, in the meeting's own zone
    directions_url: str | None  # None for online meetings


@dataclass
class SearchResult:
    """The nearest meetings, online ones offered alongside, and whether there are more."""

    hits: list[MeetingHit]
    online: list[MeetingHit]
    radius_miles: float | None  # how far the search had to look; None for online-only
    has_more: bool


@dataclass
class _Rows:
    """The meetings one search reads back. A read also takes `also` (ids a later step is
    expected to want), so a search that offers online meetings alongside reads once."""

    session: AsyncSession
    also: list[int] = field(default_factory=list)
    found: dict[int, Meeting] = field(default_factory=dict)
    asked: set[int] = field(default_factory=set)

    async def read(self, ids: list[int]) -> dict[int, Meeting]:
        """Return the meetings read so far, these ids among them (if they still exist)."""
        if any(i not in self.asked for i in ids):
            wanted = list(dict.fromkeys(i for i in (*ids, *self.also) if i not in self.asked))
            self.also = []
            self.found.update(await meetings_by_id(self.session, wanted))
            self.asked.update(wanted)
        return self.found


def directions_url(lat: float, lon: float) -> str:
    """Return a public-transport directions link to a point (the start is the phone's own)."""
    return (
        "https://www.google.com/maps/dir/?api=1"
        f"&destination={lat:.6f}%2C{lon:.6f}&travelmode=transit"
    )


def _day_filter(
    now: datetime, tz: ZoneInfo, weekday: int | None, day_filter: str | None
) -> DayFilter:
    if day_filter is not None and day_filter not in DAY_FILTERS:
        raise ValueError(f"day_filter must be one of {DAY_FILTERS}, not {day_filter!r}")
    if weekday is not None and not 0 <= weekday <= 6:
        raise ValueError("weekday must be 0 (Monday) to 6 (Sunday)")
    local = now.astimezone(tz)
    days: set[int] | None = None if weekday is None else {weekday}
    after: dict[int, int] = {}
    if day_filter == "today":
        days = {local.weekday()} if days is None else days & {local.weekday()}
        after[local.weekday()] = local.hour * 60 + local.minute
    elif day_filter == "tomorrow":
        tomorrow = (local.weekday() + 1) % 7
        days = {tomorrow} if days is None else days & {tomorrow}
    return DayFilter(weekdays=days, after_minute=after)


def _passes_day(
    meeting: Meeting, start: datetime | None, now: datetime, tz: ZoneInfo, days: DayFilter
) -> bool:
    """Check the day filter exactly, on a meeting read back from the database."""
    if days.weekdays is None:
        return True
    if meeting.weekday not in days.weekdays:
        return False
    if days.after_minute and start is not None:
        # "today" means it has not started yet and starts on today's local date.
        return start.astimezone(tz).date() == now.astimezone(tz).date()
    return True


async def _read_nearest(
    rows: _Rows,
    pts: PointSet,
    chosen: np.ndarray,
    miles: np.ndarray,
    *,
    now: datetime,
    tz: ZoneInfo,
    days: DayFilter,
    need: int,
) -> list[MeetingHit]:
    """Read the nearest of the chosen index points back, keeping those still offered."""
    order = np.argsort(miles, kind="stable")
    hits: list[MeetingHit] = []
    # Usually one round trip (a few spare candidates ride along, for meetings the day
    # filter or a change since the index was built leaves out); more only if those run out.
    step = need + SPARE_NEAR
    for start in range(0, order.size, step):
        batch = order[start : start + step]
        ids = [int(i) for i in pts.ids[chosen[batch]]]
        found = await rows.read(ids)
        for mid, estimate in zip(ids, miles[batch], strict=True):
            meeting = found.get(mid)
            if meeting is None or not offerable_in_person(meeting):
                invalidate_index(rows.session)  # changed since the index was built
                continue
            begins = next_occurrence(meeting, now)
            if not _passes_day(meeting, begins, now, tz, days):
                continue
            assert meeting.lat is not None and meeting.lon is not None
            url = directions_url(meeting.lat, meeting.lon)
            hits.append(MeetingHit(meeting, float(estimate), begins, url))
        if len(hits) >= need:
            break
    return hits


async def _nearest_in_person(
    rows: _Rows,
    index: MeetingIndex,
    *,
    lat: float,
    lon: float,
    now: datetime,
    tz: ZoneInfo,
    days: DayFilter,
    need: int,
) -> tuple[list[MeetingHit], float]:
    pts = index.in_person
    radius = float(RADII_MILES[-1])
    hits: list[MeetingHit] = []
    for radius in map(float, RADII_MILES):
        idx = index.box(lat, lon, radius)
        idx = idx[days.mask(pts, idx)]
        dist = index.miles(lat, lon, idx)
        inside = dist <= radius
        if int(inside.sum()) < need and radius != RADII_MILES[-1]:
            continue
        # Some the index holds may not be offered now (changed since it was built): then
        # look wider.
        hits = await _read_nearest(rows, pts, idx[inside], dist[inside], now=now, tz=tz,
                                   days=days, need=need)
        if len(hits) >= need:
            break
    shown, extra = hits[: need - 1], hits[need - 1 : need]  # the extra only says "there is more"
    for hit in shown:
        assert hit.meeting.lat is not None and hit.meeting.lon is not None
        hit.distance_miles = geodesic_miles(lat, lon, hit.meeting.lat, hit.meeting.lon)
    shown.sort(key=lambda h: (h.distance_miles, h.next_start or now + timedelta(days=8)))
    return shown + extra, radius


def _online_ids(
    index: MeetingIndex, *, now: datetime, days: DayFilter, need: int, exclude: set[int]
) -> list[int]:
    """Return the ids of the online meetings that start soonest, a few spare among them."""
    pts = index.online
    idx = np.arange(pts.ids.size)
    idx = idx[days.mask(pts, idx)]
    if exclude and idx.size:
        idx = idx[~np.isin(pts.ids[idx], list(exclude))]
    if not idx.size:
        return []
    week_now = index.week_minutes_now(now)[pts.zone[idx]]
    slot = pts.weekday[idx].astype(np.int64) * 1440 + pts.start_min[idx]
    wait = (slot - week_now) % WEEK_MINUTES
    wait = np.where(wait == 0, WEEK_MINUTES, wait)
    wait = np.where(pts.start_min[idx] == NO_TIME, 2 * WEEK_MINUTES, wait)
    # Clock changes can shift the estimate by an hour, so re-rank a few extra exactly.
    take = min(idx.size, need + EXTRA_CANDIDATES)
    order = np.argsort(wait, kind="stable")[:take]
    return [int(i) for i in pts.ids[idx[order]]]


def _few_near(index: MeetingIndex, *, lat: float, lon: float, days: DayFilter, limit: int
              ) -> bool:
    """Return whether the index holds fewer than `limit` meetings near enough (then online
    ones are offered alongside: fewer are offered than the index holds, never more)."""
    idx = index.box(lat, lon, NEAR_ENOUGH_MILES)
    idx = idx[days.mask(index.in_person, idx)]
    return int((index.miles(lat, lon, idx) <= NEAR_ENOUGH_MILES).sum()) < limit


async def _soonest_online(
    rows: _Rows,
    index: MeetingIndex,
    *,
    now: datetime,
    tz: ZoneInfo,
    days: DayFilter,
    need: int,
    exclude: set[int],
) -> list[MeetingHit]:
    ids = _online_ids(index, now=now, days=days, need=need, exclude=exclude)
    if not ids:
        return []
    found = await rows.read(ids)
    hits: list[MeetingHit] = []
    for mid in ids:
        meeting = found.get(mid)
        if meeting is None or not offerable_online(meeting):
            invalidate_index(rows.session)  # changed since the index was built
            continue
        start = next_occurrence(meeting, now)
        if _passes_day(meeting, start, now, tz, days):
            hits.append(MeetingHit(meeting, None, start, None))
    hits.sort(key=lambda h: (h.next_start is None, h.next_start or now))
    return hits


async def find_nearest(
    session: AsyncSession,
    *,
    lat: float,
    lon: float,
    now: datetime,
    limit: int = 3,
    offset: int = 0,
    weekday: int | None = None,
    day_filter: str | None = None,  # "today" | "tomorrow"
    online_only: bool = False,
    tz: ZoneInfo = ZoneInfo("Europe/London"),  # noqa: B008  (immutable, shared)
    online_below: int | None = None,
) -> SearchResult:
    """Return the nearest open, active meetings after filters, with online ones if few are near.

    Online ones are offered alongside when fewer than `online_below` (default `limit`) are
    near enough: a caller that reads ahead for later pages says how many a page shows."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    limit, offset = max(1, limit), max(0, offset)
    days = _day_filter(now, tz, weekday, day_filter)
    index = await get_index(session)
    need = offset + limit + 1  # one more than shown tells us whether there are more
    rows = _Rows(session)
    if online_only:
        found = await _soonest_online(
            rows, index, now=now, tz=tz, days=days, need=need, exclude=set()
        )
        return SearchResult(found[offset : offset + limit], [], None, len(found) > offset + limit)
    few = limit if online_below is None else online_below
    if _few_near(index, lat=lat, lon=lon, days=days, limit=few):
        # Online ones will be offered: read them with the nearest. (Those shown in person
        # are left out of them; a hybrid one shown that way may cost a second read.)
        rows.also = _online_ids(index, now=now, days=days, need=ONLINE_ALONGSIDE + few,
                                exclude=set())
    found, radius = await _nearest_in_person(
        rows, index, lat=lat, lon=lon, now=now, tz=tz, days=days, need=need
    )
    hits = found[offset : offset + limit]
    online: list[MeetingHit] = []
    near = sum(1 for h in found if (h.distance_miles or 0.0) <= NEAR_ENOUGH_MILES)
    if near < few:
        shown = {h.meeting.id for h in hits if h.meeting.id is not None}
        online = (
            await _soonest_online(
                rows, index, now=now, tz=tz, days=days, need=ONLINE_ALONGSIDE, exclude=shown
            )
        )[:ONLINE_ALONGSIDE]
    return SearchResult(hits, online, radius, len(found) > offset + limit)
