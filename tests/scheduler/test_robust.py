"""A poison row fails alone, a claim takes its slice, lanes are visible, the loop wakes on time."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.web import create_app
from scheduler.clock import SimClock
from scheduler.dispatcher import dispatch
from scheduler.ratelimit import ChannelLimit, RateLimiter
from scheduler.sender import OutgoingMessage, SendResult
from scheduler.service import DispatchLoop
from storage import outbox_q as q
from storage.claims_q import Lane, claim_due
from storage.db import session_scope
from storage.models import MessageKind, OutboxStatus, Priority
from tests.bot.conftest import make_settings
from tests.scheduler.conftest import NOON, FakeProvider, night_owl, put, rows
from tests.scheduler.fake_provider import FakeProviderServer, HttpSender


class Poisoned(FakeProvider):
    """A provider whose sender blows up, unexpectedly, on one message."""

    async def send(self, message: OutgoingMessage) -> SendResult:
        if message.body == "poison":
            raise KeyError("chat_id")  # not a SendError: the sender did not expect it
        return await super().send(message)


@pytest.mark.parametrize("kind", [MessageKind.BROADCAST, MessageKind.REPLY])
async def test_a_poison_row_fails_alone_and_the_other_hundred_go_in_the_same_pass(
    engine: AsyncEngine, limiter: RateLimiter, kind: MessageKind
) -> None:
    await put(engine, "p", body="poison", address="+447700900999", kind=kind)
    for i in range(100):
        await put(engine, f"m{i}", address=f"+4477009{i:05d}")
    provider = Poisoned("sms")
    stats = await dispatch(engine, {"sms": provider}, now=NOON, limiter=limiter)
    assert stats.sent == 100
    poison = {r.dedupe_key: r for r in await rows(engine)}["p"]
    assert poison.attempts == 1 and poison.error is not None
    assert poison.error.startswith("unexpected KeyError")  # the type, never the text
    if kind == MessageKind.REPLY:  # a reply may be worth a second try, later
        assert poison.status == OutboxStatus.QUEUED and stats.retried == 1
        assert poison.due_at > NOON  # backed off, not retried in a hot loop
    else:  # it may have gone: bulk is never doubled
        assert poison.status == OutboxStatus.FAILED and stats.failed == 1


async def test_an_unexpected_error_is_settled_by_lookup_when_the_provider_has_it(
    engine: AsyncEngine, limiter: RateLimiter
) -> None:
    with FakeProviderServer() as fake:

        class AcceptsThenCrashes(HttpSender):
            async def send(self, message: OutgoingMessage) -> SendResult:
                await super().send(message)
                raise ValueError("201 with a body we cannot read")

        sender = AcceptsThenCrashes(fake.url)
        await put(engine, "bc", kind=MessageKind.BROADCAST)
        stats = await dispatch(engine, {"sms": sender}, now=NOON, limiter=limiter)
        await sender.client.aclose()
        assert fake.total() == 1 and stats.sent == 1
    [row] = await rows(engine)
    assert row.status == OutboxStatus.SENT and row.provider_id == f"SM{row.id}"


async def test_a_claim_takes_at_most_its_limit_on_a_table_without_statistics(
    engine: AsyncEngine,
) -> None:
    async with session_scope(engine) as session:
        await q.enqueue_many(session, [
            {"channel": "sms", "address": f"+4477009{i:05d}", "body": "b",
             "dedupe_key": f"bc:{i}", "kind": "broadcast", "priority": Priority.BULK}
            for i in range(2000)], now=NOON)
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:  # forget whatever the planner knew
            await conn.execute(text("DELETE FROM pg_statistic WHERE starelid = "
                                    "'outboundmessage'::regclass"))
    async with session_scope(engine) as session:
        claimed = await claim_due(session, now=NOON, token="w1", limit=200,
                                    lane=Lane.BULK)
    assert len(claimed) == 200
    assert sum(r.status == OutboxStatus.SENDING for r in await rows(engine)) == 200


async def test_metrics_show_depth_and_oldest_due_age_per_lane_and_channel(
    engine: AsyncEngine,
) -> None:
    await put(engine, "bc", now=NOON - timedelta(seconds=90))
    await put(engine, "later", now=NOON, due_at=NOON + timedelta(hours=1))
    await put(engine, "r", kind=MessageKind.REPLY, channel="telegram", address="42",
              now=NOON - timedelta(seconds=4))
    app = create_app(make_settings(), engine, clock=lambda: NOON)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                 base_url="http://t") as client:
        body = (await client.get("/metrics")).text
    assert 'throughcare_outbox_queued{channel="sms",lane="bulk"} 2' in body
    assert 'throughcare_outbox_due{channel="sms",lane="bulk"} 1' in body
    assert 'throughcare_outbox_oldest_due_age_seconds{channel="sms",lane="bulk"} 90.0' in body
    assert 'throughcare_outbox_oldest_due_age_seconds{channel="telegram",lane="urgent"} 4.0' \
        in body


async def test_the_loop_sends_a_message_when_it_falls_due_not_at_the_next_sweep(
    engine: AsyncEngine,
) -> None:
    owl = await night_owl(engine)  # on the real clock, whatever hour this runs at
    provider = FakeProvider("sms", clock=SimClock())
    sent_at: dict[int, float] = {}
    real_send = provider.send

    both = asyncio.Event()

    async def timed(message: OutgoingMessage) -> SendResult:
        sent_at[message.id] = time.monotonic()
        if len(sent_at) == 2:
            both.set()
        return await real_send(message)

    provider.send = timed  # type: ignore[method-assign]
    limiter = RateLimiter(limits={"sms": ChannelLimit(per_second=100.0)})
    loop = DispatchLoop(engine, {"sms": provider}, limiter=limiter, safety=30.0)
    await loop.start()
    try:
        await asyncio.sleep(0.2)  # the loop is asleep: nothing queued
        start = datetime.now(UTC)
        t0 = time.monotonic()
        for n, delay in enumerate((0.6, 1.2)):
            await put(engine, f"r{n}", kind=MessageKind.REMINDER, now=start, participant_id=owl,
                      due_at=start + timedelta(seconds=delay))
        await asyncio.wait_for(both.wait(), timeout=5)
    finally:
        await loop.stop()
    late = sorted(at - t0 for at in sent_at.values())
    assert len(late) == 2
    assert 0.55 <= late[0] <= 0.6 + 0.4 and 1.15 <= late[1] <= 1.2 + 0.4, late
