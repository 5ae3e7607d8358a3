"""Per-key locks for limits that must hold under concurrency (link-code guessing).

`serialise(session, key)` makes every transaction that calls it with the same key wait for
the one before to finish: it writes the key's row in the `ratebucket` table (which the send
budgets use too, under other keys; callers key it by a hash, never an address), and a
written row stays locked until commit. So a
count-then-act check ("fewer than 5 wrong codes this hour?") sees every earlier attempt
from the same sender, on PostgreSQL as on SQLite (where writers queue anyway).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.dialect import insert_for
from storage.models import RateBucket
from storage.participants import hash_address

LOCK_PREFIX = "lock:"


def sender_lock(sender: str) -> str:
    """Return the lock name for one sender ("sms:+447..."): a hash, never the address."""
    return f"link:{hash_address(sender)[:40]}"


async def forget_lock(session: AsyncSession, key: str) -> None:
    """Delete one lock row now (the sender is gone)."""
    await session.exec(delete(RateBucket).where(col(RateBucket.key) == f"{LOCK_PREFIX}{key}"[:80]))


async def serialise(session: AsyncSession, key: str, *, now: datetime) -> None:
    """Hold the lock named `key` until this transaction ends (its row notes when)."""
    name = f"{LOCK_PREFIX}{key}"[:80]
    await session.exec(insert_for(session)(RateBucket).values(
        key=name, tat=0.0, hold_crisis=0.0, hold_reply=0.0, paused=0.0,
    ).on_conflict_do_nothing())
    await session.exec(update(RateBucket).where(col(RateBucket.key) == name)
                       .values(tat=now.timestamp()))


async def forget_locks(session: AsyncSession, *, before: datetime) -> int:
    """Delete lock rows last used before `before` (a held one waits); return how many."""
    result = await session.exec(
        delete(RateBucket).where(col(RateBucket.key).startswith(LOCK_PREFIX))
        .where(col(RateBucket.tat) < before.timestamp()))
    return int(result.rowcount or 0)
