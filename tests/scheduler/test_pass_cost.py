"""What a dispatch pass costs the database, and calls out sized to a channel's rate.

At 100 messages a second most passes send one reply, so a pass's fixed work is most of the
dispatcher's: each claim that finds nothing is a transaction of its own."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from scheduler.dispatcher import dispatch
from scheduler.ratelimit import ChannelLimit, RateLimiter
from scheduler.service import DispatchLoop, call_shares
from storage.claims_q import Lane, _claim_look, _claim_update, claim_due
from storage.db import session_scope
from storage.models import InboundMessage, MessageKind, OutboxStatus, Priority
from storage.models.messages import QUEUED_URGENT
from storage.outbox_q import earliest_due
from storage.upserts import insert_skipping
from tests.conftest import USE_PG
from tests.scheduler.conftest import NOON, FakeProvider, add_person, night_owl, put, rows

CLAIM = "SELECT outboundmessage.id, EXISTS"  # the look before a claim


def _claims(engine: AsyncEngine) -> list[str]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if " ".join(statement.split()).startswith(CLAIM):
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    return seen


async def test_a_pass_that_sends_one_reply_claims_once(
    engine: AsyncEngine, limiter: RateLimiter
) -> None:
    """Nothing was waiting behind the reply, so no second look once it has gone (a reply
    written meanwhile wakes the next pass). It was four looks, then two."""
    person = await add_person(engine)
    await put(engine, "r1", participant_id=person, kind=MessageKind.REPLY)
    claims = _claims(engine)
    sms = FakeProvider("sms")
    stats = await dispatch(engine, {"sms": sms}, now=NOON, limiter=limiter, lane=Lane.URGENT,
                           housekeeping=False)
    assert stats.sent == 1 and len(claims) == 1


async def test_a_reply_waiting_behind_another_is_looked_for_once_that_one_has_gone(
    engine: AsyncEngine, limiter: RateLimiter
) -> None:
    """One person's two replies, and another's one: the claim takes one row per address,
    sees the second waiting, and looks again when the first has gone."""
    person = await add_person(engine)
    await put(engine, "a1", participant_id=person, kind=MessageKind.REPLY)
    await put(engine, "b1", participant_id=person, kind=MessageKind.REPLY,
              address="+447700900222")
    await put(engine, "a2", participant_id=person, kind=MessageKind.REPLY)
    claims = _claims(engine)
    sms = FakeProvider("sms")
    stats = await dispatch(engine, {"sms": sms}, now=NOON, limiter=limiter, lane=Lane.URGENT,
                           housekeeping=False)
    assert stats.sent == 3 and sorted(sms.bodies()) == ["a1", "a2", "b1"]
    assert sms.bodies().index("a1") < sms.bodies().index("a2")
    assert 2 <= len(claims) <= 4


async def test_a_person_s_second_reply_still_goes_in_the_same_pass(
    engine: AsyncEngine, limiter: RateLimiter
) -> None:
    person = await add_person(engine)
    for n in range(3):  # one message a claim per person: each waits for the one before
        await put(engine, f"r{n}", participant_id=person, kind=MessageKind.REPLY)
    sms = FakeProvider("sms")
    stats = await dispatch(engine, {"sms": sms}, now=NOON, limiter=limiter, lane=Lane.URGENT,
                           housekeeping=False)
    assert stats.sent == 3 and sms.bodies() == ["r0", "r1", "r2"]
    assert {r.status for r in await rows(engine)} == {OutboxStatus.SENT}


async def test_a_claim_that_takes_rows_is_two_statements(engine: AsyncEngine) -> None:
    """The look, then the take, whose UPDATE returns the rows as it left them (a third
    statement read them back by id), most urgent first whatever order it returns them."""
    person = await add_person(engine)
    for n, priority in enumerate((Priority.REPLY, Priority.URGENT, Priority.REPLY)):
        await put(engine, f"r{n}", participant_id=person, kind=MessageKind.REPLY,
                  priority=priority, address=f"+44770090020{n}")
    seen: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_a: seen.append(statement))
    async with session_scope(engine) as session:
        taken = await claim_due(session, now=NOON, token="t1", limit=10, lane=Lane.URGENT)
        await session.commit()
    assert len(seen) == 2, seen
    assert [r.body for r in taken] == ["r1", "r0", "r2"]
    assert {(r.status, r.claim_token) for r in taken} == {(OutboxStatus.SENDING, "t1")}
    assert {(r.status, r.claim_token) for r in await rows(engine)} == \
        {(OutboxStatus.SENDING, "t1")}


def test_a_fast_channel_may_have_as_many_calls_out_as_its_rate_needs() -> None:
    limiter = RateLimiter(limits={"sms": ChannelLimit(per_second=1.0),
                                  "telegram": ChannelLimit(per_second=30.0),
                                  "whatsapp": ChannelLimit(per_second=100.0)})
    # Half a second a call: 100 a second needs 50 out at once; the floor is the policy's.
    assert call_shares(limiter, 8) == {"sms": 8, "telegram": 15, "whatsapp": 50}


def test_upserts_are_compiled_once() -> None:
    """SQLAlchemy never caches the dialects' own INSERT ... ON CONFLICT; ours are text
    clauses it does cache (a cache key), and one object per shape."""
    table: Any = InboundMessage.__table__  # type: ignore[attr-defined]
    assert insert(table).values(channel="sms")._generate_cache_key() is None
    built = insert_skipping(table, ("channel", "provider_id"), ("channel", "provider_id"))
    assert built._generate_cache_key() is not None
    assert insert_skipping(table, ("channel", "provider_id"), ("channel", "provider_id")) \
        is built


async def test_under_load_a_pass_lingers_so_replies_share_it(engine: AsyncEngine) -> None:
    """Idle, a reply goes at once; replies written just after a pass wait for the next,
    which begins `linger` after that one began, and go in it together."""
    owl = await night_owl(engine)  # on the real clock, whatever hour this runs at
    sms = FakeProvider("sms")
    limiter = RateLimiter(limits={"sms": ChannelLimit(per_second=1000.0)})
    loop = DispatchLoop(engine, {"sms": sms}, limiter=limiter, safety=30.0, linger=0.4)
    await loop.start()
    try:
        await asyncio.sleep(0.5)  # the loop's first pass is long over
        start, before = time.monotonic(), loop.passes
        await put(engine, "first", participant_id=owl, kind=MessageKind.REPLY)
        await _until(lambda: len(sms.calls) == 1)
        first = time.monotonic() - start
        await _until(lambda: loop.passes > before)  # that pass is over (else they join it)
        passes = loop.passes
        for n in range(4):  # four more at once, to four people, just after a pass began
            await put(engine, f"r{n}", participant_id=owl, kind=MessageKind.REPLY,
                      address=f"+44770090010{n}")
        await _until(lambda: len(sms.calls) == 5)
        together = time.monotonic() - start
    finally:
        await loop.stop()
    assert first < 0.3  # not held back: no pass had begun for a while
    assert loop.passes - passes <= 2 and 0.35 < together < 1.5
    assert {r.status for r in await rows(engine)} == {OutboxStatus.SENT}


async def _until(done: Any, limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while not done():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def sqlite_plan(engine: AsyncEngine, statement: Any, params: dict[str, Any]
                      ) -> list[str]:
    """Return SQLite's plan of a statement, a step a line, for these parameters."""
    compiled = statement.compile(dialect=engine.dialect)
    args = tuple(params.get(k, compiled.params.get(k)) for k in compiled.positiontup or ())
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        plan = await raw.driver_connection.execute(  # type: ignore[union-attr]
            f"EXPLAIN QUERY PLAN {compiled.string}", args)
        return [str(row[3]) for row in await plan.fetchall()]


@pytest.mark.skipif(USE_PG, reason="SQLite's own claim statement and planner")
async def test_the_sqlite_claim_looks_its_rows_up_by_id(engine: AsyncEngine) -> None:
    """Not by walking every queued row: the queue holds days of planned reminders (8 a
    person), and a claim that walked them grew with every person enrolled."""
    steps = await sqlite_plan(engine, _claim_update(Lane.URGENT, False),
                              {"now": NOON, "since": NOON, "limit": 50, "token": "t"})
    assert "PRIMARY KEY" in steps[0], steps


@pytest.mark.skipif(USE_PG, reason="SQLite's planner, which has no statistics")
async def test_the_claim_asks_what_waits_behind_a_row_within_its_address(
        engine: AsyncEngine) -> None:
    """Not by walking every due queued row for each candidate: behind a 5,000-person
    broadcast falling due, each urgent claim's look took 20 ms (on the event loop's thread),
    0.8 ms with the due time in the per-address index (migration 0012)."""
    steps = await sqlite_plan(engine, _claim_look(Lane.URGENT, False, False),
                              {"now": NOON, "since": NOON, "limit": 50})
    behind = [step for step in steps if step.startswith("SEARCH later")]
    assert behind and "ix_outbox_address_due (channel=? AND address=?" in behind[0], steps


async def test_the_urgent_lane_s_next_due_time_comes_from_its_own_index(
    engine: AsyncEngine
) -> None:
    """It walked every queued row (days of planned reminders, 8 a person) each time the
    lane went idle. It agrees with the lanes' own test, and the plan reads the index."""
    person = await add_person(engine)
    await put(engine, "reminder", participant_id=person, kind=MessageKind.REMINDER,
              now=NOON - timedelta(hours=2))
    await put(engine, "bulk", participant_id=person, now=NOON - timedelta(hours=3))
    async with session_scope(engine) as session:
        assert await earliest_due(session, lane=Lane.URGENT) is None
    await put(engine, "reply", participant_id=person, kind=MessageKind.REPLY, now=NOON)
    await put(engine, "crisis", participant_id=person, kind=MessageKind.REPLY,
              priority=Priority.URGENT, now=NOON + timedelta(minutes=1))
    asked: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_a: asked.append(statement))
    async with session_scope(engine) as session:
        assert await earliest_due(session, lane=Lane.URGENT) == NOON
        sql = asked[-1]
        assert await earliest_due(session, lane=Lane.BULK) == NOON - timedelta(hours=3)
        assert await earliest_due(session) == NOON - timedelta(hours=3)
    assert QUEUED_URGENT in sql
    async with engine.connect() as conn:
        if USE_PG:
            await conn.execute(text("SET enable_seqscan = off"))  # a tiny table otherwise
            plan = " ".join(r[0] for r in await conn.execute(text(f"EXPLAIN {sql}")))
        else:
            plan = " ".join(str(r[3]) for r in await conn.execute(
                text(f"EXPLAIN QUERY PLAN {sql}")))
    assert "ix_outbox_queued_urgent_due" in plan, plan
