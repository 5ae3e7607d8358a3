"""The APScheduler worker: it owns the clock; the database owns the work."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine

from scheduler.dispatcher import DispatchPolicy, dispatch
from scheduler.feed_refresh import refresh_all
from scheduler.planning import plan
from scheduler.ratelimit import RateLimiter
from scheduler.retention import RetentionPolicy, run_retention
from scheduler.sender import Sender
from scheduler.service import DispatchLoop
from storage.db import session_scope
from storage.erasure import forget_unlinked_in_batches
from storage.inbound_limits_q import forget_idle_senders
from storage.limits_q import forget_locks
from storage.scheduling import count_due
from storage.simulator_q import purge_idle_simulated

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 5
PLAN_SECONDS = 300
FEEDS_AT = {"hour": 3, "minute": 20}  # daily, Europe/London: before anyone plans their day


async def run_cycle(
    engine: AsyncEngine,
    senders: Mapping[str, Sender],
    *,
    now: datetime,
    dry_run: bool = False,
    limiter: RateLimiter | None = None,
    policy: DispatchPolicy | None = None,
    retention: RetentionPolicy | None = None,
) -> dict[str, Any]:
    """Plan, then send what is due as of `now`; dry_run plans in a rollback and sends nothing."""
    planned = await plan(engine, now=now, dry_run=dry_run)
    out: dict[str, Any] = {"now": now.isoformat(), "dry_run": dry_run, "planned": asdict(planned)}
    if not dry_run:
        out["forgotten"] = await housekeeping(engine, now=now)
        out["retention"] = asdict(await run_retention(engine, senders, now=now,
                                                      policy=retention))
    if dry_run:
        async with session_scope(engine) as session:
            out["due_now"] = await count_due(session, now=now)
        return out
    stats = await dispatch(engine, senders, now=now, limiter=limiter, policy=policy)
    out["dispatch"] = asdict(stats)
    return out


async def housekeeping(engine: AsyncEngine, *, now: datetime) -> int:
    """Forget what numbers that never linked sent us, after the retention period, locks
    and flood counters idle for an hour, and the staff simulator's throwaway people idle
    for an hour."""
    async with session_scope(engine) as session:
        await forget_locks(session, before=now - timedelta(hours=1))
        await forget_idle_senders(session, before=now - timedelta(hours=1))
        await purge_idle_simulated(session, now=now)
    return await forget_unlinked_in_batches(engine, now=now)


def build_scheduler(
    engine: AsyncEngine,
    senders: Mapping[str, Sender],
    *,
    limiter: RateLimiter | None = None,
    policy: DispatchPolicy | None = None,
    loop: DispatchLoop | None = None,
    retention: RetentionPolicy | None = None,
) -> AsyncIOScheduler:
    """Create the scheduler with its periodic jobs (not started).

    With a `loop` (the service), messages leave as they fall due and the sweep only nudges
    it, as a safety net; without one, the sweep dispatches.
    """
    scheduler = AsyncIOScheduler(timezone="UTC")

    async def sweep() -> None:
        if loop is not None:
            loop.notify()
            return
        await dispatch(engine, senders, now=datetime.now(UTC), limiter=limiter, policy=policy)

    async def planning() -> None:
        await plan(engine, now=datetime.now(UTC))
        await housekeeping(engine, now=datetime.now(UTC))
        if limiter is not None:
            await limiter.forget_idle()
        if loop is not None:
            loop.notify()

    # The rows say what is due, so a missed sweep or plan has nothing to catch up on: run it
    # once (coalesce) however late (misfire_grace_time=None), and never two at once
    # (max_instances=1) so a slow sweep under a rate limit is not joined by a second one.
    scheduler.add_job(sweep, "interval", seconds=SWEEP_SECONDS, id="sweep",
                      max_instances=1, coalesce=True, misfire_grace_time=None)
    # Planning is idempotent (dedupe keys); first run at start so a restarted worker is current.
    scheduler.add_job(planning, "interval", seconds=PLAN_SECONDS, id="plan",
                      max_instances=1, coalesce=True, misfire_grace_time=None,
                      next_run_time=datetime.now(UTC))

    async def retain() -> None:
        await run_retention(engine, senders, now=datetime.now(UTC), policy=retention)

    # Old bodies blanked and delivered texts redacted at the provider (scheduler.retention);
    # its own job, so a slow provider never holds up planning.
    scheduler.add_job(retain, "interval", seconds=PLAN_SECONDS, id="retention",
                      max_instances=1, coalesce=True, misfire_grace_time=None)

    async def feeds() -> None:
        await refresh_all(engine, now=datetime.now(UTC))

    # Feeds a coordinator gave an address for are fetched and imported once a day; each is
    # claimed first, so several workers never import one feed twice.
    scheduler.add_job(feeds, "cron", **FEEDS_AT, timezone="Europe/London", id="feeds",
                      max_instances=1, coalesce=True, misfire_grace_time=None)
    return scheduler
