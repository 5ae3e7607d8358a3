"""Queries about participants: enrolment, identities, link codes, conversation state."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.crypto import blind_index
from storage.dialect import run
from storage.errors import LinkCodeError, NotFound
from storage.models import (
    AftercarePlan,
    AuditEvent,
    Channel,
    ChannelIdentity,
    ConversationState,
    IdentityStatus,
    InboundMessage,
    LinkCode,
    Participant,
    ParticipantStatus,
    Prison,
)
from storage.models.sealed import seal_for
from storage.outbox_q import cancel_pending_for
from storage.upserts import insert_skipping

_INBOUND: Any = InboundMessage.__table__  # type: ignore[attr-defined]

# No 0/O, 1/I: easy to read off a card and type on a basic phone. 32 symbols = 5 bits each.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 10  # 50 bits
MAX_FAILED_LINKS_PER_HOUR = 5  # wrong link codes one sender may try in an hour
# Wrong codes from everyone in an hour before new senders are refused (and an alert logged).
MAX_FAILED_LINKS_ALL_PER_HOUR = 300


def new_link_code() -> str:
    """Return a fresh random link code, grouped for reading: `ABCDE-FGHJK`."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def normalise_code(text: str) -> str | None:
    """Return the canonical code in `text` (case, spaces and dashes ignored), or None."""
    raw = "".join(ch for ch in text.upper() if ch not in " -_")
    if len(raw) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in raw):
        return None
    return raw


def hash_code(code: str) -> str:
    """Hash a canonical code; only the hash is stored."""
    return hashlib.sha256(code.encode()).hexdigest()


def hash_address(address: str) -> str:
    """Return the keyed blind index of an address (HMAC-SHA256 with BLIND_KEY, 16 hex).

    For audit rows and inbound rows, so neither holds a phone number, and without the key
    nobody can test a guess against it.
    """
    return blind_index(address)


async def get_or_create_prison(session: AsyncSession, name: str) -> Prison:
    """Return the prison with this name, creating it if new."""
    prison = (await session.exec(select(Prison).where(Prison.name == name))).first()
    if prison is None:
        prison = Prison(name=name)
        session.add(prison)
        await session.flush()
    return prison


async def enrol(
    session: AsyncSession,
    *,
    prison_name: str,
    display_name: str,
    release_date: date,
    release_postcode: str | None,
    now: datetime,
    phone: str | None = None,
    channel: str = "sms",
    code_days_after_release: int = 60,
    enrolled_by: int | None = None,
    goals: list[str] | None = None,
    release_lat: float | None = None,
    release_lon: float | None = None,
    region: str | None = None,
    consent_wording_version: str | None = None,
    staff_review_consent: bool = False,
    sessions_inside: int = 0,
) -> tuple[Participant, str]:
    """Create a participant, their plan and a link code; return both (the code only here).

    With `consent_wording_version`, the consent the enrolling Champion recorded is kept:
    the wording version, now, and who (`enrolled_by`).
    """
    prison = await get_or_create_prison(session, prison_name)
    recorded = consent_wording_version is not None
    participant = Participant(
        display_name=display_name,
        release_date=release_date,
        release_postcode=release_postcode,
        release_lat=release_lat,
        release_lon=release_lon,
        region=region,
        phone=phone,
        preferred_channel=Channel(channel),
        prison_id=prison.id,
        enrolled_by=enrolled_by,
        consent_wording_version=consent_wording_version,
        consent_recorded_at=now if recorded else None,
        consent_recorded_by=enrolled_by if recorded else None,
        staff_review_consent=staff_review_consent,
        sessions_inside=sessions_inside,
        created_at=now,
        updated_at=now,
    )
    session.add(participant)
    await session.flush()
    assert participant.id is not None
    session.add(AftercarePlan(participant_id=participant.id, goals=goals or [], updated_at=now))
    code = await issue_link_code(
        session, participant_id=participant.id, release_date=release_date, now=now,
        days_after_release=code_days_after_release,
    )
    await audit(session, actor=f"staff:{enrolled_by}" if enrolled_by else "cli",
                action="enrol", participant_id=participant.id, now=now)
    return participant, code


def link_code_expiry(*, release_date: date, now: datetime, days_after_release: int) -> datetime:
    """Return when a card code expires: the end of release + N days, and never under N days."""
    end = datetime.combine(release_date + timedelta(days=days_after_release), time.max,
                           tzinfo=UTC)
    return max(end, now + timedelta(days=days_after_release))


async def issue_link_code(
    session: AsyncSession,
    *,
    participant_id: int,
    release_date: date,
    now: datetime,
    days_after_release: int = 60,
    expires_at: datetime | None = None,
) -> str:
    """Create a new single-use code for a participant and return it."""
    expires = expires_at or link_code_expiry(release_date=release_date, now=now,
                                             days_after_release=days_after_release)
    code = new_link_code()
    canonical = code.replace("-", "")
    session.add(LinkCode(participant_id=participant_id, code_hash=hash_code(canonical),
                         created_at=now, expires_at=expires))
    await session.flush()
    return code


async def void_link_codes(session: AsyncSession, *, participant_id: int, now: datetime) -> int:
    """Make every unused, unexpired code of a participant expire now; return how many."""
    rows = await session.exec(
        select(LinkCode)
        .where(LinkCode.participant_id == participant_id)
        .where(col(LinkCode.used_at).is_(None))
        .where(col(LinkCode.expires_at) > now)
    )
    voided = 0
    for row in rows.all():
        row.expires_at = now
        session.add(row)
        voided += 1
    return voided


async def reissue_link_code(
    session: AsyncSession,
    *,
    participant_id: int,
    now: datetime,
    days_after_release: int = 60,
    issued_by: int | None = None,
) -> tuple[str, datetime]:
    """Void a participant's unused codes and issue a fresh one; return it and its expiry.

    Raise NotFound for an unknown or deleted participant. The audit row holds no code.
    """
    participant = await session.get(Participant, participant_id)
    if participant is None or participant.status == ParticipantStatus.DELETED:
        raise NotFound(f"participant {participant_id}")
    voided = await void_link_codes(session, participant_id=participant_id, now=now)
    expires = link_code_expiry(release_date=participant.release_date, now=now,
                               days_after_release=days_after_release)
    code = await issue_link_code(session, participant_id=participant_id,
                                 release_date=participant.release_date, now=now,
                                 expires_at=expires)
    await audit(session, actor=f"staff:{issued_by}" if issued_by else "cli",
                action="new_code", participant_id=participant_id, now=now,
                detail={"voided": voided})
    return code, expires


async def is_known_code(session: AsyncSession, code: str) -> bool:
    """Say whether a canonical code was ever issued (used, expired or live)."""
    found = await session.exec(select(LinkCode.id).where(LinkCode.code_hash == hash_code(code)))
    return found.first() is not None


async def redeem_link_code(session: AsyncSession, *, code: str, now: datetime) -> Participant:
    """Use a link code once; return its participant or raise LinkCodeError."""
    canonical = normalise_code(code)
    if canonical is None:
        raise LinkCodeError("not a code")
    row = (
        await session.exec(select(LinkCode).where(LinkCode.code_hash == hash_code(canonical)))
    ).first()
    if row is None:
        raise LinkCodeError("unknown")
    if row.used_at is not None:
        raise LinkCodeError("used")
    if row.expires_at <= now:  # a voided code expires at the moment it is voided
        raise LinkCodeError("expired")
    participant = await session.get(Participant, row.participant_id)
    if participant is None or participant.status == ParticipantStatus.DELETED:
        raise LinkCodeError("unknown")
    # Only the first of two at once takes it: the other finds used_at already set.
    taken = await session.exec(
        update(LinkCode).execution_options(synchronize_session=False)
        .where(col(LinkCode.id) == row.id).where(col(LinkCode.used_at).is_(None))
        .values(used_at=now))
    if not taken.rowcount:
        raise LinkCodeError("used")
    return participant


async def failed_link_attempts(
    session: AsyncSession, *, address: str | None, now: datetime
) -> int:
    """Count failed link attempts in the last hour from this address (None: from anyone)."""
    since = now - timedelta(hours=1)
    query = (select(func.count()).select_from(AuditEvent)
             .where(AuditEvent.action == "link_failed").where(col(AuditEvent.at) >= since))
    if address is not None:
        query = query.where(AuditEvent.actor == f"address:{hash_address(address)}")
    return int((await session.exec(query)).one())


async def find_identity(
    session: AsyncSession, *, channel: str, address: str
) -> ChannelIdentity | None:
    """Return the identity for a channel address, if linked."""
    return (
        await session.exec(
            select(ChannelIdentity)
            .where(ChannelIdentity.channel == channel)
            .where(ChannelIdentity.address == address)
        )
    ).first()


async def find_linked(
    session: AsyncSession, *, channel: str, address: str
) -> tuple[ChannelIdentity | None, Participant | None]:
    """Return the identity for a channel address and its participant, in one read."""
    row = (await session.exec(
        select(ChannelIdentity, Participant)
        .outerjoin(Participant, col(Participant.id) == col(ChannelIdentity.participant_id))
        .where(ChannelIdentity.channel == channel).where(ChannelIdentity.address == address)
    )).first()
    return (row[0], row[1]) if row is not None else (None, None)


async def identities_of(session: AsyncSession, participant_id: int) -> list[ChannelIdentity]:
    """Return every channel identity of a participant."""
    rows = await session.exec(
        select(ChannelIdentity).where(ChannelIdentity.participant_id == participant_id)
    )
    return list(rows.all())


async def link_identity(
    session: AsyncSession, *, participant: Participant, channel: str, address: str, now: datetime
) -> ChannelIdentity:
    """Attach a channel address to a participant (one participant may have several)."""
    assert participant.id is not None
    identity = ChannelIdentity(
        participant_id=participant.id, channel=Channel(channel), address=address, linked_at=now,
        updated_at=now,
    )
    session.add(identity)
    await session.flush()
    return identity


async def enrolled_by_phone(session: AsyncSession, phone: str) -> Participant | None:
    """Return the newest participant, not deleted, enrolled with this phone number."""
    return (
        await session.exec(
            select(Participant)
            .where(Participant.phone == phone)
            .where(Participant.status != ParticipantStatus.DELETED)
            .order_by(col(Participant.id).desc())
        )
    ).first()


async def preferred_identity(
    session: AsyncSession, participant: Participant
) -> ChannelIdentity | None:
    """Return the active identity to reach a participant on, preferred channel first."""
    rows = [i for i in await identities_of(session, participant.id or 0)
            if i.status == IdentityStatus.ACTIVE]
    rows.sort(key=lambda i: (i.channel != participant.preferred_channel, -(i.id or 0)))
    return rows[0] if rows else None


async def load_state(session: AsyncSession, participant_id: int) -> ConversationState:
    """Return the conversation state row, creating it at the menu."""
    # Locked until commit on PostgreSQL: two answers at once take turns, neither is lost
    # (SQLite queues writers already).
    state = await session.get(ConversationState, participant_id, with_for_update=True)
    if state is None:
        state = ConversationState(participant_id=participant_id, flow="menu", step="", data={})
        session.add(state)
    return state


async def record_inbound(
    session: AsyncSession,
    *,
    channel: str,
    provider_id: str,
    body: str | None,
    now: datetime,
    participant_id: int | None = None,
    address: str | None = None,
) -> bool:
    """Write an inbound message down once; say False when this provider id was seen before.

    The body is sealed with the sender's data key; from a participant erased a moment ago
    (a message racing the confirming YES) it is not kept at all.
    """
    sealed = await seal_for(session, participant_id, body, drop_if_erased=True)
    values: dict[str, Any] = {
        "channel": channel, "provider_id": provider_id, "body": sealed, "received_at": now,
        "participant_id": participant_id,
        "address_hash": hash_address(f"{channel}:{address}") if address else None,
    }
    stmt = insert_skipping(_INBOUND, tuple(values), ("channel", "provider_id"))
    result = await run(session, stmt, values)
    return bool(result.rowcount)


async def audit(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    now: datetime,
    participant_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record an audit event (never message bodies or phone numbers)."""
    session.add(AuditEvent(at=now, actor=actor, action=action, participant_id=participant_id,
                           detail=detail))


async def opt_out(
    session: AsyncSession, *, participant_id: int, now: datetime, reason: str
) -> bool:
    """Stop every channel for a participant and cancel what is queued; say if it changed."""
    participant = await session.get(Participant, participant_id)
    if participant is None or participant.status in (
        ParticipantStatus.STOPPED, ParticipantStatus.DELETED
    ):
        return False
    participant.status = ParticipantStatus.STOPPED
    participant.opted_out_at = now
    participant.updated_at = now
    session.add(participant)
    # Queued rows and rows a dispatcher has claimed but not yet handed to the provider.
    await cancel_pending_for(session, participant_id=participant_id, reason=reason, now=now)
    await audit(session, actor="system", action="opt_out", now=now,
                participant_id=participant_id, detail={"reason": reason[:80]})
    return True


async def attach_inbound(
    session: AsyncSession, *, channel: str, provider_id: str, participant_id: int
) -> None:
    """Mark the message that linked an address as theirs (it arrived before the link)."""
    row = (await session.exec(
        select(InboundMessage)
        .where(InboundMessage.channel == channel)
        .where(InboundMessage.provider_id == provider_id)
    )).first()
    if row is not None and row.participant_id is None:
        row.participant_id = participant_id
        session.add(row)
