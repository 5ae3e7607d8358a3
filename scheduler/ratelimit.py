"""Send budgets: per-channel and per-chat rates (GCRA), urgent first, shared across processes.

Each channel has one budget, counted in what the sender says a message costs (SMS:
segments). A budget lives in a `BudgetStore`: in memory for one process (SQLite, the
embedded default), or in the database (`storage.budget.DatabaseBudget`) so every `web` and
`worker` process on PostgreSQL spends from the same one.

Priority is ours, the limit is the provider's. A waiter at an urgent level (crisis, then
replies) puts a *hold* on the slot it is waiting for; a less urgent taker cannot take while a
more urgent hold is live. So an urgent message takes the next free slot and waits at most
for the one send already on the wire, whatever bulk is queued, in this process or another.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

from scheduler.clock import Clock, RealClock
from storage.budget import Rate, gcra_wait
from storage.claims_q import LANE_SPLIT
from storage.models import Priority
from storage.participants import hash_address

__all__ = ["DEFAULT_LIMITS", "BudgetStore", "ChannelLimit", "Level", "MemoryBudget", "Rate",
           "RateLimiter", "gcra_wait", "level_for"]


class Level(IntEnum):
    """Who goes first for the next send slot (lower first)."""

    CRISIS = 0  # crisis numbers
    REPLY = 1  # answers to something a person just sent, STOP/START/HELP
    BULK = 2  # reminders, sequences, follow-ups, broadcasts




def level_for(priority: int) -> Level:
    """Return the send level of an outbox priority."""
    if priority <= Priority.URGENT:
        return Level.CRISIS
    return Level.REPLY if priority < LANE_SPLIT else Level.BULK


class BudgetStore(Protocol):
    """Where budgets live. Times are epoch seconds from the limiter's clock."""

    async def take(self, key: str, *, cost: float, rate: Rate, level: Level, now: float,
                   admit: float | None = None) -> float:
        """Spend `cost` if `admit` units (default: cost) fit now (return 0.0), else return
        seconds to wait."""
        ...

    async def hold(self, key: str, *, level: Level, until: float) -> None:
        """Keep less urgent takers off this budget until `until`."""
        ...

    async def pause(self, key: str, *, until: float) -> None:
        """Let nobody take from this budget until `until` (retry_after, outage)."""
        ...

    async def paused_until(self, key: str) -> float:
        """Return when a pause on this budget ends (0.0 if none)."""
        ...


@dataclass
class _Bucket:
    tat: float = 0.0  # theoretical arrival time of the next unit
    holds: list[float] = field(default_factory=lambda: [0.0, 0.0])  # per urgent level
    paused: float = 0.0


class MemoryBudget:
    """Budgets in this process only (one process: SQLite, tests)."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    async def take(self, key: str, *, cost: float, rate: Rate, level: Level, now: float,
                   admit: float | None = None) -> float:
        """Spend `cost` if `admit` units fit now, else return the wait."""
        b = self._buckets.setdefault(key, _Bucket())
        wait = gcra_wait(tat=b.tat, cost=cost if admit is None else admit, rate=rate,
                         now=now, holds=tuple(b.holds), level=int(level), paused=b.paused)
        if wait == 0.0:
            b.tat = max(b.tat, now) + cost * rate.interval
            self._forget_idle(now)
        return wait

    async def hold(self, key: str, *, level: Level, until: float) -> None:
        """Hold the budget for a more urgent level."""
        if level < Level.BULK:
            b = self._buckets.setdefault(key, _Bucket())
            b.holds[level] = max(b.holds[level], until)

    async def pause(self, key: str, *, until: float) -> None:
        """Pause the budget."""
        b = self._buckets.setdefault(key, _Bucket())
        b.paused = max(b.paused, until)

    async def paused_until(self, key: str) -> float:
        """Return when the pause ends."""
        b = self._buckets.get(key)
        return b.paused if b is not None else 0.0

    def _forget_idle(self, now: float) -> None:
        if len(self._buckets) > 50_000:  # per-chat buckets: keep memory small
            self._buckets = {k: v for k, v in self._buckets.items()
                             if max(v.tat, v.paused, *v.holds) > now}


BURST_FRACTION = 0.05  # slack for a late wake-up, paid for by running a little under the limit


def channel_rate(limit: float) -> Rate:
    """Return a rate that never sends more than `limit` units in any one-second window.

    GCRA with rate r and burst b allows at most r + b - 1 units in a second, so a burst of
    5% (for timer jitter: a late wake-up is caught up, not lost) is paid for with r = limit -
    b + 1.
    """
    burst = max(1.0, limit * BURST_FRACTION)
    return Rate(per_second=max(limit - burst + 1.0, limit * 0.5), burst=burst)


@dataclass
class ChannelLimit:
    """How fast one channel may send."""

    per_second: float  # units a second overall (SMS: segments a second)
    per_chat_per_second: float | None = None  # Telegram: about one a second in one chat
    chat_burst: float = 3.0  # a short reply of up to 3 messages goes at once
    count_segments: bool = False  # SMS: the sender's cost() counts segments


DEFAULT_LIMITS = {
    "telegram": ChannelLimit(per_second=30.0, per_chat_per_second=1.0),
    "sms": ChannelLimit(per_second=1.0, count_segments=True),
}
HOLD_GRACE = 0.25  # seconds a hold outlives its slot, for a late wake-up


def chat_key(channel: str, address: str) -> str:
    """Return a budget key for one chat that does not hold the address itself."""
    digest = hash_address(f"{channel}:{address}")[:20]  # keyed: never reversible to a number
    return f"{channel}:chat:{digest}"


@dataclass
class RateLimiter:
    """Keeps every channel within its limit, urgent levels first."""

    limits: dict[str, ChannelLimit] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    clock: Clock = field(default_factory=RealClock)
    store: BudgetStore = field(default_factory=MemoryBudget)
    _rates: dict[str, Rate] = field(default_factory=dict)
    _turns: dict[tuple[str, Level], asyncio.Lock] = field(default_factory=dict)

    def _rate(self, channel: str, limit: ChannelLimit) -> Rate:
        rate = self._rates.get(channel)
        if rate is None:
            rate = self._rates[channel] = channel_rate(limit.per_second)
        return rate

    async def take_chat(self, channel: str, address: str) -> float:
        """Spend one message of this chat's own budget now, or return seconds to wait."""
        limit = self.limits.get(channel)
        if limit is None or limit.per_chat_per_second is None:
            return 0.0
        rate = Rate(per_second=limit.per_chat_per_second, burst=limit.chat_burst)
        return await self.store.take(chat_key(channel, address), cost=1.0, rate=rate,
                                     level=Level.BULK, now=self.clock.epoch())

    async def paused_for(self, channel: str) -> float:
        """Return seconds the channel stays paused (after retry_after or an outage)."""
        left = await self.store.paused_until(channel) - self.clock.epoch()
        return left if left > 1e-9 else 0.0

    async def pause(self, channel: str, seconds: float) -> None:
        """Send nothing on `channel` for `seconds`, in any process sharing the store."""
        await self.store.pause(channel, until=self.clock.epoch() + seconds)

    async def forget_idle(self) -> None:
        """Let the store drop per-chat budgets nobody has used for a while."""
        forget = getattr(self.store, "forget_idle", None)
        if forget is not None:
            await forget(now=self.clock.epoch())

    async def acquire(
        self, channel: str, cost: float, *, level: Level = Level.BULK,
        max_wait: float | None = None,
    ) -> bool:
        """Wait until the channel may send `cost` at `level`, then spend it; say if taken.

        With `max_wait`, give up (False) rather than wait longer than that in all.
        """
        limit = self.limits.get(channel)
        if limit is None:
            return True
        if level == Level.BULK:
            return await self._take(channel, cost, level=level, max_wait=max_wait)
        # Urgent waiters of one level are served in the order they came (FIFO lock);
        # a crisis waiter never queues behind a reply waiter.
        turn = self._turns.setdefault((channel, level), asyncio.Lock())
        async with turn:
            return await self._take(channel, cost, level=level, max_wait=max_wait)

    async def _take(
        self, channel: str, cost: float, *, level: Level, max_wait: float | None
    ) -> bool:
        limit = self.limits[channel]
        rate = self._rate(channel, limit)
        # An urgent message borrows: it goes in the next free slot whatever its length and
        # the bulk behind it pays the debt, so the long-run rate still holds (a window may
        # carry up to cost - 1 units over, once).
        admit = 1.0 if level < Level.BULK else cost
        waited = 0.0
        while True:
            now = self.clock.epoch()
            wait = await self.store.take(channel, cost=cost, rate=rate, level=level, now=now,
                                         admit=admit)
            if wait <= 0.0:
                return True
            if max_wait is not None and waited + wait > max_wait:
                return False
            if level < Level.BULK:
                await self.store.hold(channel, level=level,
                                      until=now + wait + min(HOLD_GRACE, rate.interval / 2))
            await self.clock.sleep(wait)
            waited += wait
