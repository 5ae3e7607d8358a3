"""The dispatcher as a service: one loop per lane, asleep until the next message is due.

A loop wakes when the earliest queued row of its lane falls due, when this process writes
a row (`notify`), when another process does (PostgreSQL `LISTEN`), or after `safety`
seconds at the latest. So a message due at 10:00:00 leaves at 10:00:00, not at the next
sweep. The urgent loop and the bulk loop run side by side: a broadcast being sent never
keeps the urgent loop from claiming a crisis reply, and the limiter gives that reply the
next send slot.

Faults. A pass that fails (the database stopped or restarting) costs one log line and is
tried again after a pause doubling to `retry_longest`; the loop carries on by itself when
the database answers again. Each channel keeps at most `policy.concurrency` provider calls
out, or as many as its rate needs (`call_shares`: 50 for 100 a second), and a pass may make
`FREE_CALLS` more, so a slow provider never takes every call slot from the other channels
(a row beyond its channel's share goes back untried for a second).
`stop(grace)` drains: the loop's own passes see every channel as paused, so the dispatcher
hands each row it claims straight back to the queue (untried, never marked in flight) while
the calls already on the wire finish and are recorded, for at most `grace` seconds; a call
still out after that is left to the recovery rules.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from time import monotonic
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from scheduler.dispatcher import DispatchPolicy, dispatch
from scheduler.errors import SendLater
from scheduler.ratelimit import BudgetStore, Level, Rate, RateLimiter
from scheduler.sender import OutgoingMessage, Sender, SendResult
from storage.claims_q import Lane
from storage.db import session_scope
from storage.notify import listen_outbox, on_local_notify
from storage.outage import DATABASE_DOWN
from storage.outbox_q import earliest_due

logger = logging.getLogger(__name__)
HOUSEKEEPING_EVERY = 1.0  # seconds between a lane's recover/expire/scrub steps
DRAIN_DEFER = 1.0  # seconds a row claimed while stopping waits before anyone claims it again
BUSY_DEFER = 1.0  # seconds a row handed back by a channel with all its calls out waits
LINGER = 0.02  # seconds from one pass's start to the next's, at least (see _linger)
FREE_CALLS = 2  # calls a pass may make beyond any one channel's: kept for the others
CALL_SECONDS = 0.5  # a provider call's usual time, at most: a channel sending N a second
# needs about N * CALL_SECONDS calls out at once to keep up (Twilio at 100 a second: 50)


def call_shares(limiter: RateLimiter, base: int) -> dict[str, int]:
    """Return each channel's share of calls at once: `base`, or more where its rate needs."""
    return {channel: max(base, math.ceil(limit.per_second * CALL_SECONDS))
            for channel, limit in limiter.limits.items()}


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _Draining:
    """The limiter's budgets as this loop's passes see them: while the loop stops, every
    channel reads as paused, so the dispatcher puts what it claims back untried (its own
    "channel paused" path). Only this view pauses: other passes and processes are untouched.
    """

    def __init__(self, inner: BudgetStore, epoch: Callable[[], float]) -> None:
        self.inner, self.epoch, self.on = inner, epoch, False

    async def take(self, key: str, *, cost: float, rate: Rate, level: Level, now: float,
                   admit: float | None = None) -> float:
        """Spend from the real budget."""
        return await self.inner.take(key, cost=cost, rate=rate, level=level, now=now,
                                     admit=admit)

    async def hold(self, key: str, *, level: Level, until: float) -> None:
        """Hold the real budget."""
        await self.inner.hold(key, level=level, until=until)

    async def pause(self, key: str, *, until: float) -> None:
        """Pause the real budget (retry_after, an outage)."""
        await self.inner.pause(key, until=until)

    async def paused_until(self, key: str) -> float:
        """Return the real pause, or a short one on every channel while draining."""
        until = await self.inner.paused_until(key)
        return max(until, self.epoch() + DRAIN_DEFER) if self.on else until


class _Share:
    """A channel's sender that takes at most `most` calls at once: one more is handed back
    untried (SendLater, no attempt counted). The loop's passes may make `FREE_CALLS` more
    calls than any one channel, so a slow provider never takes every slot from the others."""

    def __init__(self, inner: Sender, most: int) -> None:
        self.inner, self.most, self.out = inner, most, 0
        self.channel = inner.channel

    def cost(self, message: OutgoingMessage) -> float:
        """Ask the real sender."""
        return self.inner.cost(message)

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Send through the real sender, or hand the row back if the channel is full."""
        if self.out >= self.most:
            raise SendLater(f"{self.channel}: {self.out} calls already out",
                            seconds=BUSY_DEFER, code="busy")
        self.out += 1
        try:
            return await self.inner.send(message)
        finally:
            self.out -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # lookup, if the channel has one


class _Shares(Mapping[str, Sender]):
    """The process's senders, each held to its share; a sender replaced later (Telegram
    connecting after start-up) is picked up."""

    def __init__(self, senders: Mapping[str, Sender], most: int,
                 shares: Mapping[str, int] | None = None) -> None:
        self.senders, self.most, self.shares = senders, most, dict(shares or {})
        self._shares: dict[str, _Share] = {}

    def __getitem__(self, channel: str) -> Sender:
        inner = self.senders[channel]
        share = self._shares.get(channel)
        if share is None or share.inner is not inner:
            most = self.shares.get(channel, self.most)
            share = self._shares[channel] = _Share(inner, most)
        return share

    def __iter__(self) -> Iterator[str]:
        return iter(self.senders)

    def __len__(self) -> int:
        return len(self.senders)


class DispatchLoop:
    """Send what is due, as it falls due, for as long as the process runs."""

    def __init__(
        self,
        engine: AsyncEngine,
        senders: Mapping[str, Sender],
        *,
        limiter: RateLimiter,
        policy: DispatchPolicy | None = None,
        safety: float = 5.0,
        busy_poll: float = 0.2,
        clock: Callable[[], datetime] = _utc_now,
        retry_first: float = 1.0,
        retry_longest: float = 30.0,
        linger: float = LINGER,
    ) -> None:
        self.engine, self.senders, self.limiter = engine, senders, limiter
        self.linger = linger
        self.policy, self.safety, self.busy_poll, self.clock = policy, safety, busy_poll, clock
        self.retry_first, self.retry_longest = retry_first, retry_longest
        # Each channel keeps the configured number of calls at once; a pass may make
        # FREE_CALLS more, which only another channel can use (one set per lane).
        base = policy or DispatchPolicy()
        shares = call_shares(limiter, base.concurrency)
        widest = max(shares.values(), default=base.concurrency)
        self._pass_policy = replace(base, concurrency=widest + FREE_CALLS)
        self._shares = {lane: _Shares(senders, base.concurrency, shares) for lane in Lane}
        self._draining = _Draining(limiter.store, limiter.clock.epoch)
        self._pass_limiter = replace(limiter, store=self._draining)
        self._wake = {lane: asyncio.Event() for lane in Lane}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: asyncio.Task[None] | None = None
        self._forget: Callable[[], None] = lambda: None
        self.passes = 0
        self.failed_passes = 0

    def notify(self, lane: Lane | None = None) -> None:
        """Something was written to the outbox (in `lane`; None: either): look now."""
        for name, event in self._wake.items():
            if lane is None or name == lane:
                event.set()

    async def start(self) -> None:
        """Start the lane loops (and the PostgreSQL listener) in the background."""
        self._forget = on_local_notify(self.notify)
        self._tasks = [asyncio.create_task(self._lane(lane), name=f"dispatch-{lane}")
                       for lane in Lane]
        self._listener = asyncio.create_task(self._listen(), name="dispatch-listen")

    async def stop(self, grace: float = 0.0) -> None:
        """Stop claiming; give sends on the wire up to `grace` seconds to finish and be
        recorded, handing back what was claimed but not sent; then stop the loops."""
        self._forget()
        self._stop.set()
        self._draining.on = True
        self.notify()
        if self._listener is not None:
            self._listener.cancel()
        if self._tasks and grace > 0:
            _done, late = await asyncio.wait(self._tasks, timeout=grace)
            if late:
                logger.warning("dispatch: sends still out after %.0fs; leaving them to the "
                               "recovery rules", grace)
        for task in [*self._tasks, *([self._listener] if self._listener else [])]:
            task.cancel()
        await asyncio.gather(*self._tasks, *([self._listener] if self._listener else []),
                             return_exceptions=True)
        self._tasks, self._listener = [], None

    async def _listen(self) -> None:
        """Hear other processes' writes (PostgreSQL); listen again after a lost connection."""
        pause = self.retry_first
        while not self._stop.is_set():
            try:
                await listen_outbox(self.engine, self.notify)
                return  # SQLite: nobody else to hear
            except asyncio.CancelledError:
                raise
            except DATABASE_DOWN as exc:
                logger.warning("outbox listener lost the database (%s); the sweep runs, "
                               "listening again in %.1fs", type(exc).__name__, pause)
            except Exception as exc:  # noqa: BLE001  (without NOTIFY the safety sweep still runs)
                logger.warning("outbox listener stopped (%s); relying on the sweep",
                               type(exc).__name__)
                return
            await self._pause(pause)
            pause = min(self.retry_longest, pause * 2)

    async def _lane(self, lane: Lane) -> None:
        failures = 0
        tidied = -HOUSEKEEPING_EVERY  # monotonic time of this lane's last housekeeping
        began = -self.linger  # monotonic time the last pass began
        while not self._stop.is_set():
            await self._linger(began)
            began = monotonic()
            self._wake[lane].clear()
            try:
                # Recovering lapsed claims and expiring overdue rows once a second is soon
                # enough; every write wakes the loop, and a pass per reply need not redo it.
                tidy = monotonic() - tidied >= HOUSEKEEPING_EVERY
                await dispatch(self.engine, self._shares[lane], now=self.clock(), lane=lane,
                               limiter=self._pass_limiter, policy=self._pass_policy,
                               housekeeping=tidy, wake=self._wake[lane])
                if tidy:
                    tidied = monotonic()
                self.passes += 1
                if failures:
                    logger.info("dispatch %s: working again after %d failed passes", lane,
                                failures)
                failures = 0
                if self._stop.is_set():
                    return
                wait = await self._next_wait(lane)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001  (the loop must outlive any one fault)
                failures += 1
                self.failed_passes += 1
                pause = min(self.retry_longest, self.retry_first * 2 ** (failures - 1))
                what = "database unreachable" if isinstance(exc, DATABASE_DOWN) else "failed"
                logger.error("dispatch %s pass %s (%s); again in %.1fs", lane, what,
                             type(exc).__name__, pause)
                # A back-off is not cut short by writes: the database is what is failing.
                await self._pause(pause)
                continue
            if wait > 0:
                try:
                    await asyncio.wait_for(self._wake[lane].wait(), timeout=wait)
                except TimeoutError:
                    pass

    async def _linger(self, began: float) -> None:
        """Begin a pass no sooner than `linger` after the last one began. Idle, a reply goes
        at once; under load a pass finds several, and a pass's own work (claims, checks,
        one transaction for the outcomes) is shared between them, not paid for each."""
        wait = began + self.linger - monotonic()
        if wait > 0:
            await self._pause(wait)

    async def _pause(self, seconds: float) -> None:
        """Wait `seconds`, or until the loop is told to stop."""
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def _next_wait(self, lane: Lane) -> float:
        """Return seconds until this lane's next row is due, within the safety bound.

        A pass ends when a claim finds nothing and no call is out, so what it left is not
        due yet, or waits for a call elsewhere; a write since it began has set the wake
        (no need to ask the database then)."""
        if self._wake[lane].is_set():
            return 0.0
        async with session_scope(self.engine) as session:
            due = await earliest_due(session, lane=lane)
        if due is None:
            return self.safety
        seconds = (due - self.clock()).total_seconds()
        # Due already but not claimable (another worker holds that person's earlier message):
        # look again soon rather than spin.
        return min(self.safety, max(seconds, self.busy_poll if seconds <= 0 else seconds))
