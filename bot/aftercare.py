"""The aftercare plan a Champion keeps after enrolment: release date and time, goals,
appointments and key contacts.

The staff pages and the CLI call these; they only parse input and show the result or the
`PlanError` (which names the field at fault). Functions taking a session leave the commit
to the caller. `move_release` and `replan_sequence` take the engine, because the planner
writes in its own short transactions: commit the request's own work before calling them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import phonenumbers
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.enrol import EnrolmentError, check_release_date
from scheduler.planning import PlanStats, replan_release
from scheduler.quiet import zone_of
from storage.db import session_scope
from storage.models import Appointment, AppointmentKind, KeyContact, Participant, ParticipantStatus
from storage.plans_q import add_appointment as store_appointment
from storage.plans_q import add_goal as store_goal
from storage.plans_q import add_key_contact as store_contact
from storage.plans_q import plan_of, set_released
from storage.scheduling import set_release_date

MAX_GOALS = 12
MAX_GOAL = 200
MAX_PLACE = 200
MAX_NOTE = 300
MAX_NAME = 100
BOOK_AHEAD = timedelta(days=366)  # an appointment further off is a typing mistake
RELEASED_CLOCK_SLACK = timedelta(minutes=10)  # a release "now" by a clock a little ahead
RELEASED_WITHIN = timedelta(days=28)  # the release sequence's length: older is a mistake


class PlanError(ValueError):
    """A change to a plan is refused; `field` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ReleaseMoved:
    """A moved release date and how the release sequence moved with it."""

    participant_id: int
    release_date: date
    sequence: PlanStats


def actor_for(staff_id: int | None) -> str:
    """Return the audit actor: the staff member, or the command line."""
    return f"staff:{staff_id}" if staff_id is not None else "cli"


async def _live(session: AsyncSession, participant_id: int) -> Participant:
    p = await session.get(Participant, participant_id)
    if p is None or p.status == ParticipantStatus.DELETED:
        raise PlanError("participant", f"no participant {participant_id} "
                                       "(or their data was deleted)")
    return p


async def replan_sequence(engine: AsyncEngine, *, participant_id: int, now: datetime
                          ) -> PlanStats:
    """Plan one person's release sequence again now, after its date or time changed."""
    return await replan_release(engine, participant_id=participant_id, now=now)


async def move_release(
    engine: AsyncEngine, *, participant_id: int, release_date: date, now: datetime,
    staff_id: int | None = None, today: date | None = None,
) -> ReleaseMoved:
    """Move a release date and the release sequence with it at once (not once released)."""
    if today is not None:  # the staff page: a week late at most, as at enrolment
        try:
            check_release_date(release_date, today=today)
        except EnrolmentError as exc:
            raise PlanError(exc.field, exc.message) from None
    async with session_scope(engine) as session:
        p = await _live(session, participant_id)
        if p.released_at is not None:
            raise PlanError("release_date", "cannot change: they are marked as released; "
                                            "correct the time they were released instead")
        await set_release_date(session, participant_id=participant_id,
                               release_date=release_date, now=now, actor=actor_for(staff_id))
    stats = await replan_sequence(engine, participant_id=participant_id, now=now)
    return ReleaseMoved(participant_id, release_date, stats)


async def mark_released(
    session: AsyncSession, *, participant_id: int, at: datetime, now: datetime,
    staff_id: int | None = None,
) -> Participant:
    """Record when a participant was released; call `replan_sequence` after committing."""
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    if at > now + RELEASED_CLOCK_SLACK:
        raise PlanError("released_at", "must be now or in the past")
    if at < now - RELEASED_WITHIN:
        raise PlanError("released_at", f"must be within the last {RELEASED_WITHIN.days} days")
    p = await _live(session, participant_id)
    day = at.astimezone(zone_of(p)).date()  # the day they left is their release date now
    moved = await set_released(session, participant_id=participant_id, at=at, release_date=day,
                               now=now, actor=actor_for(staff_id))
    assert moved is not None  # _live found them in this transaction
    return moved


def _cleaned(text: str | None, limit: int) -> str | None:
    return " ".join((text or "").split())[:limit] or None


async def add_goal(session: AsyncSession, *, participant_id: int, goal: str, now: datetime,
                   staff_id: int | None = None) -> None:
    """Add a goal to a participant's plan."""
    text = _cleaned(goal, MAX_GOAL + 1)
    if text is None:
        raise PlanError("goal", "must not be empty")
    if len(text) > MAX_GOAL:
        raise PlanError("goal", f"must be {MAX_GOAL} characters or fewer")
    if len((await plan_of(session, participant_id)).goals or []) >= MAX_GOALS:
        raise PlanError("goal", f"cannot be added: a plan holds {MAX_GOALS} goals at most. "
                                "Remove one first")
    await store_goal(session, participant_id=participant_id, goal=text, now=now,
                     actor=actor_for(staff_id))


async def add_appointment(
    session: AsyncSession, *, participant_id: int, kind: str, starts_at: datetime,
    now: datetime, place: str | None = None, note: str | None = None,
    staff_id: int | None = None,
) -> Appointment:
    """Add an appointment to a participant's plan; reminders are planned from it."""
    try:
        what = AppointmentKind(kind)
    except ValueError:
        raise PlanError("kind", "must be one of " + ", ".join(k.value for k in AppointmentKind)
                        ) from None
    if starts_at <= now:
        raise PlanError("starts_at", "must be in the future")
    if starts_at > now + BOOK_AHEAD:
        raise PlanError("starts_at", "must be within the next year")
    return await store_appointment(
        session, participant_id=participant_id, kind=what, starts_at=starts_at,
        place=_cleaned(place, MAX_PLACE), note=_cleaned(note, MAX_NOTE), now=now,
        actor=actor_for(staff_id))


def check_contact_phone(raw: str) -> str:
    """Return a UK phone number as people write it (`01632 960001`), or raise PlanError."""
    shown = raw.strip()[:40]
    try:
        parsed = phonenumbers.parse(raw.strip(), "GB")
    except phonenumbers.NumberParseException:
        raise PlanError("phone", f"is not a phone number: {shown!r}") from None
    if not phonenumbers.is_possible_number(parsed):
        raise PlanError("phone", f"is not a phone number: {shown!r}")
    style = (phonenumbers.PhoneNumberFormat.NATIONAL if parsed.country_code == 44
             else phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return phonenumbers.format_number(parsed, style)


async def add_key_contact(
    session: AsyncSession, *, participant_id: int, name: str, now: datetime,
    role: str | None = None, phone: str | None = None, staff_id: int | None = None,
) -> KeyContact:
    """Add a key contact (name, role, phone) to a participant's plan."""
    who = _cleaned(name, MAX_NAME)
    if who is None:
        raise PlanError("name", "must not be empty")
    number = check_contact_phone(phone) if phone and phone.strip() else None
    return await store_contact(session, participant_id=participant_id, name=who,
                               role=_cleaned(role, MAX_NAME), phone=number, now=now,
                               actor=actor_for(staff_id))
