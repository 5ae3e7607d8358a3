"""PLAN: goals, chosen meetings, next appointments, key contacts, sessions toward 10."""

from __future__ import annotations

from datetime import time, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.render import sms_segments
from storage.db import session_scope
from storage.models import Appointment, AppointmentKind, KeyContact, Meeting, Participant
from storage.subscriptions import subscribe
from tests.handlers.conftest import MakePerson


async def test_plan_shows_everything_in_one_short_text(engine: AsyncEngine,
                                                      make_person: MakePerson) -> None:
    person = await make_person("sms", goals=["Stay clean", "Get a flat"])
    now = person.now
    async with session_scope(engine) as session:
        meeting = Meeting(timezone="Europe/London",
            slug="stoke-tue", name="Stoke SMART Tuesday", weekday=1,
                          start_time=time(19, 0), postcode="ST1 1AA")
        session.add(meeting)
        await session.flush()
        await subscribe(session, participant_id=person.participant_id,
                        meeting_id=meeting.id or 0, now=now)
        session.add(Appointment(participant_id=person.participant_id,
                                kind=AppointmentKind.PROBATION,
                                starts_at=now + timedelta(days=5, hours=-2), place="Hanley"))
        session.add(Appointment(participant_id=person.participant_id, kind=AppointmentKind.GP,
                                starts_at=now - timedelta(days=1)))  # past: not shown
        session.add(Appointment(participant_id=person.participant_id, kind=AppointmentKind.GP,
                                starts_at=now + timedelta(days=2), cancelled=True))
        session.add(KeyContact(participant_id=person.participant_id, name="Jo",
                               role="probation officer", phone="01782 000000"))
        p = await session.get(Participant, person.participant_id)
        assert p is not None
        p.sessions_count, p.hours_total = 3, 4.5
        session.add(p)
    (text,) = await person.say("PLAN")
    assert "Your plan, Sam" in text
    assert "Goals: Stay clean; Get a flat" in text
    assert "Stoke SMART Tuesday, next Tue 1 Dec 7pm" in text
    assert "Next: probation, Tue 1 Dec 10am, Hanley" in text
    assert "GP" not in text
    assert "Contact: Jo (probation officer) 01782 000000" in text
    assert "Sessions: 3 of 10. Hours: 4.5 of 20." in text
    assert sms_segments(text) <= 3


async def test_empty_plan_says_what_to_do(make_person: MakePerson) -> None:
    person = await make_person("telegram")
    (text,) = await person.say("plan")
    assert "Goals: none yet" in text and "Send MEETINGS" in text
    assert "Sessions: 0 of 10. Hours: 0 of 20." in text
