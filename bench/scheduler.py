"""Bench: 100,000 pending messages, 1,000 of them due within one minute: p99 lateness.

Run: .venv/bin/python -m bench.scheduler [--pending 100000] [--due 1000]
The worker sweeps every 5 simulated seconds; the clock also counts real database time, so
lateness includes the cost of finding due rows among many pending ones.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import UTC, datetime, timedelta

from bench._fake import FakeProvider, scratch_engine
from scheduler.clock import SimClock
from scheduler.dispatcher import dispatch
from scheduler.ratelimit import RateLimiter
from storage.db import session_scope
from storage.outbox_q import enqueue_many

START = datetime(2025, 6, 3, 11, 0, tzinfo=UTC)  # noon in London
SWEEP = 5.0


async def run(pending: int, due: int) -> dict[str, object]:
    """Fill the outbox, sweep for two minutes, return lateness figures."""
    engine, url = await scratch_engine()
    rng = random.Random(3)
    due_at: dict[str, datetime] = {}
    rows = []
    for i in range(pending):
        if i < due:
            when = START + timedelta(seconds=rng.uniform(0, 60))
        else:
            when = START + timedelta(days=1, seconds=rng.uniform(0, 6 * 86400))
        key = f"b:{i}"
        due_at[key] = when
        rows.append({"channel": "telegram", "address": str(10_000 + i), "body": "Reminder",
                     "dedupe_key": key, "kind": "reminder", "priority": 50, "due_at": when})
    try:
        t = time.perf_counter()
        async with session_scope(engine) as session:
            await enqueue_many(session, rows, now=START - timedelta(hours=1))
        fill = time.perf_counter() - t
        clock = SimClock(count_real_time=True)
        limiter = RateLimiter(clock=clock)
        provider = FakeProvider("telegram", clock)
        sweeps = 0
        while clock.monotonic() < 120:
            await dispatch(engine, {"telegram": provider}, now=START + timedelta(
                seconds=clock.monotonic()), limiter=limiter)
            sweeps += 1
            clock.advance(SWEEP)
        sent_at = {m: at for at, m, _ in provider.sends}
        ids = {i + 1: f"b:{i}" for i in range(due)}  # ids follow insertion order
        late = sorted((START + timedelta(seconds=sent_at[i]) - due_at[k]).total_seconds()
                      for i, k in ids.items() if i in sent_at)
        return {
            "database": url.split("://")[0], "pending": pending, "due_in_minute": due,
            "fill_seconds": round(fill, 1), "sent": len(late), "sweeps": sweeps,
            "sweep_interval_s": SWEEP,
            "lateness_p50_s": round(late[len(late) // 2], 2),
            "lateness_p99_s": round(late[int(len(late) * 0.99) - 1], 2),
            "lateness_max_s": round(late[-1], 2),
            "sent_early": sum(1 for x in late if x < -1e-6),
        }
    finally:
        await engine.dispose()


def main() -> None:
    """Run the bench and print figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1_000)
    args = parser.parse_args()
    for key, value in asyncio.run(run(args.pending, args.due)).items():
        print(f"{key}: {value}")  # noqa: T201


if __name__ == "__main__":
    main()
