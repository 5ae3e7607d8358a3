"""The audit trail of staff actions: who did what to whose data, and when."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AuditEvent


def staff_actor(staff_id: int) -> str:
    """Return the audit actor for a staff member, e.g. `staff:3`."""
    return f"staff:{staff_id}"


async def record_staff_action(
    session: AsyncSession,
    *,
    staff_id: int,
    action: str,
    now: datetime,
    participant_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one audit row for a staff action (never message bodies or phone numbers)."""
    event = AuditEvent(at=now, actor=staff_actor(staff_id), action=action[:60],
                       participant_id=participant_id, detail=detail)
    session.add(event)
    await session.flush()
    return event


async def record_staff_reads(
    session: AsyncSession,
    *,
    staff_id: int,
    participant_ids: Iterable[int],
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> int:
    """Write a `participant_read` row for each participant a list or download showed."""
    events = [AuditEvent(at=now, actor=staff_actor(staff_id), action="participant_read",
                         participant_id=pid, detail=detail) for pid in participant_ids]
    session.add_all(events)
    await session.flush()
    return len(events)


async def staff_actions_for(session: AsyncSession, participant_id: int) -> list[AuditEvent]:
    """Return the staff actions on one participant's data, oldest first."""
    rows = await session.exec(
        select(AuditEvent)
        .where(col(AuditEvent.participant_id) == participant_id)
        .where(col(AuditEvent.actor).startswith("staff:"))
        .order_by(col(AuditEvent.at), col(AuditEvent.id)))
    return list(rows.all())


async def staff_actions_by(session: AsyncSession, staff_id: int) -> list[AuditEvent]:
    """Return everything one staff member did, oldest first."""
    rows = await session.exec(
        select(AuditEvent)
        .where(col(AuditEvent.actor) == staff_actor(staff_id))
        .order_by(col(AuditEvent.at), col(AuditEvent.id)))
    return list(rows.all())
