"""Editing an aftercare plan: goals, appointments (which become reminders) and key contacts.

Each change goes through `bot.aftercare`; appointments are turned into reminders the
evening before and on the morning by the planner's next pass (every few minutes).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from bot.aftercare import PlanError, actor_for, add_appointment, add_goal, add_key_contact
from bot.web.staff import form_values as fv
from bot.web.staff.deps import CurrentStaff, NowDep, ScopedParticipant, SessionDep
from bot.web.staff.participant_view import KINDS, participant_view
from bot.web.staff.participants import live, participant_path, render_plan
from bot.web.staff.session import set_notice
from bot.web.templating import render
from storage.models import Participant
from storage.participants import audit
from storage.plans_q import cancel_appointment, remove_goal, remove_key_contact

router = APIRouter()

APPOINTMENT_LABELS = {"kind": "What", "starts_at": "Date", "time": "Time", "place": "Where",
                      "note": "Details"}
CONTACT_LABELS = {"name": "Name", "role": "Role", "phone": "Phone"}


def _back(p: Participant, notice: str, request: Request) -> Response:
    set_notice(request, notice)
    return RedirectResponse(participant_path(p.id or 0), status_code=303)


@router.post("/participants/{participant_id}/goals", response_class=HTMLResponse)
async def add_plan_goal(request: Request, staff: CurrentStaff, participant: ScopedParticipant,
                        session: SessionDep, now: NowDep) -> Response:
    """Add a goal to the plan."""
    p = live(participant)
    form = await request.form()
    try:
        await add_goal(session, participant_id=p.id or 0, goal=fv.text(form, "goal", 1000),
                       now=now, staff_id=staff.id)
    except PlanError as exc:
        return await render_plan(request, session, p, now=now,
                                 errors={"goal": f"Goal {exc.message}"},
                                 values=fv.typed(form), status_code=400)
    return _back(p, "Goal added.", request)


@router.post("/participants/{participant_id}/goals/remove", response_class=HTMLResponse)
async def remove_plan_goal(request: Request, staff: CurrentStaff,
                           participant: ScopedParticipant, session: SessionDep,
                           now: NowDep) -> Response:
    """Remove one goal (the one shown on the page, even if the list has changed since)."""
    p = live(participant)
    form = await request.form()
    index = fv.text(form, "index", 5)
    removed = index.isdigit() and await remove_goal(
        session, participant_id=p.id or 0, index=int(index), goal=fv.text(form, "goal", 1000),
        now=now, actor=actor_for(staff.id))
    return _back(p, "Goal removed." if removed else "That goal had already gone.", request)


def _appointment_page(request: Request, p: Participant, *, errors: dict[str, str] | None = None,
                      values: dict[str, str] | None = None,
                      status_code: int = 200) -> HTMLResponse:
    return render(request, "staff/participants/appointment.html", {
        "p": participant_view(p), "kinds": KINDS, "errors": errors or {},
        "values": values or {}}, status_code=status_code)


@router.get("/participants/{participant_id}/appointments/new", response_class=HTMLResponse)
async def new_appointment(request: Request, participant: ScopedParticipant) -> HTMLResponse:
    """Show the form to add an appointment."""
    return _appointment_page(request, live(participant))


def _read_start(form: FormData, p: Participant) -> datetime:
    """Return the appointment's start typed in the participant's zone, as aware UTC."""
    problems: dict[str, str] = {}
    day = at = None
    if fv.text(form, "kind", 20) not in {k for k, _ in KINDS}:
        problems["kind"] = "Choose what the appointment is for"
    try:
        day = fv.read_date(form, "starts_at", "Date")
    except fv.FieldProblem as exc:
        problems[exc.field] = exc.message
    try:
        at = fv.read_time(form, "time", "Time")
    except fv.FieldProblem as exc:
        problems[exc.field] = exc.message
    if problems or day is None or at is None:
        raise fv.FieldProblems(problems)
    return datetime.combine(day, at, tzinfo=participant_view(p).zone)


@router.post("/participants/{participant_id}/appointments/new", response_class=HTMLResponse)
async def create_appointment(request: Request, staff: CurrentStaff,
                             participant: ScopedParticipant, session: SessionDep,
                             now: NowDep) -> Response:
    """Add an appointment; reminders go the evening before and on the morning."""
    p = live(participant)
    form = await request.form()
    try:
        starts_at = _read_start(form, p)
        await add_appointment(session, participant_id=p.id or 0, kind=fv.text(form, "kind", 20),
                              starts_at=starts_at, place=fv.text(form, "place", 300),
                              note=fv.text(form, "note", 500), now=now, staff_id=staff.id)
    except fv.FieldProblems as exc:
        errors = {f: exc.problems[f] for f in APPOINTMENT_LABELS if f in exc.problems}
        return _appointment_page(request, p, errors=errors, values=fv.typed(form),
                                 status_code=400)
    except PlanError as exc:
        field = "starts_at" if exc.field == "starts_at" else exc.field
        label = "Date and time" if field == "starts_at" else APPOINTMENT_LABELS.get(field, field)
        return _appointment_page(request, p, errors={field: f"{label} {exc.message}"},
                                 values=fv.typed(form), status_code=400)
    return _back(p, "Appointment added. Reminders will go the evening before and that "
                    "morning.", request)


@router.post("/participants/{participant_id}/appointments/{appointment_id}/remove",
             response_class=HTMLResponse)
async def remove_appointment(request: Request, appointment_id: int, staff: CurrentStaff,
                             participant: ScopedParticipant, session: SessionDep,
                             now: NowDep) -> Response:
    """Remove an appointment; its reminders are withdrawn."""
    p = live(participant)
    if not await cancel_appointment(session, participant_id=p.id or 0,
                                    appointment_id=appointment_id, now=now,
                                    actor=actor_for(staff.id)):
        raise HTTPException(404)
    return _back(p, "Appointment removed. Its reminders will not be sent.", request)


def _contact_page(request: Request, p: Participant, *, errors: dict[str, str] | None = None,
                  values: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    return render(request, "staff/participants/contact.html", {
        "p": participant_view(p), "errors": errors or {}, "values": values or {}},
        status_code=status_code)


@router.get("/participants/{participant_id}/contacts/new", response_class=HTMLResponse)
async def new_contact(request: Request, participant: ScopedParticipant) -> HTMLResponse:
    """Show the form to add a key contact."""
    return _contact_page(request, live(participant))


@router.post("/participants/{participant_id}/contacts/new", response_class=HTMLResponse)
async def create_contact(request: Request, staff: CurrentStaff,
                         participant: ScopedParticipant, session: SessionDep,
                         now: NowDep) -> Response:
    """Add a key contact to the plan."""
    p = live(participant)
    form = await request.form()
    try:
        await add_key_contact(session, participant_id=p.id or 0,
                              name=fv.text(form, "name", 300), role=fv.text(form, "role", 300),
                              phone=fv.text(form, "phone", 40), now=now, staff_id=staff.id)
    except PlanError as exc:
        return _contact_page(request, p, values=fv.typed(form), status_code=400, errors={
            exc.field: f"{CONTACT_LABELS.get(exc.field, exc.field)} {exc.message}"})
    return _back(p, "Key contact added.", request)


@router.post("/participants/{participant_id}/contacts/{contact_id}/remove",
             response_class=HTMLResponse)
async def remove_contact(request: Request, contact_id: int, staff: CurrentStaff,
                         participant: ScopedParticipant, session: SessionDep,
                         now: NowDep) -> Response:
    """Remove a key contact from the plan."""
    p = live(participant)
    if not await remove_key_contact(session, participant_id=p.id or 0, contact_id=contact_id,
                                    now=now, actor=actor_for(staff.id)):
        raise HTTPException(404)
    return _back(p, "Key contact removed.", request)


# Discreet texts: what they start (reminders, release messages) never says what it is about.
DISCREET_CHOICES = [("default", "Use the default (on for text messages)"), ("on", "On"),
                    ("off", "Off")]
DISCREET_VALUES: dict[str, bool | None] = {"default": None, "on": True, "off": False}
DISCREET_NOTICES = {
    "default": "Discreet texts: the default for their channel (on for text messages).",
    "on": "Discreet texts are on. Reminders will give a day, time and town, not the "
          "meeting's name.",
    "off": "Discreet texts are off. Reminders will name the meeting.",
}


def _discreet_page(request: Request, p: Participant, *, errors: dict[str, str] | None = None,
                   status_code: int = 200) -> HTMLResponse:
    chosen = next(k for k, v in DISCREET_VALUES.items() if v is p.discreet)
    return render(request, "staff/participants/discreet.html", {
        "p": participant_view(p), "options": DISCREET_CHOICES, "errors": errors or {},
        "values": {"discreet": chosen}}, status_code=status_code)


@router.get("/participants/{participant_id}/discreet", response_class=HTMLResponse)
async def discreet_form(request: Request, participant: ScopedParticipant) -> HTMLResponse:
    """Show the choice of discreet texts."""
    return _discreet_page(request, live(participant))


@router.post("/participants/{participant_id}/discreet", response_class=HTMLResponse)
async def choose_discreet(request: Request, staff: CurrentStaff, participant: ScopedParticipant,
                          session: SessionDep, now: NowDep) -> Response:
    """Set whether texts we start to them are discreet; the planner rewords queued ones."""
    p = live(participant)
    choice = fv.text(await request.form(), "discreet", 10)
    if choice not in DISCREET_VALUES:
        return _discreet_page(request, p, status_code=400, errors={
            "discreet": "Choose whether their texts are discreet"})
    p.discreet, p.updated_at = DISCREET_VALUES[choice], now
    session.add(p)
    await audit(session, actor=actor_for(staff.id), action=f"discreet_{choice}", now=now,
                participant_id=p.id)
    return _back(p, DISCREET_NOTICES[choice], request)
