"""SQLite writers in one process take turns in asyncio (storage.sqlite_turns)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage.db import make_engine
from storage.sqlite_turns import Turn, is_write, take_turns, urgent_writes

pytestmark = pytest.mark.skipif(bool(os.environ.get("DATABASE_URL", "").startswith("postgres")),
                                reason="SQLite's writer lock")
WRITERS = 40


def _short_busy_timeout(engine: AsyncEngine) -> None:
    """Make SQLite give up on its file lock after 20 ms, as it would under a long burst."""
    def pragma(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=20")
        cursor.close()

    event.listen(engine.sync_engine, "connect", pragma)


async def _burst(engine: AsyncEngine) -> list[BaseException | None]:
    """Run WRITERS transactions at once, each writing, thinking a moment, then committing."""
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS tally (n INTEGER)"))

    async def writer(n: int) -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT count(*) FROM tally"))  # a read first, as handlers do
            await conn.execute(text("INSERT INTO tally (n) VALUES (:n)"), {"n": n})
            await asyncio.sleep(0.005)  # the handler's own work, the turn held
            await conn.commit()

    return list(await asyncio.gather(*(writer(n) for n in range(WRITERS)),
                                     return_exceptions=True))


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM tally"))).scalar_one())


async def test_a_burst_of_writers_all_commit_in_turn(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'turns.db'}", pool_size=WRITERS)
    _short_busy_timeout(engine)
    try:
        results = await _burst(engine)
        assert [r for r in results if r is not None] == []
        assert await _count(engine) == WRITERS
    finally:
        await engine.dispose()


async def test_without_turns_the_same_burst_meets_a_locked_database(tmp_path: Path) -> None:
    """The control: the file lock alone fails some writers (so the test above can fail)."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'bare.db'}",
                                 pool_size=WRITERS)
    _short_busy_timeout(engine)
    try:
        results = await _burst(engine)
        locked = [r for r in results if isinstance(r, OperationalError)]
        assert locked, "expected some 'database is locked' without turns"
    finally:
        await engine.dispose()


async def test_a_writer_that_never_gives_its_turn_back_times_the_next_one_out(
        tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'stuck.db'}")
    take_turns(engine, timeout=0.2)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER)"))
    try:
        async with engine.connect() as holder:
            await holder.execute(text("INSERT INTO t (n) VALUES (1)"))
            async with engine.connect() as other:
                with pytest.raises(OperationalError, match="locked"):
                    await other.execute(text("INSERT INTO t (n) VALUES (2)"))
        async with engine.begin() as conn:  # the turn came back with the connection
            await conn.execute(text("INSERT INTO t (n) VALUES (3)"))
    finally:
        await engine.dispose()


def test_only_row_writes_take_a_turn() -> None:
    assert is_write("  insert into t values (1)")
    assert is_write("UPDATE t SET n = 1")
    assert is_write("DELETE FROM t")
    assert not is_write("SELECT * FROM t")
    assert not is_write("CREATE TABLE t (n INTEGER)")
    assert not is_write("PRAGMA busy_timeout=10")


async def _until_waiting(turn: Turn, n: int) -> None:
    for _ in range(5000):
        if turn.waiting() >= n:
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"{n} writers never queued")


async def test_an_urgent_writer_goes_before_waiting_ordinary_ones(tmp_path: Path) -> None:
    """Ten webhooks wait for the turn; the dispatcher's write (urgent) is served next."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'urgent.db'}",
                                 pool_size=WRITERS)
    turns = take_turns(engine)
    order: list[str] = []
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE tally (n TEXT)"))
        holding = asyncio.Event()
        go_on = asyncio.Event()

        async def first() -> None:
            async with engine.connect() as conn:
                await conn.execute(text("INSERT INTO tally (n) VALUES ('first')"))
                holding.set()
                await go_on.wait()
                await conn.commit()

        async def writer(name: str) -> None:
            async with engine.connect() as conn:
                await conn.execute(text("INSERT INTO tally (n) VALUES (:n)"), {"n": name})
                order.append(name)
                await conn.commit()

        async def urgent() -> None:
            with urgent_writes():
                await writer("urgent")

        holder = asyncio.create_task(first())
        await holding.wait()
        turn = turns.lock()
        assert turn is not None
        waiting = []
        for n in range(10):  # one at a time, so they queue in this order
            waiting.append(asyncio.create_task(writer(f"webhook {n}")))
            await _until_waiting(turn, n + 1)
        waiting.append(asyncio.create_task(urgent()))
        await _until_waiting(turn, 11)
        go_on.set()
        await asyncio.gather(holder, *waiting)
        assert order[0] == "urgent", order
        assert order[1:] == [f"webhook {n}" for n in range(10)], "the rest in arrival order"
    finally:
        await engine.dispose()


async def test_a_waiter_cancelled_as_it_is_handed_the_turn_passes_it_on() -> None:
    turn = Turn()
    await turn.acquire()
    late = asyncio.create_task(turn.acquire())
    nxt = asyncio.create_task(turn.acquire(urgent=False))
    await asyncio.sleep(0)
    turn.release()  # handed to `late`...
    late.cancel()  # ...which is cancelled before it runs
    await asyncio.gather(late, return_exceptions=True)
    await asyncio.wait_for(nxt, 1.0)
    assert turn.locked()
    turn.release()
    assert not turn.locked()
