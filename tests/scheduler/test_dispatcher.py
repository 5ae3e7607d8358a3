"""The dispatcher: order, limits, retry_after, permanent failures, opt-outs, recovery."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.render import sms_segments
from scheduler.clock import SimClock
from scheduler.dispatcher import UNKNOWN_OUTCOME, DispatchPolicy, dispatch
from scheduler.ratelimit import ChannelLimit, RateLimiter
from storage.db import session_scope
from storage.models import (
    ChannelIdentity,
    IdentityStatus,
    MessageKind,
    OutboundMessage,
    OutboxStatus,
    ParticipantStatus,
)
from tests.scheduler.conftest import (
    NOON,
    FakeProvider,
    add_person,
    permanent,
    put,
    rows,
    transient,
)


async def test_replies_and_crisis_go_before_bulk(
    engine: AsyncEngine, limiter: RateLimiter
) -> None:
    pid = await add_person(engine)
    for i in range(3):
        await put(engine, f"bc{i}", participant_id=pid)
    await put(engine, "reply", participant_id=pid, kind=MessageKind.REPLY)
    await put(engine, "crisis", participant_id=pid, kind=MessageKind.CRISIS, priority=0)
    provider = FakeProvider("sms")
    await dispatch(engine, {"sms": provider}, now=NOON, limiter=limiter)
    assert provider.bodies() == ["crisis", "reply", "bc0", "bc1", "bc2"]


def _max_in_window(times: list[float], costs: list[float]) -> float:
    worst = 0.0
    for i, start in enumerate(times):
        worst = max(worst, sum(c for t, c in zip(times[i:], costs[i:], strict=True)
                               if t < start + 1.0 - 1e-9))
    return worst


async def test_sms_rate_is_counted_in_segments_and_never_exceeded(engine: AsyncEngine) -> None:
    clock = SimClock()
    limiter = RateLimiter(limits={"sms": ChannelLimit(per_second=10, count_segments=True)},
                          clock=clock)
    for i in range(60):
        body = "x" * (200 if i % 3 == 0 else 50)  # every third message takes 2 segments
        await put(engine, f"m{i}", address=f"+4477009{i:05d}", body=body)
    provider = FakeProvider("sms", clock=clock)
    await dispatch(engine, {"sms": provider}, now=NOON, limiter=limiter)
    times = [at for at, _ in provider.calls]
    costs = [float(sms_segments(m.body)) for _, m in provider.calls]
    assert len(times) == 60
    assert _max_in_window(times, costs) <= 10
    assert sum(costs) / (times[-1] - times[0]) > 8  # and not far under the limit


async def test_telegram_one_a_second_per_chat_after_a_short_burst(engine: AsyncEngine) -> None:
    clock = SimClock()
    limiter = RateLimiter(clock=clock)
    for i in range(6):
        await put(engine, f"t{i}", channel="telegram", address="555", kind=MessageKind.REPLY)
    provider = FakeProvider("telegram", clock=clock)
    stats = await dispatch(engine, {"telegram": provider}, now=NOON, limiter=limiter)
    assert len(provider.calls) == 3 and stats.deferred == 3
    for second in (1, 2, 3):  # then one a second in that chat
        clock.advance(1)
        await dispatch(engine, {"telegram": provider}, now=NOON + timedelta(seconds=second),
                       limiter=limiter)
        assert len(provider.calls) == 3 + second


async def test_retry_after_is_honoured_for_the_whole_channel(
    engine: AsyncEngine, limiter: RateLimiter, clock: SimClock
) -> None:
    for i in range(3):
        await put(engine, f"m{i}", address=f"+44770090000{i}")
    answers = iter([transient("429", retry_after=30)])
    provider = FakeProvider("sms", clock=clock, fail=lambda m: next(answers, None))
    stats = await dispatch(engine, {"sms": provider}, now=NOON, limiter=limiter)
    assert stats.retried == 1 and len(provider.calls) == 1
    first = (await rows(engine))[0]
    assert first.due_at == NOON + timedelta(seconds=30) and first.attempts == 1
    clock.advance(30)
    await dispatch(engine, {"sms": provider}, now=NOON + timedelta(seconds=30), limiter=limiter)
    assert Counter(r.status for r in await rows(engine)) == {OutboxStatus.SENT: 3}


async def test_permanent_failure_is_recorded_on_identity(
    engine: AsyncEngine, limiter: RateLimiter
) -> None:
    pid = await add_person(engine, channel="telegram", phone="777")
    await put(engine, "a", participant_id=pid, channel="telegram", address="777")
    await put(engine, "b", participant_id=pid, channel="telegram", address="777")
    provider = FakeProvider("telegram", fail=lambda m: permanent("blocked"))
    await dispatch(engine, {"telegram": provider}, now=NOON, limiter=limiter)
    async with session_scope(engine) as session:
        identity = await session.get(ChannelIdentity, 1)
    assert identity is not None and identity.status == IdentityStatus.BLOCKED
    a, b = await rows(engine)
    assert a.status == b.status == OutboxStatus.FAILED
    assert len(provider.calls) == 1  # the second was not even tried
    assert b.error == "identity blocked"


async def test_opted_out_skipped_except_always(engine: AsyncEngine, limiter: RateLimiter) -> None:
    pid = await add_person(engine, status=ParticipantStatus.STOPPED)
    await put(engine, "reminder", participant_id=pid, kind=MessageKind.REMINDER)
    await put(engine, "stop-confirm", participant_id=pid, kind=MessageKind.REPLY,
              meta={"always": True})
    provider = FakeProvider("sms")
    await dispatch(engine, {"sms": provider}, now=NOON, limiter=limiter)
    assert provider.bodies() == ["stop-confirm"]
    assert (await rows(engine))[0].status == OutboxStatus.CANCELLED


async def test_past_not_after_expires(engine: AsyncEngine, limiter: RateLimiter) -> None:
    await put(engine, "late", not_after=NOON - timedelta(minutes=1),
              now=NOON - timedelta(hours=1))
    provider = FakeProvider("sms")
    stats = await dispatch(engine, {"sms": provider}, now=NOON, limiter=limiter)
    assert stats.expired == 1 and provider.calls == []


async def _orphan(engine: AsyncEngine, key: str, kind: MessageKind, *, inflight: bool) -> None:
    await put(engine, key, kind=kind, address=f"+4477{abs(hash(key)) % 10**7:07d}")
    async with session_scope(engine) as session:
        row = (await rows(engine))[-1]
        row = await session.get(OutboundMessage, row.id)
        assert row is not None
        row.status, row.claimed_at, row.claim_token = OutboxStatus.SENDING, NOON, "dead"
        row.inflight_at = NOON if inflight else None
        session.add(row)


async def test_dead_worker_rows_recovered_by_policy(
    engine: AsyncEngine, limiter: RateLimiter
) -> None:
    await _orphan(engine, "never-sent", MessageKind.BROADCAST, inflight=False)
    await _orphan(engine, "bulk-in-doubt", MessageKind.BROADCAST, inflight=True)
    await _orphan(engine, "reply-in-doubt", MessageKind.REPLY, inflight=True)
    provider = FakeProvider("sms")
    policy = DispatchPolicy(lease=timedelta(minutes=2))
    await dispatch(engine, {"sms": provider}, now=NOON + timedelta(minutes=1), limiter=limiter,
                   policy=policy)
    assert provider.calls == []  # the lease has not run out
    stats = await dispatch(engine, {"sms": provider}, now=NOON + timedelta(minutes=3),
                           limiter=limiter, policy=policy)
    assert stats.recovered == 3
    assert sorted(provider.bodies()) == ["never-sent", "reply-in-doubt"]  # at-least-once
    doubt = next(r for r in await rows(engine) if r.dedupe_key == "bulk-in-doubt")
    assert doubt.status == OutboxStatus.FAILED and doubt.error == UNKNOWN_OUTCOME
