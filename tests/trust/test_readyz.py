"""/healthz says the process serves, whatever the database; /readyz says it can work: the
database answers and its schema is at the newest migration, built by the migrations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.web import create_app
from storage.db import create_all, make_engine
from storage.migrate import alembic_config, upgrade_to_head
from storage.readiness import head_revisions
from tests.bot.conftest import make_settings
from tests.conftest import blank_database

READY = {"status": "ok", "database": "ok", "migrations": "current"}


@pytest.fixture
async def blank_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """Yield an engine on a database with no tables at all (its own, on PostgreSQL too)."""
    async with blank_database(tmp_path, "ready") as eng:
        yield eng


async def probe(engine: AsyncEngine, path: str) -> tuple[int, dict[str, Any]]:
    """GET a path from an app on this engine; return the status and the JSON."""
    app = create_app(make_settings(), engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                 base_url="http://t") as client:
        response = await client.get(path)
    return response.status_code, response.json()


async def stamp(engine: AsyncEngine, revision: str) -> None:
    """Record a revision in alembic_version without touching the tables."""
    def run(conn: Connection) -> None:
        command.stamp(alembic_config(conn), revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def test_ready_only_at_the_newest_migration(blank_engine: AsyncEngine) -> None:
    await upgrade_to_head(blank_engine)
    assert await probe(blank_engine, "/readyz") == (200, READY)

    (head,) = head_revisions()
    older = ScriptDirectory.from_config(alembic_config()).get_revision(head).down_revision
    assert isinstance(older, str)
    await stamp(blank_engine, older)
    assert await probe(blank_engine, "/readyz") == (
        503, {"status": "error", "database": "ok", "migrations": "behind"})

    async with blank_engine.begin() as conn:  # a newer release migrated it
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    assert await probe(blank_engine, "/readyz") == (
        503, {"status": "error", "database": "ok", "migrations": "ahead"})

    async with blank_engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert await probe(blank_engine, "/readyz") == (200, READY)


async def test_a_schema_built_without_migrations_is_not_ready(blank_engine: AsyncEngine) -> None:
    await create_all(blank_engine)  # every table, but no record of any migration
    assert await probe(blank_engine, "/readyz") == (
        503, {"status": "error", "database": "ok", "migrations": "missing"})
    assert (await probe(blank_engine, "/healthz"))[0] == 200


@pytest.mark.parametrize("url", [
    "postgresql://postgres@127.0.0.1:1/throughcare",  # nothing listens on port 1
    "sqlite:///{tmp}/no/such/folder/throughcare.db",  # SQLite cannot create the file
])
async def test_unreachable_database_not_ready_but_alive(url: str, tmp_path: Path) -> None:
    engine = make_engine(url.format(tmp=tmp_path))
    try:
        assert await probe(engine, "/readyz") == (
            503, {"status": "error", "database": "unreachable", "migrations": "unknown"})
        assert await probe(engine, "/healthz") == (200, {"status": "ok"})
    finally:
        await engine.dispose()


async def test_the_test_databases_are_ready(engine: AsyncEngine) -> None:
    # Every other test's database is built by create_all and stamped at the newest revision.
    assert await probe(engine, "/readyz") == (200, READY)
