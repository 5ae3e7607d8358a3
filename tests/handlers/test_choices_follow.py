"""Choices follow the conversation: a number answers the last question the person got.

Interjections (crisis numbers, HELP, a reminder, a "did you make it?" already answered) do
not take a flow's choices away, and a flow's own words (NEXT in URGE) belong to the flow.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from handlers.texts import t
from meeting_finder.demo import load_demo_meetings
from scheduler.dispatcher import dispatch
from storage.db import session_scope
from storage.models import (
    AttendanceRecord,
    Meeting,
    MessageKind,
    OutboundMessage,
    Participant,
    Priority,
)
from storage.outbox import enqueue
from storage.participants import issue_link_code
from tests.auxil.builders import PHONE, TELEGRAM_ID
from tests.auxil.senders import RecordingSender, instant_limiter
from tests.handlers.conftest import MakePerson, Person
from tests.handlers.crisis_phrases import CRISIS

STEP_1 = "Step 1 of 5"
STEP_2 = "Step 2 of 5"


async def _at_urge_step_1(person: Person) -> None:
    await person.say("URGE")
    assert (await person.rate(6))[0].startswith(STEP_1)


async def _send_all(engine: AsyncEngine, person: Person, now: datetime) -> RecordingSender:
    """Let the real dispatcher send whatever is due, so rows get their sent_at."""
    sender = RecordingSender(person.channel)
    await dispatch(engine, {person.channel: sender}, now=now, limiter=instant_limiter())
    return sender


async def _plan_followup(engine: AsyncEngine, person: Person, *, due: datetime) -> int:
    """Write "did you make it?" as the planner does: the day before, due after the meeting."""
    async with session_scope(engine) as session:
        meeting = (await session.exec(select(Meeting).where(Meeting.slug == "demo-longton-mon"))
                   ).one()
        occurrence = due - timedelta(hours=2)
        await enqueue(
            session, channel=person.channel, address=person.address,
            body=t("followup.ask", meeting=meeting.name[:40]),
            dedupe_key=f"fu:{meeting.id}:{person.participant_id}", now=due - timedelta(days=1),
            participant_id=person.participant_id, kind=MessageKind.FOLLOWUP,
            priority=Priority.SCHEDULED, due_at=due, not_after=due + timedelta(days=2),
            meeting_id=meeting.id, meta={"occurrence": occurrence.isoformat()},
            choices=[[t("followup.went_label"), "WENT"], [t("followup.missed_label"), "MISSED"],
                     [t("followup.norun_label"), "NORUN"]])
        assert meeting.id is not None
        return meeting.id


async def _sessions(engine: AsyncEngine, pid: int) -> int:
    async with session_scope(engine) as session:
        p = await session.get(Participant, pid)
        assert p is not None
        return p.sessions_count


@pytest.mark.parametrize("crisis", CRISIS[:3])
async def test_a_crisis_text_mid_urge_leaves_the_step_choices(make_person: MakePerson,
                                                              crisis: str) -> None:
    person = await make_person("sms")
    await _at_urge_step_1(person)
    reply = await person.say(crisis)
    assert reply[0] == t("crisis.reply") and person.last[0].kind == MessageKind.CRISIS
    assert (await person.say("1"))[0].startswith(STEP_2)


async def test_help_mid_urge_explains_without_taking_the_numbers(person: Person) -> None:
    await _at_urge_step_1(person)
    (help_text,) = await person.say("HELP")
    assert t("help.in_flow") in help_text and person.offered() == []
    if person.channel == "sms":
        assert (await person.say("1"))[0].startswith(STEP_2)
    else:
        assert (await person.say("", payload="U_NEXT"))[0].startswith(STEP_2)


@pytest.mark.parametrize("word", ["next", "Next", "NEXT!", "next step"])
async def test_next_inside_urge_is_the_next_step(engine: AsyncEngine, person: Person,
                                                 word: str) -> None:
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=person.now)
    await person.say("MEETINGS ST3 2QH")  # a search NEXT could page through
    await _at_urge_step_1(person)
    assert (await person.say(word))[0].startswith(STEP_2)
    assert (await person.state()).step == "escape"


@pytest.mark.parametrize("flow", ["CBA", "CHECKIN"])
async def test_next_inside_a_tool_moves_to_the_next_question(person: Person,
                                                             flow: str) -> None:
    await person.say(flow)
    step = (await person.state()).step
    reply = await person.say("next")
    assert (await person.state()).step != step
    assert not any("Meetings" in r or "MEETINGS and a postcode" in r for r in reply)


@pytest.mark.parametrize("answer", ["1", "WENT"])
async def test_did_you_make_it_mid_urge_is_answered_and_the_urge_carries_on(
    engine: AsyncEngine, make_person: MakePerson, answer: str
) -> None:
    person = await make_person("sms")
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=person.now)
    arrives = person.now + timedelta(minutes=10)
    meeting_id = await _plan_followup(engine, person, due=arrives)
    await _at_urge_step_1(person)
    step_row = person.last[0]
    await _send_all(engine, person, person.now)  # the step goes out now, the question later
    sender = await _send_all(engine, person, arrives)
    assert sender.bodies() == [t("followup.ask", meeting="SMART Recovery Longton Monday (demo)")]

    went = await person.say(answer, now=arrives + timedelta(minutes=2))
    assert went[0].startswith("Well done"), "the number answers what came last, not row id"
    assert await _sessions(engine, person.participant_id) == 1
    async with session_scope(engine) as session:
        (record,) = (await session.exec(select(AttendanceRecord))).all()
        assert record.meeting_id == meeting_id
        question = (await session.exec(select(OutboundMessage)
                                       .where(OutboundMessage.kind == MessageKind.FOLLOWUP))
                    ).one()
        assert question.id is not None and step_row.id is not None
        assert question.id < step_row.id  # written first, but got last
    assert (await person.state()).step == "delay"
    # The question had its answer: numbers go back to the urge step.
    assert (await person.say("1", now=arrives + timedelta(minutes=3)))[0].startswith(STEP_2)


async def test_a_reminder_without_choices_leaves_the_menu_numbers(
    engine: AsyncEngine, make_person: MakePerson
) -> None:
    person = await make_person("sms")
    await person.say("MENU")
    assert person.offered()[0] == "MEETINGS"
    await _send_all(engine, person, person.now)
    later = person.now + timedelta(minutes=5)
    async with session_scope(engine) as session:
        await enqueue(session, channel="sms", address=PHONE, dedupe_key="rem:1",
                      body=t("reminder.meeting_soon", meeting="Longton", time="7pm",
                             where="Library"),
                      now=person.now, due_at=later, participant_id=person.participant_id,
                      kind=MessageKind.REMINDER, priority=Priority.SCHEDULED)
    assert len((await _send_all(engine, person, later)).sent) == 1
    reply = await person.say("2", now=later + timedelta(minutes=1))
    assert "How strong is it right now" in reply[0]


async def test_a_scheduled_question_takes_only_the_next_message(
    engine: AsyncEngine, make_person: MakePerson
) -> None:
    person = await make_person("sms")
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=person.now)
    arrives = person.now + timedelta(minutes=10)
    await _plan_followup(engine, person, due=arrives)
    await _send_all(engine, person, arrives)
    await person.say("MENU", now=arrives + timedelta(minutes=1))  # ignored the question
    reply = await person.say("2", now=arrives + timedelta(minutes=2))
    assert "How strong is it right now" in reply[0]  # the menu's 2, not "I missed it"
    assert await _sessions(engine, person.participant_id) == 0


async def test_numbers_from_another_place_do_not_answer_a_tool(
    engine: AsyncEngine, make_person: MakePerson
) -> None:
    """A menu on SMS, then a CBA started on Telegram: "1" on SMS is a CBA answer."""
    sms = await make_person("sms")
    await sms.say("MENU")
    async with session_scope(engine) as session:
        p = await session.get(Participant, sms.participant_id)
        assert p is not None
        code = await issue_link_code(session, participant_id=sms.participant_id,
                                     release_date=p.release_date, now=sms.now,
                                     expires_at=sms.now + timedelta(hours=1))
    telegram = Person(sms.db_url, sms.engine, "telegram", TELEGRAM_ID, sms.participant_id)
    await telegram.say(code)
    await telegram.say("CBA")
    reply = await sms.say("1")
    assert reply[0].startswith("2 of 4")
    async with session_scope(engine) as session:
        rows = await session.exec(select(OutboundMessage.body))
        bodies = rows.all()
        assert bodies and [b for b in bodies if "Meetings near" in (b or "")] == []
