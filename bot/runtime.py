"""Wiring shared by the CLI and the web app: settings, engine, schema."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import PLACEHOLDER, Settings
from storage.db import make_engine

logger = logging.getLogger(__name__)


def open_engine(settings: Settings) -> AsyncEngine:
    """Create the engine for the configured database."""
    return make_engine(settings.database_url)


def setup_logging(level: str = "INFO") -> None:
    """Configure logging: one redacting root handler, chatty libraries at WARNING."""
    from bot.logs import setup_logging as setup

    setup(level)


def protect_secrets(settings: Settings) -> None:
    """Redact the configured secrets from every log line from now on."""
    from bot.logs import add_secrets

    values = (settings.telegram_bot_token, settings.twilio_auth_token,
              settings.telegram_webhook_secret, settings.secret_key)
    add_secrets(v.get_secret_value() for v in values
                if v is not None and v.get_secret_value() != PLACEHOLDER)


async def prepare_database(engine: AsyncEngine) -> None:
    """Bring the schema up to date before a command uses it."""
    from storage.migrate import upgrade_to_head

    await upgrade_to_head(engine)
