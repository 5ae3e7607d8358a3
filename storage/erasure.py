"""Erase a participant's personal data (DELETE), keeping only anonymous counts.

What goes: the name (blanked), phone number, release postcode and location, every channel
identity (phone number, Telegram chat id), link codes, the body of every message they sent
or were sent, the address of every message row to them, all text in tool entries and
check-ins, plan goals, key contacts, appointments, chosen meetings and conversation
state. Everything queued is cancelled.

What stays, with no way back to the person: the participant row (status `deleted`, name
blank, release date cut to the month, prison and region kept), numbers in urge logs and
check-ins, attendance records, crisis events (time and category only) and audit events.
Audit rows are append-only (storage.audit_q), so erasure adds its own and edits none: they
hold ids, actions and counts, never a name, body or number; a failed link attempt's actor is
a keyed hash of the address (storage.crypto.blind_index) with no participant id, and once
their identities and inbound rows are gone nothing ties that hash to the person.

First of all the participant's data key is destroyed (see storage.crypto): every value
sealed with it, in any copy of the database (the SQLite -wal file, PostgreSQL dead tuples,
a backup), can no longer be read. Then what can be blanked is blanked.

The confirmation: "your data is erased" must still reach the address that the erasure just
removed. The conversation engine writes that reply to the outbox after the erasure, so it
is the one row left holding the address and body, and only until it is sent (or fails or
expires). The dispatcher calls `scrub_sent_rows` after each send to a deleted participant,
and the worker may sweep with `scrub_deleted_rows`, which blank those last rows, and with
them any message from that address that raced the confirming YES (written just before or
just after the erasure committed).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, event, inspect, or_, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import crypto
from storage.audit_q import CLI_ACTOR
from storage.db import session_scope
from storage.errors import NotFound
from storage.models import (
    AftercarePlan,
    Appointment,
    ChannelIdentity,
    CheckIn,
    ConversationState,
    InboundMessage,
    KeyContact,
    LinkCode,
    MeetingSubscription,
    OutboundMessage,
    OutboxStatus,
    Participant,
    ParticipantKey,
    ParticipantStatus,
    ToolEntry,
)
from storage.models.sealed import forget_owner
from storage.outbox_q import cancel_pending_for
from storage.participants import audit, hash_address

# Rows a dispatcher may be sending right now keep their address until it has finished.
_IN_FLIGHT = (OutboxStatus.QUEUED, OutboxStatus.SENDING)
# Sweeps work in short transactions, so an inbound message never waits long for the lock.
FORGET_BATCH = 2000  # inbound rows blanked by one transaction
SCRUB_BATCH = 100  # deleted participants scrubbed by one sweep
BATCH_PAUSE = 0.12  # seconds between transactions, so other writers get the database


@dataclass
class ErasureReport:
    """What an erasure did (counts only)."""

    cancelled: int = 0
    outbound_scrubbed: int = 0
    inbound_scrubbed: int = 0
    tool_entries: int = 0
    checkins: int = 0
    rows_deleted: int = 0


def _numbers_only(data: Any) -> Any:
    """Keep the numbers of a tool entry's data and drop every piece of text."""
    if isinstance(data, dict):
        return {k: v for k, v in data.items()
                if isinstance(v, int | float) and not isinstance(v, bool)}
    return {}


def _blank(row: OutboundMessage, now: datetime) -> None:
    row.address = ""
    row.body = ""
    row.choices = None
    row.meta = None
    row.error = None  # provider error text can quote the number
    row.provider_id = None  # a Telegram message id begins with the chat id
    row.updated_at = now


async def _scrub_outbox(
    session: AsyncSession, participant_id: int, addresses: set[tuple[str, str]], now: datetime
) -> tuple[int, int]:
    cancelled = await cancel_pending_for(session, participant_id=participant_id,
                                         reason="participant deleted their data", now=now)
    mine: list[ColumnElement[bool]] = [col(OutboundMessage.participant_id) == participant_id]
    mine += [and_(col(OutboundMessage.channel) == channel, col(OutboundMessage.address) == address)
             for channel, address in addresses]
    rows = (await session.exec(select(OutboundMessage).where(or_(*mine)))).all()
    scrubbed = 0
    for row in rows:
        if row.status == OutboxStatus.QUEUED:
            row.status = OutboxStatus.CANCELLED
            row.error = "participant deleted their data"
            cancelled += 1
        if row.status != OutboxStatus.SENDING:
            _blank(row, now)
            scrubbed += 1
        session.add(row)
    return cancelled, scrubbed


async def _scrub_inbound(
    session: AsyncSession,
    participant_id: int,
    identities: list[ChannelIdentity],
    addresses: set[tuple[str, str]],
) -> int:
    # The message that linked an address was written before the link existed, so it has no
    # participant id; it shares its channel and timestamp with the identity it created.
    mine: list[ColumnElement[bool]] = [col(InboundMessage.participant_id) == participant_id]
    mine += [and_(col(InboundMessage.participant_id).is_(None),
                  col(InboundMessage.channel) == i.channel,
                  col(InboundMessage.received_at) == i.linked_at) for i in identities]
    # Everything sent from their addresses, linked or not (a mistyped code, a first hello).
    hashes = [hash_address(f"{channel}:{address}") for channel, address in addresses]
    if hashes:
        mine.append(col(InboundMessage.address_hash).in_(hashes))
    result = await session.exec(
        update(InboundMessage).where(or_(*mine))
        .values(body=None, address_hash=None)
    )
    return int(result.rowcount or 0)


async def _destroy_key(session: AsyncSession, p: Participant, now: datetime) -> None:
    """Blank the participant row and delete their data key: what it sealed is unreadable."""
    kid, pid = p.key_id, p.id or 0
    p.display_name = ""
    p.phone = None
    p.release_postcode = None
    p.release_lat = p.release_lon = None
    p.release_date = date(p.release_date.year, p.release_date.month, 1)
    p.staff_review_consent = False
    p.released_at = None
    p.reminder_offsets = []
    p.status = ParticipantStatus.DELETED
    p.deleted_at = p.updated_at = now
    p.key_id = None
    session.add(p)
    await session.flush()  # from here on, rows of theirs are written as an erased person's
    if kid is not None:
        await session.exec(delete(ParticipantKey).where(col(ParticipantKey.id) == kid))
        # Reads before the commit may open it again (the row is still there for them).
        event.listen(session.sync_session, "after_commit", lambda _s: crypto.forget(kid),
                     once=True)
    crypto.forget(kid)
    forget_owner(session.info, pid)


async def erase_participant(
    session: AsyncSession, *, participant_id: int, now: datetime
) -> ErasureReport:
    """Erase a participant's personal data and cancel their queue; the caller commits."""
    p = await session.get(Participant, participant_id)
    if p is None:
        raise NotFound(f"participant {participant_id}")
    report = ErasureReport()
    identities = list((await session.exec(
        select(ChannelIdentity).where(ChannelIdentity.participant_id == participant_id))).all())
    addresses = {(str(i.channel), i.address) for i in identities}
    if p.phone:
        addresses.add(("sms", p.phone))
    entries = (await session.exec(  # read while they can still be opened: numbers stay
        select(ToolEntry).where(ToolEntry.participant_id == participant_id))).all()
    await _destroy_key(session, p, now)
    report.cancelled, report.outbound_scrubbed = await _scrub_outbox(
        session, participant_id, addresses, now)
    report.inbound_scrubbed = await _scrub_inbound(session, participant_id, identities,
                                                   addresses)

    for entry in entries:
        entry.data = _numbers_only(entry.data)
        entry.updated_at = now
        session.add(entry)
    report.tool_entries = len(entries)
    checkins = (await session.exec(
        select(CheckIn).where(CheckIn.participant_id == participant_id))).all()
    for checkin in checkins:
        checkin.note = None
        session.add(checkin)
    report.checkins = len(checkins)
    plan = (await session.exec(
        select(AftercarePlan).where(AftercarePlan.participant_id == participant_id))).first()
    if plan is not None:
        plan.goals = []
        plan.updated_at = now
        session.add(plan)

    for model in (KeyContact, Appointment, MeetingSubscription, LinkCode):
        for row in (await session.exec(
                select(model).where(model.participant_id == participant_id))).all():
            await session.delete(row)
            report.rows_deleted += 1
    for identity in identities:
        await session.delete(identity)
        report.rows_deleted += 1

    state = await session.get(ConversationState, participant_id)
    if state is not None:
        state.flow, state.step, state.data, state.updated_at = "menu", "", {}, now
        session.add(state)
    await audit(session, actor=f"participant:{participant_id}", action="erase", now=now,
                participant_id=participant_id,
                detail={"cancelled": report.cancelled, "deleted_rows": report.rows_deleted})
    await session.flush()
    return report


async def scrub_sent_rows(session: AsyncSession, participant_id: int) -> int:
    """Blank address and body of finished outbox rows of a deleted participant; say how many."""
    p = await session.get(Participant, participant_id)
    if p is None or p.status != ParticipantStatus.DELETED:
        return 0
    rows = (await session.exec(
        select(OutboundMessage)
        .where(OutboundMessage.participant_id == participant_id)
        .where(col(OutboundMessage.status).not_in(_IN_FLIGHT))
        .where(or_(col(OutboundMessage.address) != "", col(OutboundMessage.body) != ""))
    )).all()
    raced: list[ColumnElement[bool]] = [and_(
        col(InboundMessage.participant_id) == participant_id,
        col(InboundMessage.body).is_not(None))]
    for row in rows:
        if row.address:  # what that address wrote until now: a message racing the YES
            raced.append(col(InboundMessage.address_hash)
                         == hash_address(f"{row.channel}:{row.address}"))
        _blank(row, p.deleted_at or row.updated_at)
        session.add(row)
    if rows:
        await session.exec(update(InboundMessage).where(or_(*raced))
                           .values(body=None, address_hash=None))
    return len(rows)


async def scrub_deleted_rows(session: AsyncSession, *, limit: int = SCRUB_BATCH) -> int:
    """Blank finished outbox rows of deleted participants (a periodic sweep).

    At most `limit` people a call, so the sweep stays a short transaction; the next sweep
    takes the rest.
    """
    ids = (await session.exec(
        select(OutboundMessage.participant_id)
        .join(Participant, Participant.id == OutboundMessage.participant_id)  # type: ignore[arg-type]
        .where(Participant.status == ParticipantStatus.DELETED)
        .where(col(OutboundMessage.status).not_in(_IN_FLIGHT))
        .where(OutboundMessage.address != "")
        .distinct()
        .limit(limit)
    )).all()
    total = 0
    for pid in ids:
        if pid is not None:
            total += await scrub_sent_rows(session, pid)
    return total


UNLINKED_RETENTION = timedelta(days=30)


async def forget_unlinked_inbound(
    session: AsyncSession, *, now: datetime, keep_for: timedelta = UNLINKED_RETENTION,
    limit: int | None = FORGET_BATCH,
) -> int:
    """Blank messages from numbers that never linked, once they are `keep_for` old.

    At most `limit` rows a call (oldest first), so one call is a short transaction; a
    backlog is worked off by later calls (see forget_unlinked_in_batches).
    """
    due = (
        select(InboundMessage.id)
        .where(col(InboundMessage.participant_id).is_(None))
        .where(col(InboundMessage.received_at) < now - keep_for)
        .where(or_(col(InboundMessage.body).is_not(None),
                   col(InboundMessage.address_hash).is_not(None)))
    )
    if limit is not None:
        due = due.order_by(col(InboundMessage.id)).limit(limit)
    result = await session.exec(
        update(InboundMessage)
        .where(col(InboundMessage.id).in_(due.scalar_subquery()))
        .values(body=None, address_hash=None)
    )
    return int(result.rowcount or 0)


async def forget_unlinked_in_batches(
    engine: AsyncEngine, *, now: datetime, keep_for: timedelta = UNLINKED_RETENTION,
    batch: int = FORGET_BATCH,
) -> int:
    """Forget every due message from never-linked numbers, committing `batch` rows at a time."""
    total = 0
    while True:
        async with session_scope(engine) as session:
            done = await forget_unlinked_inbound(session, now=now, keep_for=keep_for,
                                                 limit=batch)
        total += done
        if done < batch:
            return total
        await asyncio.sleep(BATCH_PAUSE)


@dataclass(frozen=True)
class Erased:
    """Someone erased, told without personal data: their row's id and when it was made
    (ids are never reused for participants: an erased person's row stays)."""

    participant_id: int
    created_at: datetime


async def erased_people(engine: AsyncEngine) -> list[Erased]:
    """Return everyone erased in this database (read before a restore replaces it; none
    if it has no tables yet)."""
    async with engine.connect() as conn:
        if not await conn.run_sync(lambda c: inspect(c).has_table("participant")):
            return []
    async with session_scope(engine) as session:
        rows = await session.exec(select(Participant.id, Participant.created_at)
                                  .where(col(Participant.status) == ParticipantStatus.DELETED))
        return [Erased(pid or 0, made) for pid, made in rows.all()]


async def erase_again(engine: AsyncEngine, erased: list[Erased], *, now: datetime) -> int:
    """Erase again, in a restored database, the people erased in the one it replaced: a
    backup taken before their DELETE holds them whole. Return how many it erased.

    Each is their own transaction, recorded in the audit trail as done by the command line.
    Needs the keys the backup was written with (their tool entries are opened to keep the
    numbers, as a DELETE does)."""
    done = 0
    for one in erased:
        async with session_scope(engine) as session:
            p = await session.get(Participant, one.participant_id)
            if p is None or p.status == ParticipantStatus.DELETED \
                    or p.created_at != one.created_at:
                continue
            await erase_participant(session, participant_id=one.participant_id, now=now)
            await audit(session, actor=CLI_ACTOR, action="erase_again_after_restore", now=now,
                        participant_id=one.participant_id)
        done += 1
    return done
