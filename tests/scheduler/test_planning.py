"""Planning: the release sequence moves with the release date; meeting changes are told."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from scheduler.clock import SimClock
from scheduler.dispatcher import dispatch
from scheduler.planning import plan
from scheduler.ratelimit import RateLimiter
from scheduler.worker import run_cycle
from storage.db import session_scope
from storage.models import (
    Appointment,
    AppointmentKind,
    Meeting,
    MeetingStatus,
    MessageKind,
    OutboxStatus,
    Participant,
)
from storage.subscriptions import subscribe
from tests.scheduler.conftest import FakeProvider, add_person, rows


async def test_release_sequence_is_planned_once_and_moves_with_the_release_date(
    engine: AsyncEngine,
) -> None:
    pid = await add_person(engine, release=date(2025, 6, 10))
    now = datetime(2025, 6, 5, 12, tzinfo=UTC)
    first = await plan(engine, now=now)
    again = await plan(engine, now=now + timedelta(minutes=5))
    seq = [r for r in await rows(engine) if r.kind == MessageKind.SEQUENCE]
    assert first.added == len(seq) == 6 and again.added == 0 and again.moved == 0
    welcome = next(r for r in seq if r.dedupe_key.endswith(":welcome"))
    assert welcome.due_at == datetime(2025, 6, 10, 9, 0, tzinfo=UTC)  # 10:00 BST
    checkins = sorted(r.due_at.date() for r in seq if "checkin" in r.dedupe_key)
    assert checkins == [date(2025, 6, d) for d in (11, 13, 17, 24)] + [date(2025, 7, 8)]
    async with session_scope(engine) as session:  # a Champion moves the release date
        p = await session.get(Participant, pid)
        assert p is not None
        p.release_date = date(2025, 6, 12)
        session.add(p)
    moved = await plan(engine, now=now + timedelta(minutes=10))
    seq = [r for r in await rows(engine) if r.kind == MessageKind.SEQUENCE]
    assert moved.moved == 6 and len(seq) == 6
    welcome = next(r for r in seq if r.dedupe_key.endswith(":welcome"))
    assert welcome.due_at == datetime(2025, 6, 12, 9, 0, tzinfo=UTC)


async def test_run_cycle_sends_the_welcome_on_release_day_only_once(engine: AsyncEngine) -> None:
    await add_person(engine, release=date(2025, 6, 10), discreet=False)
    provider = FakeProvider("sms")
    limiter = RateLimiter(clock=SimClock())
    at = datetime(2025, 6, 10, 9, 30, tzinfo=UTC)
    dry = await run_cycle(engine, {"sms": provider}, now=at, dry_run=True)
    assert dry["dry_run"] is True and provider.calls == [] and await rows(engine) == []
    out = await run_cycle(engine, {"sms": provider}, now=at, limiter=limiter)
    await run_cycle(engine, {"sms": provider}, now=at + timedelta(minutes=5), limiter=limiter)
    assert out["dispatch"]["sent"] == 1
    assert [m.body for _, m in provider.calls] == [
        "Hi Sam, welcome out. This is throughcare. Send MEETINGS to find a SMART Recovery "
        "meeting near you, or MENU to see what I can do."]


async def _subscribed(engine: AsyncEngine, pid: int) -> int:
    async with session_scope(engine) as session:
        m = Meeting(timezone="Europe/London",
            slug="hanley-tue", name="Hanley SMART", weekday=1, start_time=time(18),
                    end_time=time(19, 30), venue="Hope Centre", postcode="ST1 1AA")
        session.add(m)
        await session.flush()
        await subscribe(session, participant_id=pid, meeting_id=m.id or 0,
                        now=datetime(2025, 6, 1, tzinfo=UTC))
        return m.id or 0


async def test_cancelled_meeting_cancels_reminders_and_tells_the_person(
    engine: AsyncEngine,
) -> None:
    pid = await add_person(engine, release=date(2025, 1, 1), discreet=False)
    mid = await _subscribed(engine, pid)
    now = datetime(2025, 6, 2, 12, tzinfo=UTC)  # Monday; meeting Tuesday 18:00
    await plan(engine, now=now)
    assert len([r for r in await rows(engine) if r.kind == MessageKind.REMINDER]) == 2
    async with session_scope(engine) as session:
        m = await session.get(Meeting, mid)
        assert m is not None
        m.status = MeetingStatus.CANCELLED
        session.add(m)
    stats = await plan(engine, now=now + timedelta(minutes=5))
    await plan(engine, now=now + timedelta(minutes=10))
    outbox = await rows(engine)
    assert stats.cancelled == 2 and stats.notified == 1
    queued = [r for r in outbox if r.status == OutboxStatus.QUEUED]
    assert len(queued) == 1  # one notice, however many reminders it replaces
    assert queued[0].body.startswith("Sorry, Hanley SMART on Tue 3 Jun 6pm is not running")


async def test_moved_meeting_reschedules_reminders_and_says_so(engine: AsyncEngine) -> None:
    pid = await add_person(engine, release=date(2025, 1, 1), discreet=False)
    mid = await _subscribed(engine, pid)
    now = datetime(2025, 6, 2, 12, tzinfo=UTC)
    await plan(engine, now=now)
    async with session_scope(engine) as session:
        m = await session.get(Meeting, mid)
        assert m is not None
        m.start_time, m.end_time = time(19), time(20, 30)
        session.add(m)
    await plan(engine, now=now + timedelta(minutes=5))
    queued = [r for r in await rows(engine) if r.status == OutboxStatus.QUEUED]
    notices = [r for r in queued if (r.meta or {}).get("change")]
    assert notices and notices[0].body == \
        "Hanley SMART has moved. It is now Tue 3 Jun 7pm. I will remind you at the new time."
    hour_before = sorted(r.due_at for r in queued if (r.meta or {}).get("offset") == 60)
    assert hour_before[0] == datetime(2025, 6, 3, 17, 0, tzinfo=UTC)  # 18:00 BST


async def test_appointment_reminders_evening_before_and_morning(engine: AsyncEngine) -> None:
    pid = await add_person(engine, release=date(2025, 1, 1), discreet=False)
    async with session_scope(engine) as session:
        session.add(Appointment(participant_id=pid, kind=AppointmentKind.PROBATION,
                                starts_at=datetime(2025, 6, 4, 13, 30, tzinfo=UTC),
                                place="Hanley Probation"))
    await plan(engine, now=datetime(2025, 6, 2, 12, tzinfo=UTC))
    reminders = sorted((r.due_at, r.body) for r in await rows(engine)
                       if r.appointment_id is not None)
    assert reminders == [
        (datetime(2025, 6, 3, 17, 0, tzinfo=UTC),
         "Reminder: your probation appointment is tomorrow at 2:30pm, Hanley Probation."),
        (datetime(2025, 6, 4, 7, 0, tzinfo=UTC),
         "Reminder: your probation appointment is today at 2:30pm, Hanley Probation."),
    ]


async def test_followup_after_a_reminded_meeting(engine: AsyncEngine) -> None:
    pid = await add_person(engine, release=date(2025, 1, 1))
    await _subscribed(engine, pid)
    provider = FakeProvider("sms")
    limiter = RateLimiter(clock=SimClock())
    start = datetime(2025, 6, 3, 16, 0, tzinfo=UTC)  # 17:00 BST, an hour before
    await plan(engine, now=start - timedelta(days=1))
    await dispatch(engine, {"sms": provider}, now=start, limiter=limiter)
    await plan(engine, now=start + timedelta(minutes=5))
    followups = [r for r in await rows(engine) if r.kind == MessageKind.FOLLOWUP]
    assert len(followups) == 1
    assert followups[0].due_at == datetime(2025, 6, 3, 19, 30, tzinfo=UTC)  # end + 1 hour
    assert followups[0].choices == [["I went", "WENT"], ["I missed it", "MISSED"],
                                    ["It did not run", "NORUN"]]
