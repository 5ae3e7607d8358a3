"""What staff routes depend on, as typed aliases: every route states who may call it.

    @router.get("/participants/{participant_id}")
    async def show(request: Request, staff: ChampionStaff, participant: ScopedParticipant,
                   session: SessionDep, now: NowDep) -> HTMLResponse: ...

`SessionDep` is one database session per request, committed before the response is sent
(rolled back on an error). `CurrentStaff` is the signed-in person (no session, an idle one,
or a pending password change: a 303 to the sign-in or password page). Every POST under
/staff is refused with 403 unless its form carries the session's `csrf_token` (the staff
router checks; `csrf_field()` in partials/forms.html writes it). Participants are reached
only through `participant_in_scope` / `ScopedParticipant`: outside the person's scope is a
404, and every access is written to the audit table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.accounts import session_stamp
from bot.config import Settings
from bot.web.staff.session import csrf_matches, end_session
from storage.audit_q import record_staff_action
from storage.db import session_scope
from storage.models import Participant, StaffRole, StaffUser
from storage.staff_q import participant_for_staff, prison_name, record_seen, staff_by_id

SEEN_EVERY = timedelta(minutes=1)  # write last_seen_at at most this often
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class StaffBadge:
    """Who is signed in, as every page's header shows it (`current_staff` in templates)."""

    id: int
    email: str
    role: StaffRole
    prison: str | None  # a Champion's prison
    region: str | None  # a coordinator's region


class SignInRequired(Exception):
    """No valid staff session: the handler redirects (303) to the sign-in page."""


class PasswordChangeRequired(Exception):
    """A one-time password is in use: the handler redirects (303) to the password page."""


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield one session per request; commit on success, roll back on error."""
    engine: AsyncEngine = request.app.state.engine
    async with session_scope(engine) as session:
        yield session


def request_now(request: Request) -> datetime:
    """Return the app's idea of now (tests give the app a clock)."""
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


def app_settings(request: Request) -> Settings:
    """Return the app's settings."""
    settings: Settings = request.app.state.settings
    return settings


# scope="function": the commit happens before the response leaves, so the next page sees it.
SessionDep = Annotated[AsyncSession, Depends(db_session, scope="function")]
NowDep = Annotated[datetime, Depends(request_now)]
SettingsDep = Annotated[Settings, Depends(app_settings)]


async def check_csrf(request: Request) -> None:
    """Refuse (403) a POST whose form lacks this session's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    form = await request.form()
    if not csrf_matches(request, form.get("csrf_token")):
        raise HTTPException(403, "This form has expired or did not come from this service. "
                                 "Go back, reload the page and try again.")


async def signed_in_staff(
    request: Request, session: SessionDep, now: NowDep, settings: SettingsDep
) -> StaffUser:
    """Return the signed-in staff member, even one who must still change their password."""
    data = request.session
    staff_id, seen = data.get("staff_id"), data.get("seen")
    if not isinstance(staff_id, int) or not isinstance(seen, int | float):
        raise SignInRequired
    if now.timestamp() - seen > settings.staff_idle_minutes * 60:
        end_session(request, notice=f"You were signed out after {settings.staff_idle_minutes} "
                                    "minutes without activity. Sign in again.")
        raise SignInRequired
    staff = await staff_by_id(session, staff_id)
    if staff is None or data.get("stamp") != session_stamp(staff):
        end_session(request)
        raise SignInRequired
    data["seen"] = now.timestamp()
    if staff.last_seen_at is None or now - staff.last_seen_at >= SEEN_EVERY:
        await record_seen(session, staff_id=staff_id, now=now)
    # A copy, not the row: error pages render after the request's session has rolled back.
    request.state.staff = StaffBadge(staff_id, staff.email, StaffRole(staff.role),
                                     await prison_name(session, staff.prison_id), staff.region)
    return staff


async def current_staff(staff: Annotated[StaffUser, Depends(signed_in_staff)]) -> StaffUser:
    """Return the signed-in staff member, sending one with a one-time password to change it."""
    if staff.must_change_password:
        raise PasswordChangeRequired
    return staff


SignedInStaff = Annotated[StaffUser, Depends(signed_in_staff)]  # only the password page
CurrentStaff = Annotated[StaffUser, Depends(current_staff)]


def require_role(
    *roles: StaffRole,
) -> Callable[[StaffUser], Coroutine[Any, Any, StaffUser]]:
    """Return a dependency admitting these roles (and admins, who may do everything)."""
    allowed = {*roles, StaffRole.ADMIN}

    async def staff_in_role(staff: CurrentStaff) -> StaffUser:
        if staff.role not in allowed:
            raise HTTPException(403, "Your account cannot use this page.")
        return staff

    return staff_in_role


ChampionStaff = Annotated[StaffUser, Depends(require_role(StaffRole.CHAMPION))]
CoordinatorStaff = Annotated[StaffUser, Depends(require_role(StaffRole.COORDINATOR))]
AdminStaff = Annotated[StaffUser, Depends(require_role(StaffRole.ADMIN))]


async def participant_in_scope(
    session: AsyncSession,
    staff: StaffUser,
    participant_id: int,
    *,
    now: datetime,
    action: str = "participant_read",
    detail: dict[str, Any] | None = None,
) -> Participant:
    """Return a participant this staff member may see, auditing the access; else 404."""
    participant = await participant_for_staff(session, staff=staff,
                                              participant_id=participant_id)
    if participant is None or staff.id is None:
        raise HTTPException(404)
    await record_staff_action(session, staff_id=staff.id, action=action, now=now,
                              participant_id=participant_id, detail=detail)
    return participant


async def scoped_participant(
    request: Request, participant_id: int, staff: CurrentStaff, session: SessionDep,
    now: NowDep,
) -> Participant:
    """Load `{participant_id}` from the path within scope; audit a read (GET) or change."""
    action = "participant_read" if request.method in SAFE_METHODS else "participant_change"
    route = request.scope.get("route")
    page = getattr(route, "path", request.url.path)
    return await participant_in_scope(session, staff, participant_id, now=now, action=action,
                                      detail={"page": page})


ScopedParticipant = Annotated[Participant, Depends(scoped_participant)]
