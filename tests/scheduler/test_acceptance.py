"""Acceptance: DST reminders, a provider outage, and quiet hours for every kind."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from scheduler.clock import SimClock
from scheduler.dispatcher import DispatchPolicy, dispatch
from scheduler.planning import plan
from scheduler.ratelimit import RateLimiter
from storage.db import session_scope
from storage.models import Meeting, MessageKind, OutboxStatus
from storage.subscriptions import subscribe
from tests.scheduler.conftest import FakeProvider, add_person, put, rows, transient


async def _meeting_on(engine: AsyncEngine, *, weekday: int, at: time) -> int:
    async with session_scope(engine) as session:
        m = Meeting(timezone="Europe/London",
            slug=f"smart-{weekday}", name="SMART Recovery Hanley", weekday=weekday,
                    start_time=at, end_time=time(at.hour + 1, 30), venue="Hope Centre",
                    postcode="ST1 1AA", lat=53.02, lon=-2.17)
        session.add(m)
        await session.flush()
        return m.id or 0


@pytest.mark.parametrize(("meeting_day", "expect_day_before", "expect_hour_before"), [
    # Sunday 30 March 2025: clocks go forward at 01:00 GMT. Meeting 19:00 BST = 18:00 UTC.
    ("2025-03-30", "2025-03-29T19:00:00+00:00", "2025-03-30T17:00:00+00:00"),
    # Monday 31 March: both reminders after the change, both in BST.
    ("2025-03-31", "2025-03-30T18:00:00+00:00", "2025-03-31T17:00:00+00:00"),
    # Saturday 29 March: both before the change, both in GMT.
    ("2025-03-29", "2025-03-28T19:00:00+00:00", "2025-03-29T18:00:00+00:00"),
    # Sunday 26 October 2025: clocks go back at 02:00 BST. Meeting 19:00 GMT = 19:00 UTC.
    ("2025-10-26", "2025-10-25T18:00:00+00:00", "2025-10-26T18:00:00+00:00"),
    ("2025-10-25", "2025-10-24T18:00:00+00:00", "2025-10-25T17:00:00+00:00"),
    ("2025-10-27", "2025-10-26T19:00:00+00:00", "2025-10-27T18:00:00+00:00"),
])
async def test_meeting_reminders_fire_at_local_time_across_dst(
    engine: AsyncEngine, meeting_day: str, expect_day_before: str, expect_hour_before: str
) -> None:
    day = datetime.fromisoformat(meeting_day).date()
    mid = await _meeting_on(engine, weekday=day.weekday(), at=time(19, 0))
    pid = await add_person(engine, discreet=False)
    async with session_scope(engine) as session:
        await subscribe(session, participant_id=pid, meeting_id=mid,
                        now=datetime(2025, 1, 1, tzinfo=UTC))
    now = datetime.combine(day - timedelta(days=3), time(12), tzinfo=UTC)
    await plan(engine, now=now)
    await plan(engine, now=now + timedelta(hours=1))  # idempotent: nothing doubles
    reminders = [r for r in await rows(engine) if r.kind == MessageKind.REMINDER
                 and r.meta and r.meta["occurrence"].startswith(meeting_day)]
    due = sorted(r.due_at.isoformat() for r in reminders)
    assert due == sorted([expect_day_before, expect_hour_before])
    # And the dispatcher sends each at that moment, not before.
    provider = FakeProvider("sms")
    first = datetime.fromisoformat(min(due))
    limiter = RateLimiter(clock=SimClock())
    await dispatch(engine, {"sms": provider}, now=first - timedelta(minutes=1), limiter=limiter)
    assert provider.calls == []
    await dispatch(engine, {"sms": provider}, now=first, limiter=limiter)
    assert len(provider.calls) == 1
    assert "tomorrow at 7pm" in provider.calls[0][1].body


async def test_provider_outage_ends_delivered_or_expired_without_hot_loop(
    engine: AsyncEngine,
) -> None:
    """Every send fails for 10 simulated minutes; the worker sweeps every 5 seconds."""
    pid = await add_person(engine)
    start = datetime(2025, 6, 2, 11, 0, tzinfo=UTC)
    for i in range(40):
        await put(engine, f"bc:{i}", participant_id=pid, now=start,
                  not_after=start + timedelta(hours=2))
    for i in range(10):  # reminders for a meeting 5 minutes away: useless after it starts
        await put(engine, f"rem:{i}", participant_id=pid, now=start, kind=MessageKind.REMINDER,
                  not_after=start + timedelta(minutes=5))
    clock = SimClock()
    outage_end = 600.0
    provider = FakeProvider("sms", clock=clock,
                            fail=lambda m: transient() if clock.monotonic() < outage_end else None)
    limiter = RateLimiter(clock=clock)
    policy = DispatchPolicy(jitter=lambda: 0.5)
    sweeps = 0
    while clock.monotonic() < 3600:
        await dispatch(engine, {"sms": provider}, now=start + timedelta(seconds=clock.monotonic()),
                       limiter=limiter, policy=policy)
        sweeps += 1
        clock.advance(5)
    outbox = await rows(engine)
    by_key = {r.dedupe_key: r for r in outbox}
    assert all(by_key[f"bc:{i}"].status == OutboxStatus.SENT for i in range(40))
    assert all(by_key[f"rem:{i}"].status == OutboxStatus.EXPIRED for i in range(10))
    sent_ids = [m.id for at, m in provider.calls if at >= outage_end]  # all accepted
    assert len(sent_ids) == len(set(sent_ids)) == 40  # nothing doubled
    during = [at for at, _ in provider.calls if at < outage_end]
    # 720 sweeps ran; a hot loop would call the provider thousands of times. The channel is
    # paused after 5 failures in a row, so only a handful of probes go out per minute.
    assert sweeps >= 700
    print("provider calls during the outage:", len(during), "sweeps:", sweeps)
    assert len(during) <= 60, len(during)
    assert max(r.attempts for r in outbox) <= 6


KINDS = [MessageKind.REMINDER, MessageKind.SEQUENCE, MessageKind.FOLLOWUP,
         MessageKind.BROADCAST, MessageKind.TOOL, MessageKind.REPLY, MessageKind.CRISIS]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("local_hour", [21, 23, 3, 7])
async def test_quiet_hours_hold_for_every_kind_but_replies_and_crisis(
    engine: AsyncEngine, kind: MessageKind, local_hour: int
) -> None:
    pid = await add_person(engine)
    # June: London is UTC+1.
    now = datetime(2025, 6, 3, (local_hour - 1) % 24, 30, tzinfo=UTC)
    await put(engine, "m1", participant_id=pid, now=now, kind=kind)
    provider = FakeProvider("sms")
    await dispatch(engine, {"sms": provider}, now=now, limiter=RateLimiter(clock=SimClock()))
    (row,) = await rows(engine)
    if kind in (MessageKind.REPLY, MessageKind.CRISIS):
        assert row.status == OutboxStatus.SENT and len(provider.calls) == 1
        return
    assert provider.calls == []
    assert row.status == OutboxStatus.QUEUED  # deferred, not dropped
    assert row.due_at.astimezone(UTC).hour == 7 and row.due_at > now  # 08:00 London
    assert row.due_at - now < timedelta(hours=12)
    await dispatch(engine, {"sms": provider}, now=row.due_at,
                   limiter=RateLimiter(clock=SimClock()))
    assert len(provider.calls) == 1


async def test_quiet_hours_follow_the_participants_own_hours(engine: AsyncEngine) -> None:
    pid = await add_person(engine, quiet_start_hour=23, quiet_end_hour=10)
    now = datetime(2025, 6, 3, 8, 0, tzinfo=UTC)  # 09:00 London: quiet for this person
    await put(engine, "m1", participant_id=pid, now=now, kind=MessageKind.REMINDER)
    provider = FakeProvider("sms")
    await dispatch(engine, {"sms": provider}, now=now, limiter=RateLimiter(clock=SimClock()))
    (row,) = await rows(engine)
    assert provider.calls == [] and row.due_at == datetime(2025, 6, 3, 9, 0, tzinfo=UTC)


async def test_quiet_hours_past_not_after_expire(engine: AsyncEngine) -> None:
    pid = await add_person(engine)
    now = datetime(2025, 6, 3, 21, 0, tzinfo=UTC)  # 22:00 London
    await put(engine, "m1", participant_id=pid, now=now, kind=MessageKind.REMINDER,
              not_after=now + timedelta(hours=1))
    await dispatch(engine, {"sms": FakeProvider("sms")}, now=now,
                   limiter=RateLimiter(clock=SimClock()))
    (row,) = await rows(engine)
    assert row.status == OutboxStatus.EXPIRED
