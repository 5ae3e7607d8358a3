"""Per-sender inbound counts for the flood limit, and the link-code ceiling's state.

Each sender has a row in the `ratebucket` table under `flood:<hash>` (a hash of
"channel:address", never the address). Writing it holds the sender's turn until commit, so
"how many in the last ten minutes?" sees every earlier message from them, on PostgreSQL as
on SQLite. Its columns, borrowed from the send budgets: `tat` is when the sender last wrote
(epoch seconds), `paused` until when they get no answer (the calm reply was sent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, update
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.dialect import run
from storage.models import InboundMessage, RateBucket
from storage.participants import (
    MAX_FAILED_LINKS_ALL_PER_HOUR,
    failed_link_attempts,
    hash_address,
)
from storage.upserts import insert_updating

FLOOD_PREFIX = "flood:"
_BUCKETS: Any = RateBucket.__table__  # type: ignore[attr-defined]


def address_key(channel: str, address: str) -> str:
    """Return the hash that inbound rows and the flood row of one sender carry."""
    return hash_address(f"{channel}:{address}")


async def hold_sender(session: AsyncSession, key: str, *, now: datetime) -> float:
    """Take this sender's turn until commit; return until when they are paused (epoch).

    One upsert: it writes (and so locks) the sender's row, and RETURNING reads it as this
    transaction holds it, after any writer before us.
    """
    stamp = now.timestamp()
    values = {"key": f"{FLOOD_PREFIX}{key}", "tat": stamp, "hold_crisis": 0.0,
              "hold_reply": 0.0, "paused": 0.0}
    upsert = insert_updating(_BUCKETS, tuple(values), ("key",), ("tat",), ("paused",))
    paused = (await run(session, upsert, values)).one()
    return float(paused[0])


async def pause_sender(session: AsyncSession, key: str, *, until: datetime) -> None:
    """Give this sender no answers until `until` (they were told once)."""
    await session.exec(update(RateBucket).where(col(RateBucket.key) == f"{FLOOD_PREFIX}{key}")
                       .values(paused=until.timestamp()))


async def count_inbound_since(session: AsyncSession, key: str, *, since: datetime) -> int:
    """Count the messages one sender (by address hash) sent since `since` (every inbound
    message asks: a Core statement built once)."""
    return int((await run(session, _COUNT_SINCE, {"key": key, "since": since})).scalar_one())


_INBOUND: Any = InboundMessage.__table__  # type: ignore[attr-defined]
_COUNT_SINCE = (sa_select(func.count()).select_from(_INBOUND)
                .where(_INBOUND.c.address_hash == bindparam("key"))
                .where(_INBOUND.c.received_at >= bindparam("since")))


async def forget_idle_senders(session: AsyncSession, *, before: datetime) -> int:
    """Delete flood rows idle and unpaused since `before`; return how many."""
    cutoff = before.timestamp()
    result = await session.exec(
        delete(RateBucket).where(col(RateBucket.key).startswith(FLOOD_PREFIX))
        .where(and_(col(RateBucket.tat) < cutoff, col(RateBucket.paused) < cutoff)))
    return int(result.rowcount or 0)


async def count_paused_senders(session: AsyncSession, *, now: datetime) -> int:
    """Count senders getting no answers just now (for /metrics)."""
    return int((await session.exec(
        select(func.count()).select_from(RateBucket)
        .where(col(RateBucket.key).startswith(FLOOD_PREFIX))
        .where(col(RateBucket.paused) > now.timestamp()))).one())


@dataclass(frozen=True)
class LinkCeiling:
    """The global ceiling on wrong link codes: tries in the last hour, and the limit."""

    failed_last_hour: int
    ceiling: int = MAX_FAILED_LINKS_ALL_PER_HOUR

    @property
    def reached(self) -> bool:
        """Say whether new senders are being refused."""
        return self.failed_last_hour >= self.ceiling


async def link_ceiling_state(session: AsyncSession, *, now: datetime) -> LinkCeiling:
    """Return the link-code ceiling's state as of `now` (for /metrics gauges)."""
    return LinkCeiling(await failed_link_attempts(session, address=None, now=now))
