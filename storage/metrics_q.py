"""Counts for /metrics: low-cardinality aggregates only, never an address or a body."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    ChannelIdentity,
    InboundMessage,
    MessageKind,
    OutboundMessage,
    Participant,
)
from storage.outbox_q import lane_depths
from storage.participants import failed_link_attempts

LATENCY_WINDOW = timedelta(hours=1)
ANSWER_KINDS = (str(MessageKind.REPLY), str(MessageKind.CRISIS))  # written as an inbound's answer


@dataclass
class Snapshot:
    """Everything /metrics reads from the database, read in one session."""

    inbound: dict[str, int] = field(default_factory=dict)  # channel -> messages received
    # (channel, kind, status) -> outbox messages
    outbound: dict[tuple[str, str, str], int] = field(default_factory=dict)
    # (channel, error) -> outbox rows whose last recorded error is this text: our fixed words
    # ("twilio 21610: recipient unsubscribed"), never a provider's own message
    errors: dict[tuple[str, str], int] = field(default_factory=dict)
    # (lane, channel, queued, due now, oldest due time) for every lane and channel with rows
    lanes: list[tuple[str, str, int, int, datetime | None]] = field(default_factory=list)
    # kind -> seconds from the inbound (the reply row's created_at) to the send, last hour
    answer_seconds: dict[str, list[float]] = field(default_factory=dict)
    link_failures: int = 0  # failed link-code attempts in the last hour, all senders
    identities: dict[tuple[str, str], int] = field(default_factory=dict)  # (status, channel)
    participants: dict[str, int] = field(default_factory=dict)  # status -> people
    last_sent_at: datetime | None = None  # the newest send the outbox records


async def _grouped(session: AsyncSession, *columns: Any) -> list[tuple[Any, ...]]:
    query: Any = select(*columns, func.count())  # type: ignore[call-overload]
    rows = await session.exec(query.group_by(*columns))
    return [tuple(r) for r in rows.all()]


async def answer_seconds(session: AsyncSession, *, now: datetime) -> dict[str, list[float]]:
    """Return, per answer kind, how long each answer sent in the last hour took to go."""
    ob = OutboundMessage
    rows = await session.exec(
        select(ob.kind, ob.created_at, ob.sent_at)
        .where(col(ob.kind).in_(ANSWER_KINDS))
        .where(col(ob.sent_at) >= now - LATENCY_WINDOW))
    out: dict[str, list[float]] = {}
    for kind, created, sent in rows.all():
        if sent is not None:
            out.setdefault(str(kind), []).append(max(0.0, (sent - created).total_seconds()))
    return out


async def snapshot(session: AsyncSession, *, now: datetime) -> Snapshot:
    """Read every aggregate /metrics shows, as of `now`."""
    snap = Snapshot()
    snap.inbound = {str(c): int(n) for c, n in
                    await _grouped(session, InboundMessage.channel)}
    ob = OutboundMessage
    snap.outbound = {(str(c), str(k), str(s)): int(n) for c, k, s, n in
                     await _grouped(session, ob.channel, ob.kind, ob.status)}
    snap.errors = {(str(c), str(e)): int(n) for c, e, n in
                   await _grouped(session, ob.channel, ob.error) if e is not None}
    snap.lanes = await lane_depths(session, now=now)
    snap.identities = {(str(s), str(c)): int(n) for s, c, n in
                       await _grouped(session, ChannelIdentity.status, ChannelIdentity.channel)}
    snap.participants = {str(s): int(n) for s, n in
                         await _grouped(session, Participant.status)}
    snap.answer_seconds = await answer_seconds(session, now=now)
    snap.link_failures = await failed_link_attempts(session, address=None, now=now)
    snap.last_sent_at = (await session.exec(
        select(func.max(OutboundMessage.sent_at)))).one()
    return snap
