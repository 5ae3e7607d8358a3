"""Faults on demand: the database goes away and comes back, under the real engine."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.bot.conftest import clock, enrolled, stack  # noqa: F401  (fixtures used here)
from tests.conftest import USE_PG, pg_admin


@asynccontextmanager
async def database_down(engine: AsyncEngine, db_url: str) -> AsyncIterator[None]:
    """Take the database away from `engine` until the block ends, as a stopped server does.

    PostgreSQL: the database refuses new connections and every open one is terminated.
    SQLite: every pooled connection is closed and a folder stands where the file was, so
    opening it fails; the file is put back afterwards.
    """
    if USE_PG:
        name = make_url(db_url).database
        await pg_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await pg_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
        try:
            yield
        finally:
            await pg_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        return
    path = Path(str(make_url(db_url).database))
    await engine.dispose()
    moved = _hide(path)
    try:
        yield
    finally:
        _restore(path, moved)


def _hide(path: Path) -> list[Path]:
    """Move the SQLite file (and its WAL) aside and put a folder in its place."""
    away = path.with_name(path.name + ".away")
    away.mkdir()
    moved = [f for f in path.parent.glob(path.name + "*") if f.is_file()]
    for f in moved:
        shutil.move(f, away / f.name)
    path.mkdir()
    return moved


def _restore(path: Path, moved: list[Path]) -> None:
    away = path.with_name(path.name + ".away")
    path.rmdir()
    for f in moved:
        shutil.move(away / f.name, f)
    away.rmdir()
