"""The release card: a preview, then printing it (as a page or a PDF) with a fresh code.

A link code is stored only as a hash, so the card can show one only at the moment it is
issued. Printing is therefore a POST that issues a new code (voiding the old: a card
printed before stops working) and answers with the card itself; the code is in that one
response (never cached: see security.py) and nowhere else: not in the session cookie
(signed, not encrypted), not in a URL, not in a log. A GET shows the card without a code.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.card import ReleaseCard, build_card, qr_svg_data_uri
from bot.card_pdf import card_pdf
from bot.config import Settings
from bot.enrol import IssuedCode, new_code
from bot.web.staff.deps import CurrentStaff, NowDep, ScopedParticipant, SessionDep, SettingsDep
from bot.web.templating import render
from storage.audit_q import record_staff_action
from storage.models import Participant, ParticipantStatus, StaffUser

router = APIRouter()
CARD = "/participants/{participant_id}/card"
PDF_NAME = "card.pdf"  # no name in it: downloads folders on a shared PC are read by others


def _printable(participant: Participant) -> int:
    """Return the participant's id, or 404 for someone whose data was erased."""
    if participant.status == ParticipantStatus.DELETED or participant.id is None:
        raise HTTPException(404)
    return participant.id


async def _issue(
    session: AsyncSession, staff: StaffUser, participant_id: int, now: datetime
) -> IssuedCode:
    """Issue a fresh code for the card, voiding the old (audited as `new_code`)."""
    return await new_code(session, participant_id=participant_id, now=now, issued_by=staff.id)


async def _printed(session: AsyncSession, staff: StaffUser, participant_id: int,
                   now: datetime, *, form: str) -> None:
    """Audit that a card with their name and code left the service (`page` or `pdf`)."""
    assert staff.id is not None
    await record_staff_action(session, staff_id=staff.id, action="card_printed", now=now,
                              participant_id=participant_id, detail={"format": form})


def _page(request: Request, participant: Participant, card: ReleaseCard, *, printed: bool,
          settings: Settings) -> HTMLResponse:
    qr = qr_svg_data_uri(card.telegram_link) if card.telegram_link else None
    return render(request, "staff/card.html", {
        "participant_id": participant.id, "card": card, "printed": printed, "qr": qr,
        "sms_on": card.sms_number is not None,
        "telegram_on": settings.telegram_bot_username is not None,
        "has_area": participant.release_lat is not None and participant.release_lon is not None,
    })


@router.get(CARD, response_class=HTMLResponse)
async def show_card(request: Request, participant: ScopedParticipant, session: SessionDep,
                    now: NowDep, settings: SettingsDep) -> HTMLResponse:
    """Show the card as it will print, without a code, and the buttons that print it."""
    _printable(participant)
    card = await build_card(session, participant, settings=settings, now=now)
    return _page(request, participant, card, printed=False, settings=settings)


@router.post(CARD, response_class=HTMLResponse)
async def print_card(request: Request, staff: CurrentStaff, participant: ScopedParticipant,
                     session: SessionDep, now: NowDep, settings: SettingsDep) -> HTMLResponse:
    """Issue a new code and show the card with it, ready to print on one A5 sheet."""
    issued = await _issue(session, staff, _printable(participant), now)
    await _printed(session, staff, issued.participant_id, now, form="page")
    card = await build_card(session, participant, settings=settings, now=now,
                            code=issued.link_code, code_expires=issued.expires)
    return _page(request, participant, card, printed=True, settings=settings)


@router.get(f"{CARD}.pdf")
async def pdf_needs_a_code(participant: ScopedParticipant) -> RedirectResponse:
    """Send a plain link to the PDF to the card page: a PDF is made only with a new code."""
    return RedirectResponse(f"/staff/participants/{_printable(participant)}/card",
                            status_code=303)


@router.post(f"{CARD}.pdf")
async def print_card_pdf(staff: CurrentStaff, participant: ScopedParticipant,
                         session: SessionDep, now: NowDep, settings: SettingsDep) -> Response:
    """Issue a new code and answer with the card as a one-page A5 PDF."""
    issued = await _issue(session, staff, _printable(participant), now)
    await _printed(session, staff, issued.participant_id, now, form="pdf")
    card = await build_card(session, participant, settings=settings, now=now,
                            code=issued.link_code, code_expires=issued.expires)
    pdf = await asyncio.to_thread(card_pdf, card)  # ~20 ms of drawing: off the event loop
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{PDF_NAME}"'})
