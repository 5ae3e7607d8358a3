"""Write outbound messages down before anything sends them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.claims_q import lane_of
from storage.dialect import run
from storage.models import MessageKind, OutboundMessage, OutboxStatus, Priority
from storage.models.sealed import seal_for
from storage.notify import notify_outbox
from storage.upserts import insert_skipping

_OUTBOX: Any = OutboundMessage.__table__  # type: ignore[attr-defined]

# Statuses of messages the person has (or is about to have) in front of them.
_SEEN = (OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.SENT, OutboxStatus.DELIVERED)
_LOOK_BACK = 20  # messages read back to find the question a number answers


async def enqueue(
    session: AsyncSession,
    *,
    channel: str,
    address: str,
    body: str,
    dedupe_key: str,
    now: datetime,
    participant_id: int | None = None,
    kind: MessageKind = MessageKind.REPLY,
    priority: int = Priority.REPLY,
    due_at: datetime | None = None,
    not_after: datetime | None = None,
    choices: list[list[str]] | None = None,
    request_location: bool = False,
    meeting_id: int | None = None,
    appointment_id: int | None = None,
    broadcast_id: int | None = None,
    meta: dict[str, Any] | None = None,
) -> bool:
    """Add one message to the outbox unless its dedupe key is already there; say if added."""
    values = {
        "participant_id": participant_id,
        "channel": channel,
        "address": address,
        "body": await seal_for(session, participant_id, body),
        "choices": choices,
        "request_location": request_location,
        "kind": str(kind),
        "priority": priority,
        "due_at": due_at or now,
        "not_after": not_after,
        "dedupe_key": dedupe_key,
        "status": str(OutboxStatus.QUEUED),
        "attempts": 0,
        "meeting_id": meeting_id,
        "appointment_id": appointment_id,
        "broadcast_id": broadcast_id,
        "meta": meta,
        "created_at": now,
        "updated_at": now,
    }
    stmt = insert_skipping(_OUTBOX, tuple(values), ("dedupe_key",))
    result = await run(session, stmt, values)
    if result.rowcount:
        crisis = priority <= Priority.URGENT
        await notify_outbox(session, crisis_key=dedupe_key if crisis else None,
                            lane=lane_of(priority))
    return bool(result.rowcount)


async def pending_for(session: AsyncSession, participant_id: int) -> list[OutboundMessage]:
    """Return the queued messages for one participant, soonest first."""
    rows = await session.exec(
        select(OutboundMessage)
        .where(OutboundMessage.participant_id == participant_id)
        .where(OutboundMessage.status == OutboxStatus.QUEUED)
        .order_by(OutboundMessage.due_at)  # type: ignore[arg-type]
    )
    return list(rows.all())


async def last_offered_choices(
    session: AsyncSession, *, channel: str, address: str, now: datetime, at: str | None = None
) -> list[str]:
    """Return the choice payloads of the last question this address got (empty if none).

    Rows are read in the order the person got them: by `sent_at`, or by when they were
    written for those not sent yet, never by row id (a "did you make it?" planned yesterday
    can arrive after today's replies). What is skipped, so it cannot take a flow's choices:
    crisis numbers; replies marked `aside` in their meta (HELP, WENT... answered mid-flow);
    a scheduled message without choices; a scheduled question once the person has written
    since it came (its one answer was that message); a flow's own scheduled question (meta
    `flow`, `step`) once the person has left that step. A reply whose meta `at` ("flow:step")
    is not `at`, where the person is now, is out of date: no choices are in force.
    """
    sent_order = func.coalesce(col(OutboundMessage.sent_at), col(OutboundMessage.created_at))
    rows = (
        await session.exec(
            select(OutboundMessage)
            .where(OutboundMessage.channel == channel)
            .where(OutboundMessage.address == address)
            .where(col(OutboundMessage.due_at) <= now)
            .where(col(OutboundMessage.status).in_(_SEEN))
            .order_by(sent_order.desc(), col(OutboundMessage.id).desc())
            .limit(_LOOK_BACK)
        )
    ).all()
    written_since = False  # has the person written since the row being looked at?
    for row in rows:
        meta = row.meta or {}
        if row.kind == MessageKind.CRISIS:
            continue
        if row.kind == MessageKind.REPLY:
            if meta.get("aside"):
                written_since = True
                continue
            if at is not None and meta.get("at", at) != at:
                return []
            return [str(choice[1]) for choice in row.choices or []]
        if "flow" in meta:
            if at is None or f"{meta['flow']}:{meta.get('step', '')}" == at:
                return [str(choice[1]) for choice in row.choices or []]
        elif row.choices and not written_since:
            return [str(choice[1]) for choice in row.choices]
    return []
