"""One dispatch pass's settings, figures and state, shared by the dispatcher and outcomes."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from scheduler.clock import Clock
from scheduler.ratelimit import RateLimiter
from scheduler.sender import Sender, SendResult
from storage.models import OutboundMessage


@dataclass
class DispatchPolicy:
    """Retry, lease, slice and outage settings."""

    lease: timedelta = timedelta(minutes=2)  # a claim older than this belongs to a dead worker
    backoff_base: float = 30.0  # seconds before the first retry
    backoff_cap: float = 900.0  # never wait longer than this between tries
    max_attempts: int = 10  # then failed, if the not-after time has not ended it first
    outage_after: int = 5  # this many transient failures in a row pause the channel
    outage_pause: float = 60.0  # seconds to leave a failing channel alone
    concurrency: int = 8  # provider calls in flight at once (HTTP latency, not CPU, is slow)
    urgent_claim: int = 50  # urgent rows claimed at once (one per address)
    bulk_slice_seconds: float = 1.0  # a bulk slice holds about this much of the channel rate
    max_slot_wait: float = 5.0  # a row that cannot get a send slot this soon goes back
    jitter: Callable[[], float] = random.random

    def backoff(self, attempts: int) -> float:
        """Return seconds to wait after `attempts` failed tries (exponential, jittered)."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** max(0, attempts - 1))
        return ceiling * (0.5 + 0.5 * self.jitter())


@dataclass
class DispatchStats:
    """What one dispatch pass did."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    expired: int = 0
    cancelled: int = 0
    deferred: int = 0
    recovered: int = 0
    attempts: int = 0  # provider calls made
    errors: dict[str, int] = field(default_factory=dict)


_default_limiter: RateLimiter | None = None


def default_limiter() -> RateLimiter:
    """Return this process's shared limiter (real clock, default channel limits)."""
    global _default_limiter
    if _default_limiter is None:
        _default_limiter = RateLimiter()
    return _default_limiter


@dataclass
class Pass:
    """One dispatch pass: what it holds and what it has done."""

    engine: AsyncEngine
    senders: Mapping[str, Sender]
    start: datetime
    limiter: RateLimiter
    policy: DispatchPolicy
    token: str
    stats: DispatchStats
    t0: float = 0.0
    beat: float = 0.0
    failures_in_row: dict[str, int] = field(default_factory=dict)
    dead: dict[tuple[str, str], str] = field(default_factory=dict)  # address -> identity status
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one outcome write at once
    accepted: list[tuple[OutboundMessage, SendResult]] = field(default_factory=list)
    inflight: set[asyncio.Task[object]] = field(default_factory=set)  # provider calls
    finished: int = 0  # provider calls that have come back
    behind: bool = False  # a claim found a row waiting behind one it took (same address)
    woken: bool = False  # a write woke it while a call was out, and it looked again

    def call_done(self, task: asyncio.Task[object]) -> None:
        """Forget a provider call that has come back."""
        self.inflight.discard(task)
        self.finished += 1

    @property
    def clock(self) -> Clock:
        return self.limiter.clock

    def now(self) -> datetime:
        """Return the pass's start time plus what the clock says has passed since."""
        return self.start + timedelta(seconds=self.clock.monotonic() - self.t0)
