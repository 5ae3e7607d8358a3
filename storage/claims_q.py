"""Claiming due outbox rows: the lanes, head of line per address, and the claim itself."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Integer, and_, bindparam, case, exists, or_, true, update
from sqlalchemy import select as core_select
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.dialect import is_postgres, run
from storage.models import ChannelIdentity, OutboundMessage, OutboxStatus, Participant, Priority

OB = OutboundMessage




LANE_SPLIT = Priority.SCHEDULED  # priorities below this are the urgent lane


class Lane(StrEnum):
    """Which messages a dispatcher claims."""

    URGENT = "urgent"  # crisis numbers, replies, STOP/START/HELP: never wait behind bulk
    BULK = "bulk"  # reminders, sequences, follow-ups, broadcasts: claimed in small slices


def lane_of(priority: int) -> Lane:
    """Return the lane a row of this priority is claimed in (as `lane_filter` says in SQL)."""
    return Lane.URGENT if priority < LANE_SPLIT else Lane.BULK


def lane_filter(lane: Lane | None, row: Any = OB) -> Any:
    """Return the SQL condition for rows of one lane (None: both)."""
    if lane is None:
        return true()
    urgent = col(row.priority) < LANE_SPLIT
    return urgent if lane == Lane.URGENT else ~urgent


def _rank(row: Any) -> Any:
    """Return SQL for a row's send rank: crisis 0, other urgent 1, bulk 2."""
    return case((col(row.priority) <= Priority.URGENT, 0),
                (col(row.priority) < LANE_SPLIT, 1), else_=2)


# One alias for every claim: SQLAlchemy memoises an alias's column adaptations, so a new
# alias per claim cost more than the claim's own SQL (a third of a busy dispatcher's time).
_EARLIER = aliased(OB, name="earlier")
_LATER = aliased(OB, name="later")


def _head_of_line() -> Any:
    """Return SQL true for rows with no earlier message to the same address still pending.

    Parameters: `now`, and `since` (now less the lease: a claim older is dead).
    Rows to one address leave in the order they were written within their rank; a crisis
    reply goes before that person's other replies, and any urgent row before their bulk,
    which waits for it. A claim so takes at most one row per address, which also shares
    replies fairly between people.
    """
    o = _EARLIER
    pending = or_(and_(col(o.status) == OutboxStatus.QUEUED, col(o.due_at) <= bindparam("now")),
                  and_(col(o.status) == OutboxStatus.SENDING,
                       col(o.claimed_at) >= bindparam("since")))
    before = or_(_rank(o) < _rank(OB), and_(_rank(o) == _rank(OB), col(o.id) < col(OB.id)))
    return ~exists().where(col(o.channel) == col(OB.channel))\
        .where(col(o.address) == col(OB.address)).where(col(o.id) != col(OB.id))\
        .where(pending).where(before)


async def claim_due(
    session: AsyncSession,
    *,
    now: datetime,
    token: str,
    limit: int,
    lane: Lane | None = None,
    addresses: Sequence[tuple[str, str]] | None = None,
    lease: timedelta = timedelta(minutes=2),
) -> Claimed:
    """Claim up to `limit` due queued rows of a lane, most urgent first, one per address.

    The due rows are read first: most claims (a loop woken by every write, the webhook's
    fast path racing it) find nothing, and then nothing is written, so no write lock is
    taken. On PostgreSQL the ids are read with `LIMIT ... FOR UPDATE SKIP LOCKED` and then
    updated by id, so a claim takes at most its limit whatever plan the planner picks and
    several workers share the queue without waiting on each other. On SQLite one UPDATE then
    chooses and takes the rows under the database write lock, so two claimers can never take
    the same row or two rows to one address. The statements are built once and reused with
    parameters (a claim's SQL is large; building and keying it each time cost more than
    running it).
    """
    if addresses is not None and not addresses:
        return Claimed()
    pg = is_postgres(session)
    params: dict[str, Any] = {"now": now, "since": now - lease, "limit": limit,
                              "token": token}
    if addresses is not None:
        params["channels"] = sorted({c for c, _ in addresses})
        params["addresses"] = sorted({a for _, a in addresses})
    by_address = addresses is not None
    looked = (await run(session, _claim_look(lane, by_address, pg), params)).all()
    chosen = [row[0] for row in looked]
    if not chosen:
        return Claimed()
    if pg:
        taken = await session.exec(_claim_by_id(), params={**params, "ids": chosen},
                                   execution_options=_AS_CLAIMED)
    else:
        taken = await session.exec(_claim_update(lane, by_address), params=params,
                                   execution_options=_AS_CLAIMED)
    # The UPDATE returns the rows as it left them, in no set order: most urgent first.
    claimed = Claimed(sorted(taken.scalars().all(),
                             key=lambda r: (r.priority, r.due_at, r.id or 0)))
    claimed.behind = any(row[1] for row in looked)
    return claimed


class Claimed(list[OutboundMessage]):
    """The rows a claim took, most urgent first; `behind`: whether another due row to one
    of their addresses was waiting then (it may go once that address's claimed row has)."""

    behind: bool = False


# A row the session already holds is refreshed from what the claim returned.
_AS_CLAIMED = {"populate_existing": True}


@functools.cache
def _claim_ids(lane: Lane | None, by_address: bool, for_update: bool) -> Any:
    """Return the SELECT of claimable ids (parameters: now, since, limit, and with
    `by_address` the channels and addresses of the fast path's replies)."""
    inner = (select(OB.id).where(col(OB.status) == OutboxStatus.QUEUED)
             .where(col(OB.due_at) <= bindparam("now")).where(lane_filter(lane))
             .where(_head_of_line()))
    if by_address:
        # Their channels and their addresses: a reply to (sms, A) and one to (telegram, B)
        # may also let an urgent row to (sms, B) go, which is due anyway.
        inner = (inner.where(col(OB.channel).in_(bindparam("channels", expanding=True)))
                 .where(col(OB.address).in_(bindparam("addresses", expanding=True))))
    inner = (inner.order_by(col(OB.priority), col(OB.due_at), col(OB.id))
             .limit(bindparam("limit", type_=Integer)))
    return inner.with_for_update(skip_locked=True) if for_update else inner


@functools.cache
def _claim_look(lane: Lane | None, by_address: bool, for_update: bool) -> Any:
    """Return the look before a claim: the claimable ids, each with whether another due
    queued row to its address waits behind it."""
    later = _LATER
    behind = exists().where(col(later.channel) == col(OB.channel))\
        .where(col(later.address) == col(OB.address)).where(col(later.id) != col(OB.id))\
        .where(col(later.status) == OutboxStatus.QUEUED)\
        .where(col(later.due_at) <= bindparam("now"))
    return _claim_ids(lane, by_address, for_update).add_columns(behind.label("behind"))


def _claiming() -> Any:
    """Return the UPDATE that takes rows and returns them taken (parameters: now, token)."""
    return (update(OB).execution_options(synchronize_session=False)
            .values(status=OutboxStatus.SENDING, claimed_at=bindparam("now"),
                    claim_token=bindparam("token"), inflight_at=None,
                    updated_at=bindparam("now"))
            .returning(OB))


@functools.cache
def _claim_update(lane: Lane | None, by_address: bool) -> Any:
    """Return SQLite's claim: one UPDATE that chooses the rows and takes them."""
    inner = _claim_ids(lane, by_address, False)
    # The rows are chosen queued inside the statement, under the write lock: a status test
    # out here too would make SQLite walk every queued row (days of planned reminders)
    # rather than look the chosen ids up.
    return _claiming().where(col(OB.id).in_(inner.scalar_subquery()))


@functools.cache
def _claim_by_id() -> Any:
    """Return PostgreSQL's claim of the ids it has locked (parameter: ids)."""
    return (_claiming().where(col(OB.id).in_(bindparam("ids", expanding=True)))
            .where(col(OB.status) == OutboxStatus.QUEUED))


@dataclass(frozen=True)
class Recipient:
    """What the dispatcher's screen needs of a claimed row's person and address."""

    status: str | None  # the participant's; None when the row has no participant
    timezone: str | None
    quiet_start_hour: int
    quiet_end_hour: int
    identity: str | None  # the address's identity status; None when it has none


async def recipients_of(session: AsyncSession, ids: Sequence[int]) -> dict[int, Recipient]:
    """Return, for claimed row ids, their person's status and quiet hours and their
    address's status: one Core statement (two ORM reads of whole rows cost four times as
    much, and opened every sealed name and number for nothing)."""
    if not ids:
        return {}
    rows = await run(session, _recipients(), {"ids": list(ids)})
    return {row[0]: Recipient(*row[1:]) for row in rows.all()}


@functools.cache
def _recipients() -> Any:
    ob: Any = OB.__table__  # type: ignore[attr-defined]
    person: Any = Participant.__table__  # type: ignore[attr-defined]
    identity: Any = ChannelIdentity.__table__  # type: ignore[attr-defined]
    joined = ob.outerjoin(person, person.c.id == ob.c.participant_id).outerjoin(
        identity, and_(identity.c.channel == ob.c.channel, identity.c.address == ob.c.address))
    return (core_select(ob.c.id, person.c.status, person.c.timezone, person.c.quiet_start_hour,
                        person.c.quiet_end_hour, identity.c.status.label("identity_status"))
            .select_from(joined).where(ob.c.id.in_(bindparam("ids", expanding=True))))
