"""Clocks the dispatcher waits on: the real one, and a simulated one for tests and benches."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds and a way to wait."""

    def monotonic(self) -> float:
        """Return seconds on a clock that never goes back."""
        ...

    def epoch(self) -> float:
        """Return seconds on the clock every process shares (send budgets live on it)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait this many seconds."""
        ...


class RealClock:
    """The process clock."""

    def monotonic(self) -> float:
        """Return time.monotonic()."""
        return time.monotonic()

    def epoch(self) -> float:
        """Return time.time(): the one clock several processes agree on."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        await asyncio.sleep(max(0.0, seconds))


class SimClock:
    """A clock that jumps instead of waiting; optionally adds real elapsed time (benches)."""

    def __init__(self, *, start: float = 0.0, count_real_time: bool = False) -> None:
        self.offset = start
        self.count_real_time = count_real_time
        self._real0 = time.monotonic()
        self.slept = 0.0

    def monotonic(self) -> float:
        """Return simulated seconds."""
        real = time.monotonic() - self._real0 if self.count_real_time else 0.0
        return self.offset + real

    def epoch(self) -> float:
        """Return simulated seconds (the simulation is its own shared clock)."""
        return self.monotonic()

    def advance(self, seconds: float) -> None:
        """Move simulated time forward."""
        self.offset += max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        """Jump forward instead of waiting (yield once so other tasks run)."""
        self.advance(seconds)
        self.slept += max(0.0, seconds)
        await asyncio.sleep(0)
