"""Benchmark nearest-meeting search at 100,000 meetings against a brute-force geodesic scan.

Run: .venv/bin/python bench/meeting_search.py [--meetings 100000] [--queries 1000] [--brute 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path

from geopy.distance import geodesic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from meeting_finder.places import town_index  # noqa: E402
from meeting_finder.search import find_nearest  # noqa: E402
from storage.db import create_all, make_engine, session_factory  # noqa: E402
from storage.models.meetings import Meeting  # noqa: E402

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


async def main(meetings: int, queries: int, brute: int) -> None:
    """Build the database, time both searches, print the figures."""
    rng = random.Random(20260328)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        await create_all(engine)
        started = time.perf_counter()
        rows = _rows(rng, meetings)
        async with engine.begin() as conn:
            for start in range(0, len(rows), 10_000):
                await conn.execute(Meeting.__table__.insert(), rows[start : start + 10_000])  # type: ignore[attr-defined]
        print(f"inserted {meetings:,} meetings in {time.perf_counter() - started:.1f} s")
        targets = _points(rng, queries)
        async with session_factory(engine)() as session:
            started = time.perf_counter()
            await find_nearest(session, lat=targets[0][0], lon=targets[0][1], now=NOW, limit=5)
            built = (time.perf_counter() - started) * 1000
            print(f"first search (builds the index): {built:.0f} ms")
            fast: list[float] = []
            for lat, lon in targets:
                started = time.perf_counter()
                result = await find_nearest(session, lat=lat, lon=lon, now=NOW, limit=5)
                fast.append(time.perf_counter() - started)
                assert len(result.hits) == 5
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
        await engine.dispose()
    f50, f99 = _pct(fast, 0.5) * 1000, _pct(fast, 0.99) * 1000
    s50, s99 = _pct(slow, 0.5) * 1000, _pct(slow, 0.99) * 1000
    print(f"find_nearest (nearest 5), {len(fast)} queries: p50 {f50:.2f} ms, p99 {f99:.2f} ms, "
          f"mean {statistics.mean(fast) * 1000:.2f} ms")
    print(f"brute-force geopy geodesic over {len(in_person):,} meetings, {len(slow)} queries: "
          f"p50 {s50:.0f} ms, p99 {s99:.0f} ms")
    print(f"speed-up: {s50 / f50:.0f}x at p50, {s99 / f99:.0f}x at p99")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meetings", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--brute", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.meetings, args.queries, args.brute))
