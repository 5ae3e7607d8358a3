"""Queries behind the staff's view of participants: the caseload, how each is reached (the
channels, never the addresses), and the audit trail of their record with who did what.

The caseload is filtered by `staff_q.participant_scope` (the one scope rule) and never by
names or numbers, which are to be sealed at rest: sorting by name happens after reading.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    AuditEvent,
    ChannelIdentity,
    IdentityStatus,
    Participant,
    ParticipantStatus,
    Prison,
    StaffUser,
)
from storage.staff_q import participant_scope

STAFF_ACTOR = "staff:"


@dataclass(frozen=True)
class CaseloadEntry:
    """One person on a caseload: their record, prison and linked channels."""

    participant: Participant
    prison: str | None
    channels: tuple[str, ...]  # channels linked and working, e.g. ("sms",)


async def working_channels(
    session: AsyncSession, participant_ids: list[int]
) -> dict[int, tuple[str, ...]]:
    """Return the channels each participant has linked and can be reached on."""
    if not participant_ids:
        return {}
    rows = await session.exec(
        select(ChannelIdentity.participant_id, ChannelIdentity.channel)
        .where(col(ChannelIdentity.participant_id).in_(participant_ids))
        .where(col(ChannelIdentity.status) == IdentityStatus.ACTIVE))
    found: dict[int, set[str]] = {}
    for pid, channel in rows.all():
        found.setdefault(pid, set()).add(str(channel))
    return {pid: tuple(sorted(channels)) for pid, channels in found.items()}


async def caseload(session: AsyncSession, staff: StaffUser) -> list[CaseloadEntry]:
    """Return the people this staff member may see (not erased), soonest release first."""
    rows = await session.exec(
        select(Participant, Prison.name)
        .join(Prison, col(Prison.id) == col(Participant.prison_id), isouter=True)
        .where(participant_scope(staff))
        .where(col(Participant.status) != ParticipantStatus.DELETED)
        .order_by(col(Participant.release_date), col(Participant.id)))
    found = list(rows.all())
    channels = await working_channels(session, [p.id for p, _ in found if p.id is not None])
    return [CaseloadEntry(p, prison, channels.get(p.id or 0, ())) for p, prison in found]


@dataclass(frozen=True)
class AuditLine:
    """One audit row about a participant, with the staff member's email if staff did it."""

    event: AuditEvent
    staff_email: str | None


async def audit_trail(
    session: AsyncSession, participant_id: int, *, limit: int = 200
) -> list[AuditLine]:
    """Return what was done to a participant's record and by whom, newest first."""
    events = list((await session.exec(
        select(AuditEvent).where(col(AuditEvent.participant_id) == participant_id)
        .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
        .limit(limit))).all())
    ids = {int(e.actor.removeprefix(STAFF_ACTOR)) for e in events
           if e.actor.startswith(STAFF_ACTOR) and e.actor.removeprefix(STAFF_ACTOR).isdigit()}
    emails: dict[int, str] = {}
    if ids:
        staff = await session.exec(select(StaffUser.id, StaffUser.email)
                                   .where(col(StaffUser.id).in_(sorted(ids))))
        emails = {sid: email for sid, email in staff.all() if sid is not None}
    lines = []
    for event in events:
        sid = event.actor.removeprefix(STAFF_ACTOR)
        email = emails.get(int(sid)) if event.actor.startswith(STAFF_ACTOR) and sid.isdigit() \
            else None
        lines.append(AuditLine(event, email))
    return lines


async def staff_email(session: AsyncSession, staff_id: int | None) -> str | None:
    """Return a staff member's email, or None."""
    if staff_id is None:
        return None
    user = await session.get(StaffUser, staff_id)
    return user.email if user else None
