"""Choosing meetings for a plan: the nearest open meetings to the release area (the same
search participants use), and the chosen ones, which are what SAVE records by text.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.aftercare import actor_for
from bot.web.staff.deps import CurrentStaff, NowDep, ScopedParticipant, SessionDep
from bot.web.staff.participant_view import hit_line, participant_view
from bot.web.staff.participants import live, participant_path
from bot.web.staff.session import set_notice
from bot.web.templating import render
from meeting_finder.search import find_nearest, is_offerable
from storage.meeting_views_q import chosen_ids
from storage.meetings_q import meetings_by_id
from storage.plans_q import choose_meeting, unchoose_meeting

router = APIRouter()
PAGE_SIZE = 10
MAX_OFFSET = 200


def meetings_path(participant_id: int) -> str:
    """Return the page listing meetings near a participant's release area."""
    return f"{participant_path(participant_id)}/meetings"


@router.get("/participants/{participant_id}/meetings", response_class=HTMLResponse)
async def nearest_meetings(request: Request, participant: ScopedParticipant,
                           session: SessionDep, now: NowDep, start: int = 0) -> HTMLResponse:
    """List the open meetings nearest the release area, to choose from."""
    p = live(participant)
    view = participant_view(p)
    start = max(0, min(start - start % PAGE_SIZE, MAX_OFFSET))
    lines, online, more = [], [], False
    if p.release_lat is not None and p.release_lon is not None:
        found = await find_nearest(session, lat=p.release_lat, lon=p.release_lon, now=now,
                                   limit=PAGE_SIZE, offset=start, tz=view.zone)
        lines = [hit_line(h) for h in found.hits]
        online = [hit_line(h) for h in found.online]
        more = found.has_more and start + PAGE_SIZE <= MAX_OFFSET
    return render(request, "staff/participants/meetings.html", {
        "p": view, "lines": lines, "online": online, "start": start, "more": more,
        "page_size": PAGE_SIZE, "chosen": await chosen_ids(session, p.id or 0)})


@router.post("/participants/{participant_id}/meetings/{meeting_id}/choose",
             response_class=HTMLResponse)
async def choose(request: Request, meeting_id: int, staff: CurrentStaff,
                 participant: ScopedParticipant, session: SessionDep, now: NowDep) -> Response:
    """Add a meeting to the plan; reminders come before it once they have linked."""
    p = live(participant)
    meeting = (await meetings_by_id(session, [meeting_id])).get(meeting_id)
    if meeting is None or not is_offerable(meeting):
        raise HTTPException(404)
    await choose_meeting(session, participant_id=p.id or 0, meeting_id=meeting_id, now=now,
                         actor=actor_for(staff.id))
    set_notice(request, f"{meeting.name} added to their meetings.")
    return RedirectResponse(meetings_path(p.id or 0), status_code=303)


@router.post("/participants/{participant_id}/meetings/{meeting_id}/remove",
             response_class=HTMLResponse)
async def remove(request: Request, meeting_id: int, staff: CurrentStaff,
                 participant: ScopedParticipant, session: SessionDep, now: NowDep) -> Response:
    """Drop a chosen meeting and its queued reminders."""
    p = live(participant)
    if not await unchoose_meeting(session, participant_id=p.id or 0, meeting_id=meeting_id,
                                  now=now, actor=actor_for(staff.id)):
        raise HTTPException(404)
    form = await request.form()
    back = meetings_path(p.id or 0) if form.get("back") == "meetings" \
        else participant_path(p.id or 0)
    set_notice(request, "Meeting removed from their plan. No more reminders for it.")
    return RedirectResponse(back, status_code=303)
