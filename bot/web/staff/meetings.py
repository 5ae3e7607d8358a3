"""Meetings: the coordinator's list, one meeting's page, adding, editing, and changes to it.

A coordinator sees their region's meetings, an admin every meeting (storage.meeting_scope_q);
any other id is a 404, on GET and POST alike. Every change goes through
`scheduler.meeting_changes` (as the CLI's does): it re-plans the meeting's reminders and tells
the people who chose it once, through the outbox; the page shows how many were told. Those
functions write in their own transactions, so a route commits its own reads first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.web.staff import form_values as fv
from bot.web.staff.deps import CoordinatorStaff, NowDep, SessionDep
from bot.web.staff.meeting_form import (
    ATTENDANCE_OPTIONS,
    DAY_OPTIONS,
    SHOWN_ROWS,
    MeetingForm,
    changed_values,
    clean_text,
    form_values,
    meeting_rows,
    meeting_summary,
    preview,
    read_meeting_form,
    told_phrase,
    upcoming_dates,
    where_of,
)
from bot.web.staff.participant_view import day_label
from bot.web.staff.session import set_notice
from bot.web.templating import render
from scheduler import meeting_changes as changes
from storage.audit_q import record_staff_action, staff_actor
from storage.meeting_scope_q import meeting_for_staff, meetings_for_staff, staff_may_manage
from storage.meetings_admin_q import matching_meeting_ids, meeting_actions, subscriber_counts
from storage.models import Meeting, MeetingStatus, StaffRole, StaffUser

router = APIRouter()

LIST_PATH = "/staff/meetings"
MAX_ID = 2**31 - 1  # ids beyond a database integer are simply not found
MAX_SEARCH = 200


def meeting_path(meeting_id: int) -> str:
    """Return the page of one meeting."""
    return f"{LIST_PATH}/{meeting_id}"


def _engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def scoped_meeting(meeting_id: int, staff: CoordinatorStaff,
                         session: SessionDep) -> Meeting:
    """Load `{meeting_id}` from the path if this person may manage it; else 404."""
    meeting = await meeting_for_staff(session, staff, meeting_id) \
        if 0 < meeting_id <= MAX_ID else None
    if meeting is None:
        raise HTTPException(404)
    return meeting


ScopedMeeting = Annotated[Meeting, Depends(scoped_meeting)]


async def _audit(session: AsyncSession, staff: StaffUser, action: str, now: datetime,
                 meeting_id: int, **detail: Any) -> None:
    assert staff.id is not None
    await record_staff_action(session, staff_id=staff.id, action=action, now=now,
                              detail={"meeting_id": meeting_id, **detail})


def _done(request: Request, meeting_id: int, notice: str) -> Response:
    set_notice(request, notice)
    return RedirectResponse(meeting_path(meeting_id), status_code=303)


@router.get("/meetings", response_class=HTMLResponse)
async def list_meetings(request: Request, staff: CoordinatorStaff, session: SessionDep,
                        now: NowDep) -> HTMLResponse:
    """Show the meetings this person manages, or those matching a search."""
    query = clean_text(request.query_params.get("q", "")[: MAX_SEARCH * 2])[:MAX_SEARCH]
    meetings = await meetings_for_staff(session, staff)
    total = len(meetings)
    if query:
        found = await matching_meeting_ids(session, query)
        meetings = [m for m in meetings if m.id in found]
    shown = meetings[:SHOWN_ROWS]
    chosen = await subscriber_counts(session, [m.id or 0 for m in shown])
    return render(request, "staff/meetings/list.html", {
        "rows": meeting_rows(shown, chosen, now=now), "matched": len(meetings),
        "query": query, "total": total, "values": {"q": query},
        "region": staff.region if staff.role == StaffRole.COORDINATOR else None})


def _form_page(request: Request, *, meeting: Meeting | None, values: dict[str, str],
               errors: dict[str, str] | None = None, where: Any = None,
               status_code: int = 200) -> HTMLResponse:
    return render(request, "staff/meetings/form.html", {
        "meeting": meeting, "values": values, "errors": errors or {}, "where": where,
        "days": DAY_OPTIONS, "attendance": ATTENDANCE_OPTIONS,
        "action": f"{meeting_path(meeting.id or 0)}/edit" if meeting else f"{LIST_PATH}/new"},
        status_code=status_code)


@router.get("/meetings/new", response_class=HTMLResponse)
async def new_meeting(request: Request, staff: CoordinatorStaff) -> HTMLResponse:
    """Show the form to add a meeting."""
    values = {"timezone": "Europe/London", "attendance": "in_person",
              "region": staff.region or ""}
    return _form_page(request, meeting=None, values=values)


async def _checked_form(request: Request, session: AsyncSession, staff: StaffUser,
                        meeting: Meeting | None) -> MeetingForm | HTMLResponse:
    """Return the checked form, or the form page again with its problems or a preview."""
    form = await request.form()
    typed = fv.typed(form)
    try:
        checked = read_meeting_form(form)
    except fv.FieldProblems as exc:
        return _form_page(request, meeting=meeting, values=typed, errors=exc.problems,
                          where=preview(form), status_code=400)
    base = {f: getattr(meeting, f) for f in Meeting.model_fields} if meeting else {}
    if not await staff_may_manage(session, staff, Meeting(**{**base, **checked.values})):
        problem = (f"This place is outside your region ({staff.region or 'none'}). Check the "
                   "postcode and Town/region, or ask an administrator")
        return _form_page(request, meeting=meeting, values=typed, where=checked.where,
                          errors={"postcode": problem}, status_code=400)
    if fv.ticked(form, "preview"):
        return _form_page(request, meeting=meeting, values=typed, where=checked.where)
    return checked


@router.post("/meetings/new", response_class=HTMLResponse)
async def create_meeting(request: Request, staff: CoordinatorStaff, session: SessionDep,
                         now: NowDep) -> Response:
    """Add a meeting (or show where its address lands, when asked)."""
    checked = await _checked_form(request, session, staff, None)
    if isinstance(checked, HTMLResponse):
        return checked
    assert staff.id is not None
    await session.commit()  # the change is written in its own transaction
    try:
        made = await changes.create_meeting(_engine(request), values=checked.values,
                                            by=staff_actor(staff.id), now=now)
    except changes.MeetingChangeError as exc:
        return _form_page(request, meeting=None, values=fv.typed(await request.form()),
                          where=checked.where, errors={_field_of(exc): _sentence(exc)},
                          status_code=400)
    assert made.id is not None
    await _audit(session, staff, "meeting_create", now, made.id)
    return _done(request, made.id, f"{made.name} added.")


def _field_of(exc: changes.MeetingChangeError) -> str:
    field = getattr(exc, "field", None)
    return field if isinstance(field, str) and field else "name"


def _sentence(exc: Exception) -> str:
    """Return a change's refusal as a sentence for the page."""
    text = str(exc).strip() or "That change cannot be made"
    return text[0].upper() + text[1:]


@router.get("/meetings/{meeting_id}", response_class=HTMLResponse)
async def show_meeting(request: Request, meeting: ScopedMeeting, session: SessionDep,
                       now: NowDep) -> HTMLResponse:
    """Show one meeting, its coming dates, and what can be done to it."""
    mid = meeting.id or 0
    chosen = (await subscriber_counts(session, [mid])).get(mid, 0)
    return render(request, "staff/meetings/show.html", {
        "m": meeting_summary(meeting), "where": where_of(meeting), "chosen": chosen,
        "dates": upcoming_dates(meeting, now), "status": MeetingStatus(meeting.status),
        "statuses": MeetingStatus, "history": await meeting_actions(session, mid)})


@router.get("/meetings/{meeting_id}/edit", response_class=HTMLResponse)
async def edit_meeting(request: Request, meeting: ScopedMeeting) -> HTMLResponse:
    """Show the form to change a meeting, filled in."""
    return _form_page(request, meeting=meeting, values=form_values(meeting),
                      where=where_of(meeting))


@router.post("/meetings/{meeting_id}/edit", response_class=HTMLResponse)
async def update_meeting(request: Request, staff: CoordinatorStaff, meeting: ScopedMeeting,
                         session: SessionDep, now: NowDep) -> Response:
    """Save a meeting's changes; a new day, time or place is told to the people who chose it."""
    checked = await _checked_form(request, session, staff, meeting)
    if isinstance(checked, HTMLResponse):
        return checked
    assert staff.id is not None and meeting.id is not None
    mid, values = meeting.id, changed_values(meeting, checked.values)
    if not values:
        return _done(request, mid, "Nothing was changed, so no one was told.")
    await session.commit()
    try:
        result = await changes.update_meeting(_engine(request), meeting_id=mid, values=values,
                                              by=staff_actor(staff.id), now=now)
    except changes.MeetingChangeError as exc:
        return _form_page(request, meeting=meeting, values=fv.typed(await request.form()),
                          where=checked.where, errors={_field_of(exc): _sentence(exc)},
                          status_code=400)
    await _audit(session, staff, "meeting_edit", now, mid, told=result.told,
                 fields=sorted(values))
    return _done(request, mid, f"Changes saved. {told_phrase(result.told)}")


def _read_day(raw: object) -> date | None:
    text = clean_text(raw)[:10]
    try:
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def _cancel_date_page(request: Request, meeting: Meeting, now: datetime, *,
                      day: date | None, errors: dict[str, str] | None = None,
                      status_code: int = 200) -> HTMLResponse:
    dates = [d for d in upcoming_dates(meeting, now) if not d.cancelled]
    return render(request, "staff/meetings/cancel_date.html", {
        "m": meeting_summary(meeting), "day": day, "day_label": day_label(day) if day else "",
        "options": [(d.day.isoformat(), d.label) for d in dates], "errors": errors or {},
        "values": {"day": day.isoformat() if day else ""}}, status_code=status_code)


@router.get("/meetings/{meeting_id}/cancel-date", response_class=HTMLResponse)
async def choose_date(request: Request, meeting: ScopedMeeting, now: NowDep) -> HTMLResponse:
    """Ask which date to cancel, or (with ?day=) ask to confirm cancelling it."""
    raw = request.query_params.get("day")
    day = _read_day(raw)
    coming = {d.day for d in upcoming_dates(meeting, now) if not d.cancelled}
    if raw is not None and day not in coming:
        return _cancel_date_page(request, meeting, now, day=None, status_code=400,
                                 errors={"day": "Choose one of the coming dates to cancel"})
    return _cancel_date_page(request, meeting, now, day=day)


@router.post("/meetings/{meeting_id}/cancel-date", response_class=HTMLResponse)
async def cancel_one_date(request: Request, staff: CoordinatorStaff, meeting: ScopedMeeting,
                          session: SessionDep, now: NowDep) -> Response:
    """Cancel one date; everyone with a reminder for it is told once."""
    assert staff.id is not None and meeting.id is not None
    mid, day = meeting.id, _read_day((await request.form()).get("day"))
    if day is None:
        return _cancel_date_page(request, meeting, now, day=None, status_code=400,
                                 errors={"day": "Choose the date to cancel"})
    if day.isoformat() in (meeting.cancelled_dates or []):
        return _done(request, mid, f"{day_label(day)} was already cancelled. No one else "
                                   "was told.")
    await session.commit()
    try:
        result = await changes.cancel_date(_engine(request), meeting_id=mid, day=day,
                                           by=staff_actor(staff.id), now=now)
    except changes.MeetingChangeError as exc:
        return _cancel_date_page(request, meeting, now, day=None, status_code=400,
                                 errors={"day": _sentence(exc)})
    await _audit(session, staff, "meeting_cancel_date", now, mid, day=day.isoformat(),
                 told=result.told, reminders_cancelled=result.reminders_cancelled)
    return _done(request, mid, f"{meeting.name} on {day_label(day)} is cancelled. "
                               f"{told_phrase(result.told)}")


@router.post("/meetings/{meeting_id}/restore-date", response_class=HTMLResponse)
async def restore_one_date(request: Request, staff: CoordinatorStaff, meeting: ScopedMeeting,
                           session: SessionDep, now: NowDep) -> Response:
    """Put a cancelled date back; its reminders are planned again."""
    assert staff.id is not None and meeting.id is not None
    mid, day = meeting.id, _read_day((await request.form()).get("day"))
    if day is None or day.isoformat() not in (meeting.cancelled_dates or []):
        return _done(request, mid, "That date was not cancelled, so nothing changed.")
    await session.commit()
    try:
        await changes.restore_date(_engine(request), meeting_id=mid, day=day,
                                   by=staff_actor(staff.id), now=now)
    except changes.MeetingChangeError as exc:
        return _done(request, mid, f"{day_label(day)} could not be restored. {_sentence(exc)}.")
    await _audit(session, staff, "meeting_restore_date", now, mid, day=day.isoformat())
    return _done(request, mid, f"{meeting.name} on {day_label(day)} is back on. Reminders "
                               "for it will go as usual.")


Change = Callable[..., Awaitable[changes.ChangeResult]]


@dataclass(frozen=True)
class StatusChange:
    """One change of a meeting's status, as its confirm page words it."""

    change: Change
    heading: str  # "{name}" is the meeting's name
    explain: str
    button: str
    done: str
    allowed_from: frozenset[MeetingStatus]
    already: str


STATUS_CHANGES: dict[str, StatusChange] = {
    "suspend": StatusChange(
        changes.suspend, "Suspend {name}?",
        "It stops until you resume it. Each person who chose it gets one text saying so, "
        "with the nearest other meeting, and no more reminders for it.",
        "Yes, suspend it", "{name} is suspended.",
        frozenset({MeetingStatus.ACTIVE}), "{name} is not running, so nothing changed."),
    "cancel": StatusChange(
        changes.cancel_for_good, "Cancel {name} for good?",
        "It stops for good. Each person who chose it gets one text saying so, with the "
        "nearest other meeting, and no more reminders for it.",
        "Yes, cancel it for good", "{name} is cancelled for good.",
        frozenset({MeetingStatus.ACTIVE, MeetingStatus.SUSPENDED}),
        "{name} was already cancelled, so nothing changed."),
    "resume": StatusChange(
        changes.resume, "Resume {name}?",
        "It runs again as before. Each person who chose it gets one text saying it is on "
        "again, and their reminders start again.",
        "Yes, resume it", "{name} is running again.",
        frozenset({MeetingStatus.SUSPENDED, MeetingStatus.CANCELLED}),
        "{name} is already running, so nothing changed."),
}
StatusAction = Literal["suspend", "cancel", "resume"]


@router.get("/meetings/{meeting_id}/{action}", response_class=HTMLResponse)
async def confirm_status(request: Request, action: StatusAction, meeting: ScopedMeeting,
                         session: SessionDep) -> Response:
    """Ask to confirm suspending, cancelling for good, or resuming a meeting."""
    step = STATUS_CHANGES[action]
    if MeetingStatus(meeting.status) not in step.allowed_from:
        return _done(request, meeting.id or 0, step.already.format(name=meeting.name))
    mid = meeting.id or 0
    chosen = (await subscriber_counts(session, [mid])).get(mid, 0)
    return render(request, "staff/meetings/confirm.html", {
        "m": meeting_summary(meeting), "heading": step.heading.format(name=meeting.name),
        "explain": step.explain, "button_text": step.button, "chosen": chosen,
        "action": f"{meeting_path(mid)}/{action}"})


@router.post("/meetings/{meeting_id}/{action}", response_class=HTMLResponse)
async def change_status(request: Request, action: StatusAction, staff: CoordinatorStaff,
                        meeting: ScopedMeeting, session: SessionDep, now: NowDep) -> Response:
    """Suspend, cancel for good, or resume a meeting; show how many people were told."""
    step = STATUS_CHANGES[action]
    assert staff.id is not None and meeting.id is not None
    mid, name = meeting.id, meeting.name
    if MeetingStatus(meeting.status) not in step.allowed_from:
        return _done(request, mid, step.already.format(name=name))
    await session.commit()
    try:
        result = await step.change(_engine(request), meeting_id=mid, by=staff_actor(staff.id),
                                   now=now)
    except changes.MeetingChangeError as exc:
        return _done(request, mid, f"Nothing changed. {_sentence(exc)}.")
    await _audit(session, staff, f"meeting_{action}", now, mid, told=result.told,
                 reminders_cancelled=result.reminders_cancelled)
    return _done(request, mid, f"{step.done.format(name=name)} {told_phrase(result.told)}")

