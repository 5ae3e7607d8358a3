"""Meetings reported as not running: NORUN answers per meeting and date, and what to do.

A coordinator sees the meetings in their region that people said did not run (counts only,
never who said so); a meeting two different people reported within 14 days is flagged "May
not be running" here and on the home page. They either confirm it is running (the reports
made so far are answered and the flag clears) or suspend it (each subscriber is told once,
with the nearest alternative). Both changes go through scheduler.meeting_changes, which
writes in its own transactions, so these routes commit the request's work first.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.web.staff.deps import CoordinatorStaff, NowDep, SessionDep
from bot.web.staff.session import set_notice
from bot.web.templating import render
from scheduler.meeting_changes import MeetingChangeError, confirm_running, suspend
from storage.audit_q import record_staff_action
from storage.meeting_scope_q import meeting_for_staff, meetings_for_staff
from storage.models import Meeting, MeetingStatus, StaffUser
from storage.norun_q import STALE_PEOPLE, STALE_WINDOW, norun_reports, stale_meetings

router = APIRouter()
PAGE = "/staff/reports/meetings"
SHOWN_FOR = timedelta(weeks=8)  # how far back the page lists answers
MeetingId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # beyond a database integer: 404


def _engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


def day_label(day: date) -> str:
    """Return a date as people say it: `Tuesday 24 November 2026`."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def people_label(count: int) -> str:
    """Return `1 person` or `3 people`."""
    return f"{count} {'person' if count == 1 else 'people'}"


def _told(count: int) -> str:
    """Say how many people were told of a suspension."""
    if count == 0:
        return "No one had chosen it, so no one needed telling."
    return f"{people_label(count)} {'was' if count == 1 else 'were'} told, " \
           "with the nearest other meeting."


async def _page(request: Request, staff: StaffUser, session: SessionDep, now: datetime, *,
                errors: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    meetings = await meetings_for_staff(session, staff)
    reports = await norun_reports(session, meetings, since=now - SHOWN_FOR, until=now)
    stale = {s.meeting.id for s in await stale_meetings(session, meetings, now=now)}
    return render(request, "staff/reports/meetings.html", {
        "reports": reports, "stale": stale, "errors": errors or {},
        "day_label": day_label, "people_label": people_label,
        "shown_weeks": SHOWN_FOR.days // 7, "window_days": STALE_WINDOW.days,
        "min_people": STALE_PEOPLE}, status_code=status_code)


@router.get("/reports/meetings", response_class=HTMLResponse)
async def show_meeting_reports(request: Request, staff: CoordinatorStaff, session: SessionDep,
                               now: NowDep) -> HTMLResponse:
    """List the meetings in this person's scope that people said did not run."""
    return await _page(request, staff, session, now)


async def _scoped(session: SessionDep, staff: StaffUser, meeting_id: int) -> Meeting:
    meeting = await meeting_for_staff(session, staff, meeting_id)
    if meeting is None or meeting.id is None:
        raise HTTPException(404)
    return meeting


async def _audit(session: SessionDep, staff: StaffUser, action: str, meeting_id: int, *,
                 now: datetime, told: int | None = None) -> None:
    assert staff.id is not None
    detail: dict[str, object] = {"page": PAGE, "meeting_id": meeting_id}
    if told is not None:
        detail["told"] = told
    await record_staff_action(session, staff_id=staff.id, action=action, now=now,
                              detail=detail)


@router.post("/reports/meetings/{meeting_id}/confirm", response_class=HTMLResponse)
async def confirm_meeting_running(request: Request, meeting_id: MeetingId,
                                  staff: CoordinatorStaff, session: SessionDep,
                                  now: NowDep) -> Response:
    """Record that the meeting runs: the reports so far are answered and the flag clears."""
    meeting = await _scoped(session, staff, meeting_id)
    name = meeting.name
    if meeting.status != MeetingStatus.ACTIVE:  # changed since the page was loaded
        return await _page(request, staff, session, now, status_code=400, errors={
            f"meeting-{meeting_id}": f"{name} is {meeting.status}, so it cannot be "
                                     "confirmed as running."})
    await session.commit()  # the change writes in its own transaction
    try:
        await confirm_running(_engine(request), meeting_id=meeting_id, by=staff.email, now=now)
    except MeetingChangeError as exc:
        return await _page(request, staff, session, now, status_code=400,
                           errors={f"meeting-{meeting_id}": f"{name}: {exc}"})
    await _audit(session, staff, "meeting_confirmed_running", meeting_id, now=now)
    set_notice(request, f"{name} is marked as running. "
                        "The reports people made before now are answered.")
    return RedirectResponse(PAGE, status_code=303)


@router.post("/reports/meetings/{meeting_id}/suspend", response_class=HTMLResponse)
async def suspend_meeting(request: Request, meeting_id: MeetingId, staff: CoordinatorStaff,
                          session: SessionDep, now: NowDep) -> Response:
    """Suspend the meeting; each subscriber is told once, with the nearest alternative."""
    meeting = await _scoped(session, staff, meeting_id)
    name = meeting.name
    if meeting.status == MeetingStatus.SUSPENDED:  # a second click, or another coordinator
        set_notice(request, f"{name} was already suspended. No one was told again.")
        return RedirectResponse(PAGE, status_code=303)
    if meeting.status != MeetingStatus.ACTIVE:
        return await _page(request, staff, session, now, status_code=400, errors={
            f"meeting-{meeting_id}": f"{name} is {meeting.status}, so it cannot be suspended."})
    await session.commit()  # the change writes in its own transaction
    try:
        result = await suspend(_engine(request), meeting_id=meeting_id, by=staff.email,
                               now=now)
    except MeetingChangeError as exc:
        return await _page(request, staff, session, now, status_code=400,
                           errors={f"meeting-{meeting_id}": f"{name}: {exc}"})
    await _audit(session, staff, "meeting_suspended", meeting_id, now=now,
                 told=result.told)
    set_notice(request, f"{name} is suspended. {_told(result.told)}")
    return RedirectResponse(PAGE, status_code=303)
