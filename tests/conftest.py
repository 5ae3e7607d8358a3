"""Shared fixtures: a fresh database per test (SQLite by default, PostgreSQL by DATABASE_URL)."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import create_all, drop_all, make_engine, session_factory

PG_URL = os.environ.get("DATABASE_URL", "")
USE_PG = PG_URL.startswith(("postgres://", "postgresql"))
_pg_schema_ready = False


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail loudly on any connection that is not to loopback."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and not str(host).startswith(("127.", "::1", "localhost")):
            raise RuntimeError(f"unplanned network call to {host!r}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Return the URL of this test's database."""
    if USE_PG:
        return PG_URL
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """Yield an engine on a fresh, empty schema."""
    global _pg_schema_ready
    eng = make_engine(db_url)
    if USE_PG:
        if not _pg_schema_ready:
            await drop_all(eng)
            async with eng.begin() as conn:
                await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
            await create_all(eng)
            _pg_schema_ready = True
        names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        async with eng.begin() as conn:
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        await create_all(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """Yield a session on the fresh database."""
    async with session_factory(engine)() as s:
        yield s


def requires_postgres() -> pytest.MarkDecorator:
    """Skip with a visible reason when no PostgreSQL URL is given."""
    return pytest.mark.skipif(not USE_PG, reason="needs PostgreSQL: set DATABASE_URL")
