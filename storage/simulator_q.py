"""The staff simulator's people: create, find, take over their outbox rows, purge for good.

A simulated participant is marked by its channel: `preferred_channel` (and every identity)
is one of SIMULATED_CHANNELS, which no sender serves, so nothing for them can reach a
provider. Unlike a DELETE (storage.erasure keeps an anonymous row and counts), the
simulator's throwaway person is purged: every row that names them goes, but audit rows
(append-only; they hold no text).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.limits_q import forget_lock, sender_lock
from storage.models import (
    AftercarePlan,
    Appointment,
    AttendanceRecord,
    ChannelIdentity,
    CheckIn,
    ConversationState,
    CrisisEvent,
    InboundMessage,
    KeyContact,
    LinkCode,
    MeetingSubscription,
    OutboundMessage,
    OutboxStatus,
    Participant,
    ParticipantKey,
    ToolEntry,
)
from storage.participants import hash_address, issue_link_code

SIMULATED_CHANNELS = ("sim_sms", "sim_telegram")
SIMULATOR_NAME = "Simulator"
IDLE_LIMIT = timedelta(hours=1)
_BY_PARTICIPANT = (ConversationState, ChannelIdentity, LinkCode, AftercarePlan, Appointment,
                   KeyContact, MeetingSubscription, AttendanceRecord, ToolEntry, CheckIn,
                   CrisisEvent)


def not_simulated() -> ColumnElement[bool]:
    """Return SQL true for real participants (what caseloads, reports and audiences want)."""
    return col(Participant.preferred_channel).not_in(SIMULATED_CHANNELS)


def sim_address(participant_id: int) -> str:
    """Return the made-up address a simulated person writes from."""
    return f"sim-{participant_id}"


@dataclass(frozen=True)
class SimLine:
    """One message of a simulated conversation, as stored."""

    incoming: bool  # True: typed by the staff member as the participant
    body: str
    choices: tuple[tuple[str, str], ...] = ()
    request_location: bool = False
    later: bool = False  # a message the service would send later (not sent: simulator)


async def create_simulated(
    session: AsyncSession, *, staff_id: int, channel: str, now: datetime, linked: bool
) -> tuple[Participant, str | None]:
    """Create a throwaway participant; return it and its link code (None when linked)."""
    if channel not in SIMULATED_CHANNELS:
        raise ValueError(f"not a simulator channel: {channel}")
    # A release date well past the release sequence's window: no welcome or check-ins.
    release = date.fromordinal(now.date().toordinal() - 60)
    p = Participant(display_name=SIMULATOR_NAME, release_date=release,
                    preferred_channel=channel, enrolled_by=staff_id,  # type: ignore[arg-type]
                    created_at=now, updated_at=now)
    session.add(p)
    await session.flush()
    assert p.id is not None
    session.add(AftercarePlan(participant_id=p.id, goals=[], updated_at=now))
    if linked:
        session.add(ChannelIdentity(participant_id=p.id, channel=channel,  # type: ignore[arg-type]
                                    address=sim_address(p.id), linked_at=now, updated_at=now))
        await session.flush()
        return p, None
    code = await issue_link_code(session, participant_id=p.id, release_date=release, now=now,
                                 expires_at=now + IDLE_LIMIT * 24)
    return p, code


async def simulated_of(session: AsyncSession, staff_id: int) -> list[Participant]:
    """Return the simulated participants a staff member has started, newest first."""
    rows = await session.exec(
        select(Participant).where(col(Participant.enrolled_by) == staff_id)
        .where(col(Participant.preferred_channel).in_(SIMULATED_CHANNELS))
        .order_by(col(Participant.id).desc()))
    return list(rows.all())


def _outbox_of(p: Participant) -> ColumnElement[bool]:
    return or_(col(OutboundMessage.participant_id) == p.id,
               and_(col(OutboundMessage.channel) == str(p.preferred_channel),
                    col(OutboundMessage.address) == sim_address(p.id or 0)))


def _inbound_of(p: Participant) -> ColumnElement[bool]:
    hashed = hash_address(f"{p.preferred_channel}:{sim_address(p.id or 0)}")
    return or_(col(InboundMessage.participant_id) == p.id,
               col(InboundMessage.address_hash) == hashed)


async def take_over_queued(session: AsyncSession, p: Participant, *, now: datetime) -> int:
    """Settle every queued row for a simulated person before any dispatcher can claim one.

    Called in the transaction that wrote them: what is due now is shown on the page (sent),
    what is due later is cancelled, so no worker ever sees a simulated row queued.
    """
    rows = (await session.exec(select(OutboundMessage).where(_outbox_of(p))
                               .where(col(OutboundMessage.status) == OutboxStatus.QUEUED))).all()
    for row in rows:
        if row.due_at <= now:
            row.status, row.sent_at, row.segments = OutboxStatus.SENT, now, None
        else:
            row.status, row.error = OutboxStatus.CANCELLED, "simulator: would be sent later"
        row.provider_id, row.updated_at = None, now
        session.add(row)
    return len(rows)


async def transcript(session: AsyncSession, p: Participant) -> list[SimLine]:
    """Return the simulated conversation in the order it happened.

    Each reply's dedupe key names the inbound message it answers; a row written in a turn
    without being a reply (a check-back for later) goes with the next reply written.
    """
    ins = (await session.exec(select(InboundMessage).where(_inbound_of(p))
                              .order_by(col(InboundMessage.id)))).all()
    outs = (await session.exec(select(OutboundMessage).where(_outbox_of(p)).where(
        col(OutboundMessage.status).in_([OutboxStatus.SENT, OutboxStatus.CANCELLED]))
        .order_by(col(OutboundMessage.id).desc()))).all()
    turns: dict[str, list[SimLine]] = {}
    turn = ""
    for o in outs:  # newest first, so a non-reply row joins the reply written after it
        if o.dedupe_key.startswith("reply:"):
            turn = o.dedupe_key.split(":", 2)[2].rsplit(":", 1)[0]
        turns.setdefault(turn, []).insert(0, SimLine(
            False, o.body, tuple((str(c[0]), str(c[1])) for c in o.choices or []),
            o.request_location, o.status == OutboxStatus.CANCELLED))
    lines = list(turns.pop("", []))  # rows written before anything was typed
    for i in ins:
        lines.append(SimLine(True, i.body or ""))
        lines += turns.pop(i.provider_id, [])
    return lines


async def purge(session: AsyncSession, participant_id: int) -> bool:
    """Delete a simulated participant and every row that names them; say if one was there."""
    p = await session.get(Participant, participant_id)
    if p is None or p.preferred_channel not in SIMULATED_CHANNELS:
        return False
    identities = (await session.exec(select(ChannelIdentity).where(
        col(ChannelIdentity.participant_id) == participant_id))).all()
    pairs = {(str(i.channel), i.address) for i in identities}
    pairs.add((str(p.preferred_channel), sim_address(participant_id)))
    for channel, address in pairs:
        await forget_lock(session, sender_lock(f"{channel}:{address}"))
    await session.exec(delete(OutboundMessage).where(_outbox_of(p)))
    await session.exec(delete(InboundMessage).where(_inbound_of(p)))
    # Audit rows stay: the table is append-only (storage.audit_q) and they hold no text.
    for model in _BY_PARTICIPANT:
        await session.exec(delete(model).where(
            col(model.participant_id) == participant_id))
    if p.key_id:  # its data key goes too: nothing of it can be opened again
        await session.exec(delete(ParticipantKey).where(col(ParticipantKey.id) == p.key_id))
    await session.exec(delete(Participant).where(
        col(Participant.id) == participant_id))
    session.expunge(p)
    return True


async def idle_simulated(session: AsyncSession, *, now: datetime,
                         idle: timedelta = IDLE_LIMIT) -> list[int]:
    """Return simulated participants with nothing typed for `idle` (the worker purges them)."""
    people = (await session.exec(select(Participant).where(
        col(Participant.preferred_channel).in_(SIMULATED_CHANNELS)))).all()
    stale = []
    for p in people:
        last = (await session.exec(select(func.max(InboundMessage.received_at))
                                   .where(_inbound_of(p)))).one()
        if max(p.created_at, last or p.created_at) < now - idle:
            stale.append(p.id or 0)
    return stale


async def purge_idle_simulated(session: AsyncSession, *, now: datetime,
                               idle: timedelta = IDLE_LIMIT) -> int:
    """Purge every simulated participant idle for `idle`; return how many (a worker sweep)."""
    done = 0
    for pid in await idle_simulated(session, now=now, idle=idle):
        done += await purge(session, pid)
    return done
