"""SQLite statements make one trip to aiosqlite's thread (storage.sqlite_conn)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import make_engine


@pytest.fixture
async def lite(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A SQLite engine of our own (whatever database the suite runs on)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'trips.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count calls that go to an aiosqlite connection's thread."""
    calls: list[str] = []
    real = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(fn, "__name__", type(fn).__name__))
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return calls


async def test_a_select_and_an_insert_each_make_one_trip(lite: AsyncEngine,
                                                         trips: list[str]) -> None:
    async with lite.connect() as conn:
        await conn.execute(text("SELECT 1"))  # the connection's own setup trips first
        trips.clear()
        inserted = await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
        assert len(trips) == 1 and inserted.lastrowid == 1
        trips.clear()
        rows = (await conn.execute(text("SELECT id, name FROM t ORDER BY id"))).all()
        assert len(trips) == 1 and [tuple(r) for r in rows] == [(1, "a")]


async def test_many_rows_in_and_out(lite: AsyncEngine, trips: list[str]) -> None:
    async with lite.begin() as conn:
        trips.clear()
        await conn.execute(text("INSERT INTO t (name) VALUES (:n)"),
                           [{"n": f"p{i}"} for i in range(500)])
        assert len(trips) == 1
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
