"""Queries for the engagement reports: the facts about each participant in a scope.

The caller passes the scope (`storage.staff_q.participant_scope` or `cohort_scope`); people
whose data was erased are left out (their identities and messages are gone). A handful of
grouped queries, whatever the number of people: no query per participant.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    AttendanceOutcome,
    AttendanceRecord,
    ChannelIdentity,
    CrisisEvent,
    IdentityStatus,
    InboundMessage,
    Participant,
    ParticipantStatus,
)


@dataclass(frozen=True)
class ParticipantFacts:
    """What the reports know about one participant (times are UTC)."""

    participant_id: int
    display_name: str
    release_date: date
    released_at: datetime | None  # when they walked out, once a Champion records it
    timezone: str  # their zone: the release day begins at 00:00 there
    sessions: int  # meetings they said they went to (WENT)
    hours: float  # the hours of those meetings
    review_consent: bool  # may staff see that a crisis reply was sent?
    channels: tuple[str, ...]  # channels with an identity that still reaches them
    first_linked_at: datetime | None  # when they first linked, however that identity is now
    last_contact: datetime | None  # when they last sent a message
    attended: tuple[datetime, ...]  # when the meetings they went to began, oldest first
    open_crises: int  # crisis events nobody has reviewed (always 0 without consent)


def _in(scope: ColumnElement[bool]) -> ColumnElement[bool]:
    return and_(scope, col(Participant.status) != ParticipantStatus.DELETED)


async def _identities(
    session: AsyncSession, where: ColumnElement[bool]
) -> tuple[dict[int, set[str]], dict[int, datetime]]:
    """Return each participant's reachable channels and first link time."""
    rows = await session.exec(
        select(ChannelIdentity.participant_id, ChannelIdentity.channel, ChannelIdentity.status,
               ChannelIdentity.linked_at)
        .join(Participant, col(Participant.id) == col(ChannelIdentity.participant_id))
        .where(where))
    channels: dict[int, set[str]] = defaultdict(set)
    first: dict[int, datetime] = {}
    for pid, channel, status, linked_at in rows.all():
        if status == IdentityStatus.ACTIVE:
            channels[pid].add(str(channel))
        first[pid] = min(first.get(pid, linked_at), linked_at)
    return channels, first


async def _last_contact(session: AsyncSession, where: ColumnElement[bool]) -> dict[int, datetime]:
    """Return when each participant last sent a message."""
    rows = await session.exec(
        select(InboundMessage.participant_id, func.max(InboundMessage.received_at))
        .join(Participant, col(Participant.id) == col(InboundMessage.participant_id))
        .where(where).group_by(col(InboundMessage.participant_id)))
    return {pid: at for pid, at in rows.all() if pid is not None and at is not None}


async def _attended(
    session: AsyncSession, where: ColumnElement[bool]
) -> dict[int, list[datetime]]:
    """Return when each meeting a participant went to began (or was reported, if unknown)."""
    rows = await session.exec(
        select(AttendanceRecord.participant_id, AttendanceRecord.occurrence_start,
               AttendanceRecord.reported_at)
        .join(Participant, col(Participant.id) == col(AttendanceRecord.participant_id))
        .where(where, col(AttendanceRecord.outcome) == AttendanceOutcome.ATTENDED))
    went: dict[int, list[datetime]] = defaultdict(list)
    for pid, began, reported in rows.all():
        if pid is not None:
            went[pid].append(began or reported)
    return went


async def _open_crises(session: AsyncSession, where: ColumnElement[bool]) -> dict[int, int]:
    """Count unreviewed crisis events, only for people who agreed that staff may see them."""
    rows = await session.exec(
        select(CrisisEvent.participant_id, func.count())
        .join(Participant, col(Participant.id) == col(CrisisEvent.participant_id))
        .where(where, col(Participant.staff_review_consent).is_(True),
               col(CrisisEvent.reviewed_at).is_(None))
        .group_by(col(CrisisEvent.participant_id)))
    return {pid: int(n) for pid, n in rows.all() if pid is not None}


async def participant_facts(
    session: AsyncSession, *, scope: ColumnElement[bool]
) -> list[ParticipantFacts]:
    """Return the report facts for every participant in `scope`, by release date then id."""
    where = _in(scope)
    people = (await session.exec(select(Participant).where(where).order_by(
        col(Participant.release_date), col(Participant.id)))).all()
    channels, first_linked = await _identities(session, where)
    last = await _last_contact(session, where)
    went = await _attended(session, where)
    crises = await _open_crises(session, where)
    facts: list[ParticipantFacts] = []
    for p in people:
        pid = p.id or 0
        facts.append(ParticipantFacts(
            participant_id=pid, display_name=p.display_name, release_date=p.release_date,
            released_at=p.released_at, timezone=p.timezone, sessions=p.sessions_count,
            hours=p.hours_total,
            review_consent=p.staff_review_consent, channels=tuple(sorted(channels[pid])),
            first_linked_at=first_linked.get(pid), last_contact=last.get(pid),
            attended=tuple(sorted(went[pid])), open_crises=crises.get(pid, 0)))
    return facts
