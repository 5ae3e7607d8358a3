"""Shared fixtures: a fresh database per test (SQLite by default, PostgreSQL by DATABASE_URL)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import create_all, drop_all, make_engine, session_factory
from storage.migrate import alembic_config

PG_URL = os.environ.get("DATABASE_URL", "")
USE_PG = PG_URL.startswith(("postgres://", "postgresql"))
_pg_schema_ready = False


async def pg_admin(sql: str) -> None:
    """Run one statement on the PostgreSQL server from outside any test's database."""
    eng = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with eng.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await eng.dispose()


@asynccontextmanager
async def blank_database(tmp_path: Path, tag: str) -> AsyncIterator[AsyncEngine]:
    """Yield an engine on a database with no tables at all (its own, on PostgreSQL too)."""
    if not USE_PG:
        eng = make_engine(f"sqlite:///{tmp_path / f'{tag}.db'}")
        try:
            yield eng
        finally:
            await eng.dispose()
        return
    name = f"tc_{tag}_{uuid.uuid4().hex[:8]}"
    await pg_admin(f'CREATE DATABASE "{name}"')
    eng = make_engine(make_url(PG_URL).set(database=name).render_as_string(hide_password=False))
    try:
        yield eng
    finally:
        await eng.dispose()
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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


@pytest.fixture(autouse=True)
def _fresh_log_secrets() -> Iterator[None]:
    """Forget the secrets a test's service registered for redaction: each test sees its own."""
    from bot import logs

    kept = list(logs._secrets)
    yield
    logs._secrets[:] = kept


def _stamp_head(conn: Connection) -> None:
    command.stamp(alembic_config(conn), "head")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build one SQLite file with the model schema, stamped at the newest migration."""
    path = tmp_path_factory.mktemp("template") / "template.db"

    async def build() -> None:
        eng = make_engine(f"sqlite:///{path}")
        await create_all(eng)
        async with eng.begin() as conn:
            await conn.run_sync(_stamp_head)
        await eng.dispose()

    asyncio.run(build())
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """Give this test run its own PostgreSQL database beside the one named, so runs never meet."""
    name = f"{make_url(PG_URL).database}_run_{os.getpid()}"
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)

    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    yield url
    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _fresh_pg(url: str) -> None:
    """Build the schema once per run, then empty every table (PostgreSQL)."""
    global _pg_schema_ready
    eng = make_engine(url)
    try:
        if not _pg_schema_ready:
            await drop_all(eng)
            async with eng.begin() as conn:
                await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
            await create_all(eng)
            async with eng.begin() as conn:
                await conn.run_sync(_stamp_head)
            _pg_schema_ready = True
        names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        async with eng.begin() as conn:
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await eng.dispose()


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return the URL of this test's database, fresh and empty of rows: a copy of the
    template on SQLite, the run's database with every table emptied on PostgreSQL."""
    if USE_PG:
        url = str(request.getfixturevalue("pg_url"))
        asyncio.run(_fresh_pg(url))
        return url
    sqlite_template: Path = request.getfixturevalue("sqlite_template")
    target = tmp_path / "test.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """Yield an engine on a fresh, empty schema (db_url made it so)."""
    eng = make_engine(db_url)
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
