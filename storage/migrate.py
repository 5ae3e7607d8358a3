"""Schema upgrades (Alembic migrations live in storage/migrations)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import create_all


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Upgrade the database schema to the newest revision."""
    # Replaced by Alembic once the first revision exists.
    await create_all(engine)
