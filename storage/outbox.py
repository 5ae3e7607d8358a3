"""Write outbound messages down before anything sends them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import MessageKind, OutboundMessage, OutboxStatus, Priority
from storage.notify import notify_outbox

# Statuses of messages the person has (or is about to have) in front of them.
_SEEN = (OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.SENT, OutboxStatus.DELIVERED)


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
        "body": body,
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
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(OutboundMessage).values(**values).on_conflict_do_nothing(
        index_elements=["dedupe_key"]
    )
    result = await session.exec(stmt)  # type: ignore[call-overload]
    if result.rowcount:
        await notify_outbox(session)
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
    session: AsyncSession, *, channel: str, address: str, now: datetime
) -> list[str]:
    """Return the choice payloads of the last message this address got (empty if none)."""
    row = (
        await session.exec(
            select(OutboundMessage)
            .where(OutboundMessage.channel == channel)
            .where(OutboundMessage.address == address)
            .where(col(OutboundMessage.due_at) <= now)
            .where(col(OutboundMessage.status).in_(_SEEN))
            .order_by(col(OutboundMessage.id).desc())
            .limit(1)
        )
    ).first()
    if row is None or not row.choices:
        return []
    return [str(choice[1]) for choice in row.choices]
