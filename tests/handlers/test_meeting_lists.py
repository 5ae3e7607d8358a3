"""Meeting lists as a participant reads them: real feeds, long names, three SMS segments.

The real Meeting Guide feeds are imported with the project's importer and a participant
pages through them by SMS; every text is rendered and counted as the SMS channel does.
"""

from __future__ import annotations

import re
from datetime import time

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from meeting_finder.demo import load_demo_meetings
from meeting_finder.feeds.types import SMART_FAMILY
from storage.db import session_scope
from storage.models import Attendance, Meeting, MeetingSubscription
from tests.handlers.conftest import MakePerson
from tests.handlers.reads import FEEDS, NOW, Oracle, import_feeds, move_to, walk

STOKE = (52.9856, -2.1495)
# Where the feeds' meetings are: Marin County, Massachusetts, Ontario, and Stoke (demo).
PLACES = {"marin": (37.9735, -122.5311), "massachusetts": (42.36, -71.06),
          "ontario": (44.4760, -77.3114), "stoke": STOKE}
PAGES = ("MEETINGS", "MORE", "MORE", "MORE", "MORE", "ONLINE", "MORE", "MORE", "MORE")
needs_feeds = pytest.mark.skipif(not FEEDS.is_dir(), reason=f"no feeds at {FEEDS}")


@needs_feeds
@pytest.mark.parametrize("place", sorted(PLACES))
async def test_real_feeds_read_whole_within_three_segments(
    engine: AsyncEngine, make_person: MakePerson, place: str
) -> None:
    await import_feeds(engine)
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=NOW)
    person = await make_person("sms", name="Bartholomew-Fitzwilliam Łukasz")
    person.now = NOW
    await move_to(engine, person, *PLACES[place])
    oracle = await Oracle.load(engine)
    texts = await walk(person, *PAGES, "MEETINGS", *(f"INFO {n}" for n in range(1, 10)),
                       "SAVE 1", "SAVE 2", "MORE", "SAVE 5", "ONLINE", "SAVE 1", "SAVE 2",
                       "PLAN", "UNSAVE 1", "PLAN")
    assert len(texts) > 25
    for text in texts:
        oracle.check_sms(text)
    pages = [x for x in texts if x.startswith(("Meetings near", "Online meetings"))]
    assert len(pages) >= 8
    assert all(re.search(r"SAVE \d+ for a reminder", x) for x in pages), "SAVE on every page"


async def _long_meetings(engine: AsyncEngine) -> None:
    """Add meetings whose names, venues and dial strings are far too long for one line."""
    long_name = ("SMART Recovery Stoke-on-Trent and Newcastle-under-Lyme Wednesday Evening "
                 "Peer Support Group 2 at the Ćwiczenia Community Rooms (demo)")
    venue = "Saint Peter ad Vincula Church Hall, Community Rooms round the back (demo)"
    async with session_scope(engine) as session:
        for n, (lat, lon) in enumerate([(52.9860, -2.1490), (52.9870, -2.1480),
                                        (52.9880, -2.1470), (52.9890, -2.1460)]):
            session.add(Meeting(
                slug=f"long-{n}", name=f"{long_name} {n}", weekday=n, start_time=time(18, 30),
                timezone="Europe/London", venue=venue,
                address=f"{n} Very Long Street Name, Fenton, Stoke-on-Trent ST4 2RR",
                postcode="ST4 2RR", lat=lat, lon=lon, types=["SMART"],
                contact_name="Gwenllïan ap Llŷr", contact_phone="+447700900456",
                notes="Ring the bell. Room 2 0 1 7 is up the stairs " * 20))
        session.add(Meeting(
            slug="long-online", name=long_name, weekday=2, start_time=time(13, 30),
            timezone="America/Los_Angeles", attendance=Attendance.ONLINE,
            conference_url="https://zoom.us/j/84246533333?pwd=" + "x" * 90,
            conference_phone="+19292056099,,84246533333#,,,,*123456#", types=["SMART"]))


async def test_long_names_are_shortened_by_rule(engine: AsyncEngine,
                                                make_person: MakePerson) -> None:
    await _long_meetings(engine)
    oracle = await Oracle.load(engine)
    person = await make_person("sms", name="Gwenllïan ap Llŷr")
    person.now = NOW
    texts = await walk(person, "MEETINGS ST3 2QH", "MORE", "SAVE 1", "INFO 1", "INFO 2",
                       "ONLINE", "INFO 1", "SAVE 1", "PLAN", "UNSAVE 1")
    for text in texts:
        oracle.check_sms(text)
    listing = texts[0]
    assert "ST4 2RR" in listing and "Ćwiczenia" not in listing
    info = next(x for x in texts if x.startswith("Stoke") and "Address:" in x)
    assert "Contact: Gwenllian ap Llyr, +447700900456" in info
    dialled = next(x for x in texts if "Join by phone" in x)
    assert "+19292056099,,84246533333#,,,,*123456#" in dialled


async def test_family_and_friends_meetings_are_never_offered(
    engine: AsyncEngine, make_person: MakePerson
) -> None:
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=NOW)
        family = [m for m in (await session.exec(select(Meeting))).all()
                  if SMART_FAMILY in (m.types or [])]
    assert len(family) == 2, "the demo has one in Stoke and one online"
    person = await make_person("sms")
    person.now = NOW
    texts = await walk(person, "MEETINGS ST3 2QH", *["MORE"] * 15, "MEETINGS SUNDAY ST3 2QH",
                       "MORE", "ONLINE", "MORE", "MORE")
    assert not any("Family" in x for x in texts)
    shown = (await person.state()).data or {}
    listed = {i for ids in shown["_search"]["ids"] for i in ids}
    assert listed and not listed & {m.id for m in family}
    assert "MORE for more" not in texts[15], "every in-person meeting was listed"


async def test_a_group_meeting_on_two_days_takes_one_line(
    engine: AsyncEngine, make_person: MakePerson
) -> None:
    from meeting_finder.feeds.importer import import_rows

    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=NOW)
        await import_rows(session, [{
            "slug": "longton-twice", "name": "SMART Recovery Longton Twice Weekly",
            "day": [1, 3], "time": "18:30", "location": "Longton Hall",
            "address": "2 Hall Street, Longton, Stoke-on-Trent", "postal_code": "ST3 1AA",
            "latitude": 52.9857, "longitude": -2.1494, "types": ["SMART"]}],
            now=NOW, source_name="groups", default_tz="Europe/London")
    person = await make_person("sms")
    person.now = NOW
    (page,) = await walk(person, "MEETINGS ST3 2QH")
    first = page.split("\n")[2:5]
    assert first == ["1. Longton Twice Weekly", "Mon & Wed 6:30pm, next tomorrow 2 Dec, 0.0 miles",
                     "Longton Hall, ST3 1AA"]
    assert page.count("Longton Twice Weekly") == 1 and "3." in page
    (saved,) = await walk(person, "SAVE 1")
    assert "Mon & Wed 6:30pm" in saved
    async with session_scope(engine) as session:
        subs = (await session.exec(select(MeetingSubscription))).all()
    assert len(subs) == 2
