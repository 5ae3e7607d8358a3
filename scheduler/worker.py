"""The APScheduler worker: it owns the clock; the database owns the work."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
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
from storage.outage import DATABASE_DOWN
from storage.scheduling import count_due
from storage.simulator_q import purge_idle_simulated

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 5
PLAN_SECONDS = 300
FEEDS_AT = {"hour": 3, "minute": 20}  # daily, Europe/London: before anyone plans their day
JOB_TASK = "worker-job:"  # the name of a running job's task starts with this


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


def outlives_outages(name: str, job: Callable[[], Awaitable[None]]
                     ) -> Callable[[], Awaitable[None]]:
    """Wrap a job so a database outage costs one log line, not a trace; the job simply runs
    again at its next time (the rows say what is due, so nothing is lost meanwhile)."""

    async def run() -> None:
        task = asyncio.current_task()
        if task is not None:
            task.set_name(JOB_TASK + name)  # so stop_scheduler can wait for it
        try:
            await job()
        except DATABASE_DOWN as exc:
            logger.error("%s job: database unreachable (%s); trying again at its next run",
                         name, type(exc).__name__)

    run.__name__ = run.__qualname__ = name
    return run


def _add(scheduler: AsyncIOScheduler, name: str, job: Callable[[], Awaitable[None]],
         trigger: str, **options: Any) -> None:
    """Add a job that outlives database outages, runs once however late it is
    (coalesce, misfire_grace_time=None) and never twice at once (max_instances=1)."""
    scheduler.add_job(outlives_outages(name, job), trigger, id=name, max_instances=1,
                      coalesce=True, misfire_grace_time=None, **options)


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
    _add(scheduler, "sweep", sweep, "interval", seconds=SWEEP_SECONDS)
    # Planning is idempotent (dedupe keys); first run at start so a restarted worker is current.
    _add(scheduler, "plan", planning, "interval", seconds=PLAN_SECONDS,
        next_run_time=datetime.now(UTC))

    async def retain() -> None:
        await run_retention(engine, senders, now=datetime.now(UTC), policy=retention)

    # Old bodies blanked and delivered texts redacted at the provider (scheduler.retention);
    # its own job, so a slow provider never holds up planning.
    _add(scheduler, "retention", retain, "interval", seconds=PLAN_SECONDS)

    async def feeds() -> None:
        await refresh_all(engine, now=datetime.now(UTC))

    # Feeds a coordinator gave an address for are fetched and imported once a day; each is
    # claimed first, so several workers never import one feed twice.
    _add(scheduler, "feeds", feeds, "cron", **FEEDS_AT, timezone="Europe/London")
    return scheduler


async def stop_scheduler(scheduler: AsyncIOScheduler, grace: float) -> None:
    """Start no more jobs, give the running ones up to `grace` seconds to end, then shut
    down (what is still running is cancelled; its rows say what is left to do)."""
    if scheduler.running:
        scheduler.pause()
    running = [t for t in asyncio.all_tasks() if t.get_name().startswith(JOB_TASK)]
    if running and grace > 0:
        _done, late = await asyncio.wait(running, timeout=grace)
        for task in late:
            logger.warning("%s job still running after %.0fs; stopping it",
                           task.get_name().removeprefix(JOB_TASK), grace)
    if scheduler.running:
        scheduler.shutdown(wait=False)
