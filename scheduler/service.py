"""The dispatcher as a service: one loop per lane, asleep until the next message is due.

A loop wakes when the earliest queued row of its lane falls due, when this process writes
a row (`notify`), when another process does (PostgreSQL `LISTEN`), or after `safety`
seconds at the latest. So a message due at 10:00:00 leaves at 10:00:00, not at the next
sweep. The urgent loop and the bulk loop run side by side: a broadcast being sent never
keeps the urgent loop from claiming a crisis reply, and the limiter gives that reply the
next send slot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from scheduler.dispatcher import DispatchPolicy, dispatch
from scheduler.ratelimit import RateLimiter
from scheduler.sender import Sender
from storage.db import session_scope
from storage.notify import listen_outbox, on_local_notify
from storage.outbox_q import Lane, earliest_due

logger = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


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
    ) -> None:
        self.engine, self.senders, self.limiter = engine, senders, limiter
        self.policy, self.safety, self.busy_poll, self.clock = policy, safety, busy_poll, clock
        self._wake = {lane: asyncio.Event() for lane in Lane}
        self._tasks: list[asyncio.Task[None]] = []
        self._forget: Callable[[], None] = lambda: None
        self.passes = 0

    def notify(self) -> None:
        """Something was written to the outbox: look now."""
        for event in self._wake.values():
            event.set()

    async def start(self) -> None:
        """Start the lane loops (and the PostgreSQL listener) in the background."""
        self._forget = on_local_notify(self.notify)
        self._tasks = [asyncio.create_task(self._lane(lane), name=f"dispatch-{lane}")
                       for lane in Lane]
        self._tasks.append(asyncio.create_task(self._listen(), name="dispatch-listen"))

    async def stop(self) -> None:
        """Stop the loops; a send on the wire is left to the recovery rules."""
        self._forget()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _listen(self) -> None:
        try:
            await listen_outbox(self.engine, self.notify)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001  (without NOTIFY the safety sweep still runs)
            logger.warning("outbox listener stopped (%s); relying on the sweep",
                           type(exc).__name__)

    async def _lane(self, lane: Lane) -> None:
        failures = 0
        while True:
            self._wake[lane].clear()
            try:
                stats = await dispatch(self.engine, self.senders, now=self.clock(), lane=lane,
                                       limiter=self.limiter, policy=self.policy)
                self.passes += 1
                failures = 0
                wait = await self._next_wait(lane, busy=stats.attempts > 0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001  (the loop must outlive any one fault)
                failures += 1
                wait = min(30.0, 0.5 * 2 ** failures)
                logger.error("dispatch %s pass failed (%s); again in %.1fs", lane,
                             type(exc).__name__, wait)
            if wait > 0:
                try:
                    await asyncio.wait_for(self._wake[lane].wait(), timeout=wait)
                except TimeoutError:
                    pass

    async def _next_wait(self, lane: Lane, *, busy: bool) -> float:
        """Return seconds until this lane's next row is due, within the safety bound."""
        if busy:
            return 0.0  # it sent something: look again at once
        async with session_scope(self.engine) as session:
            due = await earliest_due(session, lane=lane)
        if due is None:
            return self.safety
        seconds = (due - self.clock()).total_seconds()
        # Due already but not claimable (another worker holds that person's earlier message):
        # look again soon rather than spin.
        return min(self.safety, max(seconds, self.busy_poll if seconds <= 0 else seconds))
