"""The database goes away mid-run and comes back: the dispatch loop and the worker's jobs
carry on by themselves, and a Telegram update that could not be written down gets an answer
that makes Telegram send it again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.texts import t
from scheduler.ratelimit import ChannelLimit, RateLimiter
from scheduler.service import DispatchLoop
from scheduler.worker import build_scheduler
from storage.db import make_engine
from storage.models import MessageKind, OutboxStatus
from tests.bot.conftest import Enrolled, Stack, db_counts
from tests.faults.conftest import database_down
from tests.scheduler.conftest import FakeProvider, night_owl, put, rows

OWL = "+447700988888"


async def _until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait (on the real clock the loop runs on) until `check` holds."""
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def _idle(loop: DispatchLoop) -> None:
    """Wait until the loop's lanes have gone quiet (asleep until the next due time)."""
    seen = -1
    while seen != loop.passes:
        seen = loop.passes
        await asyncio.sleep(0.1)


async def test_dispatch_loop_carries_on_after_the_database_comes_back(
    engine: AsyncEngine, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    owl = await night_owl(engine, OWL)
    provider = FakeProvider("sms")
    loop = DispatchLoop(engine, {"sms": provider},
                        limiter=RateLimiter(limits={"sms": ChannelLimit(per_second=100.0)}),
                        safety=30.0, retry_first=0.05, retry_longest=0.2)
    await loop.start()
    with caplog.at_level(logging.INFO, logger="scheduler.service"):
        try:
            # Due in a moment: it falls due while the database is away.
            await put(engine, "after", now=datetime.now(UTC), participant_id=owl,
                      address=OWL, kind=MessageKind.REMINDER,
                      due_at=datetime.now(UTC) + timedelta(seconds=1))
            await _idle(loop)
            async with database_down(engine, db_url):
                await _until(lambda: loop.failed_passes >= 3)  # backing off, still alive
            # Nobody wakes it: it tries again by itself and sends what fell due.
            await _until(lambda: provider.bodies() == ["after"])
        finally:
            await loop.stop(grace=5.0)
    check = make_engine(db_url)
    try:
        assert [r.status for r in await rows(check)] == [OutboxStatus.SENT]
    finally:
        await check.dispose()
    lines = [r.getMessage() for r in caplog.records]
    assert any(" pass database unreachable (" in line for line in lines), lines
    assert any("working again after" in line for line in lines), lines
    assert not any(r.exc_info for r in caplog.records)  # one line each, no trace


async def test_a_worker_job_outlives_the_outage_in_one_line(
    engine: AsyncEngine, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler = build_scheduler(engine, {"sms": FakeProvider("sms")})
    planning = scheduler.get_job("plan").func
    with caplog.at_level(logging.INFO, logger="scheduler.worker"):
        async with database_down(engine, db_url):
            await planning()  # does not raise: the scheduler would log a trace
    [line] = [r for r in caplog.records if r.name == "scheduler.worker"]
    assert line.getMessage().startswith("plan job: database unreachable (")
    assert line.exc_info is None
    await planning()  # and it works again at its next run


async def test_telegram_update_during_an_outage_is_sent_again_by_telegram(
    stack: Stack, enrolled: Enrolled, db_url: str
) -> None:
    update = stack.user.text(f"/start {enrolled.code}")
    async with database_down(stack.engine, db_url):
        response = await stack.telegram_update(update)
    assert response.status_code >= 500  # Telegram retries anything but 2xx; 5xx says why
    assert stack.telegram.called("sendMessage") == []
    other = make_engine(db_url)
    try:
        assert (await db_counts(other))["InboundMessage"] == 0
    finally:
        await other.dispose()
    # Telegram's retry, once the database is back, is handled once.
    assert (await stack.telegram_update(update)).status_code == 200
    assert (await stack.telegram_update(update)).status_code == 200
    assert stack.telegram.seen(stack.user.chat_id)[0] == t("welcome.linked", name="Sam")
    assert len(stack.telegram.seen(stack.user.chat_id)) == 2
