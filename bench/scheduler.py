"""Bench: 100,000 pending messages, 1,000 of them due within one minute: how late each goes.

Run: .venv/bin/python -m bench.scheduler [--pending 100000] [--due 1000] [--window 60] [--json]
A real DispatchLoop runs on the real clock, mapped so that the start of the run is START:
it sleeps until the earliest queued row falls due, sends, and sleeps again. The limiter is
the real one at Telegram's limits (30 a second, one a second per chat). Lateness is send
time minus due time per message; nothing may go early. The run lasts `--window` seconds
plus a little (after the fill). With --json the last line is one JSON object.
BENCH_DATABASE_URL picks PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import col, select

from bench._fake import FakeProvider, report, scratch_engine, stop_loop
from scheduler.clock import SimClock
from scheduler.ratelimit import RateLimiter
from scheduler.service import DispatchLoop
from storage.db import session_scope
from storage.models import OutboundMessage, Priority
from storage.outbox_q import enqueue_many

START = datetime(2025, 6, 3, 11, 0, tzinfo=UTC)  # noon in London
MARGIN = 8.0  # seconds after the window for the last messages to go


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 3) if ordered else 0.0


def _rows(pending: int, due: int, window: float) -> list[dict[str, Any]]:
    """Return `due` rows falling due within the window and the rest days later."""
    rng = random.Random(3)
    rows = []
    for i in range(pending):
        if i < due:
            when = START + timedelta(seconds=rng.uniform(0.5, window))
        else:
            when = START + timedelta(days=1, seconds=rng.uniform(0, 6 * 86400))
        rows.append({"channel": "telegram", "address": str(10_000 + i), "body": "Reminder",
                     "dedupe_key": f"b:{i}", "kind": "reminder",
                     "priority": Priority.SCHEDULED, "due_at": when})
    return rows


async def run(pending: int, due: int, window: float) -> dict[str, Any]:
    """Fill the outbox, run the loop through the window, return lateness figures."""
    engine, url = await scratch_engine()
    try:
        rows = _rows(pending, due, window)
        t = time.perf_counter()
        async with session_scope(engine) as session:
            for start in range(0, len(rows), 20_000):
                await enqueue_many(session, rows[start:start + 20_000],
                                   now=START - timedelta(hours=1))
        fill = time.perf_counter() - t
        # The provider's clock counts real seconds from here: its 0.0 is START.
        elapsed = SimClock(count_real_time=True)
        provider = FakeProvider("telegram", elapsed)
        loop = DispatchLoop(engine, {"telegram": provider}, limiter=RateLimiter(),
                            clock=lambda: START + timedelta(seconds=elapsed.monotonic()))
        await loop.start()
        try:
            while elapsed.monotonic() < window + MARGIN:
                if len(provider.sends) >= due:
                    break
                await asyncio.sleep(0.1)
            wall = elapsed.monotonic()
        finally:
            await stop_loop(loop)
        sent_at = {m: at for at, m, _ in sorted(provider.sends, reverse=True)}  # first try
        async with session_scope(engine) as session:
            found = await session.exec(select(OutboundMessage.id, OutboundMessage.due_at)
                                       .where(col(OutboundMessage.id).in_(list(sent_at))))
            due_of = dict(found.all())
        late = [(START + timedelta(seconds=at) - due_of[m]).total_seconds()
                for m, at in sent_at.items()]
        return {
            "database": url.split("://")[0], "pending": pending, "due_in_window": due,
            "window_s": window, "fill_seconds": round(fill, 1), "sent": len(late),
            "sent_not_due": sum(1 for m in sent_at if due_of[m] > START + timedelta(
                seconds=window + MARGIN)),
            "loop_passes": loop.passes, "run_seconds": round(wall, 1),
            "lateness_p50_s": _pct(late, 0.50), "lateness_p99_s": _pct(late, 0.99),
            "lateness_max_s": round(max(late, default=0.0), 3),
            "sent_early": sum(1 for x in late if x < -1e-6),
        }
    finally:
        await engine.dispose()


def main() -> None:
    """Run the bench and print figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--window", type=float, default=60.0,
                        help="seconds over which the due messages fall due")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    figures = asyncio.run(run(args.pending, args.due, args.window))
    report(figures, as_json=args.json)


if __name__ == "__main__":
    main()
