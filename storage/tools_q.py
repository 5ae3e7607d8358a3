"""Queries for the SMART tools: urge logs, CBAs, check-ins, and the plan a person sees."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    AftercarePlan,
    Appointment,
    ChannelIdentity,
    CheckIn,
    InboundMessage,
    KeyContact,
    MeetingSubscription,
    OutboundMessage,
    OutboxStatus,
    ToolEntry,
    ToolKind,
)


async def latest_entry(
    session: AsyncSession, participant_id: int, kind: ToolKind
) -> ToolEntry | None:
    """Return a participant's newest tool entry of one kind."""
    return (
        await session.exec(
            select(ToolEntry)
            .where(ToolEntry.participant_id == participant_id)
            .where(ToolEntry.kind == kind)
            .order_by(col(ToolEntry.updated_at).desc(), col(ToolEntry.id).desc())
        )
    ).first()


async def save_entry(
    session: AsyncSession,
    *,
    participant_id: int,
    kind: ToolKind,
    data: dict[str, Any],
    now: datetime,
    entry_id: int | None = None,
) -> ToolEntry:
    """Create a tool entry, or replace the data of the one with `entry_id`; return it."""
    entry = await session.get(ToolEntry, entry_id) if entry_id else None
    if entry is None or entry.participant_id != participant_id:
        entry = ToolEntry(participant_id=participant_id, kind=kind, data=data, created_at=now,
                          updated_at=now)
    else:
        entry.data = data
        entry.updated_at = now
    session.add(entry)
    await session.flush()
    return entry


async def add_checkin(
    session: AsyncSession,
    *,
    participant_id: int,
    mood: int | None,
    craving: int | None,
    note: str | None,
    now: datetime,
) -> CheckIn:
    """Record one check-in."""
    row = CheckIn(participant_id=participant_id, at=now, mood=mood, craving=craving, note=note)
    session.add(row)
    await session.flush()
    return row


async def checkins_between(
    session: AsyncSession, participant_id: int, *, start: datetime, end: datetime
) -> list[CheckIn]:
    """Return a participant's check-ins with start <= at < end, oldest first."""
    rows = await session.exec(
        select(CheckIn)
        .where(CheckIn.participant_id == participant_id)
        .where(col(CheckIn.at) >= start)
        .where(col(CheckIn.at) < end)
        .order_by(col(CheckIn.at), col(CheckIn.id))
    )
    return list(rows.all())


async def last_checkin_before(
    session: AsyncSession, participant_id: int, *, before: datetime
) -> CheckIn | None:
    """Return the newest check-in strictly before a time."""
    return (
        await session.exec(
            select(CheckIn)
            .where(CheckIn.participant_id == participant_id)
            .where(col(CheckIn.at) < before)
            .order_by(col(CheckIn.at).desc(), col(CheckIn.id).desc())
        )
    ).first()


async def plan_goals(session: AsyncSession, participant_id: int) -> list[str]:
    """Return the goals in a participant's aftercare plan."""
    plan = (
        await session.exec(select(AftercarePlan).where(AftercarePlan.participant_id
                                                       == participant_id))
    ).first()
    return list(plan.goals or []) if plan else []


async def upcoming_appointments(
    session: AsyncSession, participant_id: int, *, now: datetime, limit: int = 3
) -> list[Appointment]:
    """Return the next appointments that are not cancelled, soonest first."""
    rows = await session.exec(
        select(Appointment)
        .where(Appointment.participant_id == participant_id)
        .where(col(Appointment.starts_at) >= now)
        .where(col(Appointment.cancelled).is_(False))
        .order_by(col(Appointment.starts_at))
        .limit(limit)
    )
    return list(rows.all())


async def key_contacts(session: AsyncSession, participant_id: int) -> list[KeyContact]:
    """Return a participant's key contacts."""
    rows = await session.exec(
        select(KeyContact).where(KeyContact.participant_id == participant_id)
        .order_by(col(KeyContact.id))
    )
    return list(rows.all())


async def cancel_queued_key(
    session: AsyncSession, *, dedupe_key: str, reason: str, now: datetime
) -> bool:
    """Cancel one queued outbox row by its dedupe key; say whether it was still queued."""
    row = (
        await session.exec(select(OutboundMessage).where(OutboundMessage.dedupe_key == dedupe_key))
    ).first()
    if row is None or row.status != OutboxStatus.QUEUED:
        return False
    row.status = OutboxStatus.CANCELLED
    row.error = reason
    row.updated_at = now
    session.add(row)
    return True


async def _count(session: AsyncSession, model: Any, participant_id: int, *extra: Any) -> int:
    query = select(func.count()).select_from(model).where(model.participant_id == participant_id)
    for condition in extra:
        query = query.where(condition)
    return int((await session.exec(query)).one())


async def data_counts(session: AsyncSession, participant_id: int) -> dict[str, int]:
    """Count what is stored about a participant, for MYDATA."""
    return {
        "identities": await _count(session, ChannelIdentity, participant_id),
        "messages_in": await _count(session, InboundMessage, participant_id),
        "messages_out": await _count(session, OutboundMessage, participant_id),
        "urges": await _count(session, ToolEntry, participant_id, ToolEntry.kind == ToolKind.URGE),
        "cbas": await _count(session, ToolEntry, participant_id, ToolEntry.kind == ToolKind.CBA),
        "checkins": await _count(session, CheckIn, participant_id),
        "meetings": await _count(session, MeetingSubscription, participant_id),
        "appointments": await _count(session, Appointment, participant_id),
        "contacts": await _count(session, KeyContact, participant_id),
    }
