"""WhatsApp's 24-hour window: when an address last wrote, and the messages waiting for it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    ChannelIdentity,
    Meeting,
    OutboundMessage,
    OutboxStatus,
    Participant,
)
from storage.notify import notify_outbox

# What a row waiting for the person to write says in its `error`; their next message wakes it.
WAITING = "whatsapp: waiting for the person to write (outside the 24-hour window)"


@dataclass(frozen=True)
class WindowFacts:
    """What a WhatsApp send needs to know about one outbox row and its reader."""

    row: OutboundMessage | None
    identity: ChannelIdentity | None
    participant: Participant | None
    meeting: Meeting | None


async def note_inbound(session: AsyncSession, *, channel: str, address: str, now: datetime
                       ) -> int:
    """Record that this address just wrote; wake its rows waiting for that. Return how many."""
    await session.exec(update(ChannelIdentity)
                       .where(col(ChannelIdentity.channel) == channel)
                       .where(col(ChannelIdentity.address) == address)
                       .values(last_inbound_at=now)
                       .execution_options(synchronize_session=False))
    woken = await session.exec(update(OutboundMessage)
                               .where(col(OutboundMessage.channel) == channel)
                               .where(col(OutboundMessage.address) == address)
                               .where(col(OutboundMessage.status) == OutboxStatus.QUEUED)
                               .where(col(OutboundMessage.error) == WAITING)
                               .values(due_at=now, updated_at=now)
                               .execution_options(synchronize_session=False))
    count = int(woken.rowcount or 0)
    if count:
        await notify_outbox(session)  # the worker sends them now, not at its next sweep
    return count


async def window_facts(session: AsyncSession, *, outbox_id: int, channel: str, address: str
                       ) -> WindowFacts:
    """Return the outbox row, the identity it goes to, its participant and meeting."""
    row = await session.get(OutboundMessage, outbox_id) if outbox_id else None
    identity = (await session.exec(select(ChannelIdentity)
                                   .where(col(ChannelIdentity.channel) == channel)
                                   .where(col(ChannelIdentity.address) == address))).first()
    pid = (row.participant_id if row is not None else None) or (
        identity.participant_id if identity is not None else None)
    participant = await session.get(Participant, pid) if pid else None
    meeting = await session.get(Meeting, row.meeting_id) if row and row.meeting_id else None
    return WindowFacts(row, identity, participant, meeting)


async def note_sent_by_sms(session: AsyncSession, *, outbox_id: int, now: datetime) -> None:
    """Write on a WhatsApp row that it goes by SMS instead (the person's choice)."""
    row = await session.get(OutboundMessage, outbox_id)
    if row is None:
        return
    row.meta = {**(row.meta or {}), "sent_by": "sms"}
    row.updated_at = now
    session.add(row)
