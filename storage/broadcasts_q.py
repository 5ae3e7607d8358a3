"""Queries behind the broadcast pages: which broadcasts a staff member may see, the counts of
each, and who to ring (the people whose message failed, with their Champion's prison).

The broadcast scope rule lives here and only here: an admin sees every broadcast, a
coordinator those sent from their own region (the `region` the row was sent with, any case),
anyone else none. Which failed people may be named follows `staff_q.participant_scope`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, func, true
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    Broadcast,
    OutboundMessage,
    OutboxStatus,
    Participant,
    Prison,
    StaffRole,
    StaffUser,
)
from storage.staff_q import participant_scope

OB = OutboundMessage
# The outcomes that mean the person did not get the message and someone should ring them.
NOT_RECEIVED = (OutboxStatus.FAILED, OutboxStatus.EXPIRED)


def broadcast_scope(staff: StaffUser) -> ColumnElement[bool]:
    """Return the WHERE clause choosing the broadcasts this staff member may see."""
    if staff.role == StaffRole.ADMIN:
        return true()
    region = (staff.region or "").strip().lower()
    if staff.role != StaffRole.COORDINATOR or not region:
        return false()
    return func.lower(func.trim(Broadcast.region)) == region


async def status_counts(
    session: AsyncSession, broadcast_ids: list[int]
) -> dict[int, dict[str, int]]:
    """Return how many of each broadcast's messages are in each outbox status."""
    if not broadcast_ids:
        return {}
    rows = await session.exec(
        select(OB.broadcast_id, OB.status, func.count())
        .where(col(OB.broadcast_id).in_(broadcast_ids))
        .group_by(col(OB.broadcast_id), col(OB.status)))
    found: dict[int, dict[str, int]] = {i: {} for i in broadcast_ids}
    for bid, status, n in rows.all():
        if bid is not None:
            found[bid][str(status)] = found[bid].get(str(status), 0) + int(n)
    return found


async def broadcasts_for_staff(
    session: AsyncSession, staff: StaffUser, *, limit: int = 200
) -> list[tuple[Broadcast, dict[str, int]]]:
    """Return the broadcasts this staff member may see, newest first, with status counts."""
    rows = await session.exec(
        select(Broadcast).where(broadcast_scope(staff))
        .order_by(col(Broadcast.created_at).desc(), col(Broadcast.id).desc()).limit(limit))
    found = list(rows.all())
    counts = await status_counts(session, [b.id for b in found if b.id is not None])
    return [(b, counts.get(b.id or 0, {})) for b in found]


async def broadcast_for_staff(
    session: AsyncSession, staff: StaffUser, broadcast_id: int
) -> Broadcast | None:
    """Return the broadcast if this staff member may see it, else None (the page's 404)."""
    found = await session.exec(select(Broadcast).where(
        col(Broadcast.id) == broadcast_id, broadcast_scope(staff)))
    return found.first()


@dataclass(frozen=True)
class FailedRecipient:
    """One person a broadcast did not reach: who, their Champion's prison, how and why."""

    participant: Participant
    prison: str | None
    channel: str
    status: str  # failed or expired
    error: str | None


async def who_to_ring(
    session: AsyncSession, staff: StaffUser, broadcast_id: int
) -> tuple[list[FailedRecipient], int]:
    """Return the people whose message failed that this staff member may see, by prison and
    id, and how many more failed who are outside their scope (counted, never named)."""
    failed = col(OB.status).in_([str(s) for s in NOT_RECEIVED])
    rows = await session.exec(
        select(OB, Participant, Prison.name)
        .join(Participant, col(Participant.id) == col(OB.participant_id))
        .join(Prison, col(Prison.id) == col(Participant.prison_id), isouter=True)
        .where(col(OB.broadcast_id) == broadcast_id, failed, participant_scope(staff))
        .order_by(col(Prison.name), col(Participant.id)))
    shown = [FailedRecipient(p, prison, str(m.channel), str(m.status), m.error)
             for m, p, prison in rows.all()]
    total = await session.exec(
        select(func.count()).select_from(OB)
        .where(col(OB.broadcast_id) == broadcast_id, failed))
    return shown, max(0, int(total.one()) - len(shown))


async def failed_by_prison(
    session: AsyncSession, broadcast_id: int, *, leave_out: list[int]
) -> list[tuple[str | None, int]]:
    """Return how many people's message failed per Champion's prison (named or not), for
    everyone but `leave_out` (the people already shown by name), most first."""
    failed = col(OB.status).in_([str(s) for s in NOT_RECEIVED])
    rows = await session.exec(
        select(Prison.name, func.count())
        .select_from(OB)
        .join(Participant, col(Participant.id) == col(OB.participant_id))
        .join(Prison, col(Prison.id) == col(Participant.prison_id), isouter=True)
        .where(col(OB.broadcast_id) == broadcast_id, failed,
               col(Participant.id).not_in(leave_out or [-1]))
        .group_by(col(Prison.name)))
    return sorted(((name, int(n)) for name, n in rows.all()), key=lambda x: (-x[1], x[0] or ""))
