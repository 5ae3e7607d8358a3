"""Queries about the meetings a participant chose."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Meeting, MeetingSubscription


async def subscribe(
    session: AsyncSession, *, participant_id: int, meeting_id: int, now: datetime
) -> MeetingSubscription:
    """Record that a participant chose a meeting (once)."""
    existing = (
        await session.exec(
            select(MeetingSubscription)
            .where(MeetingSubscription.participant_id == participant_id)
            .where(MeetingSubscription.meeting_id == meeting_id)
        )
    ).first()
    if existing is not None:
        return existing
    sub = MeetingSubscription(participant_id=participant_id, meeting_id=meeting_id,
                              created_at=now)
    session.add(sub)
    await session.flush()
    return sub


async def chosen_meetings(session: AsyncSession, participant_id: int) -> list[Meeting]:
    """Return the meetings a participant chose."""
    rows = await session.exec(
        select(Meeting)
        .join(MeetingSubscription, MeetingSubscription.meeting_id == Meeting.id)  # type: ignore[arg-type]
        .where(MeetingSubscription.participant_id == participant_id)
    )
    return list(rows.all())
