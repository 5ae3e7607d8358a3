"""Queries behind coordinators' Telegram commands: link codes, staff chats, what was asked.

A coordinator links their Telegram account with a one-time code from the console: only an
HMAC of the code is stored, for 15 minutes. A linked chat is a staff chat. What a staff chat
was last asked (which meeting a broadcast is for, the draft waiting for Send) is kept in
the `meta` of the reply that asked it, in the outbox, so no conversation table is needed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, update
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.dialect import run
from storage.models import AuditEvent, OutboundMessage, StaffRole, StaffUser
from storage.participants import hash_address, new_link_code, normalise_code, record_inbound

LINK_CODE_LIFETIME = timedelta(minutes=15)
MAX_FAILED_STAFF_LINKS_PER_HOUR = 5
LINK_FAILED = "staff_telegram_link_failed"
STAFF_KEY_PREFIX = "staff:"  # dedupe keys of every reply to a staff chat start so


def staff_link_hash(code: str, *, key: str) -> str | None:
    """Return the stored form of a typed staff link code, or None if it cannot be one."""
    canonical = normalise_code(code)
    if canonical is None:
        return None
    return hmac.new(key.encode(), f"staff-telegram:{canonical}".encode(),
                    hashlib.sha256).hexdigest()


async def issue_staff_link_code(
    session: AsyncSession, *, staff: StaffUser, key: str, now: datetime
) -> tuple[str, datetime]:
    """Give a staff member a new one-time link code (older ones stop working); return it."""
    code = new_link_code()
    expires = now + LINK_CODE_LIFETIME
    staff.telegram_link_hash = staff_link_hash(code, key=key)
    staff.telegram_link_expires = expires
    session.add(staff)
    await session.flush()
    return code, expires


async def unlink_staff_telegram(session: AsyncSession, *, staff: StaffUser) -> None:
    """Forget a staff member's Telegram account and any code not yet used."""
    staff.telegram_id = None
    staff.telegram_link_hash = None
    staff.telegram_link_expires = None
    session.add(staff)
    await session.flush()


async def staff_for_chat(session: AsyncSession, chat_id: str) -> StaffUser | None:
    """Return the staff member whose Telegram account is this chat, if any.

    Every Telegram update asks, and almost every one is from a participant: a Core look for
    the id, built once, and the whole row only for a staff member."""
    found = (await run(session, _STAFF_CHAT, {"chat": chat_id})).first()
    return None if found is None else await session.get(StaffUser, found[0])


_STAFF: Any = StaffUser.__table__  # type: ignore[attr-defined]
_STAFF_CHAT = (sa_select(_STAFF.c.id).where(_STAFF.c.telegram_id == bindparam("chat"))
               .order_by(_STAFF.c.id).limit(1))


async def redeem_staff_link_code(
    session: AsyncSession, *, code_hash: str, chat_id: str, roles: Collection[StaffRole],
    now: datetime,
) -> StaffUser | None:
    """Link this chat to the staff member (in one of `roles`) whose live code this is."""
    rows = await session.exec(select(StaffUser)
                              .where(col(StaffUser.telegram_link_hash) == code_hash)
                              .where(col(StaffUser.telegram_link_expires) > now)
                              .where(col(StaffUser.role).in_([str(r) for r in roles])))
    staff = rows.first()
    if staff is None:
        return None
    # One chat is one person's: a chat linked before to someone else is theirs no more.
    await session.exec(update(StaffUser).where(col(StaffUser.telegram_id) == chat_id)
                       .values(telegram_id=None))
    staff.telegram_id = chat_id
    staff.telegram_link_hash = None
    staff.telegram_link_expires = None
    session.add(staff)
    await session.flush()
    return staff


def _address_actor(channel: str, address: str) -> str:
    return f"address:{hash_address(f'{channel}:{address}')}"


async def record_failed_staff_link(
    session: AsyncSession, *, channel: str, address: str, now: datetime
) -> None:
    """Count one wrong or expired staff code from a chat (its address hashed, no code)."""
    session.add(AuditEvent(at=now, actor=_address_actor(channel, address), action=LINK_FAILED))
    await session.flush()


async def failed_staff_links(
    session: AsyncSession, *, channel: str, address: str, now: datetime
) -> int:
    """Count wrong or expired staff codes from this chat in the last hour."""
    rows = await session.exec(
        select(func.count()).select_from(AuditEvent)
        .where(col(AuditEvent.action) == LINK_FAILED)
        .where(col(AuditEvent.at) >= now - timedelta(hours=1))
        .where(col(AuditEvent.actor) == _address_actor(channel, address)))
    return int(rows.one())


async def claim_once(session: AsyncSession, *, channel: str, key: str, now: datetime) -> bool:
    """Claim a one-time act (sending one previewed broadcast); False if claimed before."""
    return await record_inbound(session, channel=channel, provider_id=f"staff-once:{key}"[:100],
                                body=None, now=now)


async def last_staff_reply(
    session: AsyncSession, *, channel: str, address: str
) -> OutboundMessage | None:
    """Return the newest reply written to a staff chat (what it was last asked)."""
    rows = await session.exec(
        select(OutboundMessage)
        .where(col(OutboundMessage.channel) == channel)
        .where(col(OutboundMessage.address) == address)
        .where(col(OutboundMessage.dedupe_key).startswith(STAFF_KEY_PREFIX))
        .order_by(col(OutboundMessage.id).desc()).limit(1))
    return rows.first()


async def staff_reply_by_key(
    session: AsyncSession, *, channel: str, address: str, dedupe_key: str
) -> OutboundMessage | None:
    """Return one reply written to this staff chat, by its dedupe key (never another chat's)."""
    rows = await session.exec(
        select(OutboundMessage)
        .where(col(OutboundMessage.dedupe_key) == dedupe_key)
        .where(col(OutboundMessage.channel) == channel)
        .where(col(OutboundMessage.address) == address))
    return rows.first()


def staff_step(row: OutboundMessage | None, *, now: datetime, within: timedelta
               ) -> dict[str, Any]:
    """Return the staff step a reply left its chat at, or {} if none or too old."""
    if row is None or now - row.created_at > within:
        return {}
    step = (row.meta or {}).get("staff")
    return step if isinstance(step, dict) else {}
