"""SAVE, UNSAVE and INFO from any page, PLAN in order of next start, and the reader's clock."""

from __future__ import annotations

import re
from datetime import time, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from meeting_finder.demo import load_demo_meetings
from scheduler.planning import plan
from storage.db import session_scope
from storage.models import (
    Attendance,
    Meeting,
    MeetingSubscription,
    MessageKind,
    OutboundMessage,
    OutboxStatus,
)
from tests.handlers.conftest import MakePerson, Person
from tests.handlers.reads import NOW, Oracle, walk


async def _demo(engine: AsyncEngine) -> None:
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=NOW)


async def _chosen(engine: AsyncEngine, person: Person) -> list[str]:
    async with session_scope(engine) as session:
        rows = await session.exec(
            select(Meeting.slug).join(MeetingSubscription,
                                      MeetingSubscription.meeting_id == Meeting.id)  # type: ignore[arg-type]
            .where(MeetingSubscription.participant_id == person.participant_id))
        return sorted(rows.all())


async def test_save_and_unsave_from_any_page(engine: AsyncEngine,
                                             make_person: MakePerson) -> None:
    await _demo(engine)
    person = await make_person("sms")
    person.now = NOW
    first, second = await walk(person, "MEETINGS ST3 2QH", "MORE")
    assert "Send SAVE 1 for a reminder" in first and "MORE for more" in first
    assert "Send SAVE 4 for a reminder" in second
    (saved,) = await walk(person, "SAVE 2")  # a number from the page before
    assert saved.startswith("Saved: Stoke-on-Trent Wednesday")
    assert "Tomorrow 2 Dec 10am" in saved and "UNSAVE 2" in saved
    await walk(person, "SAVE 5")
    assert await _chosen(engine, person) == ["demo-stoke-wed", "demo-stone-sat"]
    await plan(engine, now=NOW)
    (dropped,) = await walk(person, "UNSAVE 2")
    assert dropped == ("Done. Stoke-on-Trent Wednesday (demo) is off your list, so no more "
                       "reminders for it.")
    assert await _chosen(engine, person) == ["demo-stone-sat"]
    async with session_scope(engine) as session:
        left = (await session.exec(select(OutboundMessage).where(
            OutboundMessage.kind == MessageKind.REMINDER,
            OutboundMessage.status == OutboxStatus.QUEUED))).all()
    assert left and all("Stoke-on-Trent" not in r.body for r in left)
    (again,) = await walk(person, "UNSAVE 2")
    assert "not one of your meetings" in again
    assert "UNSAVE and its number" in (await walk(person, "UNSAVE"))[0]


async def test_info_gives_address_contact_and_directions(engine: AsyncEngine,
                                                        make_person: MakePerson) -> None:
    await _demo(engine)
    sms, telegram = await make_person("sms"), await make_person("telegram")
    for person in (sms, telegram):
        person.now = NOW
        await walk(person, "MEETINGS ST3 2QH")
    (by_sms,) = await walk(sms, "INFO 2")
    assert by_sms.split("\n")[:3] == [
        "Stoke-on-Trent Wednesday (demo)", "Next: Tomorrow 2 Dec 10am. Meets every Wed 10am.",
        "Address: Stoke-on-Trent Community Rooms (demo), 1 Example Street, Stoke-on-Trent "
        "(demo address), ST4"]
    assert "Contact: Ask the demo facilitator on arrival (demo)" in by_sms
    assert "Join online: https://meet.example.org/smart-demo-stoke-wed" in by_sms
    assert "google.com/maps" not in by_sms and by_sms.endswith("Send SAVE 2 for a reminder.")
    (by_telegram,) = await walk(telegram, "INFO 2")
    assert ("Directions: https://www.google.com/maps/dir/?api=1&destination="
            "53.005000%2C-2.183000") in by_telegram
    assert "Address: Stoke-on-Trent Community Rooms (demo)" in by_telegram
    assert (await walk(sms, "INFO"))[0].startswith("throughcare helps you find")
    assert "INFO and its number" in (await walk(sms, "INFO 99"))[0]


async def test_plan_lists_every_chosen_meeting_soonest_first(engine: AsyncEngine,
                                                            make_person: MakePerson) -> None:
    await _demo(engine)
    person = await make_person("sms", name="Łukasz", goals=["Stay clean", "Get a flat"])
    person.now = NOW
    await walk(person, "MEETINGS ST3 2QH", "SAVE 1", "SAVE 2", "SAVE 3", "MORE", "SAVE 4",
               "SAVE 6")
    texts = await walk(person, "PLAN")
    whole = "\n".join(texts)
    assert "Your plan, Lukasz:" in whole
    lines = [x for x in whole.split("\n") if re.match(r"^\d+\. ", x)]
    assert [x.split(",")[0] for x in lines] == [
        "1. Hanley Tuesday (demo)", "2. Stoke-on-Trent Wednesday (demo)",
        "3. Tunstall Wednesday (demo)", "4. Newcastle-under-Lyme Thursday (demo)",
        "5. Longton Monday (demo)"]
    assert "1. Hanley Tuesday (demo), next today 1 Dec 6:30pm" in whole
    assert "2. Stoke-on-Trent Wednesday (demo), next tomorrow 2 Dec 10am" in whole
    oracle = await Oracle.load(engine)
    for text in texts:
        oracle.check_sms(text)
    (info,) = await walk(person, "INFO 3")  # PLAN's numbers, after PLAN
    assert info.startswith("Tunstall Wednesday") and "UNSAVE 3 to drop it" in info
    await walk(person, "UNSAVE 5")
    assert "demo-longton-mon" not in await _chosen(engine, person)


async def test_online_meeting_from_another_zone_reads_in_uk_time(
    engine: AsyncEngine, make_person: MakePerson
) -> None:
    async with session_scope(engine) as session:
        session.add(Meeting(slug="la-dawn", name="On Awakening", weekday=1,
                            start_time=time(5, 30), timezone="America/Los_Angeles",
                            attendance=Attendance.ONLINE, conference_url="https://zoom.us/j/1",
                            conference_phone="+16699009128,,382544042#", types=["SMART"]))
    for channel in ("sms", "telegram"):
        person = await make_person(channel)
        person.now = NOW
        (text,) = await walk(person, "ONLINE")
        assert ("1. On Awakening\nToday 1 Dec 1:30pm (UK time), online, or dial "
                "+16699009128,,382544042#") in text
        (saved,) = await walk(person, "SAVE 1")
        assert "Today 1 Dec 1:30pm (UK time)" in saved
        (info,) = await walk(person, "INFO 1")
        assert "Next: Today 1 Dec 1:30pm (UK time). Meets every Tue 1:30pm (UK time)." in info
        texts = await walk(person, "PLAN")
        assert "On Awakening, next today 1 Dec 1:30pm (UK time)" in "\n".join(texts)
    later = NOW + timedelta(hours=2)  # after it started: next week's, still on the UK clock
    person.now = later
    (text,) = await walk(person, "ONLINE")
    assert "Tue 8 Dec 1:30pm (UK time)" in text
