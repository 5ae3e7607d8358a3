"""MYDATA shows what is kept; DELETE erases personal data and keeps anonymous counts."""

from __future__ import annotations

import json
from datetime import time, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel, col, func, select

from scheduler.dispatcher import dispatch
from storage.db import session_scope
from storage.erasure import scrub_deleted_rows, scrub_sent_rows
from storage.models import (
    Appointment,
    AttendanceOutcome,
    AttendanceRecord,
    CheckIn,
    CrisisEvent,
    KeyContact,
    Meeting,
    OutboundMessage,
    OutboxStatus,
    Participant,
    ParticipantStatus,
    ToolEntry,
)
from storage.participants import issue_link_code
from storage.subscriptions import subscribe
from tests.auxil.builders import PHONE, TELEGRAM_ID
from tests.auxil.senders import RecordingSender, instant_limiter
from tests.handlers.conftest import MakePerson, Person

NAME = "Zebedee"
PRIVATE = [
    "It numbs the shame", "Losing Kayleigh again", "Walking the dog on Hartshill",
    "Argued with Darren at the hostel", "I want to kill myself tonight", "Stay off the brown",
    "Get my own flat in Fenton", "Jo Bloggs", "07700 900777", "Longton probation office",
]


async def _scan(engine: AsyncEngine, needles: list[str]) -> list[str]:
    """Return `table.column: needle` for every string value in the database holding a needle."""
    found = []
    async with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in (await conn.execute(table.select())).mappings():
                for column, value in row.items():
                    if value is None or isinstance(value, int | float | bool):
                        continue
                    text = value if isinstance(value, str) else json.dumps(value, default=str)
                    found += [f"{table.name}.{column}: {n}" for n in needles
                              if n.lower() in text.lower()]
    return found


async def _fill_a_life(engine: AsyncEngine, sms: Person) -> Person:
    """Use every tool, link Telegram too, and add plan details, as a real person might."""
    pid = sms.participant_id
    async with session_scope(engine) as session:
        p = await session.get(Participant, pid)
        assert p is not None
        p.staff_review_consent = True
        session.add(p)
        code = await issue_link_code(session, participant_id=pid, release_date=p.release_date,
                                     now=sms.now)
        meeting = Meeting(timezone="Europe/London",
            slug="fenton", name="Fenton SMART", weekday=2, start_time=time(18))
        session.add(meeting)
        await session.flush()
        await subscribe(session, participant_id=pid, meeting_id=meeting.id or 0, now=sms.now)
        session.add(KeyContact(participant_id=pid, name="Jo Bloggs", role="key worker",
                               phone="07700 900777"))
        session.add(Appointment(participant_id=pid, starts_at=sms.now + timedelta(days=3),
                                place="Longton probation office"))
        session.add(AttendanceRecord(participant_id=pid, meeting_id=meeting.id,
                                     outcome=AttendanceOutcome.ATTENDED, hours=1.5))
    tg = Person(sms.db_url, engine, "telegram", TELEGRAM_ID, pid)
    assert "did not work" in (await tg.say("ZZZZZ-ZZZZZ"))[0]  # a typo first
    assert (await tg.say(code))[0].startswith(f"Hi {NAME}")
    await sms.say("CBA")
    for answer in PRIVATE[:4]:
        await sms.say(answer)
    await tg.say(PRIVATE[4])  # crisis words: numbers sent, event noted (consented)
    await tg.say("URGE")
    await tg.rate(8)
    await tg.choose("U_SURF")  # a check-back is now queued for 15 minutes
    await sms.say("CHECKIN")
    await sms.say("5")
    await sms.say("7")
    await sms.say("Argued with Darren at the hostel")
    return tg


async def test_mydata_lists_what_is_kept(make_person: MakePerson) -> None:
    person = await make_person("sms", name=NAME)
    await person.say("CHECKIN")
    await person.say("5")
    await person.say("5")
    await person.say("SKIP")
    summary, how = await person.say("MYDATA")
    assert f"your name ({NAME})" in summary and "release date (12 Nov 2026)" in summary
    assert "1 check-in," in summary and "area (ST3 2QH)" in summary
    assert "DELETE" in how


async def test_anything_but_yes_keeps_everything(engine: AsyncEngine, person: Person) -> None:
    confirm = await person.say("DELETE")
    assert "cannot be undone" in confirm[0] and "YES" in confirm[0]
    if person.channel == "telegram":
        assert person.offered() == ["DELETE_YES", "MENU"]
    else:
        assert person.offered() == []  # on SMS only a typed YES erases
    assert "nothing was deleted" in (await person.say("no"))[0]
    async with session_scope(engine) as session:
        p = await session.get(Participant, person.participant_id)
        assert p is not None and p.status == ParticipantStatus.ACTIVE and p.display_name


async def test_delete_leaves_nothing_personal_and_nothing_queued(
    engine: AsyncEngine, make_person: MakePerson
) -> None:
    sms = await make_person("sms", name=NAME, goals=[PRIVATE[5], PRIVATE[6]])
    other = await make_person("sms", name="Control", address="+447700900999",
                              goals=["Other goal"])
    await other.say("CHECKIN")
    tg = await _fill_a_life(engine, sms)
    needles = [NAME, PHONE, TELEGRAM_ID, *PRIVATE]
    assert len(await _scan(engine, needles)) > 20  # the scan finds what is there

    await tg.say("DELETE")
    done = await tg.choose("DELETE_YES")
    assert "erased" in done[0]

    async with session_scope(engine) as session:
        mine = (col(OutboundMessage.participant_id) == sms.participant_id) | col(
            OutboundMessage.address).in_([PHONE, TELEGRAM_ID])
        queued = (await session.exec(select(OutboundMessage).where(mine).where(
            OutboundMessage.status == OutboxStatus.QUEUED))).all()
    # Only the confirmation waits, holding the address it must still reach.
    assert [(r.body, r.address) for r in queued] == [(done[0], TELEGRAM_ID)]

    sender = RecordingSender("telegram")
    stats = await dispatch(engine, {"telegram": sender, "sms": RecordingSender("sms")},
                           now=tg.now, limiter=instant_limiter())
    assert stats.sent >= 1
    assert [(m.address, m.body) for m in sender.sent if "erased" in m.body] == [
        (TELEGRAM_ID, done[0])]
    async with session_scope(engine) as session:
        # The dispatcher blanked the confirmation as soon as it was sent.
        assert await scrub_sent_rows(session, sms.participant_id) == 0
        assert await scrub_deleted_rows(session) == 0
        assert await scrub_sent_rows(session, other.participant_id) == 0

    assert await _scan(engine, needles) == []
    later = tg.now + timedelta(minutes=20)
    await dispatch(engine, {"telegram": sender}, now=later, limiter=instant_limiter())
    assert not any("Checking in" in m.body for m in sender.sent), "the check-back was cancelled"

    async with session_scope(engine) as session:
        p = await session.get(Participant, sms.participant_id)
        assert p is not None and p.status == ParticipantStatus.DELETED and p.display_name == ""
        assert p.deleted_at == tg.now
        # Anonymous counts stay.
        count = func.count()
        assert (await session.exec(select(count).select_from(CheckIn).where(
            CheckIn.participant_id == sms.participant_id))).one() == 1
        assert (await session.exec(select(count).select_from(AttendanceRecord).where(
            AttendanceRecord.participant_id == sms.participant_id))).one() == 1
        assert (await session.exec(select(count).select_from(CrisisEvent))).one() == 1
        urge = (await session.exec(select(ToolEntry).where(
            ToolEntry.participant_id == sms.participant_id))).all()
        assert all(isinstance(v, int | float) for e in urge for v in (e.data or {}).values())
        # The other participant is untouched.
        control = await session.get(Participant, other.participant_id)
        assert control is not None and control.display_name == "Control"
    assert "Control" in " ".join(await _scan(engine, ["Control"]))

    # The erased number is a stranger now; it cannot re-link by being the enrolled phone.
    assert "send the code" in (await sms.say("hello"))[0]
    assert "send the code" in (await tg.say("MENU"))[0]


async def test_periodic_sweep_blanks_the_sent_confirmation(
    engine: AsyncEngine, make_person: MakePerson
) -> None:
    person = await make_person("sms", name=NAME)
    await person.say("DELETE")
    done = await person.say("yes")
    assert "erased" in done[0]
    async with session_scope(engine) as session:
        assert await scrub_deleted_rows(session) == 0  # not sent yet: it keeps its address
    assert await _scan(engine, [PHONE]) == [f"outboundmessage.address: {PHONE}"]
    sender = RecordingSender("sms")
    await dispatch(engine, {"sms": sender}, now=person.now, limiter=instant_limiter())
    assert [m.address for m in sender.sent if m.body == done[0]] == [PHONE]
    assert await _scan(engine, [NAME, PHONE]) == []  # the dispatch pass blanked it
    async with session_scope(engine) as session:
        assert await scrub_deleted_rows(session) == 0
