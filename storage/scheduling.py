"""Queries for planning: who can be reached, what they chose, and what is already planned."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.dialect import insert_for, run
from storage.meetings_q import IN_CLAUSE_CHUNK
from storage.models import (
    Appointment,
    AttendanceRecord,
    AuditEvent,
    ChannelIdentity,
    IdentityStatus,
    Meeting,
    MeetingSubscription,
    MessageKind,
    OutboundMessage,
    OutboxStatus,
    Participant,
    ParticipantStatus,
)
from storage.notify import notify_outbox
from storage.outbox import enqueue
from storage.outbox_q import cancel_and_free
from storage.simulator_q import not_simulated

OB = OutboundMessage
DONE = (OutboxStatus.SENT, OutboxStatus.DELIVERED)


@dataclass(frozen=True)
class Recipient:
    """A participant who may be messaged, and where."""

    participant: Participant
    channel: str
    address: str


def pick_identity(p: Participant, identities: list[ChannelIdentity]) -> ChannelIdentity | None:
    """Return the working identity on the preferred channel, else any working one."""
    working = [i for i in identities if i.status == IdentityStatus.ACTIVE]
    preferred = [i for i in working if i.channel == p.preferred_channel]
    if preferred:
        return preferred[0]
    return working[0] if working else None


async def recipients(
    session: AsyncSession, participant_ids: list[int] | None = None
) -> dict[int, Recipient]:
    """Return every active, consenting participant with a working identity, by id."""
    query = (
        select(Participant)
        .where(col(Participant.status) == ParticipantStatus.ACTIVE)
        .where(col(Participant.consent_at).is_not(None))
        .where(not_simulated())  # the staff simulator's people get nothing planned or broadcast
    )
    if participant_ids is not None:
        query = query.where(col(Participant.id).in_(participant_ids))
    people = {p.id: p for p in (await session.exec(query)).all() if p.id is not None}
    if not people:
        return {}
    found: dict[int, list[ChannelIdentity]] = {}
    rows = await session.exec(
        select(ChannelIdentity).where(col(ChannelIdentity.participant_id).in_(list(people)))
    )
    for identity in rows.all():
        found.setdefault(identity.participant_id, []).append(identity)
    out = {}
    for pid, person in people.items():
        chosen = pick_identity(person, found.get(pid, []))
        if chosen is not None:
            out[pid] = Recipient(person, str(chosen.channel), chosen.address)
    return out


async def subscriptions(
    session: AsyncSession, *, meeting_id: int | None = None
) -> list[tuple[int, Meeting]]:
    """Return every (participant id, chosen meeting) pair, or those of one meeting."""
    query = (select(MeetingSubscription.participant_id, Meeting)
             .join(Meeting, col(Meeting.id) == col(MeetingSubscription.meeting_id)))
    if meeting_id is not None:
        query = query.where(col(MeetingSubscription.meeting_id) == meeting_id)
    rows = await session.exec(query)
    return [(pid, m) for pid, m in rows.all()]


async def upcoming_appointments(
    session: AsyncSession, *, start: datetime, end: datetime
) -> list[Appointment]:
    """Return appointments starting between `start` and `end`, cancelled ones included."""
    rows = await session.exec(
        select(Appointment)
        .where(col(Appointment.starts_at) > start)
        .where(col(Appointment.starts_at) <= end)
    )
    return list(rows.all())


async def queued(
    session: AsyncSession, *, kinds: tuple[MessageKind, ...], key_prefix: str
) -> list[OutboundMessage]:
    """Return queued rows of these kinds whose dedupe key starts with `key_prefix`."""
    rows = await session.exec(
        select(OB)
        .where(col(OB.status) == OutboxStatus.QUEUED)
        .where(col(OB.kind).in_([str(k) for k in kinds]))
        .where(col(OB.dedupe_key).startswith(key_prefix))
    )
    return list(rows.all())


async def sent_since(
    session: AsyncSession, *, kind: MessageKind, key_prefix: str, since: datetime
) -> list[OutboundMessage]:
    """Return rows of `kind` sent since `since` whose key starts with `key_prefix`."""
    rows = await session.exec(
        select(OB)
        .where(col(OB.status).in_([str(s) for s in DONE]))
        .where(col(OB.kind) == str(kind))
        .where(col(OB.dedupe_key).startswith(key_prefix))
        .where(col(OB.sent_at) >= since)
    )
    return list(rows.all())


def plan_is_current(
    *, status: str, meta: dict[str, Any] | None, body: str, due_at: datetime,
    want_body: str | None,
) -> bool:
    """Say whether a row needs no change for this plan: it has left the queue, or matches."""
    if status != OutboxStatus.QUEUED:
        return True
    return (meta or {}).get("planned") == due_at.isoformat() and body == want_body


async def plan_message(
    session: AsyncSession, *, dedupe_key: str, due_at: datetime, now: datetime, **values: Any
) -> str:
    """Write a planned message, or move it if still queued and its plan changed.

    Return "added", "moved" or "kept". The planned due time is kept in meta["planned"], so a
    row deferred by quiet hours is not dragged back by the next planning pass.
    """
    planned = due_at.isoformat()
    meta = {**(values.pop("meta", None) or {}), "planned": planned}
    if await enqueue(session, dedupe_key=dedupe_key, due_at=due_at, now=now, meta=meta,
                     **values):
        return "added"
    row = (await session.exec(select(OB).where(OB.dedupe_key == dedupe_key))).first()
    if row is None or plan_is_current(status=row.status, meta=row.meta, body=row.body,
                                      due_at=due_at, want_body=values.get("body")):
        return "kept"
    row.due_at, row.meta, row.updated_at = due_at, meta, now
    row.not_after = values.get("not_after", row.not_after)
    row.body = values.get("body", row.body)
    session.add(row)
    return "moved"


# What enqueue writes when a caller leaves a column out.
_ROW_DEFAULTS: dict[str, Any] = {
    "participant_id": None, "choices": None, "request_location": False, "not_after": None,
    "meeting_id": None, "appointment_id": None, "broadcast_id": None,
}


async def add_planned(session: AsyncSession, plans: Sequence[dict[str, Any]]) -> set[str]:
    """Add planned messages (plan_message's arguments) in one statement; return keys added.

    A key already taken is skipped, as plan_message would skip adding it; the caller
    passes those to plan_message to move them if they need it.
    """
    if not plans:
        return set()
    rows = []
    for plan in plans:
        values = {**_ROW_DEFAULTS, **plan}
        now, due_at = values.pop("now"), values["due_at"]
        rows.append({**values, "kind": str(values["kind"]), "status": str(OutboxStatus.QUEUED),
                     "attempts": 0, "created_at": now, "updated_at": now,
                     "meta": {**(values.get("meta") or {}), "planned": due_at.isoformat()}})
    table: Any = OB.__table__  # type: ignore[attr-defined]
    insert = insert_for(session)
    stmt = insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"]) \
        .returning(table.c.dedupe_key)
    added = {key for (key,) in (await run(session, stmt, rows)).all()}
    if added:
        await notify_outbox(session)
    return added


async def planned_rows(
    session: AsyncSession, keys: Sequence[str]
) -> dict[str, tuple[str, dict[str, Any] | None, str]]:
    """Return (status, meta, body) of the rows holding any of these dedupe keys, by key."""
    found: dict[str, tuple[str, dict[str, Any] | None, str]] = {}
    for start in range(0, len(keys), IN_CLAUSE_CHUNK):
        rows = await session.exec(
            select(OB.dedupe_key, OB.status, OB.meta, OB.body)
            .where(col(OB.dedupe_key).in_(keys[start : start + IN_CLAUSE_CHUNK])))
        found.update({key: (str(status), dict(meta) if meta else None, body)
                      for key, status, meta, body in rows.all()})
    return found


async def cancel_queued(
    session: AsyncSession, rows: Sequence[OutboundMessage], *, reason: str, now: datetime
) -> int:
    """Cancel rows read earlier that are still queued, freeing their keys; say how many.

    Each UPDATE re-checks the row is still queued, so a row a dispatcher claimed (or a STOP
    cancelled) since it was read is left alone.
    """
    count = 0
    for row in rows:
        result = await session.exec(
            update(OB).execution_options(synchronize_session=False)
            .where(col(OB.id) == row.id).where(col(OB.status) == OutboxStatus.QUEUED)
            .values(status=OutboxStatus.CANCELLED, error=reason[:300], updated_at=now,
                    dedupe_key=f"{row.dedupe_key}#x{row.id}"[:200])
        )
        count += int(result.rowcount or 0)
    return count


async def cancel_reminders_for(
    session: AsyncSession, *, participant_id: int, keep_offsets: list[int], now: datetime
) -> int:
    """Cancel a person's queued meeting reminders whose offset they no longer want."""
    rows = await queued(session, kinds=(MessageKind.REMINDER,), key_prefix="rem:")
    drop = [r for r in rows if r.participant_id == participant_id
            and (r.meta or {}).get("offset") not in keep_offsets]
    return await cancel_and_free(session, drop, reason="reminder choice changed", now=now)


async def latest_followup(
    session: AsyncSession, *, participant_id: int, now: datetime
) -> OutboundMessage | None:
    """Return the newest "did you make it?" sent to this person in the last week."""
    rows = await session.exec(
        select(OB)
        .where(OB.participant_id == participant_id)
        .where(col(OB.kind) == str(MessageKind.FOLLOWUP))
        .where(col(OB.status).in_([str(s) for s in DONE]))
        .where(col(OB.sent_at) >= now - timedelta(days=7))
        .order_by(col(OB.sent_at).desc())
        .limit(1)
    )
    return rows.first()


async def attendance_for(
    session: AsyncSession, *, participant_id: int, meeting_id: int, occurrence: datetime
) -> AttendanceRecord | None:
    """Return the answer already given for one meeting occurrence, if any."""
    rows = await session.exec(
        select(AttendanceRecord)
        .where(AttendanceRecord.participant_id == participant_id)
        .where(AttendanceRecord.meeting_id == meeting_id)
        .where(AttendanceRecord.occurrence_start == occurrence)
    )
    return rows.first()


async def meeting_by_slug(session: AsyncSession, slug: str) -> Meeting | None:
    """Return the meeting with this slug."""
    return (await session.exec(select(Meeting).where(Meeting.slug == slug))).first()


async def subscriber_ids(session: AsyncSession, meeting_id: int) -> list[int]:
    """Return the ids of participants who chose a meeting."""
    rows = await session.exec(
        select(MeetingSubscription.participant_id)
        .where(MeetingSubscription.meeting_id == meeting_id)
    )
    return list(rows.all())


async def located_participants(session: AsyncSession) -> list[tuple[int, float, float]]:
    """Return (id, lat, lon) of active participants whose release area is known."""
    rows = await session.exec(
        select(Participant.id, Participant.release_lat, Participant.release_lon)
        .where(col(Participant.status) == ParticipantStatus.ACTIVE)
        .where(col(Participant.release_lat).is_not(None))
        .where(col(Participant.release_lon).is_not(None))
    )
    return [(i, la, lo) for i, la, lo in rows.all()
            if i is not None and la is not None and lo is not None]


async def list_outbox(
    session: AsyncSession,
    *,
    participant_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[OutboundMessage]:
    """Return outbox rows, newest first, optionally for one participant or status."""
    query = select(OB)
    if participant_id is not None:
        query = query.where(OB.participant_id == participant_id)
    if status is not None:
        query = query.where(OB.status == status)
    query = query.order_by(col(OB.id).desc()).limit(limit)
    return list((await session.exec(query)).all())


async def broadcast_report(session: AsyncSession, broadcast_id: int) -> dict[str, Any]:
    """Return counts by status and failures by reason for one broadcast."""
    rows = await session.exec(
        select(OB.status, OB.error, func.count())
        .where(OB.broadcast_id == broadcast_id)
        .group_by(col(OB.status), col(OB.error))
    )
    by_status: dict[str, int] = {}
    failed: dict[str, int] = {}
    for status, error, n in rows.all():
        by_status[str(status)] = by_status.get(str(status), 0) + int(n)
        if status in (OutboxStatus.FAILED, OutboxStatus.EXPIRED, OutboxStatus.CANCELLED):
            reason = f"{status}: {error or 'no reason given'}"
            failed[reason] = failed.get(reason, 0) + int(n)
    return {"broadcast_id": broadcast_id, "by_status": by_status, "failed_by_reason": failed}


async def count_due(session: AsyncSession, *, now: datetime) -> int:
    """Return how many queued rows are due at `now`."""
    rows = await session.exec(
        select(func.count()).select_from(OB)
        .where(col(OB.status) == OutboxStatus.QUEUED)
        .where(col(OB.due_at) <= now)
    )
    return int(rows.one())


async def set_release_date(
    session: AsyncSession, *, participant_id: int, release_date: date, now: datetime,
    actor: str,
) -> Participant | None:
    """Move a participant's release date and audit it; None if absent or erased."""
    p = await session.get(Participant, participant_id)
    if p is None or p.status == ParticipantStatus.DELETED:
        return None
    old = p.release_date
    p.release_date, p.updated_at = release_date, now
    session.add(p)
    session.add(AuditEvent(at=now, actor=actor, action="release_date_moved",
                           participant_id=participant_id,
                           detail={"from": old.isoformat(), "to": release_date.isoformat()}))
    await session.flush()
    return p
