"""The outbox dispatcher: claim due rows, send them, record what happened."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from scheduler.errors import PermanentSendError, TransientSendError
from scheduler.sender import OutgoingMessage, Sender
from storage.db import session_scope
from storage.models import OutboundMessage, OutboxStatus

logger = logging.getLogger(__name__)


@dataclass
class DispatchStats:
    """What one dispatch pass did."""

    sent: int = 0
    failed: int = 0
    retried: int = 0


async def dispatch(
    engine: AsyncEngine,
    senders: Mapping[str, Sender],
    *,
    now: datetime,
    keys: list[str] | None = None,
    limit: int = 200,
) -> DispatchStats:
    """Send due queued messages (or just those with `keys`), each at most once."""
    stats = DispatchStats()
    async with session_scope(engine) as session:
        query = select(OutboundMessage).where(OutboundMessage.status == OutboxStatus.QUEUED)
        if keys is not None:
            query = query.where(col(OutboundMessage.dedupe_key).in_(keys))
        else:
            query = query.where(OutboundMessage.due_at <= now)
        query = query.order_by(col(OutboundMessage.priority), col(OutboundMessage.id)).limit(limit)
        rows = list((await session.exec(query)).all())
        for row in rows:
            row.status = OutboxStatus.SENDING
            row.claimed_at = now
            row.attempts += 1
            session.add(row)
    for row in rows:
        sender = senders.get(row.channel)
        async with session_scope(engine) as session:
            fresh = await session.get(OutboundMessage, row.id)
            assert fresh is not None
            try:
                if sender is None:
                    raise PermanentSendError(f"no sender for channel {row.channel}")
                result = await sender.send(OutgoingMessage.from_row(fresh))
            except TransientSendError as exc:
                fresh.status = OutboxStatus.QUEUED
                fresh.error = exc.reason[:300]
                stats.retried += 1
            except PermanentSendError as exc:
                fresh.status = OutboxStatus.FAILED
                fresh.error = exc.reason[:300]
                stats.failed += 1
            else:
                fresh.status = OutboxStatus.DELIVERED if result.delivered else OutboxStatus.SENT
                fresh.provider_id = result.provider_id
                fresh.segments = result.segments
                fresh.sent_at = now
                stats.sent += 1
            fresh.updated_at = now
            session.add(fresh)
    return stats
