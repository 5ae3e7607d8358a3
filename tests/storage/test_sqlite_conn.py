"""SQLite statements run on the event loop's thread; a busy file is waited for in asyncio
(storage.sqlite_conn)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

import storage.sqlite_conn
from storage.db import is_lock_error, make_engine


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "loop.db"


@pytest.fixture
async def lite(path: Path) -> AsyncIterator[AsyncEngine]:
    """A SQLite engine of our own (whatever database the suite runs on)."""
    engine = make_engine(f"sqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    yield engine
    await engine.dispose()


async def test_a_transaction_runs_without_giving_up_the_loop(lite: AsyncEngine) -> None:
    """From its first write to its commit, no other task runs: a writer never holds the
    file's lock (or the process's writer turn) while other tasks take their turns."""
    ran: list[str] = []
    async with lite.connect() as conn:
        await conn.execute(text("SELECT 1"))  # the connection's own set-up first
        asyncio.get_running_loop().call_soon(ran.append, "other task")
        await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
        rows = (await conn.execute(text("SELECT id, name FROM t ORDER BY id"))).all()
        await conn.commit()
        assert ran == [] and [tuple(r) for r in rows] == [(1, "a")]
    await asyncio.sleep(0)
    assert ran == ["other task"]


async def test_many_rows_in_and_out(lite: AsyncEngine) -> None:
    async with lite.begin() as conn:
        await conn.execute(text("INSERT INTO t (name) VALUES (:n)"),
                           [{"n": f"p{i}"} for i in range(500)])
    async with lite.connect() as conn:
        result = await conn.execute(text("SELECT name FROM t ORDER BY id"))
        assert [r[0] for r in result.fetchmany(3)] == ["p0", "p1", "p2"]
        assert len(result.fetchall()) == 497


async def test_an_error_is_raised_as_before_and_the_connection_goes_on(
    lite: AsyncEngine,
) -> None:
    async with lite.begin() as conn:
        await conn.execute(text("INSERT INTO t (name) VALUES ('same')"))
    async with lite.connect() as conn:
        with pytest.raises(IntegrityError):
            await conn.execute(text("INSERT INTO t (name) VALUES ('same')"))
        await conn.rollback()
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1


async def _ticks_while(work: asyncio.Task[None], every: float = 0.01) -> int:
    """Count how often another task got the loop while `work` ran."""
    ticks = 0
    while not work.done():
        await asyncio.sleep(every)
        ticks += 1
    return ticks


async def test_another_process_s_write_lock_is_waited_for_in_asyncio(
    lite: AsyncEngine, path: Path,
) -> None:
    other = sqlite3.connect(path, isolation_level=None)  # another process, as SQLite sees it
    other.execute("BEGIN IMMEDIATE")

    async def write() -> None:
        async with lite.begin() as conn:
            await conn.execute(text("INSERT INTO t (name) VALUES ('waited')"))

    started = time.monotonic()
    work = asyncio.create_task(write())
    asyncio.get_running_loop().call_later(0.5, other.execute, "ROLLBACK")
    ticks = await _ticks_while(work)
    await work
    other.close()
    waited = time.monotonic() - started
    assert 0.45 < waited < 3.0
    assert ticks > 10  # the loop went on serving others (a blocking wait gives about 1)
    async with lite.connect() as conn:
        names = (await conn.execute(text("SELECT name FROM t"))).scalars().all()
    assert names == ["waited"]


async def test_a_lock_held_too_long_is_database_is_locked(
    lite: AsyncEngine, path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(storage.sqlite_conn, "BUSY_SECONDS", 0.3)
    await lite.dispose()  # new connections take the shorter wait
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        async with lite.connect() as conn:
            started = time.monotonic()
            with pytest.raises(OperationalError) as raised:
                await conn.execute(text("INSERT INTO t (name) VALUES ('late')"))
            assert is_lock_error(raised.value)  # callers that retry a busy database do
            assert time.monotonic() - started < 1.0
            await conn.rollback()
            # Reads never wait for the writer (WAL).
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
    finally:
        other.execute("ROLLBACK")
        other.close()
