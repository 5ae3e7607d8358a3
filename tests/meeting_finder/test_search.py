"""Nearest search: only offerable meetings, sorted, correct miles, widening after filters."""

from __future__ import annotations

import random
from datetime import time, timedelta
from typing import Any

import pytest
from geopy.distance import geodesic
from sqlalchemy import event, text
from sqlmodel.ext.asyncio.session import AsyncSession

from meeting_finder.demo import demo_meetings, load_demo_meetings
from meeting_finder.feeds.types import SMART_FAMILY
from meeting_finder.search import find_nearest, is_offerable
from storage.models.meetings import Access, Attendance, MeetingStatus
from tests.meeting_finder.conftest import NOW, ST3_2, make_meeting

LAT, LON = ST3_2


async def add(session: AsyncSession, *meetings: object) -> None:
    session.add_all(meetings)  # type: ignore[arg-type]
    await session.commit()


async def test_never_offers_closed_prison_suspended_or_cancelled(session: AsyncSession) -> None:
    rng = random.Random(3)
    bad_kinds = [
        {"access": Access.CLOSED}, {"access": Access.PRISON},
        {"status": MeetingStatus.SUSPENDED}, {"status": MeetingStatus.CANCELLED},
        {"address": None}, {"address": "Online"}, {"lat": None, "lon": None},
        {"attendance": Attendance.ONLINE, "conference_url": "https://meet.example.org/x"},
    ]
    meetings = []
    for i in range(120):
        kind = bad_kinds[i % len(bad_kinds)] if i % 3 else {}
        fields = {
            "slug": f"m-{i}", "lat": LAT + rng.uniform(-0.3, 0.3),
            "lon": LON + rng.uniform(-0.5, 0.5), "weekday": i % 7,
            "name": "good" if not kind else "bad", **kind,
        }
        meetings.append(make_meeting(**fields))
    await add(session, *meetings)
    result = await find_nearest(session, lat=LAT, lon=LON, now=NOW, limit=50)
    assert len(result.hits) == 40
    assert all(h.meeting.name == "good" and is_offerable(h.meeting) for h in result.hits)
    assert not result.has_more
    miles = [h.distance_miles for h in result.hits]
    assert miles == sorted(miles)
    for hit in result.hits:
        exact = geodesic((LAT, LON), (hit.meeting.lat, hit.meeting.lon)).miles
        assert hit.distance_miles == pytest.approx(exact, rel=0.01, abs=0.01)
        assert hit.next_start is not None and hit.next_start > NOW
        assert hit.directions_url and hit.directions_url.startswith("https://")


async def test_widens_until_enough_after_filters(session: AsyncSession) -> None:
    near = [make_meeting(weekday=0, lat=LAT + 0.01 * i) for i in range(5)]
    far = make_meeting(weekday=1, lat=LAT + 0.6, name="far tuesday")  # about 41 miles north
    await add(session, *near, far)
    result = await find_nearest(session, lat=LAT, lon=LON, now=NOW, limit=3, weekday=1)
    assert [h.meeting.name for h in result.hits] == ["far tuesday"]
    assert result.radius_miles is not None and result.radius_miles >= 41
    assert result.hits[0].distance_miles == pytest.approx(41.4, rel=0.02)
    mondays = await find_nearest(session, lat=LAT, lon=LON, now=NOW, limit=3, weekday=0)
    assert len(mondays.hits) == 3 and mondays.has_more
    assert mondays.radius_miles is not None and mondays.radius_miles <= 5


async def test_today_means_not_started_yet_and_tomorrow_is_next_day(session: AsyncSession) -> None:
    # NOW is Saturday 12:00 in London.
    await add(
        session,
        make_meeting(name="sat morning", weekday=5, start_time=time(10, 0)),
        make_meeting(name="sat evening", weekday=5, start_time=time(18, 0)),
        make_meeting(name="sun", weekday=6, start_time=time(11, 0)),
        make_meeting(name="mon", weekday=0, start_time=time(19, 0)),
    )
    today = await find_nearest(session, lat=LAT, lon=LON, now=NOW, day_filter="today")
    assert [h.meeting.name for h in today.hits] == ["sat evening"]
    assert today.hits[0].next_start is not None
    assert today.hits[0].next_start.isoformat() == "2026-03-28T18:00:00+00:00"
    tomorrow = await find_nearest(session, lat=LAT, lon=LON, now=NOW, day_filter="tomorrow")
    assert [h.meeting.name for h in tomorrow.hits] == ["sun"]
    assert tomorrow.hits[0].next_start is not None
    assert tomorrow.hits[0].next_start.isoformat() == "2026-03-29T11:00:00+01:00"
    with pytest.raises(ValueError):
        await find_nearest(session, lat=LAT, lon=LON, now=NOW, day_filter="yesterday")


async def test_paging_with_offset(session: AsyncSession) -> None:
    await add(session, *[make_meeting(lat=LAT + 0.01 * i, name=f"n{i}") for i in range(7)])
    first = await find_nearest(session, lat=LAT, lon=LON, now=NOW, limit=3)
    second = await find_nearest(session, lat=LAT, lon=LON, now=NOW, limit=3, offset=3)
    third = await find_nearest(session, lat=LAT, lon=LON, now=NOW, limit=3, offset=6)
    names = [h.meeting.name for r in (first, second, third) for h in r.hits]
    assert names == [f"n{i}" for i in range(7)]
    assert (first.has_more, second.has_more, third.has_more) == (True, True, False)


async def test_online_only_needs_a_working_link(session: AsyncSession) -> None:
    online = {"attendance": Attendance.ONLINE, "address": None, "lat": None, "lon": None}
    await add(
        session,
        make_meeting(name="zoom", conference_url="https://meet.example.org/abc", **online),
        make_meeting(name="no link", conference_url="not a link", **online),
        make_meeting(name="dial", conference_phone="0300 000 0000", weekday=2, **online),
        make_meeting(name="paused", conference_url="https://meet.example.org/p",
                     status=MeetingStatus.SUSPENDED, **online),
        make_meeting(name="in person"),
        make_meeting(name="hybrid", attendance=Attendance.HYBRID, weekday=6,
                     conference_url="https://meet.example.org/h"),
    )
    result = await find_nearest(session, lat=LAT, lon=LON, now=NOW, online_only=True, limit=5)
    assert [h.meeting.name for h in result.hits] == ["hybrid", "zoom", "dial"]
    assert all(h.distance_miles is None and h.directions_url is None for h in result.hits)
    assert result.radius_miles is None and not result.online


async def test_online_offered_alongside_when_few_are_near(session: AsyncSession) -> None:
    online = {"attendance": Attendance.ONLINE, "address": None, "lat": None, "lon": None}
    await add(
        session,
        make_meeting(name="near"),
        make_meeting(name="far", lat=LAT + 1.5),
        *[make_meeting(name=f"web{i}", conference_url=f"https://meet.example.org/{i}",
                       weekday=i, **online) for i in range(4)],
    )
    result = await find_nearest(session, lat=LAT, lon=LON, now=NOW, limit=3)
    assert [h.meeting.name for h in result.hits] == ["near", "far"]
    assert [h.meeting.name for h in result.online] == ["web0", "web1"]
    assert len(result.online) == 2
    busy = await find_nearest(session, lat=LAT, lon=LON, now=NOW, limit=1)
    assert busy.online == []
    # Reading ahead for later pages: online ones go with a page that has fewer near.
    ahead = await find_nearest(session, lat=LAT, lon=LON, now=NOW, limit=12, online_below=1)
    assert [h.meeting.name for h in ahead.hits] == ["near", "far"] and ahead.online == []
    few = await find_nearest(session, lat=LAT, lon=LON, now=NOW, limit=12, online_below=2)
    assert [h.meeting.name for h in few.online] == ["web0", "web1"]


def _meeting_reads(session: AsyncSession) -> list[int]:
    """Note how many ids each read of meeting rows asks for."""
    seen: list[int] = []

    def note(_conn: Any, _cursor: Any, statement: str, params: Any, *_args: Any) -> None:
        if statement.lstrip().startswith("SELECT meeting.id, meeting.slug"):
            seen.append(len(params))

    event.listen(session.bind.sync_engine, "before_cursor_execute", note)  # type: ignore[union-attr]
    return seen


async def test_a_search_reads_the_meetings_it_offers_once(session: AsyncSession) -> None:
    """With few near, the online meetings offered alongside are read with the nearest (it
    was a second read); with enough near, online ones are not read at all; family meetings,
    never offered, are not in the index to be read back."""
    online = {"attendance": Attendance.ONLINE, "address": None, "lat": None, "lon": None}
    family = make_meeting(name="family", lat=LAT + 0.001, types=["SMART", SMART_FAMILY])
    await add(session, make_meeting(name="near"), family,
              *[make_meeting(name=f"web{i}", conference_url=f"https://meet.example.org/{i}",
                             weekday=i % 7, **online) for i in range(9)])
    await find_nearest(session, lat=LAT, lon=LON, now=NOW, limit=3)  # builds the index
    reads = _meeting_reads(session)
    result = await find_nearest(session, lat=LAT, lon=LON, now=NOW, limit=3)
    soonest = await find_nearest(session, lat=LAT, lon=LON, now=NOW, online_only=True, limit=2)
    assert [h.meeting.name for h in result.hits] == ["near"]
    assert [h.meeting.name for h in result.online] == [h.meeting.name for h in soonest.hits]
    assert len(reads) == 2  # the search, then the online-only one
    reads.clear()
    busy = await find_nearest(session, lat=LAT, lon=LON, now=NOW, limit=1)
    assert [h.meeting.name for h in busy.hits] == ["near"] and busy.online == []
    assert reads == [1]  # the one near: no online ones, and not the family meeting


async def test_index_follows_database_changes(session: AsyncSession) -> None:
    first = make_meeting(name="first")
    await add(session, first)
    assert len((await find_nearest(session, lat=LAT, lon=LON, now=NOW)).hits) == 1
    await add(session, make_meeting(name="second", lat=LAT + 0.01))
    result = await find_nearest(session, lat=LAT, lon=LON, now=NOW)
    assert [h.meeting.name for h in result.hits] == ["first", "second"]
    # Changed behind our back without touching `updated`: still never offered.
    async with session.bind.begin() as conn:  # type: ignore[union-attr]
        await conn.execute(text("UPDATE meeting SET status = 'suspended' WHERE name = 'first'"))
    session.expire_all()
    result = await find_nearest(session, lat=LAT, lon=LON, now=NOW)
    assert [h.meeting.name for h in result.hits] == ["second"]


async def test_demo_meetings(session: AsyncSession) -> None:
    meetings = demo_meetings()
    assert 40 <= len(meetings) <= 70
    assert all(m.demo and "(demo)" in (m.name + (m.venue or "")) for m in meetings)
    assert len({m.slug for m in meetings}) == len(meetings)
    regions = {m.region for m in meetings}
    assert {"Belfast", "Cardiff", "Glasgow", "London"} <= regions
    assert await load_demo_meetings(session, now=NOW) == len(meetings)
    assert await load_demo_meetings(session, now=NOW + timedelta(days=1)) == 0
    result = await find_nearest(session, lat=LAT, lon=LON, now=NOW, limit=20)
    within_10 = [h for h in result.hits if h.distance_miles is not None and h.distance_miles <= 10]
    assert len(within_10) >= 6
    names = " ".join(h.meeting.slug for h in result.hits)
    for never in ("clinic", "prison", "fenton", "meir"):
        assert never not in names
    online = await find_nearest(session, lat=LAT, lon=LON, now=NOW, online_only=True, limit=10)
    assert online.hits and all(h.meeting.conference_url for h in online.hits)
