"""WENT / MISSED / NORUN answers and REMIND choices, through the real conversation engine."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from handlers.engine import handle_inbound
from handlers.types import EngineContext, Inbound
from scheduler.clock import SimClock
from scheduler.dispatcher import dispatch
from scheduler.planning import plan
from scheduler.ratelimit import RateLimiter
from storage.db import session_scope
from storage.models import (
    AttendanceOutcome,
    AttendanceRecord,
    Meeting,
    MessageKind,
    OutboxStatus,
    Participant,
)
from storage.subscriptions import subscribe
from tests.scheduler.conftest import FakeProvider, add_person, rows

PHONE = "+447700900001"
_ids = itertools.count(1)


async def say(engine: AsyncEngine, text: str, now: datetime) -> list[str]:
    """Send one SMS as the participant; return the reply texts."""
    async with session_scope(engine) as session:
        result = await handle_inbound(
            session, Inbound(channel="sms", address=PHONE, text=text,
                             provider_id=f"in-{next(_ids)}"), EngineContext(now=now))
    return [r.text for r in result.replies]


async def _asked(engine: AsyncEngine, **person: object) -> tuple[int, datetime]:
    """Subscribe a person to a meeting, remind them, and send "did you make it?"."""
    person = {"discreet": False, **person}  # "did you make it?" names the meeting
    pid = await add_person(engine, release=date(2025, 1, 1), **person)  # type: ignore[arg-type]
    async with session_scope(engine) as session:
        m = Meeting(timezone="Europe/London",
            slug="hanley", name="Hanley SMART", weekday=1, start_time=time(18),
                    end_time=time(20), postcode="ST1 1AA")
        session.add(m)
        await session.flush()
        await subscribe(session, participant_id=pid, meeting_id=m.id or 0,
                        now=datetime(2025, 6, 1, tzinfo=UTC))
    provider, limiter = FakeProvider("sms"), RateLimiter(clock=SimClock())
    start = datetime(2025, 6, 3, 17, 0, tzinfo=UTC)
    await plan(engine, now=start - timedelta(days=1))
    await dispatch(engine, {"sms": provider}, now=start - timedelta(hours=1), limiter=limiter)
    await plan(engine, now=start)
    late = start + timedelta(hours=3, minutes=1)  # 21:01 London: quiet hours, so it waits
    await dispatch(engine, {"sms": provider}, now=late, limiter=limiter)
    assert not provider.bodies()[-1].startswith("Did you make it")
    after = datetime(2025, 6, 4, 7, 1, tzinfo=UTC)  # 08:01 London next morning
    await dispatch(engine, {"sms": provider}, now=after, limiter=limiter)
    assert provider.bodies()[-1].startswith("Did you make it to Hanley SMART?")
    return pid, after


async def test_went_counts_a_session_and_its_hours_with_a_milestone(engine: AsyncEngine) -> None:
    pid, now = await _asked(engine)
    replies = await say(engine, "went", now)
    assert replies == ["Well done, Sam. Meetings so far: 1. Hours so far: 2.",
                       "Your first meeting. That is a big step."]
    again = await say(engine, "WENT", now)
    assert again == ["Thanks, I already have your answer for that meeting."]
    async with session_scope(engine) as session:
        p = await session.get(Participant, pid)
        records = (await session.exec(select(AttendanceRecord))).all()
    assert p is not None and p.sessions_count == 1 and p.hours_total == 2.0
    assert [r.outcome for r in records] == [AttendanceOutcome.ATTENDED]


async def test_twenty_hours_and_tenth_session_are_celebrated(engine: AsyncEngine) -> None:
    _, now = await _asked(engine, sessions_count=9, hours_total=19.0)
    replies = await say(engine, "WENT", now)
    assert replies[1:] == ["Ten meetings. That is a real milestone. Well done.",
                           "Twenty hours of meetings. Brilliant."]


async def test_norun_is_recorded_against_the_meeting(engine: AsyncEngine) -> None:
    _, now = await _asked(engine)
    assert (await say(engine, "NORUN", now))[0].startswith("Thank you for telling us")
    async with session_scope(engine) as session:
        (record,) = (await session.exec(select(AttendanceRecord))).all()
    assert record.outcome == AttendanceOutcome.NOT_RUNNING and record.meeting_id is not None


async def test_answer_without_a_question_gets_a_short_reply(engine: AsyncEngine) -> None:
    await add_person(engine)
    now = datetime(2025, 6, 3, 12, tzinfo=UTC)
    assert await say(engine, "MISSED", now) == [
        "I have no meeting to ask you about just now. Send MEETINGS to find one."]


async def test_remind_off_cancels_pending_and_remind_day_brings_back_the_day_before(
    engine: AsyncEngine,
) -> None:
    await add_person(engine, release=date(2025, 1, 1))
    async with session_scope(engine) as session:
        m = Meeting(timezone="Europe/London",
            slug="hanley", name="Hanley SMART", weekday=1, start_time=time(18))
        session.add(m)
        await session.flush()
        await subscribe(session, participant_id=1, meeting_id=m.id or 0,
                        now=datetime(2025, 6, 1, tzinfo=UTC))
    now = datetime(2025, 6, 2, 12, tzinfo=UTC)
    await plan(engine, now=now)
    assert (await say(engine, "REMIND", now))[0].startswith(
        "You get reminders the day before and an hour before.")
    assert (await say(engine, "remind off", now))[0].startswith("Done. Meeting reminders are off")
    await plan(engine, now=now)
    assert not [r for r in await rows(engine)
                if r.kind == MessageKind.REMINDER and r.status == OutboxStatus.QUEUED]
    assert (await say(engine, "REMIND DAY", now)) == [
        "Done. You will get reminders the day before."]
    await plan(engine, now=now)
    queued = [r for r in await rows(engine)
              if r.kind == MessageKind.REMINDER and r.status == OutboxStatus.QUEUED]
    assert [(r.meta or {}).get("offset") for r in queued] == [1440]
    assert (await say(engine, "REMIND 🙂 DROP TABLE", now))[0].startswith("Sorry, I did not")
