"""A "tomorrow" reminder goes the day before, outside quiet hours, or not at all."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from scheduler.clock import SimClock
from scheduler.dispatcher import dispatch
from scheduler.planning import plan
from scheduler.ratelimit import RateLimiter
from storage.db import session_scope
from storage.models import Appointment, AppointmentKind, Meeting, OutboxStatus
from storage.subscriptions import subscribe
from tests.scheduler.conftest import FakeProvider, add_person, rows

LONDON = ZoneInfo("Europe/London")
MEETING_DAY = date(2025, 6, 4)  # a Wednesday in BST


async def _nine_pm_meeting(engine: AsyncEngine, pid: int) -> None:
    async with session_scope(engine) as session:
        m = Meeting(timezone="Europe/London",
            slug="late-wed", name="Late SMART", weekday=MEETING_DAY.weekday(),
                    start_time=time(21), end_time=time(22, 30), venue="Hope Centre",
                    postcode="ST1 1AA")
        session.add(m)
        await session.flush()
        await subscribe(session, participant_id=pid, meeting_id=m.id or 0,
                        now=datetime(2025, 6, 1, tzinfo=UTC))


async def _sweep(
    engine: AsyncEngine, *, start: datetime, end: datetime
) -> list[tuple[datetime, str]]:
    """Run the dispatcher every 30 minutes from `start` to `end`; return (when, body) sent."""
    provider, limiter = FakeProvider("sms"), RateLimiter(clock=SimClock())
    sent: list[tuple[datetime, str]] = []
    now = start
    while now <= end:
        before = len(provider.accepted)
        await dispatch(engine, {"sms": provider}, now=now, limiter=limiter)
        sent += [(now, body) for body in provider.bodies()[before:]]
        now += timedelta(minutes=30)
    return sent


@pytest.mark.parametrize("worker_back_at", [None, time(21, 30)])
async def test_day_before_reminder_for_a_9pm_meeting_never_lands_on_the_day(
    engine: AsyncEngine, worker_back_at: time | None
) -> None:
    pid = await add_person(engine, discreet=False)
    await _nine_pm_meeting(engine, pid)
    await plan(engine, now=datetime(2025, 6, 1, 12, tzinfo=UTC))
    day_before = next(r for r in await rows(engine) if (r.meta or {}).get("offset") == 1440)
    # 21:00 would be quiet hours: it goes at 20:00 the evening before instead ...
    assert day_before.due_at.astimezone(LONDON) == datetime(2025, 6, 3, 20, tzinfo=LONDON)
    # ... and can never go out on the meeting's own date.
    assert day_before.not_after == datetime(2025, 6, 4, 0, tzinfo=LONDON).astimezone(UTC)

    back = datetime.combine(MEETING_DAY - timedelta(days=1), worker_back_at or time(12),
                            tzinfo=LONDON)  # None: the worker sweeps all day
    sent = await _sweep(engine, start=back.astimezone(UTC),
                        end=datetime(2025, 6, 4, 21, tzinfo=LONDON).astimezone(UTC))
    tomorrow = [(at.astimezone(LONDON), body) for at, body in sent if "tomorrow" in body]
    assert all(at.date() == date(2025, 6, 3) and at.hour < 21 for at, _ in tomorrow)
    if worker_back_at is None:
        assert [at.hour for at, _ in tomorrow] == [20]
        assert "Late SMART is tomorrow at 9pm" in tomorrow[0][1]
    else:  # down all evening: too late to say "tomorrow", so it expires
        assert tomorrow == []
        status = {r.id: r.status for r in await rows(engine)}[day_before.id]
        assert status == OutboxStatus.EXPIRED
    assert [b for _, b in sent if "starts at 9pm" in b]  # the hour-before one still goes


async def test_appointment_day_before_respects_early_quiet_hours(engine: AsyncEngine) -> None:
    pid = await add_person(engine, release=date(2025, 1, 1), quiet_start_hour=17,
                           quiet_end_hour=9)
    async with session_scope(engine) as session:
        session.add(Appointment(participant_id=pid, kind=AppointmentKind.PROBATION,
                                starts_at=datetime(2025, 6, 4, 13, 30, tzinfo=UTC),
                                place="Hanley Probation"))
    await plan(engine, now=datetime(2025, 6, 2, 12, tzinfo=UTC))
    day = next(r for r in await rows(engine) if "tomorrow" in r.body)
    # 18:00 falls in this person's quiet hours (from 17:00): 16:00 the day before instead.
    assert day.due_at.astimezone(LONDON) == datetime(2025, 6, 3, 16, tzinfo=LONDON)
    assert day.not_after == datetime(2025, 6, 4, 0, tzinfo=LONDON).astimezone(UTC)
