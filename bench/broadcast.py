"""Bench: a 10,000-recipient broadcast through the real dispatcher to a rate-limited fake.

Run: .venv/bin/python -m bench.broadcast [--recipients 10000] [--mps 50] [--json]
Time is simulated for the rate limiter (no real waiting); the database work is real. It runs
twice: with no provider errors, and with 5% transient errors (retried). With --json the last
line is one JSON object, {"errors_0pct": {...}, "errors_5pct": {...}}.
BENCH_DATABASE_URL picks PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, func, select

from bench._fake import FakeProvider, over_limit, scratch_engine
from scheduler.broadcast import Audience, delivery_report, send_broadcast
from scheduler.clock import SimClock
from scheduler.dispatcher import DispatchPolicy, dispatch
from scheduler.ratelimit import ChannelLimit, RateLimiter
from storage.db import session_scope
from storage.models import ChannelIdentity, OutboundMessage, OutboxStatus, Participant
from storage.regions_q import create_region

NOON = datetime(2025, 6, 3, 11, 0, tzinfo=UTC)


async def _people(engine: AsyncEngine, n: int) -> None:
    async with session_scope(engine) as session:
        conn = await session.connection()
        await conn.execute(insert(Participant), [
            {"display_name": f"P{i}", "release_date": date(2025, 1, 1), "status": "active",
             "preferred_channel": "sms", "region": "Bench", "consent_at": NOON,
             "release_postcode": "ST3 2QH",
             "phone": f"+4477{i:08d}", "timezone": "Europe/London", "quiet_start_hour": 21,
             "quiet_end_hour": 8, "reminder_offsets": "[1440, 60]", "sessions_count": 0,
             "hours_total": 0.0, "staff_review_consent": False, "created_at": NOON,
             "updated_at": NOON} for i in range(n)])
        await conn.execute(insert(ChannelIdentity), [
            {"participant_id": i + 1, "channel": "sms", "address": f"+4477{i:08d}",
             "status": "active", "linked_at": NOON, "updated_at": NOON} for i in range(n)])


async def _drain(engine: AsyncEngine, provider: FakeProvider, limiter: RateLimiter,
                 clock: SimClock) -> int:
    """Sweep every 5 simulated seconds until nothing is queued; return sweeps."""
    sweeps = 0
    policy = DispatchPolicy(backoff_base=5.0)
    while True:
        now = NOON + timedelta(seconds=clock.monotonic())
        await dispatch(engine, {"sms": provider}, now=now, limiter=limiter, policy=policy)
        sweeps += 1
        async with session_scope(engine) as session:
            left = (await session.exec(select(func.count()).select_from(OutboundMessage).where(
                col(OutboundMessage.status).in_([OutboxStatus.QUEUED, OutboxStatus.SENDING]))
            )).one()
        if not left:
            return sweeps
        clock.advance(5)


async def run(recipients: int, mps: float, error_rate: float) -> dict[str, object]:
    """Broadcast once; return the figures."""
    engine, url = await scratch_engine()
    try:
        await _people(engine, recipients)
        t = time.perf_counter()
        async with session_scope(engine) as session:  # a region by postcode area
            await create_region(session, name="Bench", now=NOON, postcodes=["ST"])
        out = await send_broadcast(engine, audience=Audience(region="Bench"),
                                   text="The Tuesday meeting has moved to 7pm. Same place.",
                                   created_by="bench", now=NOON)
        enqueue_s = time.perf_counter() - t
        clock = SimClock()
        limiter = RateLimiter(limits={"sms": ChannelLimit(per_second=mps, count_segments=True)},
                              clock=clock)
        provider = FakeProvider("sms", clock, error_rate=error_rate)
        t = time.perf_counter()
        sweeps = await _drain(engine, provider, limiter, clock)
        wall = time.perf_counter() - t
        report = await delivery_report(engine, int(out["broadcast_id"]))
        ok = list(provider.sends)
        span = (ok[-1][0] - ok[0][0]) or 1.0
        achieved = sum(s[2] for s in ok) / span
        async with session_scope(engine) as session:
            sent_ids = set((await session.exec(select(OutboundMessage.id).where(
                col(OutboundMessage.status).in_([OutboxStatus.SENT, OutboxStatus.DELIVERED]))
            )).all())
        return {
            "database": url.split("://")[0], "recipients": recipients, "queued": out["queued"],
            "enqueue_seconds": round(enqueue_s, 2), "mps_limit": mps,
            "achieved_rate_fraction": round(achieved / mps, 3) if not error_rate else None,
            "sends_over_limit": over_limit(ok, mps), "injected_errors": provider.failures,
            "lost": recipients - len(sent_ids),
            "duplicated": sum(1 for n in provider.accepted.values() if n > 1),
            "simulated_seconds": round(clock.monotonic(), 1), "sweeps": sweeps,
            "wall_seconds_dispatch": round(wall, 1), "report": report["by_status"],
        }
    finally:
        await engine.dispose()


def main() -> None:
    """Run the bench and print figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--mps", type=float, default=50.0)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    runs = {f"errors_{rate:.0%}".replace("%", "pct"): asyncio.run(
        run(args.recipients, args.mps, rate)) for rate in (0.0, 0.05)}
    if args.json:
        print(json.dumps(runs))
        return
    for name, figures in runs.items():
        print(f"{name}:")
        for key, value in figures.items():
            print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
