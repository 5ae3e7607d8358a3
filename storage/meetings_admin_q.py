"""Queries behind the coordinators' meeting pages: search, who chose each meeting, its audit
rows."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    AuditEvent,
    Meeting,
    MeetingSubscription,
    Participant,
    ParticipantStatus,
)

IN_CLAUSE_CHUNK = 500  # keep IN (...) lists well under every driver's parameter limit
PEOPLE_WITH_DATA = (ParticipantStatus.ENROLLED, ParticipantStatus.ACTIVE,
                    ParticipantStatus.STOPPED)


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def matching_meeting_ids(session: AsyncSession, query: str) -> set[int]:
    """Return the ids of meetings whose name, town, venue, address or postcode holds `query`
    (any case; a postcode matches with or without its space)."""
    words = " ".join(query.lower().split())
    squashed = words.replace(" ", "")
    if not squashed:
        return set()
    pattern, postcode = f"%{_escaped(words)}%", f"%{_escaped(squashed)}%"
    fields = (Meeting.name, Meeting.region, Meeting.venue, Meeting.address, Meeting.district)
    rows = await session.exec(select(Meeting.id).where(or_(
        *(func.lower(col(f)).like(pattern, escape="\\") for f in fields),
        func.lower(func.replace(col(Meeting.postcode), " ", "")).like(postcode,
                                                                      escape="\\"))))
    return {mid for mid in rows.all() if mid is not None}


async def subscriber_counts(session: AsyncSession, meeting_ids: Sequence[int]) -> dict[int, int]:
    """Return meeting id -> how many people (not erased) chose it; unchosen ones are left out."""
    counts: dict[int, int] = {}
    ids = list(meeting_ids)
    for start in range(0, len(ids), IN_CLAUSE_CHUNK):
        chunk = ids[start : start + IN_CLAUSE_CHUNK]
        rows = await session.exec(
            select(MeetingSubscription.meeting_id, func.count(col(MeetingSubscription.id)))
            .join(Participant, col(Participant.id) == col(MeetingSubscription.participant_id))
            .where(col(MeetingSubscription.meeting_id).in_(chunk))
            .where(col(Participant.status).in_([s.value for s in PEOPLE_WITH_DATA]))
            .group_by(col(MeetingSubscription.meeting_id)))
        counts.update(dict(rows.all()))
    return counts


async def meeting_actions(session: AsyncSession, meeting_id: int, *, limit: int = 20
                          ) -> list[AuditEvent]:
    """Return the latest staff actions recorded against one meeting, newest first."""
    rows = await session.exec(
        select(AuditEvent)
        .where(col(AuditEvent.action).startswith("meeting_"))
        .where(col(AuditEvent.actor).startswith("staff:"))
        .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
        .limit(500))
    found = [e for e in rows.all() if (e.detail or {}).get("meeting_id") == meeting_id]
    return found[:limit]
