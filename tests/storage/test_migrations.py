"""Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.migrate import alembic_config, schema_drift, upgrade_to_head
from tests.conftest import blank_database


@pytest.fixture
async def empty_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """Yield an engine on a database with no tables at all."""
    async with blank_database(tmp_path, "migrate") as eng:
        yield eng


async def test_upgrade_builds_the_model_schema(empty_engine: AsyncEngine) -> None:
    await upgrade_to_head(empty_engine)
    assert await schema_drift(empty_engine) == []


async def test_upgrade_twice_is_harmless(empty_engine: AsyncEngine) -> None:
    await upgrade_to_head(empty_engine)
    await upgrade_to_head(empty_engine)
    async with empty_engine.connect() as conn:
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    assert version is not None


async def test_staff_accounts_survive_0004_and_must_choose_a_new_password(
        empty_engine: AsyncEngine) -> None:
    def upgrade_to(conn: Connection, revision: str) -> None:
        command.upgrade(alembic_config(conn), revision)

    async with empty_engine.begin() as conn:
        await conn.run_sync(upgrade_to, "0003")
        await conn.execute(text(
            "INSERT INTO staffuser (username, display_name, role, password_hash, created_at) "
            "VALUES ('Ann@Prison.Example', 'Ann', 'champion', 'scrypt$00$00', "
            "'2026-11-01 09:00:00+00')"))
        await conn.run_sync(upgrade_to, "head")
        row = (await conn.execute(text(
            "SELECT email, must_change_password, failed_logins, session_epoch FROM staffuser"
        ))).one()
    assert tuple(row) == ("ann@prison.example", True, 0, 0)
    assert await schema_drift(empty_engine) == []
