"""Send budgets in the database, so every process spends from one (PostgreSQL).

Each take is one short statement: an UPDATE that spends the budget only if the GCRA allows
it at that moment, so two processes can never both spend the same slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, delete, select

from storage.dialect import insert_for, is_postgres
from storage.models import RateBucket

RB = RateBucket
_HOLDS = (RB.hold_crisis, RB.hold_reply)  # by level: crisis 0, reply 1


@dataclass(frozen=True)
class Rate:
    """`per_second` units a second with a burst of `burst` units."""

    per_second: float
    burst: float = 1.0

    @property
    def interval(self) -> float:
        """Return seconds per unit."""
        return 1.0 / self.per_second


def gcra_wait(
    *, tat: float, cost: float, rate: Rate, now: float, holds: tuple[float, ...],
    level: int, paused: float
) -> float:
    """Return seconds until `cost` may be taken at `level` (0.0: now); holds of more urgent
    levels (lower numbers) and a pause keep it waiting too."""
    allowed_at = tat + (cost - rate.burst) * rate.interval
    blockers = [paused] + [holds[i] for i in range(min(level, len(holds)))]
    wait = max([allowed_at - now] + [b - now for b in blockers])
    return wait if wait > 1e-9 else 0.0  # float dust must not spin the caller


class DatabaseBudget:
    """A BudgetStore (see scheduler.ratelimit) kept in the `ratebucket` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._known: set[str] = set()

    async def _ensure(self, conn: Any, key: str) -> None:
        if key in self._known:
            return
        await conn.execute(insert_for(self.engine)(RB).values(
            key=key, tat=0.0, hold_crisis=0.0, hold_reply=0.0, paused=0.0,
        ).on_conflict_do_nothing())
        self._known.add(key)

    async def take(self, key: str, *, cost: float, rate: Rate, level: int, now: float,
                   admit: float | None = None) -> float:
        """Spend `cost` if `admit` units (default: cost) fit now (0.0), else return seconds
        to wait."""
        spend = cost * rate.interval
        admit = cost if admit is None else admit
        allowed = [col(RB.tat) + (admit - rate.burst) * rate.interval <= now,
                   col(RB.paused) <= now]
        allowed += [col(h) <= now for h in _HOLDS[: int(level)]]
        async with self.engine.begin() as conn:
            await self._ensure(conn, key)
            taken = await conn.execute(
                update(RB).where(col(RB.key) == key).where(and_(*allowed))
                .values(tat=func.max(col(RB.tat), now) + spend
                        if not is_postgres(self.engine)
                        else func.greatest(col(RB.tat), now) + spend)
                .returning(col(RB.tat)))
            if taken.first() is not None:
                return 0.0
            row = (await conn.execute(
                select(RB.tat, RB.hold_crisis, RB.hold_reply, RB.paused)
                .where(col(RB.key) == key))).one()
        wait = gcra_wait(tat=row[0], cost=admit, rate=rate, now=now, holds=(row[1], row[2]),
                         level=level, paused=row[3])
        return max(wait, 0.001)  # it was refused: never spin on a zero wait

    async def hold(self, key: str, *, level: int, until: float) -> None:
        """Keep less urgent takers off this budget until `until`."""
        if level >= len(_HOLDS):
            return
        column = _HOLDS[level]
        async with self.engine.begin() as conn:
            await self._ensure(conn, key)
            await conn.execute(update(RB).where(col(RB.key) == key)
                               .where(col(column) < until).values({column: until}))

    async def pause(self, key: str, *, until: float) -> None:
        """Let nobody take from this budget until `until`."""
        async with self.engine.begin() as conn:
            await self._ensure(conn, key)
            await conn.execute(update(RB).where(col(RB.key) == key)
                               .where(col(RB.paused) < until).values(paused=until))

    async def paused_until(self, key: str) -> float:
        """Return when a pause on this budget ends (0.0 if none)."""
        async with self.engine.connect() as conn:
            found = (await conn.execute(select(RB.paused).where(col(RB.key) == key))).first()
        return float(found[0]) if found is not None else 0.0

    async def forget_idle(self, *, now: float) -> int:
        """Delete per-chat budgets that have been idle a minute; return how many."""
        idle = or_(col(RB.key).like("%:chat:%"))
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(RB).where(idle).where(col(RB.tat) < now - 60)
                .where(col(RB.paused) < now))
        self._known.clear()
        return int(result.rowcount or 0)
