"""Queries the channel adapters need: identity status and provider status callbacks."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ChannelIdentity, IdentityStatus, OutboundMessage, OutboxStatus
from storage.participants import audit, find_identity, opt_out

# How far along a message is; a status callback may only move a row to a higher rank.
_RANK = {
    OutboxStatus.QUEUED: 0,
    OutboxStatus.SENDING: 1,
    OutboxStatus.SENT: 2,
    OutboxStatus.DELIVERED: 3,
    OutboxStatus.FAILED: 3,
}


async def set_identity_status(
    session: AsyncSession,
    *,
    channel: str,
    address: str,
    status: IdentityStatus,
    now: datetime,
    error_code: str | None = None,
    only_from: IdentityStatus | None = None,
) -> ChannelIdentity | None:
    """Record what became of a channel address; with `only_from`, only out of that status."""
    identity = await find_identity(session, channel=channel, address=address)
    if identity is None or (identity.status == status and identity.error_code == error_code):
        return identity
    if only_from is not None and identity.status != only_from:
        return identity
    identity.status = status
    identity.error_code = error_code
    identity.updated_at = now
    session.add(identity)
    if status == IdentityStatus.OPTED_OUT:
        await opt_out(session, participant_id=identity.participant_id, now=now,
                      reason="number unsubscribed at the carrier")
    await audit(session, actor="system", action=f"identity_{status}", now=now,
                participant_id=identity.participant_id,
                detail={"channel": channel, "code": error_code})
    return identity


async def outbox_by_provider_id(
    session: AsyncSession, *, channel: str, provider_id: str
) -> OutboundMessage | None:
    """Return the outbox row a provider knows by this id."""
    return (
        await session.exec(
            select(OutboundMessage)
            .where(OutboundMessage.channel == channel)
            .where(OutboundMessage.provider_id == provider_id)
        )
    ).first()


async def advance_outbox(
    session: AsyncSession,
    *,
    row: OutboundMessage,
    status: OutboxStatus,
    now: datetime,
    error: str | None = None,
) -> bool:
    """Move a row forward to `status` (never back); say whether it moved."""
    current = _RANK.get(OutboxStatus(row.status))
    target = _RANK.get(status)
    if current is None or target is None or target <= current:
        return False
    row.status = status
    row.updated_at = now
    if status == OutboxStatus.DELIVERED:
        row.delivered_at = now
    if status == OutboxStatus.SENT and row.sent_at is None:
        row.sent_at = now
    if error is not None:
        row.error = error[:300]
    session.add(row)
    return True
