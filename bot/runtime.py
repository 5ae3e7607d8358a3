"""Wiring shared by the CLI and the web app: settings, engine, schema."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from storage.db import make_engine

logger = logging.getLogger(__name__)


def open_engine(settings: Settings) -> AsyncEngine:
    """Create the engine for the configured database."""
    return make_engine(settings.database_url)


def setup_logging(level: str = "INFO") -> None:
    """Configure logging; keep httpx quiet because its INFO lines carry the bot token."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore", "telegram.ext", "apscheduler.executors.default",
                  "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def prepare_database(engine: AsyncEngine) -> None:
    """Bring the schema up to date before a command uses it."""
    from storage.migrate import upgrade_to_head

    await upgrade_to_head(engine)
