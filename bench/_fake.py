"""Shared bench pieces: a local fake provider, a scratch database, a quiet loop stop."""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from bot.channels.render import sms_segments
from scheduler.clock import SimClock
from scheduler.errors import TransientSendError
from scheduler.sender import OutgoingMessage, SendResult
from scheduler.service import DispatchLoop
from storage.db import create_all, drop_all, make_engine
from storage.migrate import upgrade_to_head


@dataclass
class FakeProvider:
    """Accepts messages, recording when (simulated) and how many segments; fails on demand."""

    channel: str
    clock: SimClock
    error_rate: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    sends: list[tuple[float, int, float]] = field(default_factory=list)  # (at, id, segments)
    accepted: Counter[int] = field(default_factory=Counter)
    failures: int = 0

    def cost(self, message: OutgoingMessage) -> float:
        """Charge SMS segments, as the real SMS sender does."""
        return float(sms_segments(message.body)) if self.channel == "sms" else 1.0

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Record the call; fail transiently `error_rate` of the time."""
        segments = self.cost(message)
        self.sends.append((self.clock.monotonic(), message.id, segments))
        if self.rng.random() < self.error_rate:
            self.failures += 1
            raise TransientSendError("injected 503")
        self.accepted[message.id] += 1
        return SendResult(provider_id=f"fake-{message.id}", segments=int(segments))


def over_limit(sends: list[tuple[float, int, float]], limit: float) -> int:
    """Return how many one-second windows (starting at each send) carried more than `limit`."""
    times = [s[0] for s in sends]
    costs = [s[2] for s in sends]
    over, j, total = 0, 0, 0.0
    for i in range(len(times)):
        while j < len(times) and times[j] < times[i] + 1.0 - 1e-9:
            total += costs[j]
            j += 1
        if total > limit + 1e-9:
            over += 1
        total -= costs[i]
    return over


async def scratch_engine(*, migrate: bool = False) -> tuple[AsyncEngine, str]:
    """Return an engine on BENCH_DATABASE_URL (emptied) or a temporary SQLite file, its
    tables made as the tests make them, or by the migrations (for a service that checks)."""
    url = os.environ.get("BENCH_DATABASE_URL") or \
        f"sqlite:///{tempfile.mkdtemp(prefix='tc-bench-')}/bench.db"
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        await drop_all(engine)
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    if migrate:
        await upgrade_to_head(engine)
    else:
        await create_all(engine)
    assert SQLModel.metadata.tables
    return engine, url


async def stop_loop(loop: DispatchLoop) -> None:
    """Stop a dispatch loop without the pool's traceback for the transaction it cancels."""
    pool = logging.getLogger("sqlalchemy.pool")
    level = pool.level
    # A pass cut off mid-transaction makes the pool log its cancelled rollback as an error;
    # the recovery rules settle those rows, and the bench has its figures already.
    pool.setLevel(logging.CRITICAL)
    try:
        await loop.stop()
    finally:
        pool.setLevel(level)


def report(figures: dict[str, object], *, as_json: bool) -> None:
    """Print a bench's figures: one JSON object as the last line, or `key: value` lines."""
    if as_json:
        print(json.dumps(figures))
        return
    for key, value in figures.items():
        print(f"{key}: {value}")
