"""Queries behind a participant's aftercare plan: goals, appointments, key contacts, chosen
meetings, the actual release time, and the link code's state.

Every change writes an audit row (actor such as `staff:3`); details never hold names, phone
numbers or goal text. Rows are always looked up with their participant's id, so an id from
another person's plan finds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.meeting_views_q import unsubscribe
from storage.models import (
    AftercarePlan,
    Appointment,
    AppointmentKind,
    KeyContact,
    LinkCode,
    Participant,
    ParticipantStatus,
)
from storage.participants import audit
from storage.subscriptions import subscribe


async def plan_of(session: AsyncSession, participant_id: int) -> AftercarePlan:
    """Return a participant's plan, making an empty one if they have none."""
    plan = (await session.exec(select(AftercarePlan).where(
        col(AftercarePlan.participant_id) == participant_id))).first()
    if plan is None:
        plan = AftercarePlan(participant_id=participant_id, goals=[])
        session.add(plan)
        await session.flush()
    return plan


async def add_goal(
    session: AsyncSession, *, participant_id: int, goal: str, now: datetime, actor: str
) -> None:
    """Add a goal to the end of a participant's plan."""
    plan = await plan_of(session, participant_id)
    plan.goals = [*(plan.goals or []), goal]  # a new list, so the JSON column is saved
    plan.updated_at = now
    session.add(plan)
    await audit(session, actor=actor, action="goal_added", now=now,
                participant_id=participant_id, detail={"goals": len(plan.goals)})


async def remove_goal(
    session: AsyncSession, *, participant_id: int, index: int, goal: str, now: datetime,
    actor: str,
) -> bool:
    """Remove the goal at `index` if it still reads `goal`; say whether one was removed."""
    plan = await plan_of(session, participant_id)
    goals = list(plan.goals or [])
    if not 0 <= index < len(goals) or goals[index] != goal:
        return False  # changed in another tab since the page was shown
    del goals[index]
    plan.goals, plan.updated_at = goals, now
    session.add(plan)
    await audit(session, actor=actor, action="goal_removed", now=now,
                participant_id=participant_id, detail={"goals": len(goals)})
    return True


async def appointments_of(
    session: AsyncSession, participant_id: int, *, since: datetime
) -> list[Appointment]:
    """Return a participant's appointments from `since` on, not cancelled, soonest first."""
    rows = await session.exec(
        select(Appointment)
        .where(col(Appointment.participant_id) == participant_id)
        .where(col(Appointment.cancelled).is_(False))
        .where(col(Appointment.starts_at) >= since)
        .order_by(col(Appointment.starts_at), col(Appointment.id)))
    return list(rows.all())


async def add_appointment(
    session: AsyncSession, *, participant_id: int, kind: AppointmentKind, starts_at: datetime,
    place: str | None, note: str | None, now: datetime, actor: str,
) -> Appointment:
    """Add an appointment; the planner turns it into reminders on its next pass."""
    appointment = Appointment(participant_id=participant_id, kind=kind, starts_at=starts_at,
                              place=place, note=note, created_at=now)
    session.add(appointment)
    await session.flush()
    await audit(session, actor=actor, action="appointment_added", now=now,
                participant_id=participant_id,
                detail={"appointment": appointment.id, "kind": str(kind),
                        "starts_at": starts_at.isoformat()})
    return appointment


async def cancel_appointment(
    session: AsyncSession, *, participant_id: int, appointment_id: int, now: datetime,
    actor: str,
) -> bool:
    """Cancel one of this participant's appointments (the planner withdraws its reminders)."""
    appointment = (await session.exec(select(Appointment).where(
        col(Appointment.id) == appointment_id,
        col(Appointment.participant_id) == participant_id))).first()
    if appointment is None or appointment.cancelled:
        return False
    appointment.cancelled = True  # kept, not deleted: queued reminders are found by it
    session.add(appointment)
    await audit(session, actor=actor, action="appointment_cancelled", now=now,
                participant_id=participant_id, detail={"appointment": appointment_id})
    return True


async def key_contacts_of(session: AsyncSession, participant_id: int) -> list[KeyContact]:
    """Return a participant's key contacts in the order they were added."""
    rows = await session.exec(select(KeyContact)
                              .where(col(KeyContact.participant_id) == participant_id)
                              .order_by(col(KeyContact.id)))
    return list(rows.all())


async def add_key_contact(
    session: AsyncSession, *, participant_id: int, name: str, role: str | None,
    phone: str | None, now: datetime, actor: str,
) -> KeyContact:
    """Add a key contact (a probation officer, a key worker) to a participant's plan."""
    contact = KeyContact(participant_id=participant_id, name=name, role=role, phone=phone)
    session.add(contact)
    await session.flush()
    await audit(session, actor=actor, action="contact_added", now=now,
                participant_id=participant_id, detail={"contact": contact.id})
    return contact


async def remove_key_contact(
    session: AsyncSession, *, participant_id: int, contact_id: int, now: datetime, actor: str
) -> bool:
    """Remove one of this participant's key contacts; say whether there was one."""
    contact = (await session.exec(select(KeyContact).where(
        col(KeyContact.id) == contact_id,
        col(KeyContact.participant_id) == participant_id))).first()
    if contact is None:
        return False
    await session.delete(contact)
    await audit(session, actor=actor, action="contact_removed", now=now,
                participant_id=participant_id, detail={"contact": contact_id})
    return True


async def choose_meeting(
    session: AsyncSession, *, participant_id: int, meeting_id: int, now: datetime, actor: str
) -> None:
    """Add a meeting to a participant's chosen meetings (as SAVE does), audited."""
    await subscribe(session, participant_id=participant_id, meeting_id=meeting_id, now=now)
    await audit(session, actor=actor, action="meeting_chosen", now=now,
                participant_id=participant_id, detail={"meeting": meeting_id})


async def unchoose_meeting(
    session: AsyncSession, *, participant_id: int, meeting_id: int, now: datetime, actor: str
) -> bool:
    """Drop a chosen meeting and its queued reminders (as UNSAVE does); say if it was chosen."""
    dropped = await unsubscribe(session, participant_id=participant_id,
                                meeting_ids=[meeting_id], now=now)
    if dropped:
        await audit(session, actor=actor, action="meeting_unchosen", now=now,
                    participant_id=participant_id, detail={"meeting": meeting_id})
    return bool(dropped)


async def set_released(
    session: AsyncSession, *, participant_id: int, at: datetime, release_date: date,
    now: datetime, actor: str,
) -> Participant | None:
    """Record when a participant actually left (and that day as their release date)."""
    p = await session.get(Participant, participant_id)
    if p is None or p.status == ParticipantStatus.DELETED:
        return None
    detail = {"at": at.isoformat()}
    if p.release_date != release_date:
        detail |= {"from": p.release_date.isoformat(), "to": release_date.isoformat()}
    p.released_at, p.release_date, p.updated_at = at, release_date, now
    session.add(p)
    await audit(session, actor=actor, action="marked_released", now=now,
                participant_id=participant_id, detail=detail)
    await session.flush()
    return p


@dataclass(frozen=True)
class CodeState:
    """Where a participant's link codes stand (never the code: only its hash is kept)."""

    issued_at: datetime | None  # the newest code
    expires_at: datetime | None  # the newest code's expiry
    usable: bool  # the newest code is unused and unexpired
    used_at: datetime | None  # when a code was last used to link


async def code_state(session: AsyncSession, participant_id: int, *, now: datetime) -> CodeState:
    """Return where a participant's link codes stand at `now`."""
    rows = list((await session.exec(
        select(LinkCode).where(col(LinkCode.participant_id) == participant_id)
        .order_by(col(LinkCode.created_at).desc(), col(LinkCode.id).desc()))).all())
    used = [r.used_at for r in rows if r.used_at is not None]
    if not rows:
        return CodeState(None, None, False, None)
    newest = rows[0]
    return CodeState(newest.created_at, newest.expires_at,
                     newest.used_at is None and newest.expires_at > now,
                     max(used) if used else None)
