"""Wiring shared by the CLI and the web app: settings, engine, schema."""

from __future__ import annotations

import asyncio
import gc
import logging
import random
from collections.abc import Awaitable, Callable

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import PLACEHOLDER, Settings
from storage.db import make_engine
from storage.outage import DATABASE_DOWN, database_place, ping, why_down

logger = logging.getLogger(__name__)
DB_START_LONGEST = 30.0  # seconds: the longest pause between start-up tries
EXIT_DATABASE_UNREACHABLE = 3  # `run`, `web` and `worker` gave up waiting for the database


class DatabaseUnreachable(Exception):
    """The database did not answer within the start-up tries; the message is one line."""


def open_engine(settings: Settings) -> AsyncEngine:
    """Create the engine for the configured database, its pool sized by the settings."""
    return make_engine(settings.database_url, pool_size=settings.db_pool_size,
                       max_overflow=settings.db_pool_overflow)


def setup_logging(level: str = "INFO") -> None:
    """Configure logging: one redacting root handler, chatty libraries at WARNING."""
    from bot.logs import setup_logging as setup

    setup(level)


def protect_secrets(settings: Settings) -> None:
    """Redact the configured secrets from every log line from now on."""
    from bot.logs import add_secrets

    values = (settings.telegram_bot_token, settings.twilio_auth_token,
              settings.telegram_webhook_secret, settings.secret_key)
    add_secrets([*(v.get_secret_value() for v in values
                   if v is not None and v.get_secret_value() != PLACEHOLDER),
                 _database_password(settings)])


def _database_password(settings: Settings) -> str | None:
    try:
        return make_url(settings.database_url.strip()).password
    except ValueError:
        return None


async def prepare_database(engine: AsyncEngine) -> None:
    """Bring the schema up to date before a command uses it."""
    from storage.migrate import upgrade_to_head

    await upgrade_to_head(engine)


async def wait_for_database(
    engine: AsyncEngine,
    settings: Settings,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    jitter: Callable[[], float] = random.random,
) -> None:
    """Wait until the database answers: one log line a try, pauses doubling from
    DB_START_WAIT to 30 s (jittered), DatabaseUnreachable after DB_START_RETRIES more tries."""
    place = database_place(settings.database_url)
    tries = settings.db_start_retries + 1
    pause = settings.db_start_wait
    for n in range(1, tries + 1):
        try:
            await ping(engine)
        except DATABASE_DOWN as exc:
            reason = why_down(exc, password=_database_password(settings))
            if n == tries:
                raise DatabaseUnreachable(
                    f"database not reachable at {place} after {tries} "
                    f"{'try' if tries == 1 else 'tries'} ({reason}); "
                    "giving up: is it running, and is DATABASE_URL right?") from None
            wait = min(pause, DB_START_LONGEST) * (0.8 + 0.4 * jitter())
            logger.warning("database not reachable at %s (%s): retrying in %.1fs "
                           "(try %d of %d)", place, reason, wait, n + 1, tries)
            await sleep(wait)
            pause *= 2
            continue
        if n > 1:
            logger.info("database reachable at %s (try %d of %d)", place, n, tries)
        return


def settle_memory() -> None:
    """Move what start-up made (modules, caches, the app) out of the garbage collector's
    sight: a full collection under load then looks only at what came later (in the soak
    at most 15 ms; a full collection over start-up's objects took 120-150 ms)."""
    gc.collect()
    gc.freeze()
