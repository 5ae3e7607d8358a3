"""Queries about staff accounts: sign-in bookkeeping, passwords, and who may see whom.

The scope rule for participants lives here and only here: a Champion sees the participants
of their own prison, an admin sees everyone, a coordinator sees no participant. List queries
filter with `participant_scope(staff)`; single reads go through `participant_for_staff`.
Cohort figures (counts, never names) use `cohort_scope(session, staff)`: a coordinator's
region, by geography when an admin has defined it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, false, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.errors import NotFound, StaffExists
from storage.models import Participant, Prison, StaffRole, StaffUser
from storage.regions_q import get_region, ids_in_region
from storage.simulator_q import not_simulated


def normalise_email(email: str) -> str:
    """Return an email as stored: trimmed and lower case."""
    return email.strip().lower()


async def staff_by_email(session: AsyncSession, email: str) -> StaffUser | None:
    """Return the staff account with this email (any case), or None."""
    found = await session.exec(
        select(StaffUser).where(col(StaffUser.email) == normalise_email(email)))
    return found.first()


async def staff_by_id(session: AsyncSession, staff_id: int) -> StaffUser | None:
    """Return the staff account with this id, or None."""
    return await session.get(StaffUser, staff_id)


async def create_staff(
    session: AsyncSession,
    *,
    email: str,
    display_name: str,
    role: StaffRole,
    password_hash: str,
    now: datetime,
    prison_id: int | None = None,
    region: str | None = None,
    must_change_password: bool = True,
) -> StaffUser:
    """Add a staff account; raise StaffExists if the email already has one."""
    if await staff_by_email(session, email) is not None:
        raise StaffExists(f"{normalise_email(email)} already has an account")
    user = StaffUser(email=normalise_email(email), display_name=display_name, role=role,
                     prison_id=prison_id, region=region, password_hash=password_hash,
                     must_change_password=must_change_password, created_at=now)
    session.add(user)
    await session.flush()
    return user


async def record_failed_login(
    session: AsyncSession, *, staff_id: int, now: datetime, limit: int, lock_for: timedelta
) -> StaffUser:
    """Count a wrong password; the `limit`-th in a row locks the account for `lock_for`."""
    # One UPDATE, so two wrong passwords at the same moment both count.
    await session.exec(update(StaffUser).where(col(StaffUser.id) == staff_id)
                       .values(failed_logins=col(StaffUser.failed_logins) + 1))
    user = await session.get(StaffUser, staff_id, populate_existing=True)
    if user is None:
        raise NotFound(f"staff {staff_id}")
    if user.failed_logins >= limit:
        user.locked_until = now + lock_for
        user.failed_logins = 0
        session.add(user)
        await session.flush()
    return user


async def record_sign_in(session: AsyncSession, *, staff_id: int, now: datetime) -> None:
    """Clear the wrong-password count and lock after a good sign-in, and note the time."""
    await session.exec(update(StaffUser).where(col(StaffUser.id) == staff_id)
                       .values(failed_logins=0, locked_until=None, last_seen_at=now))


async def record_seen(session: AsyncSession, *, staff_id: int, now: datetime) -> None:
    """Note that a signed-in staff member used the console at `now`."""
    await session.exec(update(StaffUser).where(col(StaffUser.id) == staff_id)
                       .values(last_seen_at=now))


async def end_sessions(session: AsyncSession, *, staff_id: int) -> None:
    """End every session of this staff member (signing out signs out everywhere)."""
    await session.exec(update(StaffUser).where(col(StaffUser.id) == staff_id)
                       .values(session_epoch=col(StaffUser.session_epoch) + 1))


async def set_password(
    session: AsyncSession, *, staff_id: int, password_hash: str, must_change_password: bool
) -> None:
    """Store a new password hash; a reset also lifts any lock."""
    await session.exec(update(StaffUser).where(col(StaffUser.id) == staff_id).values(
        password_hash=password_hash, must_change_password=must_change_password,
        failed_logins=0, locked_until=None))


async def list_staff(session: AsyncSession) -> list[tuple[StaffUser, str | None]]:
    """Return every staff account with its prison's name, by role then email."""
    rows = await session.exec(
        select(StaffUser, Prison.name)
        .join(Prison, col(Prison.id) == col(StaffUser.prison_id), isouter=True)
        .order_by(col(StaffUser.role), col(StaffUser.email)))
    return [(user, name) for user, name in rows.all()]


async def prison_name(session: AsyncSession, prison_id: int | None) -> str | None:
    """Return a prison's name, or None."""
    if prison_id is None:
        return None
    prison = await session.get(Prison, prison_id)
    return prison.name if prison else None


def participant_scope(staff: StaffUser) -> ColumnElement[bool]:
    """Return the WHERE clause choosing the participants this staff member may see."""
    if staff.role == StaffRole.ADMIN:
        return not_simulated()  # everyone real: the simulator's throwaway people are nobody's
    if staff.role == StaffRole.CHAMPION and staff.prison_id is not None:
        return col(Participant.prison_id) == staff.prison_id
    return false()  # coordinators work with meetings, never with a participant's plan


async def cohort_scope(session: AsyncSession, staff: StaffUser) -> ColumnElement[bool]:
    """Return the WHERE clause choosing whose figures count in this person's cohort report.

    Champions and admins: the participants they may see. A coordinator: the people whose
    release area lies in the defined Region named like their region (see storage.regions_q);
    with no such Region, those released into an area a town names like it, or, with no such
    area, leaving a prison in it. Counted in figures, never shown by name.
    """
    if staff.role != StaffRole.COORDINATOR:
        return participant_scope(staff)
    region = (staff.region or "").strip().lower()
    if not region:
        return false()
    defined = await get_region(session, region)
    if defined is not None:
        return col(Participant.id).in_(await ids_in_region(session, defined))
    prisons = select(Prison.id).where(func.lower(Prison.region) == region)
    return or_(func.lower(Participant.region) == region,
               and_(col(Participant.region).is_(None), col(Participant.prison_id).in_(prisons)))


async def participant_for_staff(
    session: AsyncSession, *, staff: StaffUser, participant_id: int
) -> Participant | None:
    """Return the participant if this staff member may see them, else None."""
    found = await session.exec(select(Participant).where(
        col(Participant.id) == participant_id, participant_scope(staff)))
    return found.first()
