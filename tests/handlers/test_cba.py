"""CBA: four boxes one at a time, SKIP and BACK, saved as it goes, shown by MYCBA."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from storage.db import session_scope
from storage.models import ToolEntry, ToolKind
from tests.handlers.conftest import MakePerson, Person


async def _cbas(engine: AsyncEngine, pid: int) -> list[ToolEntry]:
    async with session_scope(engine) as session:
        rows = await session.exec(select(ToolEntry).where(ToolEntry.participant_id == pid)
                                  .where(ToolEntry.kind == ToolKind.CBA))
        return list(rows.all())


async def _skip(person: Person) -> list[str]:
    if person.channel == "telegram":
        return await person.choose("SKIP")
    return await person.say("SKIP")


async def _back(person: Person) -> list[str]:
    if person.channel == "telegram":
        return await person.choose("BACK")
    return await person.say("back")


async def test_full_cba_with_skip_and_back(engine: AsyncEngine, person: Person) -> None:
    intro = await person.say("CBA")
    assert "4 short questions" in intro[0] and intro[1].startswith("1 of 4")
    assert (await person.say("It calms me down"))[0].startswith("2 of 4")
    assert (await _skip(person))[0].startswith("3 of 4")
    back = await _back(person)
    assert back[0].startswith("2 of 4")
    assert (await person.say("Money, my health, my kids"))[0].startswith("3 of 4")
    await person.restart()
    assert (await person.say("Seeing my kids at weekends"))[0].startswith("4 of 4")
    done = await person.say("Losing my mates who use")
    assert "saved" in done[0]
    assert "Using costs me: Money, my health, my kids" in done[1]
    assert (await person.state()).flow == "menu"
    (entry,) = await _cbas(engine, person.participant_id)
    assert entry.data == {"use_good": "It calms me down", "use_bad": "Money, my health, my kids",
                          "stop_good": "Seeing my kids at weekends",
                          "stop_bad": "Losing my mates who use"}
    shown = await person.say("MYCBA")
    assert "Stopping gives me: Seeing my kids at weekends" in shown[0]


async def test_back_on_the_first_question_stays_there(person: Person) -> None:
    await person.say("CBA")
    assert (await person.say("BACK"))[0].startswith("1 of 4")
    assert (await person.state()).flow == "cba"


async def test_leaving_half_way_keeps_what_was_written(engine: AsyncEngine,
                                                       person: Person) -> None:
    await person.say("CBA")
    await person.say("Helps me sleep")
    menu = await person.say("MENU")
    assert "What would you like to do?" in menu[0]
    (entry,) = await _cbas(engine, person.participant_id)
    assert entry.data == {"use_good": "Helps me sleep"}
    assert "Using gives me: Helps me sleep" in (await person.say("MYCBA"))[0]


async def test_redo_shows_old_answers_and_skip_keeps_them(engine: AsyncEngine,
                                                          make_person: MakePerson) -> None:
    person = await make_person("sms")
    await person.say("CBA")
    for answer in ("Relief", "Everything", "Freedom", "Boredom"):
        await person.say(answer)
    again = await person.say("CBA")
    assert "Last time you said: Relief" in again[1]
    await person.say("SKIP")
    await person.say("My family")
    await person.say("SKIP")
    done = await person.say("SKIP")
    assert "Using costs me: My family" in done[1] and "Stopping gives me: Freedom" in done[1]
    latest = max(await _cbas(engine, person.participant_id), key=lambda e: e.id or 0)
    assert latest.data == {"use_good": "Relief", "use_bad": "My family",
                           "stop_good": "Freedom", "stop_bad": "Boredom"}


async def test_all_skipped_saves_nothing(engine: AsyncEngine, person: Person) -> None:
    await person.say("CBA")
    for _ in range(4):
        reply = await _skip(person)
    assert "Nothing was saved" in reply[0]
    assert await _cbas(engine, person.participant_id) == []
    assert "not written your reasons yet" in (await person.say("MYCBA"))[0]


async def test_back_outside_a_tool_still_shows_the_menu(person: Person) -> None:
    assert "What would you like to do?" in (await person.say("BACK"))[0]


async def test_long_and_odd_answers_are_kept_short_and_safe(engine: AsyncEngine,
                                                             make_person: MakePerson) -> None:
    person = await make_person("sms")
    await person.say("CBA")
    reply = await person.say("y" * 900)
    assert reply[0].startswith("2 of 4")
    await person.say("\U0001f494 heartbreak")
    (entry,) = await _cbas(engine, person.participant_id)
    assert entry.data is not None
    assert len(entry.data["use_good"]) == 300 and entry.data["use_bad"] == "\U0001f494 heartbreak"


async def test_an_answer_starting_with_a_keyword_is_still_an_answer(
    make_person: MakePerson,
) -> None:
    person = await make_person("sms")
    await person.say("CBA")
    reply = await person.say("Save money for my kids")
    assert reply[0].startswith("2 of 4")
