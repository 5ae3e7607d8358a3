"""Schema upgrades with Alembic (revisions live in storage/migrations/versions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    """Return an Alembic config pointing at our migrations, bound to a connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Upgrade the database schema to the newest revision."""

    def run(conn: Connection) -> None:
        command.upgrade(alembic_config(conn), "head")

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def schema_drift(engine: AsyncEngine) -> list[Any]:
    """Return the differences between the migrated database and the models (empty is good)."""

    def diff(conn: Connection) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, SQLModel.metadata))

    async with engine.connect() as conn:
        return await conn.run_sync(diff)


async def new_revision(engine: AsyncEngine, message: str) -> None:
    """Write a new revision with the differences between head and the models."""

    def run(conn: Connection) -> None:
        command.revision(alembic_config(conn), message=message, autogenerate=True)

    await upgrade_to_head(engine)
    async with engine.begin() as conn:
        await conn.run_sync(run)
