"""A participant's release: move the date, mark them released, issue a new link code.

Moving the date and marking someone released re-plan their release sequence at once, as
`throughcare move-release` does. The planner writes in its own transactions, so these
routes commit the request's work (the audit row) before calling it.
"""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import FormData

from bot.aftercare import PlanError, mark_released, move_release, replan_sequence
from bot.enrol import EnrolmentError, new_code
from bot.web.staff import form_values as fv
from bot.web.staff.deps import CurrentStaff, NowDep, ScopedParticipant, SessionDep, SettingsDep
from bot.web.staff.participant_view import day_label, participant_view
from bot.web.staff.participants import live, participant_path
from bot.web.staff.session import set_notice
from bot.web.templating import render, when
from storage.models import Participant

router = APIRouter()


def _engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


def _date_values(name: str, moment: date) -> dict[str, str]:
    return {f"{name}-day": str(moment.day), f"{name}-month": str(moment.month),
            f"{name}-year": str(moment.year)}


def _release_date_page(request: Request, p: Participant, *, errors: dict[str, str] | None = None,
                       values: dict[str, str] | None = None,
                       status_code: int = 200) -> HTMLResponse:
    return render(request, "staff/participants/release_date.html", {
        "p": participant_view(p), "errors": errors or {},
        "values": values or _date_values("release_date", p.release_date)},
        status_code=status_code)


@router.get("/participants/{participant_id}/release-date", response_class=HTMLResponse)
async def release_date_form(request: Request, participant: ScopedParticipant) -> HTMLResponse:
    """Show the form to change a release date."""
    return _release_date_page(request, live(participant))


@router.post("/participants/{participant_id}/release-date", response_class=HTMLResponse)
async def change_release_date(request: Request, staff: CurrentStaff,
                              participant: ScopedParticipant, session: SessionDep,
                              now: NowDep, settings: SettingsDep) -> Response:
    """Move the release date; the release sequence moves with it."""
    p = live(participant)
    assert p.id is not None
    form = await request.form()
    try:
        day = fv.read_date(form, "release_date", "Release date")
        await session.commit()  # the planner writes in its own transactions
        await move_release(_engine(request), participant_id=p.id, release_date=day, now=now,
                           staff_id=staff.id, today=now.astimezone(settings.tz).date())
    except (fv.FieldProblem, PlanError) as exc:
        message = exc.message if isinstance(exc, fv.FieldProblem) \
            else f"Release date {exc.message}"
        return _release_date_page(request, p, errors={"release_date": message},
                                  values=fv.typed(form), status_code=400)
    set_notice(request, f"Release date changed to {day_label(day)}. "
                        "Their release messages have moved with it.")
    return RedirectResponse(participant_path(p.id), status_code=303)


def _released_page(request: Request, p: Participant, now: datetime, *,
                   errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                   status_code: int = 200) -> HTMLResponse:
    view = participant_view(p)
    local = now.astimezone(view.zone)
    shown = values or {**_date_values("released", local), "released_time": f"{local:%H:%M}"}
    return render(request, "staff/participants/released.html", {
        "p": view, "errors": errors or {}, "values": shown}, status_code=status_code)


@router.get("/participants/{participant_id}/released", response_class=HTMLResponse)
async def released_form(request: Request, participant: ScopedParticipant,
                        now: NowDep) -> HTMLResponse:
    """Show the form to mark someone released, filled in with now."""
    return _released_page(request, live(participant), now)


def _read_release_time(request_form: FormData, p: Participant) -> datetime:
    """Return the release moment typed in the participant's zone, as aware UTC."""
    problems: dict[str, str] = {}
    day = at = None
    try:
        day = fv.read_date(request_form, "released", "Date released")
    except fv.FieldProblem as exc:
        problems[exc.field] = exc.message
    try:
        at = fv.read_time(request_form, "released_time", "Time released")
    except fv.FieldProblem as exc:
        problems[exc.field] = exc.message
    if day is None or at is None:
        raise fv.FieldProblems(problems)
    return datetime.combine(day, at, tzinfo=participant_view(p).zone)


@router.post("/participants/{participant_id}/released", response_class=HTMLResponse)
async def mark_as_released(request: Request, staff: CurrentStaff,
                           participant: ScopedParticipant, session: SessionDep,
                           now: NowDep) -> Response:
    """Record when they were released; their release messages start from then."""
    p = live(participant)
    assert p.id is not None
    form = await request.form()
    try:
        at = _read_release_time(form, p)
        await mark_released(session, participant_id=p.id, at=at, now=now, staff_id=staff.id)
    except fv.FieldProblems as exc:
        return _released_page(request, p, now, errors=exc.problems, values=fv.typed(form),
                              status_code=400)
    except PlanError as exc:
        return _released_page(request, p, now, errors={"released": f"Date and time released "
                                                                   f"{exc.message}"},
                              values=fv.typed(form), status_code=400)
    await session.commit()  # the planner reads the release time in its own transaction
    await replan_sequence(_engine(request), participant_id=p.id, now=now)
    set_notice(request, f"Marked as released at {when(at, participant_view(p).zone)}. "
                        "Their release messages start from then.")
    return RedirectResponse(participant_path(p.id), status_code=303)


@router.post("/participants/{participant_id}/code", response_class=HTMLResponse)
async def issue_code(request: Request, staff: CurrentStaff, participant: ScopedParticipant,
                     session: SessionDep, now: NowDep) -> HTMLResponse:
    """Issue a new link code (older ones stop working) and show it this once."""
    p = live(participant)
    assert p.id is not None
    try:
        issued = await new_code(session, participant_id=p.id, now=now, issued_by=staff.id)
    except EnrolmentError:  # erased since the page was loaded
        raise HTTPException(404) from None
    return render(request, "staff/participants/code.html", {
        "issued": issued, "plan_path": participant_path(p.id), "p": participant_view(p)})

