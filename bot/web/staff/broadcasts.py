"""Broadcasts: tell a meeting's subscribers, the people near a place, or a region; then see
the delivery report fill in and who to ring.

Sending is two steps: the form's Preview shows the audience per channel and the SMS as it
will leave (its segments counted by `sms_segments` of `render_sms`, exactly what the SMS
sender charges the dispatcher), then "Send to N people" posts the same values again, the
audience is worked out afresh and `scheduler.broadcast.queue_broadcast` (the CLI's code)
queues it. Nothing is written before that confirm.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import FormData

from bot.channels.render import is_gsm7, render_sms, sms_segments
from bot.web.staff import form_values as fv
from bot.web.staff.deps import CoordinatorStaff, NowDep, SessionDep
from bot.web.staff.participant_view import CHANNEL_LABELS
from bot.web.staff.session import set_notice
from bot.web.templating import render
from scheduler.broadcast import (
    MAX_MILES,
    MAX_TEXT,
    Audience,
    AudienceError,
    audience_of,
    channel_counts,
    clean_text,
    queue_broadcast,
)
from storage.audit_q import record_staff_action, record_staff_reads
from storage.broadcasts_q import (
    broadcast_for_staff,
    broadcasts_for_staff,
    failed_by_prison,
    who_to_ring,
)
from storage.meeting_scope_q import meeting_for_staff, meetings_for_staff
from storage.models import Broadcast, Meeting, StaffRole, StaffUser
from storage.regions_q import list_regions
from storage.scheduling import broadcast_report

router = APIRouter()

LIST_PATH = "/staff/broadcasts"
NEW_PATH = "/staff/broadcasts/new"
KINDS = [("meeting", "Subscribers of a meeting"), ("near", "People near a meeting or place"),
         ("region", "A region")]
FIELDS = ("audience", "meeting", "miles", "near", "region", "text")  # page order
DEFAULT_MILES = "5"
# Stored failure reasons (see bot.channels.sms.ERROR_REASONS, telegram.TELEGRAM_REASONS) in
# words a coordinator can act on.
PLAIN_REASONS = (
    ("invalid number", "The number is not a valid phone number"),
    ("recipient unsubscribed", "They texted STOP to our number"),
    ("not a mobile number", "The number is not a mobile"),
    ("handset unreachable", "Their phone was off or out of signal"),
    ("message blocked", "Their network blocked the message"),
    ("unknown number", "Their network does not know the number"),
    ("landline or unreachable", "A landline, or a network we cannot reach"),
    ("bot blocked by the user", "They blocked the Telegram bot"),
    ("user deactivated", "Their Telegram account is closed"),
    ("user has not started the bot", "They have not started the Telegram bot"),
    ("chat not found", "Their Telegram chat no longer exists"),
    ("gave up at its not-after time", "Not sent in time: the news was too old to send"),
)
_PROVIDER_PREFIX = re.compile(r"^(twilio|telegram)( \d+)?: ")


def plain_reason(status: str, error: str | None) -> str:
    """Return why a message did not arrive, in plain words."""
    if status == "expired" and not error:
        return "Not sent in time: the news was too old to send"
    if status == "cancelled":
        return "Withdrawn before it was sent"
    lowered = (error or "").lower()
    for theirs, ours in PLAIN_REASONS:
        if theirs in lowered:
            return ours
    rest = _PROVIDER_PREFIX.sub("", error or "").strip()
    return (rest[:1].upper() + rest[1:]) if rest else "No reason given"


def broadcast_path(broadcast_id: int) -> str:
    """Return the delivery report page of a broadcast."""
    return f"{LIST_PATH}/{broadcast_id}"


@dataclass(frozen=True)
class SmsPreview:
    """A text as an SMS shows it, and what it costs: the dispatcher's own count."""

    text: str
    segments: int
    characters: int
    unicode: bool


def sms_preview(text: str) -> SmsPreview:
    """Render a text as the SMS sender will and count it as the sender charges it."""
    shown = render_sms(text)
    return SmsPreview(shown, sms_segments(shown), len(shown), not is_gsm7(shown))


def count_hint(text: str) -> str:
    """Return the live count line under the message box (static.broadcast.js mirrors it)."""
    try:
        text = clean_text(text)
    except AudienceError:  # empty, too long or odd: still count what is there
        text = text.strip()
    if not text:
        return "0 SMS segments (0 characters)"
    sms = sms_preview(text)
    return (f"{sms.segments} SMS segment{'s' if sms.segments != 1 else ''} "
            f"({sms.characters} character{'s' if sms.characters != 1 else ''})")


@dataclass
class BroadcastForm:
    """What was chosen and typed, the audience it means, and what is wrong with it."""

    values: dict[str, str]
    audience: Audience | None = None
    described: str = ""
    text: str = ""
    errors: dict[str, str] | None = None


async def _region_choices(session: AsyncSession, staff: StaffUser) -> list[str]:
    """Return the regions this person may send to: a coordinator's own, any for an admin."""
    if staff.role == StaffRole.ADMIN:
        return [r.name for r in await list_regions(session)]
    return [staff.region.strip()] if staff.region and staff.region.strip() else []


async def _near(session: AsyncSession, staff: StaffUser, place: str) -> str:
    """Return what `Audience.near` should hold: the slug of a meeting so named, or the place."""
    wanted = place.strip().lower()
    for meeting in await meetings_for_staff(session, staff):
        if meeting.name.strip().lower() == wanted or meeting.slug == place.strip():
            return meeting.slug
    return place


async def _meeting(session: AsyncSession, staff: StaffUser, raw: str) -> Meeting | None:
    return await meeting_for_staff(session, staff, int(raw)) if raw.isdigit() else None


async def _audience(session: AsyncSession, staff: StaffUser, form: BroadcastForm,
                    errors: dict[str, str]) -> None:
    """Work out the chosen audience into `form`, or put what is wrong into `errors`."""
    v = form.values
    kind = v.get("audience", "")
    if kind == "meeting":
        meeting = await _meeting(session, staff, v.get("meeting", ""))
        if meeting is None:
            errors["meeting"] = "Choose a meeting"
        else:
            form.audience = Audience(meeting_slug=meeting.slug)
            form.described = f"Subscribers of {meeting.name}"
    elif kind == "near":
        try:
            miles = float(v.get("miles", ""))
        except ValueError:
            miles = -1.0
        if not 0 < miles <= MAX_MILES:
            errors["miles"] = f"Miles must be a number more than 0 and at most {MAX_MILES}"
        if not v.get("near"):
            errors["near"] = "Enter a meeting, postcode or town"
        if "miles" not in errors and "near" not in errors:
            near = await _near(session, staff, v["near"])
            form.audience = Audience(near=near, miles=miles)
            form.described = f"People within {miles:g} miles of {v['near']}"
    elif kind == "region":
        choices = await _region_choices(session, staff)
        region = choices[0] if staff.role != StaffRole.ADMIN and choices else v.get("region")
        if not region or region not in choices:
            errors["region"] = "Choose a region" if choices else \
                "Your account has no defined region: ask an administrator"
        else:
            form.audience = Audience(region=region)
            form.described = f"Everyone in the {region} region"
    else:
        errors["audience"] = "Choose who should get the message"


def _values(form: FormData) -> dict[str, str]:
    keep = {"text": MAX_TEXT * 4}
    return {k: fv.text(form, k, keep.get(k, 200)) for k in FIELDS}


async def read_broadcast_form(session: AsyncSession, staff: StaffUser,
                              form: FormData) -> BroadcastForm:
    """Read the form; return the audience and text, or every problem at once."""
    read = BroadcastForm(values=_values(form))
    errors: dict[str, str] = {}
    await _audience(session, staff, read, errors)
    try:
        read.text = clean_text(read.values["text"])
    except AudienceError as exc:
        errors["text"] = "Enter the message" if not read.values["text"] else \
            "Message " + str(exc).removeprefix("the broadcast text ")
    read.errors = {f: errors[f] for f in FIELDS if f in errors}
    return read


async def _form_page(request: Request, session: AsyncSession, staff: StaffUser, *,
                     values: dict[str, str], errors: dict[str, str] | None = None,
                     status_code: int = 200) -> HTMLResponse:
    meetings = await meetings_for_staff(session, staff)
    return render(request, "staff/broadcasts/new.html", {
        "values": values, "errors": errors or {}, "kinds": KINDS,
        "meetings": [(str(m.id), m.name) for m in meetings],
        "regions": await _region_choices(session, staff),
        "fixed_region": staff.role != StaffRole.ADMIN, "max_text": MAX_TEXT,
        "count_hint": count_hint(values.get("text", ""))}, status_code=status_code)


@router.get("/broadcasts/new", response_class=HTMLResponse)
async def new_broadcast(request: Request, staff: CoordinatorStaff,
                        session: SessionDep) -> HTMLResponse:
    """Show the broadcast form."""
    return await _form_page(request, session, staff,
                            values={"miles": DEFAULT_MILES, "audience": "meeting"})


async def _preview_page(request: Request, session: AsyncSession, read: BroadcastForm, *,
                        changed: bool = False) -> HTMLResponse:
    assert read.audience is not None
    people = await audience_of(session, read.audience)
    counts = channel_counts(people)
    return render(request, "staff/broadcasts/preview.html", {
        "values": read.values, "described": read.described, "total": len(people),
        "channels": [(CHANNEL_LABELS.get(c, c), n) for c, n in counts.items()],
        "sms": sms_preview(read.text), "text": read.text, "changed": changed})


@router.post("/broadcasts/new", response_class=HTMLResponse)
async def preview_or_send(request: Request, staff: CoordinatorStaff, session: SessionDep,
                          now: NowDep) -> Response:
    """Preview the broadcast; send it only from the preview's confirm button."""
    form = await request.form()
    read = await read_broadcast_form(session, staff, form)
    if read.errors or read.audience is None:
        return await _form_page(request, session, staff, values=read.values,
                                errors=read.errors, status_code=400)
    step = fv.text(form, "step", 20)
    if step == "change":
        return await _form_page(request, session, staff, values=read.values)
    try:
        if step != "send":
            return await _preview_page(request, session, read)
        expected = fv.text(form, "expected", 10)
        people = await audience_of(session, read.audience)
        if not people or expected != str(len(people)):
            return await _preview_page(request, session, read, changed=True)
        return await _send(request, session, staff, read, now=now)
    except AudienceError as exc:
        field = exc.field if exc.field in FIELDS else "audience"
        message = str(exc)
        if field == "region":  # the CLI's words name a command: say who can fix it
            message = (f"{read.audience.region or 'Your region'} is not a defined region "
                       "yet: ask an administrator to define it")
        return await _form_page(request, session, staff, values=read.values, status_code=400,
                                errors={field: message[:1].upper() + message[1:]})


async def _send(request: Request, session: AsyncSession, staff: StaffUser,
                read: BroadcastForm, *, now: datetime) -> Response:
    assert read.audience is not None and staff.id is not None
    out = await queue_broadcast(session, audience=read.audience, text=read.text,
                                created_by=staff.email, now=now, staff_id=staff.id,
                                region=staff.region if staff.role != StaffRole.ADMIN else None)
    await record_staff_action(session, staff_id=staff.id, action="broadcast_sent", now=now,
                              detail={"broadcast_id": out["broadcast_id"],
                                      "audience": read.audience.describe(),
                                      "people": out["audience_count"]})
    set_notice(request, f"Your broadcast is on its way to {out['audience_count']} "
                        f"{'person' if out['audience_count'] == 1 else 'people'}.")
    return RedirectResponse(broadcast_path(int(out["broadcast_id"])), status_code=303)


@router.get("/broadcasts", response_class=HTMLResponse)
async def list_broadcasts(request: Request, staff: CoordinatorStaff,
                          session: SessionDep) -> HTMLResponse:
    """Show the broadcasts this person may see, newest first, with their counts."""
    rows = [(b, _summary(counts)) for b, counts in await broadcasts_for_staff(session, staff)]
    return render(request, "staff/broadcasts/list.html", {"rows": rows})


def _summary(counts: dict[str, int]) -> dict[str, int]:
    """Fold outbox statuses into what the pages show: queued, sent, delivered, failed."""
    return {"queued": counts.get("queued", 0) + counts.get("sending", 0),
            "sent": counts.get("sent", 0), "delivered": counts.get("delivered", 0),
            "failed": counts.get("failed", 0) + counts.get("expired", 0),
            "cancelled": counts.get("cancelled", 0)}


async def _scoped(session: AsyncSession, staff: StaffUser, broadcast_id: int) -> Broadcast:
    found = await broadcast_for_staff(session, staff, broadcast_id)
    if found is None or found.id is None:
        raise HTTPException(404)
    return found


async def _ring_rows(session: AsyncSession, staff: StaffUser, broadcast_id: int, *,
                     now: datetime, page: str) -> tuple[list[dict[str, str]], int]:
    """Return who to ring that this person may see (their reading audited), and the rest."""
    shown, hidden = await who_to_ring(session, staff, broadcast_id)
    assert staff.id is not None
    await record_staff_reads(session, staff_id=staff.id, now=now,
                             detail={"page": page, "broadcast_id": broadcast_id},
                             participant_ids=[r.participant.id or 0 for r in shown])
    return [{"id": str(r.participant.id), "name": r.participant.display_name,
             "prison": r.prison or "", "channel": CHANNEL_LABELS.get(r.channel, r.channel),
             "reason": plain_reason(r.status, r.error)} for r in shown], hidden


async def _hidden_prisons(session: AsyncSession, broadcast_id: int,
                          ring: list[dict[str, str]]) -> list[tuple[str | None, int]]:
    """Return the people not named, counted by their Champion's prison: who to ring about."""
    return await failed_by_prison(session, broadcast_id, leave_out=[int(r["id"]) for r in ring])


def csv_cell(value: str) -> str:
    """Return a cell a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@router.get("/broadcasts/{broadcast_id}.csv")
async def broadcast_csv(broadcast_id: int, staff: CoordinatorStaff, session: SessionDep,
                        now: NowDep) -> Response:
    """Download who to ring as CSV."""
    await _scoped(session, staff, broadcast_id)
    ring, hidden = await _ring_rows(session, staff, broadcast_id, now=now,
                                    page="/staff/broadcasts/{broadcast_id}.csv")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["First name", "Prison", "Channel", "What happened"])
    for r in ring:
        writer.writerow([csv_cell(r[k]) for k in ("name", "prison", "channel", "reason")])
    for prison, n in await _hidden_prisons(session, broadcast_id, ring) if hidden else []:
        writer.writerow([f"{n} outside your caseload", prison or "no prison recorded", "", ""])
    assert staff.id is not None  # the download itself, even an empty one, is on record
    await record_staff_action(session, staff_id=staff.id, action="broadcast_export", now=now,
                              detail={"broadcast_id": broadcast_id, "rows": len(ring)})
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="broadcast-{broadcast_id}-who-to-ring.csv"'})


# After the .csv route: `{broadcast_id}` alone would also match `5.csv`.
@router.get("/broadcasts/{broadcast_id}", response_class=HTMLResponse)
async def show_broadcast(request: Request, broadcast_id: int, staff: CoordinatorStaff,
                         session: SessionDep, now: NowDep) -> HTMLResponse:
    """Show a broadcast's delivery report and who to ring."""
    row = await _scoped(session, staff, broadcast_id)
    report = await broadcast_report(session, broadcast_id)
    failed: dict[str, int] = {}
    for reason, n in report["failed_by_reason"].items():
        status, _, error = reason.partition(": ")
        if status != "cancelled":
            words = plain_reason(status, None if error == "no reason given" else error)
            failed[words] = failed.get(words, 0) + n
    ring, hidden = await _ring_rows(session, staff, broadcast_id, now=now,
                                    page="/staff/broadcasts/{broadcast_id}")
    return render(request, "staff/broadcasts/show.html", {
        "b": row, "counts": _summary(report["by_status"]), "failed": failed,
        "ring": ring, "hidden": hidden,
        "hidden_prisons": await _hidden_prisons(session, broadcast_id, ring) if hidden else [],
        "csv_path": f"{broadcast_path(broadcast_id)}.csv",
        "sms": sms_preview(row.text)})
