"""Bench: nearest-meeting search at 100,000 meetings against a brute-force geodesic scan.

Run: .venv/bin/python -m bench.meeting_search [--meetings 100000] [--queries 1000] [--brute 5]
     [--json]
With --json the last line is one JSON object. BENCH_DATABASE_URL picks PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import UTC, datetime
from datetime import time as clock_time
from typing import Any

from geopy.distance import geodesic  # type: ignore[import-untyped]

from bench._fake import report, scratch_engine
from meeting_finder.places import town_index
from meeting_finder.search import find_nearest
from storage.db import session_factory
from storage.models.meetings import Meeting

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


def _points(rng: random.Random, n: int) -> list[tuple[float, float]]:
    """Return `n` points scattered around UK towns, weighted towards bigger ones."""
    towns = [t for t in town_index().towns if t.population >= 1000]
    weights = [t.population ** 0.5 for t in towns]
    picks = rng.choices(towns, weights=weights, k=n)
    return [(t.lat + rng.gauss(0, 0.05), t.lon + rng.gauss(0, 0.08)) for t in picks]


def _rows(rng: random.Random, n: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i, (lat, lon) in enumerate(_points(rng, n)):
        roll = rng.random()
        attendance = "in_person" if roll < 0.8 else ("hybrid" if roll < 0.9 else "online")
        rows.append(
            {
                "slug": f"bench-{i}",
                "name": f"Bench meeting {i}",
                "weekday": rng.randrange(7),
                "start_time": clock_time(rng.randrange(8, 21), rng.choice((0, 15, 30, 45))),
                "timezone": "Europe/London",
                "address": f"{i} Bench Street",
                "lat": lat,
                "lon": lon,
                "attendance": attendance,
                "access": "open" if rng.random() < 0.92 else rng.choice(("closed", "prison")),
                "status": "active" if rng.random() < 0.95 else "suspended",
                "conference_url": None if attendance == "in_person" else f"https://meet.example.org/{i}",
                "types": ["SMART"],
                "demo": True,
                "updated": NOW,
            }
        )
    return rows


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(meetings: int, queries: int, brute: int) -> dict[str, Any]:
    """Build the database, time both searches, return the figures."""
    rng = random.Random(20260328)
    engine, url = await scratch_engine()
    try:
        started = time.perf_counter()
        rows = _rows(rng, meetings)
        async with engine.begin() as conn:
            for start in range(0, len(rows), 10_000):
                await conn.execute(Meeting.__table__.insert(), rows[start : start + 10_000])  # type: ignore[attr-defined]
        inserted = time.perf_counter() - started
        print(f"inserted {meetings:,} meetings in {inserted:.1f} s")
        targets = _points(rng, queries)
        async with session_factory(engine)() as session:
            started = time.perf_counter()
            await find_nearest(session, lat=targets[0][0], lon=targets[0][1], now=NOW, limit=5)
            built = (time.perf_counter() - started) * 1000
            fast: list[float] = []
            for lat, lon in targets:
                started = time.perf_counter()
                result = await find_nearest(session, lat=lat, lon=lon, now=NOW, limit=5)
                fast.append(time.perf_counter() - started)
                assert len(result.hits) == 5
    finally:
        await engine.dispose()
    in_person = [
        (r["lat"], r["lon"]) for r in rows
        if r["attendance"] != "online" and r["access"] == "open" and r["status"] == "active"
    ]
    slow: list[float] = []
    for lat, lon in targets[:brute]:
        started = time.perf_counter()
        dists = sorted(geodesic((lat, lon), point).miles for point in in_person)
        _ = dists[:5]
        slow.append(time.perf_counter() - started)
    f50, f99 = _pct(fast, 0.5) * 1000, _pct(fast, 0.99) * 1000
    s50, s99 = _pct(slow, 0.5) * 1000, _pct(slow, 0.99) * 1000
    return {
        "database": url.split("://")[0], "meetings": meetings,
        "insert_seconds": round(inserted, 1), "first_search_ms": round(built),
        "queries": len(fast), "search_p50_ms": round(f50, 2), "search_p99_ms": round(f99, 2),
        "search_mean_ms": round(statistics.mean(fast) * 1000, 2),
        "brute_candidates": len(in_person), "brute_queries": len(slow),
        "brute_p50_ms": round(s50), "brute_p99_ms": round(s99),
        "speedup_p50": round(s50 / f50), "speedup_p99": round(s99 / f99),
    }


def main() -> None:
    """Run the bench and print figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meetings", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--brute", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    figures = asyncio.run(run(args.meetings, args.queries, args.brute))
    report(figures, as_json=args.json)


if __name__ == "__main__":
    main()
