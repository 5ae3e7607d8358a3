"""MEETINGS in the conversation: nearest open meetings, paging, filters, saving."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.channels.render import is_gsm7, render_sms, sms_segments
from storage.db import session_scope
from storage.models import Access, Meeting, MeetingSubscription
from tests.core.conftest import Enrolled, Say


async def _ready(say: Say) -> None:
    await say("Sam November")
    await say("YES")


def _miles(text: str) -> list[float]:
    return [float(m) for m in re.findall(r"([\d.]+) miles", text)]


async def test_meetings_near_postcode_sorted_with_day_and_time(
    enrolled: Enrolled, demo_meetings: int, say: Say
) -> None:
    await _ready(say)
    (text,) = await say("MEETINGS ST3 2QH")
    miles = _miles(text)
    assert len(miles) == 3 and miles == sorted(miles)
    assert len(re.findall(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun|Today|Tomorrow)\b", text)) >= 3
    assert re.search(r"\d{1,2}(:\d\d)?(am|pm)", text)


async def test_three_meetings_fit_three_sms_segments(
    enrolled: Enrolled, demo_meetings: int, say: Say
) -> None:
    await _ready(say)
    for query in ("MEETINGS ST3 2QH", "MEETINGS stoke", "MEETINGS TODAY ST3 2QH", "ONLINE",
                  "MEETINGS BT1 1AA", "MEETINGS Glasgow", "MORE"):
        for text in await say(query):
            sms = render_sms(text)
            assert is_gsm7(sms), query
            assert sms_segments(sms) <= 3, (query, len(sms))


async def test_closed_and_prison_meetings_are_never_offered(
    engine: AsyncEngine, enrolled: Enrolled, demo_meetings: int, say: Say
) -> None:
    async with session_scope(engine) as session:
        hidden = (await session.exec(select(Meeting).where(Meeting.access != Access.OPEN))).all()
    assert hidden, "demo data has closed and prison meetings"
    await _ready(say)
    seen = "\n".join(await say("MEETINGS ST3 2QH") + await say("MORE") + await say("MORE"))
    for m in hidden:
        assert m.name.removeprefix("SMART Recovery ")[:20] not in seen


async def test_more_pages_on_and_save_subscribes(
    engine: AsyncEngine, enrolled: Enrolled, demo_meetings: int, say: Say
) -> None:
    await _ready(say)
    first = (await say("MEETINGS ST3 2QH"))[0]
    second = (await say("MORE"))[0]
    assert "4." in second and "1." not in second.split("\n")[1]
    assert _miles(first)[-1] <= _miles(second)[0]
    saved = (await say("SAVE 4"))[0]
    assert saved.startswith("Saved:")
    async with session_scope(engine) as session:
        subs = (await session.exec(select(MeetingSubscription))).all()
    assert [s.participant_id for s in subs] == [enrolled.participant_id]


async def test_meetings_without_place_uses_release_area(
    enrolled: Enrolled, demo_meetings: int, say: Say
) -> None:
    await _ready(say)
    (text,) = await say("meetings")
    assert _miles(text) and _miles(text)[0] < 5


async def test_unknown_place_gets_did_you_mean(enrolled: Enrolled, demo_meetings: int,
                                               say: Say) -> None:
    await _ready(say)
    (text,) = await say("MEETINGS stokr")
    assert "Did you mean" in text and "Stoke-on-Trent" in text
    (text,) = await say("MEETINGS qqqqqqq")
    assert "could not find" in text and "postcode" in text


async def test_shared_location_finds_meetings_near_it(
    enrolled: Enrolled, demo_meetings: int, say: Say
) -> None:
    await say("hi", channel="telegram", address="42", payload=None)  # stranger first
    await say(enrolled.code, channel="telegram", address="42")
    await say("YES", channel="telegram", address="42")
    asked = await say("MEETINGS", channel="telegram", address="42")
    assert asked and "Meetings near" in asked[0]  # release area known
    # Edinburgh city centre shared as a location
    (text,) = await say("", channel="telegram", address="42", location=(55.9533, -3.1883))
    assert "Edinburgh" in text
    assert _miles(text)[0] < 5


async def test_online_lists_dial_in_for_basic_phones(
    enrolled: Enrolled, demo_meetings: int, say: Say
) -> None:
    await _ready(say)
    (text,) = await say("ONLINE")
    assert "Online meetings:" in text
    assert "online" in text or "dial" in text
