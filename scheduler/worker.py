"""The APScheduler worker: it owns the clock; the database owns the work."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine

from scheduler.dispatcher import dispatch
from scheduler.sender import Sender

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 5


def build_scheduler(engine: AsyncEngine, senders: Mapping[str, Sender]) -> AsyncIOScheduler:
    """Create the scheduler with its periodic jobs (not started)."""
    scheduler = AsyncIOScheduler(timezone="UTC")

    async def sweep() -> None:
        await dispatch(engine, senders, now=datetime.now(UTC))

    # One sweep at a time; a late sweep is simply run once (the rows say what is due).
    scheduler.add_job(sweep, "interval", seconds=SWEEP_SECONDS, id="sweep",
                      max_instances=1, coalesce=True, misfire_grace_time=30)
    return scheduler
