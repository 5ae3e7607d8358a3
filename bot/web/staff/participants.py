"""Participants: a Champion's caseload, enrolment, and the plan page of one person.

Enrolment calls `bot.enrol.enrol_checked`, as `throughcare enroll` does; the route only
reads the form and shows the code or the problems. The link code is shown once, on the
page answering the form, and never kept anywhere it could be read again.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import FormData

from bot.consent import current_wording, wording
from bot.enrol import (
    ALREADY_ENROLLED,
    EnrolmentError,
    EnrolmentForm,
    check_enrolment,
    enrol_checked,
)
from bot.web.staff import form_values as fv
from bot.web.staff.deps import (
    ChampionStaff,
    CurrentStaff,
    NowDep,
    ScopedParticipant,
    SessionDep,
    SettingsDep,
)
from bot.web.staff.participant_view import (
    CHANNEL_LABELS,
    KIND_LABELS,
    audit_what,
    audit_who,
    chosen_line,
    participant_view,
)
from bot.web.templating import render
from storage.audit_q import record_staff_reads
from storage.caseload_q import audit_trail, caseload, staff_email, working_channels
from storage.models import Participant, ParticipantStatus, StaffUser
from storage.plans_q import appointments_of, code_state, key_contacts_of, plan_of
from storage.staff_q import prison_name
from storage.subscriptions import chosen_meetings

router = APIRouter()

# Form fields in page order, with the label a problem message starts with.
LABELS = {
    "prison": "Prison", "name": "First name", "release_date": "Release date",
    "postcode": "Release area", "phone": "Mobile number", "channel": "Channel",
    "sessions_inside": "Sessions done inside", "language": "Language", "consent": "Consent",
}
CHANNEL_OPTIONS = [("sms", "SMS"), ("telegram", "Telegram")]
LANGUAGE_OPTIONS = [("en", "English"), ("cy", "Cymraeg (Welsh)")]
LIST_PATH = "/staff/participants"


def participant_path(participant_id: int) -> str:
    """Return the plan page of a participant."""
    return f"/staff/participants/{participant_id}"


def live(participant: Participant) -> Participant:
    """Return a participant whose data is still held; an erased one is not found."""
    if participant.status == ParticipantStatus.DELETED:
        raise HTTPException(404)
    return participant


@router.get("/participants", response_class=HTMLResponse)
async def list_participants(request: Request, staff: ChampionStaff, session: SessionDep,
                            now: NowDep) -> HTMLResponse:
    """Show the people this Champion may see, soonest release first."""
    entries = await caseload(session, staff)
    assert staff.id is not None
    # Each listed person's name was read: note it on their record.
    await record_staff_reads(session, staff_id=staff.id, now=now, detail={"page": LIST_PATH},
                             participant_ids=[e.participant.id or 0 for e in entries])
    rows = [(participant_view(e.participant), e.prison,
             [CHANNEL_LABELS.get(c, c) for c in e.channels]) for e in entries]
    return render(request, "staff/participants/list.html", {
        "rows": rows, "show_prison": staff.prison_id is None})


def _enrol_page(request: Request, staff: StaffUser, *, errors: dict[str, str] | None = None,
                values: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    return render(request, "staff/participants/new.html", {
        "errors": errors or {}, "values": values or {"channel": "sms", "language": "en"},
        "ask_prison": staff.prison_id is None, "channels": CHANNEL_OPTIONS,
        "languages": LANGUAGE_OPTIONS,
        "consent": current_wording()}, status_code=status_code)


@router.get("/participants/new", response_class=HTMLResponse)
async def new_participant(request: Request, staff: ChampionStaff) -> HTMLResponse:
    """Show the enrolment form."""
    return _enrol_page(request, staff)


def page_message(field: str, message: str) -> str:
    """Return a rule's refusal as the page words it: the field's label, then the rule."""
    if field == "phone" and message.startswith(ALREADY_ENROLLED):
        return "This mobile number is already enrolled. Find them in the caseload, " \
               "or ask an administrator"
    return f"{LABELS.get(field, field.replace('_', ' ').capitalize())} {message}"


async def _read_enrolment(request: Request, session: AsyncSession, staff: StaffUser,
                          today: date) -> tuple[EnrolmentForm, dict[str, str]]:
    """Read the enrolment form; return it and the problems found before the rules run."""
    form = await request.form()
    problems: dict[str, str] = {}
    released, sessions = today, 0
    try:
        released = fv.read_date(form, "release_date", "Release date")
    except fv.FieldProblem as exc:
        problems[exc.field] = exc.message
    try:
        sessions = fv.read_count(form, "sessions_inside", "Sessions done inside")
    except fv.FieldProblem as exc:
        problems[exc.field] = exc.message
    prison = fv.text(form, "prison", 200) if staff.prison_id is None else \
        await prison_name(session, staff.prison_id) or ""
    return EnrolmentForm(
        prison=prison, name=fv.text(form, "name", 200), release_date=released,
        postcode=fv.text(form, "postcode", 100), phone=fv.text(form, "phone", 40) or None,
        channel=fv.text(form, "channel", 20), consent=fv.ticked(form, "consent"),
        consent_version=fv.text(form, "consent_version", 20) or None,
        staff_review_consent=fv.ticked(form, "staff_review_consent"),
        sessions_inside=sessions, language=fv.text(form, "language", 5) or "en"), problems


def _refusal(request: Request, staff: StaffUser, form: FormData,
             *problems: dict[str, str]) -> HTMLResponse:
    """Show the form again with every problem, in page order, and what was typed."""
    found: dict[str, str] = {}
    for some in problems:
        found |= some
    errors = {f: found[f] for f in LABELS if f in found}
    return _enrol_page(request, staff, errors=errors, values=fv.typed(form), status_code=400)


@router.post("/participants/new", response_class=HTMLResponse)
async def enrol_participant(request: Request, staff: ChampionStaff, session: SessionDep,
                            now: NowDep, settings: SettingsDep) -> HTMLResponse:
    """Enrol a person with the CLI's rules; show their link code once, or what to fix."""
    today = now.astimezone(settings.tz).date()
    enrolment, unread = await _read_enrolment(request, session, staff, today)
    rules: dict[str, Any] = {"today": today, "local_mode": settings.local_mode,
                             "sms_needs_phone": True}
    form = await request.form()
    try:
        if unread:  # check the rest too, so every problem shows at once; enrol nobody
            await check_enrolment(session, enrolment, **rules)
            return _refusal(request, staff, form, unread)
        issued = await enrol_checked(session, enrolment, now=now, enrolled_by=staff.id,
                                     **rules)
    except EnrolmentError as exc:
        refused = {f: page_message(f, m) for f, m in exc.problems.items()}
        return _refusal(request, staff, form, refused, unread)
    return render(request, "staff/participants/enrolled.html", {
        "issued": issued, "plan_path": participant_path(issued.participant_id)})


async def _plan_context(session: AsyncSession, p: Participant, *, now: datetime
                        ) -> dict[str, Any]:
    """Gather everything the plan page shows of one participant."""
    assert p.id is not None
    plan = await plan_of(session, p.id)
    meetings = sorted(await chosen_meetings(session, p.id),
                      key=lambda m: (m.weekday, m.start_time or time.max, m.id or 0))
    chosen = [chosen_line(m, p) for m in meetings]
    version = wording(p.consent_wording_version) if p.consent_wording_version else None
    audit = [(line.event.at, audit_who(line), audit_what(line, participant_view(p).zone))
             for line in await audit_trail(session, p.id)]
    return {
        "p": participant_view(p),
        "prison": await prison_name(session, p.prison_id),
        "channels": [CHANNEL_LABELS.get(c, c) for c in (
            await working_channels(session, [p.id])).get(p.id, ())],
        "goals": list(plan.goals or []),
        "chosen": chosen,
        "appointments": await appointments_of(session, p.id, since=now),
        "contacts": await key_contacts_of(session, p.id),
        "code": await code_state(session, p.id, now=now),
        "consent": {"recorded_at": p.consent_recorded_at, "version": p.consent_wording_version,
                    "wording": version,
                    "recorded_by": await staff_email(session, p.consent_recorded_by),
                    "review": p.staff_review_consent, "by_text": p.consent_at},
        "audit": audit,
        "kind_labels": KIND_LABELS,
    }


async def render_plan(request: Request, session: AsyncSession, participant: Participant, *,
                      now: datetime, errors: dict[str, str] | None = None,
                      values: dict[str, str] | None = None,
                      status_code: int = 200) -> HTMLResponse:
    """Render the plan page (with a form's problems, when a form on it was refused)."""
    context = await _plan_context(session, live(participant), now=now)
    return render(request, "staff/participants/show.html",
                  {**context, "errors": errors or {}, "values": values or {}},
                  status_code=status_code)


@router.get("/participants/{participant_id}", response_class=HTMLResponse)
async def show_participant(request: Request, staff: CurrentStaff,
                           participant: ScopedParticipant, session: SessionDep,
                           now: NowDep) -> HTMLResponse:
    """Show a participant's aftercare plan, consent record and who has seen or changed it."""
    return await render_plan(request, session, participant, now=now)
