"""The reply fast path: the web process sends its replies itself, and where a dispatch loop
shares the process (`throughcare run`) the two race for the rows: each goes exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.channels.inbox import ChannelRuntime, receive, send_replies
from bot.config import Settings
from handlers.types import Inbound
from scheduler.ratelimit import ChannelLimit, RateLimiter
from scheduler.service import DispatchLoop
from storage.db import session_scope
from storage.models import OutboundMessage, OutboxStatus
from tests.scheduler.conftest import FakeProvider, add_person

SAM = "+447700900123"


def _fast() -> RateLimiter:
    """Return a limiter that never holds a test's few replies back."""
    return RateLimiter(limits={"sms": ChannelLimit(per_second=1000.0)})


def _runtime(engine: AsyncEngine, provider: FakeProvider) -> ChannelRuntime:
    settings = Settings(_env_file=None, database_url="sqlite:///unused.db")  # type: ignore[call-arg]
    return ChannelRuntime(engine=engine, settings=settings, senders={"sms": provider},
                          limiter=_fast())


async def _text(runtime: ChannelRuntime, body: str, sid: str) -> list[str]:
    result = await receive(runtime, Inbound(channel="sms", address=SAM, text=body,
                                            received_at=datetime.now(UTC), provider_id=sid))
    return result.outbox_keys


async def _statuses(engine: AsyncEngine) -> list[OutboxStatus]:
    async with session_scope(engine) as session:
        return list((await session.exec(select(OutboundMessage.status))).all())


async def test_without_a_loop_the_webhook_sends_its_own_replies(engine: AsyncEngine) -> None:
    await add_person(engine, phone=SAM, release=datetime.now(UTC).date() - timedelta(days=2),
                     quiet_start_hour=0, quiet_end_hour=0)
    provider = FakeProvider("sms")
    runtime = _runtime(engine, provider)
    keys = await _text(runtime, "HELP", "SM" + "1" * 32)
    stats = await send_replies(runtime, keys)
    assert stats.attempts == len(keys) > 0
    assert len(provider.accepted) == len(keys)
    assert set(await _statuses(engine)) == {OutboxStatus.SENT}


async def test_with_a_loop_here_too_each_reply_goes_once(engine: AsyncEngine) -> None:
    await add_person(engine, phone=SAM, release=datetime.now(UTC).date() - timedelta(days=2),
                     quiet_start_hour=0, quiet_end_hour=0)
    provider = FakeProvider("sms")
    runtime = _runtime(engine, provider)
    loop = DispatchLoop(engine, {"sms": provider}, limiter=_fast(), safety=30.0)
    await loop.start()
    try:
        keys: list[str] = []
        for n, word in enumerate(("HELP", "MENU", "HELP", "MENU", "CHECKIN")):
            written = await _text(runtime, word, f"SM{n:032d}")
            keys += written
            await send_replies(runtime, written)  # the loop was woken by the same commit
        for _ in range(1500):
            if len(provider.accepted) >= len(keys):
                break
            await asyncio.sleep(0.01)
        async with session_scope(engine) as session:
            dump = [(r.dedupe_key, r.status, r.error, r.due_at, r.claim_token, r.inflight_at)
                    for r in (await session.exec(select(OutboundMessage))).all()]
        assert len(provider.accepted) == len(keys) > 0, [d for d in dump if d[1] != "sent"]
        assert len(provider.calls) == len(keys)  # claimed once: never sent twice
        assert set(await _statuses(engine)) == {OutboxStatus.SENT}
    finally:
        await loop.stop()
