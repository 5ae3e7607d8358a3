"""Never block the door: planning many people leaves the database free for inbound SMS.

Twilio does not retry a failed SMS webhook, so an inbound message that meets a locked
database is lost. These run the real planner over a few hundred people with two chosen
meetings and two appointments each, and post signed Twilio webhooks through the real app
at the same time (bench/door.py does the same with 2,000 people).
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bench.door import NOW, LockWatch, open_door, populate, replies_to
from scheduler.planning import plan
from storage.db import session_scope
from storage.erasure import forget_unlinked_in_batches
from storage.models import InboundMessage
from storage.participants import record_inbound
from tests.conftest import USE_PG
from tests.scheduler.conftest import rows

PEOPLE = 300  # the old single-transaction pass held the lock for about 7 s with these
LONGEST_HOLD = 0.5  # seconds one planning transaction may hold the write lock
# The old pass held the lock for about a minute with 2,000 people against a 10 s busy
# timeout; with a few hundred people it holds it for seconds, so the wait is scaled down too.
BUSY_TIMEOUT_MS = 1000
sqlite_only = pytest.mark.skipif(USE_PG, reason="SQLite's file lock and busy timeout")


async def _shorten_busy_timeout(engine: AsyncEngine, ms: int) -> None:
    """Make every new SQLite connection give up on a locked database after `ms`."""
    if engine.dialect.name != "sqlite":
        return

    def pragma(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(ms)}")
        cursor.close()

    event.listen(engine.sync_engine, "connect", pragma)
    await engine.dispose()  # connections already pooled keep the old timeout


async def test_planning_holds_the_write_lock_briefly_and_a_rerun_writes_nothing(
    engine: AsyncEngine,
) -> None:
    await populate(engine, participants=PEOPLE, now=NOW)
    dry_watch = LockWatch(engine)
    dry = await plan(engine, now=NOW, dry_run=True)
    dry_watch.close()
    assert await rows(engine) == []  # the dry run left nothing behind
    watch = LockWatch(engine)
    first = await plan(engine, now=NOW)
    watch.close()
    assert first == dry and first.added > 8 * PEOPLE  # the dry run counted the same work
    assert len(await rows(engine)) == first.added
    assert watch.longest < LONGEST_HOLD, sorted(watch.holds)[-3:]
    assert len(watch.holds) > 1
    assert dry_watch.longest < LONGEST_HOLD
    again_watch = LockWatch(engine)
    again = await plan(engine, now=NOW)
    again_watch.close()
    assert (again.added, again.moved, again.cancelled, again.notified) == (0, 0, 0, 0)
    assert again_watch.holds == []  # nothing changed, so nothing was written


async def test_every_inbound_sms_during_planning_is_answered(engine: AsyncEngine) -> None:
    await _shorten_busy_timeout(engine, BUSY_TIMEOUT_MS)
    numbers = await populate(engine, participants=PEOPLE, now=NOW)
    door = open_door(engine)
    sent: list[str] = []
    try:
        planner = asyncio.create_task(plan(engine, now=NOW))
        posts = []
        for number in numbers:  # about 20 a second, each on its own, while planning runs
            if planner.done() and len(sent) >= 20:
                break
            sent.append(number)
            posts.append(asyncio.create_task(door.text(number, "MENU")))
            await asyncio.sleep(0.05)
        await asyncio.gather(*posts)
        stats = await planner
    finally:
        await door.aclose()
    assert stats.added > 8 * PEOPLE
    assert door.codes == [200] * len(sent)
    replied = await replies_to(engine, sent)
    assert [n for n in sent if not replied.get(n)] == []  # every message got its reply row


@sqlite_only
async def test_inbound_waits_out_a_locked_database(engine: AsyncEngine, db_url: str) -> None:
    await _shorten_busy_timeout(engine, 200)
    [number] = await populate(engine, participants=1, now=NOW)
    door = open_door(engine)
    other = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock ...
        post = asyncio.create_task(door.text(number, "MENU"))
        await asyncio.sleep(1.5)  # ... for longer than the busy timeout, several times over
        assert not post.done()
        other.execute("ROLLBACK")
        assert await post == 200
    finally:
        other.close()
        await door.aclose()
    assert (await replies_to(engine, [number])).get(number) == 1


async def test_housekeeping_forgets_in_short_transactions(engine: AsyncEngine) -> None:
    old = NOW - timedelta(days=40)
    async with session_scope(engine) as session:
        for n in range(45):
            await record_inbound(session, channel="sms", provider_id=f"SM{n}", body="hello",
                                 now=old, address=f"+4477009{n:05d}")
        await record_inbound(session, channel="sms", provider_id="SMnew", body="recent",
                             now=NOW, address="+447700900999")
    watch = LockWatch(engine)
    assert await forget_unlinked_in_batches(engine, now=NOW, batch=20) == 45
    watch.close()
    assert len(watch.holds) == 3  # 20 + 20 + 5
    async with session_scope(engine) as session:
        kept = (await session.exec(select(InboundMessage.body)
                                   .where(col(InboundMessage.body).is_not(None)))).all()
    assert kept == ["recent"]
