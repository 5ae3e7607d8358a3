"""Queries behind what a participant reads about meetings: their choices, and dropping one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import MeetingSubscription, MessageKind, OutboundMessage, OutboxStatus
from storage.scheduling import cancel_queued


async def chosen_ids(session: AsyncSession, participant_id: int) -> set[int]:
    """Return the ids of the meetings a participant chose."""
    rows = await session.exec(
        select(MeetingSubscription.meeting_id)
        .where(MeetingSubscription.participant_id == participant_id))
    return set(rows.all())


async def unsubscribe(
    session: AsyncSession, *, participant_id: int, meeting_ids: Sequence[int], now: datetime
) -> int:
    """Drop a participant's choice of these meetings and their queued reminders; say how many."""
    subs = (await session.exec(
        select(MeetingSubscription)
        .where(MeetingSubscription.participant_id == participant_id)
        .where(col(MeetingSubscription.meeting_id).in_(list(meeting_ids))))).all()
    for sub in subs:
        await session.delete(sub)
    queued = (await session.exec(
        select(OutboundMessage)
        .where(OutboundMessage.participant_id == participant_id)
        .where(col(OutboundMessage.meeting_id).in_(list(meeting_ids)))
        .where(col(OutboundMessage.kind) == str(MessageKind.REMINDER))
        .where(col(OutboundMessage.status) == str(OutboxStatus.QUEUED)))).all()
    await cancel_queued(session, queued, reason="meeting no longer chosen", now=now)
    await session.flush()
    return len(subs)
