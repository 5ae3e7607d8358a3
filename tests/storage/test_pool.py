"""The connection pool: sized by DB_POOL_SIZE, so a burst of work reuses connections.

Under the soak at 100 messages a second on PostgreSQL, the default pool (5 kept, 10 more in
a burst and closed again) opened 273 connections in 30 s, each a new server process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from bot.config import Settings
from bot.runtime import open_engine


async def burst(engine: Any, width: int) -> None:
    """Hold `width` connections at once, each having run a statement, then give them back."""
    ready, go = asyncio.Event(), asyncio.Event()
    holding = 0

    async def hold() -> None:
        nonlocal holding
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            holding += 1
            if holding == width:
                ready.set()
            await go.wait()

    tasks = [asyncio.create_task(hold()) for _ in range(width)]
    await asyncio.wait_for(ready.wait(), 10)
    go.set()
    await asyncio.gather(*tasks)


def counted(db_url: str, size: int, overflow: int) -> tuple[Any, list[int]]:
    """Return the service's engine with its pool sized so, and the list each new
    connection adds one to."""
    engine = open_engine(Settings(database_url=db_url, db_pool_size=size,
                                  db_pool_overflow=overflow))
    opened: list[int] = []
    event.listen(engine.sync_engine, "connect", lambda *_: opened.append(1))
    return engine, opened


async def test_bursts_within_the_pool_open_each_connection_once(db_url: str) -> None:
    engine, opened = counted(db_url, 12, 3)
    try:
        for _ in range(3):
            await burst(engine, 12)
        assert len(opened) == 12  # kept and reused; the library's default keeps only 5
    finally:
        await engine.dispose()


async def test_a_burst_beyond_the_pool_is_served_and_the_extra_closed(db_url: str) -> None:
    engine, opened = counted(db_url, 4, 4)
    try:
        await burst(engine, 8)
        await burst(engine, 8)
        assert len(opened) == 12  # 8, then the 4 overflow ones again
        assert engine.sync_engine.pool.checkedin() == 4  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


def test_the_default_pool_holds_a_soak_burst() -> None:
    settings = Settings(database_url="sqlite:///unused.db")
    assert (settings.db_pool_size, settings.db_pool_overflow) == (20, 10)


@pytest.mark.parametrize("size, overflow, said", [
    ("0", "10", "DB_POOL_SIZE: Input should be greater than or equal to 1"),
    ("many", "10", "DB_POOL_SIZE: Input should be a valid integer"),
    ("20", "-1", "DB_POOL_OVERFLOW: Input should be greater than or equal to 0"),
    ("20", "1e9", "DB_POOL_OVERFLOW: Input should be a valid integer"),
])
def test_a_wrong_pool_setting_is_one_line_and_exit_2(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, size: str, overflow: str,
        said: str) -> None:
    from tests.ops.conftest import throughcare

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("DB_POOL_SIZE", size)
    monkeypatch.setenv("DB_POOL_OVERFLOW", overflow)
    result = throughcare("db", "upgrade")
    assert result.exit_code == 2
    assert said in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output and not (tmp_path / "x.db").exists()
