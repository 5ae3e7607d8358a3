"""Outbox queries for the dispatcher: record outcomes, recover dead claims, tidy the queue.

Claiming due rows, and the lanes, are in `storage.claims_q`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    or_,
    text,
    update,
)
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.claims_q import LANE_SPLIT, Lane, lane_filter, lane_of
from storage.dialect import insert_for, is_postgres, run
from storage.models import (
    AuditEvent,
    ChannelIdentity,
    IdentityStatus,
    OutboundMessage,
    OutboxStatus,
    Participant,
    ParticipantStatus,
    Priority,
)
from storage.models.common import UTCDateTime
from storage.models.messages import QUEUED_URGENT
from storage.models.sealed import seal_for
from storage.notify import notify_outbox

OB = OutboundMessage




async def expire_overdue(session: AsyncSession, *, now: datetime) -> int:
    """Mark queued rows past their not-after time expired; return how many."""
    result = await session.exec(
        _update()
        .where(col(OB.status) == OutboxStatus.QUEUED)
        .where(col(OB.not_after).is_not(None))
        .where(col(OB.not_after) < now)
        .values(status=OutboxStatus.EXPIRED, error="not sent before its not-after time",
                updated_at=now)
    )
    return int(result.rowcount or 0)


async def take_stale_claims(
    session: AsyncSession, *, now: datetime, lease: timedelta, token: str, limit: int = 500
) -> list[OutboundMessage]:
    """Take over `sending` rows whose claim is older than the lease (their worker died).

    One UPDATE that re-checks the lease, so two recoverers never both take a row.
    """
    stale = and_(col(OB.status) == OutboxStatus.SENDING, col(OB.claimed_at) < now - lease)
    inner = select(OB.id).where(stale).order_by(col(OB.id)).limit(limit)
    stmt = _update().where(stale).values(claim_token=token, claimed_at=now).returning(OB.id)
    if is_postgres(session):
        chosen = list((await session.exec(inner.with_for_update(skip_locked=True))).all())
        if not chosen:
            return []
        stmt = stmt.where(col(OB.id).in_(chosen))
    else:
        stmt = stmt.where(col(OB.id).in_(inner.scalar_subquery()))
    ids = [r[0] for r in (await session.exec(stmt)).all()]
    if not ids:
        return []
    rows = await session.exec(select(OB).where(col(OB.id).in_(ids)).order_by(col(OB.id))
                              .execution_options(populate_existing=True))
    return list(rows.all())


async def addresses_of(session: AsyncSession, keys: Sequence[str]) -> list[tuple[str, str]]:
    """Return the (channel, address) pairs of the rows with these dedupe keys."""
    if not keys:
        return []
    found = await session.exec(select(OB.channel, OB.address)
                               .where(col(OB.dedupe_key).in_(list(keys))).distinct())
    return [(str(c), str(a)) for c, a in found.all()]


async def earliest_due(session: AsyncSession, *, lane: Lane | None = None) -> datetime | None:
    """Return when the next queued row of a lane falls due (None: nothing queued).

    The urgent lane's is read from its own partial index (see QUEUED_URGENT): with the
    lane's test as parameters it walked every queued row. SQLite is told to use it: its
    planner, with no statistics, takes the (status, due_at) index and walks again."""
    if lane == Lane.URGENT:
        table = ("outboundmessage INDEXED BY ix_outbox_queued_urgent_due"
                 if not is_postgres(session) else "outboundmessage")
        stmt = (select(func.min(literal_column("due_at", UTCDateTime)))
                .select_from(text(table)).where(text(QUEUED_URGENT)))
    else:
        stmt = (select(func.min(OB.due_at)).where(col(OB.status) == OutboxStatus.QUEUED)
                .where(lane_filter(lane)))
    return (await session.exec(stmt)).one()


def _update() -> Any:
    """Return an UPDATE of the outbox that skips syncing the session (rows are re-read)."""
    return update(OB).execution_options(synchronize_session=False)


def _owned(row_id: int, token: str) -> Any:
    return (
        _update()
        .where(col(OB.id) == row_id)
        .where(col(OB.claim_token) == token)
        .where(col(OB.status) == OutboxStatus.SENDING)
    )


async def mark_inflight(
    session: AsyncSession, *, ids: Sequence[int], token: str, now: datetime
) -> set[int]:
    """Record that rows are about to go to the provider; return those still ours."""
    if not ids:
        return set()
    result = await run(session, _marking_inflight(), {"ids": list(ids), "token": token,
                                                      "now": now})
    return {r[0] for r in result.all()}


@functools.cache
def _marking_inflight() -> Any:
    table: Any = OB.__table__  # type: ignore[attr-defined]
    return (update(table).where(table.c.id.in_(bindparam("ids", expanding=True)))
            .where(table.c.claim_token == bindparam("token"))
            .where(table.c.status == str(OutboxStatus.SENDING))
            .values(inflight_at=bindparam("now"), updated_at=bindparam("now"))
            .returning(table.c.id))


async def mark_sent(
    session: AsyncSession,
    *,
    row_id: int,
    token: str | None,
    now: datetime,
    provider_id: str | None,
    segments: int | None,
    delivered: bool,
    attempts: int | None = None,
) -> bool:
    """Record that the provider accepted the row."""
    stmt = _owned(row_id, token) if token else _update().where(col(OB.id) == row_id)
    values: dict[str, Any] = {
        "status": OutboxStatus.DELIVERED if delivered else OutboxStatus.SENT,
        "provider_id": provider_id, "segments": segments, "sent_at": now, "updated_at": now,
        "claim_token": None, "error": None,
    }
    if attempts is not None:
        values["attempts"] = attempts
    if delivered:
        values["delivered_at"] = now
    result = await session.exec(stmt.values(**values))
    return bool(result.rowcount)


async def mark_sent_many(
    session: AsyncSession, *, sent: Sequence[dict[str, Any]], token: str, now: datetime
) -> None:
    """Record many accepted rows in one round trip (items: id, provider_id, segments,
    delivered, attempts)."""
    if not sent:
        return
    await run(session, _marking_sent(), [
        {"b_id": item["id"], "b_provider": item["provider_id"], "b_segments": item["segments"],
         "b_attempts": item["attempts"], "b_token": token, "b_now": now,
         "b_status": str(OutboxStatus.DELIVERED if item["delivered"] else OutboxStatus.SENT),
         "b_delivered_at": now if item["delivered"] else None}
        for item in sent])


@functools.cache
def _marking_sent() -> Any:
    """Return the UPDATE recording one accepted row (built once: every reply runs it)."""
    table: Any = OB.__table__  # type: ignore[attr-defined]
    return (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .where(table.c.claim_token == bindparam("b_token"))
        .where(table.c.status == str(OutboxStatus.SENDING))
        .values(status=bindparam("b_status"), provider_id=bindparam("b_provider"),
                segments=bindparam("b_segments"), attempts=bindparam("b_attempts"),
                delivered_at=bindparam("b_delivered_at"), sent_at=bindparam("b_now"),
                updated_at=bindparam("b_now"), claim_token=None, error=None)
    )


async def release(
    session: AsyncSession,
    *,
    row_id: int,
    token: str | None,
    now: datetime,
    due_at: datetime,
    error: str | None = None,
    attempts: int | None = None,
) -> bool:
    """Put a claimed row back in the queue, due at `due_at`."""
    stmt = _owned(row_id, token) if token else _update().where(col(OB.id) == row_id)
    values: dict[str, Any] = {"status": OutboxStatus.QUEUED, "due_at": due_at,
                              "claim_token": None, "inflight_at": None, "updated_at": now}
    if error is not None:
        values["error"] = error[:300]
    if attempts is not None:
        values["attempts"] = attempts
    result = await session.exec(stmt.values(**values))
    return bool(result.rowcount)


async def finish(
    session: AsyncSession,
    *,
    row_id: int,
    token: str | None,
    now: datetime,
    status: OutboxStatus,
    error: str,
    attempts: int | None = None,
) -> bool:
    """End a row without sending it: failed, expired or cancelled, with the reason."""
    stmt = _owned(row_id, token) if token else _update().where(col(OB.id) == row_id)
    values: dict[str, Any] = {"status": status, "error": error[:300], "claim_token": None,
                              "updated_at": now}
    if attempts is not None:
        values["attempts"] = attempts
    result = await session.exec(stmt.values(**values))
    return bool(result.rowcount)


async def touch_claims(
    session: AsyncSession, *, ids: Sequence[int], token: str, now: datetime
) -> None:
    """Renew the lease on rows this worker still holds."""
    if ids:
        await session.exec(
            _update()
            .where(col(OB.id).in_(list(ids)))
            .where(col(OB.claim_token) == token)
            .where(col(OB.status) == OutboxStatus.SENDING)
            .values(claimed_at=now)
        )


async def record_permanent_failure(
    session: AsyncSession,
    *,
    channel: str,
    address: str,
    participant_id: int | None,
    identity_status: str | None,
    code: str | None,
    now: datetime,
) -> None:
    """Record on the identity and the participant that a channel address no longer works."""
    from storage.participants import find_identity, opt_out  # participants imports us

    identity = await find_identity(session, channel=channel, address=address)
    if identity is not None and identity_status:
        identity.status = identity_status  # type: ignore[assignment]
        identity.error_code = (code or "")[:40] or None
        identity.updated_at = now
        session.add(identity)
    if identity is not None and identity_status == IdentityStatus.OPTED_OUT:
        # Twilio 21610: the person texted STOP to our number; STOP stops every channel.
        await opt_out(session, participant_id=identity.participant_id, now=now,
                      reason="number unsubscribed at the carrier (21610)")
    session.add(AuditEvent(at=now, actor="system", action="send_failed_permanently",
                           participant_id=participant_id,
                           detail={"channel": channel, "identity_status": identity_status,
                                   "code": code}))


async def cancel_and_free(
    session: AsyncSession, rows: Sequence[OutboundMessage], *, reason: str, now: datetime
) -> int:
    """Cancel queued rows and free their dedupe keys so a new plan may reuse them."""
    count = 0
    for row in rows:
        if row.status != OutboxStatus.QUEUED:
            continue
        row.status = OutboxStatus.CANCELLED
        row.error = reason[:300]
        row.dedupe_key = f"{row.dedupe_key}#x{row.id}"[:200]
        row.updated_at = now
        session.add(row)
        count += 1
    await session.flush()
    return count


def _freed_key() -> Any:
    """Return the SQL for a cancelled row's dedupe key, freed for a new plan to reuse."""
    return func.substr(col(OB.dedupe_key).concat("#x").concat(cast(OB.id, String)), 1, 200)


async def cancel_pending_for(
    session: AsyncSession, *, participant_id: int, reason: str, now: datetime
) -> int:
    """Cancel a person's queued rows and claimed rows not yet in flight; free their keys.

    Each row is ended by an UPDATE that re-checks it is still pending, so a dispatcher
    marking it in flight at the same moment either wins (it was already on its way) or finds
    it cancelled and skips it. Call before writing the reply to the STOP or DELETE.
    """
    pending = or_(col(OB.status) == OutboxStatus.QUEUED,
                  and_(col(OB.status) == OutboxStatus.SENDING, col(OB.inflight_at).is_(None)))
    found = await session.exec(
        select(OB.id, OB.dedupe_key).where(col(OB.participant_id) == participant_id)
        .where(pending))
    count = 0
    for row_id, key in found.all():
        # Plain values, so rows this session already holds are updated too ("evaluate").
        result = await session.exec(
            update(OB).execution_options(synchronize_session="evaluate")
            .where(col(OB.id) == row_id).where(pending)
            .values(status=OutboxStatus.CANCELLED, error=reason[:300], claim_token=None,
                    dedupe_key=f"{key}#x{row_id}"[:200], updated_at=now)
        )
        count += int(result.rowcount or 0)
    return count


async def recheck_recipients(
    session: AsyncSession, *, ids: Sequence[int], token: str, now: datetime
) -> dict[int, OutboxStatus]:
    """End claimed rows whose person stopped or deleted, or whose address stopped working.

    Called just before a group goes in flight, because a claimed batch is sent over minutes
    and STOP may arrive in the middle. Return {row id: status} for the rows ended.
    """
    if not ids:
        return {}
    found = await session.exec(
        select(OB.id, OB.meta, Participant.status, ChannelIdentity.status)
        .outerjoin(Participant, col(Participant.id) == col(OB.participant_id))
        .outerjoin(ChannelIdentity, and_(col(ChannelIdentity.channel) == col(OB.channel),
                                         col(ChannelIdentity.address) == col(OB.address)))
        .where(col(OB.id).in_(list(ids)))
    )
    cancel: dict[int, str] = {}
    failed: dict[int, str] = {}
    for row_id, meta, person, identity in found.all():
        if row_id is None:
            continue
        gone = person in (ParticipantStatus.STOPPED, ParticipantStatus.DELETED)
        if gone and not (meta or {}).get("always"):
            cancel[row_id] = f"participant {person}"
        elif identity is not None and identity != IdentityStatus.ACTIVE:
            failed[row_id] = f"identity {identity}"
    for ended, status, free in ((cancel, OutboxStatus.CANCELLED, True),
                                (failed, OutboxStatus.FAILED, False)):
        for reason in set(ended.values()):
            values: dict[str, Any] = {"status": status, "error": reason, "claim_token": None,
                                      "updated_at": now}
            if free:  # as STOP does: a later START may plan these again
                values["dedupe_key"] = _freed_key()
            await session.exec(
                _update()
                .where(col(OB.id).in_([i for i, r in ended.items() if r == reason]))
                .where(col(OB.claim_token) == token)
                .where(col(OB.status) == OutboxStatus.SENDING)
                .values(**values)
            )
    return {**dict.fromkeys(failed, OutboxStatus.FAILED),
            **dict.fromkeys(cancel, OutboxStatus.CANCELLED)}


async def enqueue_many(
    session: AsyncSession, rows: Sequence[dict[str, Any]], *, now: datetime
) -> int:
    """Insert many outbox rows at once, skipping dedupe keys already there; return how many."""
    if not rows:
        return 0
    base = {"choices": None, "request_location": False, "not_after": None, "attempts": 0,
            "status": str(OutboxStatus.QUEUED), "meeting_id": None, "appointment_id": None,
            "broadcast_id": None, "meta": None, "participant_id": None,
            "created_at": now, "updated_at": now}
    values = [{**base, "due_at": now, **r} for r in rows]
    for row in values:  # each body under its participant's key
        row["body"] = await seal_for(session, row["participant_id"], row["body"])
    insert = insert_for(session)
    before = await count_rows(session)
    table: Any = OB.__table__  # type: ignore[attr-defined]
    for start in range(0, len(values), 2000):
        stmt = insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"])
        await run(session, stmt, values[start : start + 2000])
    for lane in {lane_of(int(row.get("priority", Priority.REPLY))) for row in values}:
        await notify_outbox(session, lane=lane)
    return await count_rows(session) - before


async def lane_depths(
    session: AsyncSession, *, now: datetime
) -> list[tuple[str, str, int, int, datetime | None]]:
    """Return (lane, channel, queued, due now, oldest due time) for every lane and channel
    with queued rows."""
    lane = case((col(OB.priority) < LANE_SPLIT, str(Lane.URGENT)), else_=str(Lane.BULK))
    due = col(OB.due_at) <= now
    found = await session.exec(
        # sqlmodel's select() is typed for at most four columns; five work at runtime.
        select(lane, OB.channel, func.count(),  # type: ignore[call-overload]
               func.sum(case((due, 1), else_=0)),
               func.min(case((due, col(OB.due_at)), else_=None)))
        .where(col(OB.status) == OutboxStatus.QUEUED)
        .group_by(lane, OB.channel))
    out = []
    for lane_name, channel, queued, due_now, oldest in found.all():
        if isinstance(oldest, str):  # SQLite hands back the stored text inside an aggregate
            oldest = datetime.fromisoformat(oldest)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        out.append((str(lane_name), str(channel), int(queued), int(due_now or 0), oldest))
    return out


async def count_rows(session: AsyncSession) -> int:
    """Return how many rows the outbox holds."""
    return int((await session.exec(select(func.count()).select_from(OB))).one())

