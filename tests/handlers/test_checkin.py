"""CHECKIN: mood, craving and a line; days since release; a trend against last week."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from handlers.conversation import Conversation
from handlers.tools.checkin import start_checkin
from handlers.types import EngineContext
from storage.db import session_scope
from storage.models import ChannelIdentity, CheckIn, Participant
from storage.participants import load_state
from tests.auxil.builders import make_inbound
from tests.handlers.conftest import MakePerson, Person


async def _checkins(engine: AsyncEngine, pid: int) -> list[CheckIn]:
    async with session_scope(engine) as session:
        rows = await session.exec(select(CheckIn).where(CheckIn.participant_id == pid))
        return list(rows.all())


async def _check_in(person: Person, mood: int, craving: int, note: str | None = None,
                    *, days: int = 0) -> list[str]:
    now = person.now + timedelta(days=days)
    await person.say("CHECKIN", now=now)
    await person.rate(mood, now=now)
    await person.rate(craving, now=now)
    if note is None:
        if person.channel == "telegram":
            return await person.choose("SKIP", now=now)
        return await person.say("skip", now=now)
    return await person.say(note, now=now)


async def test_full_checkin_on_each_channel(engine: AsyncEngine, person: Person) -> None:
    first = await person.say("CHECKIN")
    assert "mood" in first[0]
    assert "cravings" in (await person.rate(6))[0]
    await person.restart()
    assert "one line" in (await person.rate(4))[0]
    done = await person.say("Slept well for once")
    # Released 12 Nov; today is 26 Nov.
    assert "day 14 since your release" in done[0]
    assert "first check-in" in done[0]
    (row,) = await _checkins(engine, person.participant_id)
    assert (row.mood, row.craving, row.note) == (6, 4, "Slept well for once")
    assert row.at == person.now
    assert (await person.state()).flow == "menu"


async def test_trend_compares_this_week_with_last(engine: AsyncEngine, person: Person) -> None:
    await _check_in(person, 4, 8, days=-10)
    await _check_in(person, 5, 7, days=-9)
    reply = await _check_in(person, 7, 3)
    assert "lower than last week" in reply[0]
    reply = await _check_in(person, 7, 9, days=1)
    assert "day 15" in reply[0]
    assert "strong craving" in reply[0] and "URGE" in reply[0]
    assert len(await _checkins(engine, person.participant_id)) == 4


async def test_trend_against_last_time_when_there_is_no_last_week(person: Person) -> None:
    await _check_in(person, 5, 2, days=-2)
    reply = await _check_in(person, 5, 6)
    assert "higher than last time" in reply[0]
    reply = await _check_in(person, 5, 6, days=1)
    assert "about the same" in reply[0]


async def test_back_and_bad_numbers_keep_the_step(make_person: MakePerson) -> None:
    person = await make_person("sms")
    await person.say("CHECKIN")
    assert "0 to 10" in (await person.say("eleven"))[0]
    await person.say("3")
    assert "mood" in (await person.say("back"))[0]
    await person.say("8")
    await person.say("2")
    assert "Thanks" in (await person.say("all good"))[0]


async def test_menu_leaves_a_checkin(engine: AsyncEngine, person: Person) -> None:
    await person.say("CHECKIN")
    await person.rate(5)
    await person.say("MENU")
    assert (await person.state()).flow == "menu"
    assert await _checkins(engine, person.participant_id) == []
    assert "0 to 10" not in (await person.say("4"))[0]


async def test_scheduled_prompt_can_start_a_checkin(engine: AsyncEngine,
                                                    make_person: MakePerson) -> None:
    person = await make_person("sms")
    async with session_scope(engine) as session:
        p = await session.get(Participant, person.participant_id)
        identity = (await session.exec(select(ChannelIdentity))).first()
        assert p is not None and identity is not None
        state = await load_state(session, person.participant_id)
        conv = Conversation(session, EngineContext(now=person.now), make_inbound("CHECKIN"), p,
                            identity, state)
        replies = await start_checkin(conv)
    assert "mood" in replies[0].text
    assert (await person.state()).flow == "checkin"
    await person.say("7")
    await person.say("1")
    assert "Thanks" in (await person.say("SKIP"))[0]
