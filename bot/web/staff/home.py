"""The staff home page: what each role can do, meetings that may not be running (for
coordinators and admins), and (for admins) who has an account."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from bot.web.staff.deps import CurrentStaff, NowDep, SessionDep
from bot.web.templating import render
from storage.meeting_scope_q import meetings_for_staff
from storage.models import StaffRole, StaffUser
from storage.norun_q import STALE_WINDOW, stale_meetings
from storage.staff_q import list_staff

router = APIRouter()


@dataclass(frozen=True)
class Link:
    """A task on the home page."""

    label: str
    href: str
    description: str
    roles: frozenset[StaffRole]


CHAMPION = frozenset({StaffRole.CHAMPION, StaffRole.ADMIN})
COORDINATOR = frozenset({StaffRole.COORDINATOR, StaffRole.ADMIN})
EVERYONE = frozenset(StaffRole)
ADMIN = frozenset({StaffRole.ADMIN})

# The pages each role works in, in the order they are used.
LINKS = (
    Link("Participants", "/staff/participants",
         "See the people enrolled and how they are getting on.", CHAMPION),
    Link("Enrol someone", "/staff/participants/new",
         "Enrol a person before release and print their release card.", CHAMPION),
    Link("Meetings", "/staff/meetings",
         "Keep the meeting list current and tell people about changes.", COORDINATOR),
    Link("Feeds", "/staff/feeds",
         "Import meeting lists from feeds, with a preview of what changes.", COORDINATOR),
    Link("Broadcast", "/staff/broadcasts",
         "Tell the people a change affects, and see who to ring.", COORDINATOR),
    Link("Meeting reports", "/staff/reports/meetings",
         "Meetings people said did not run.", COORDINATOR),
    Link("Reports", "/staff/reports", "Engagement and delivery reports.", EVERYONE),
    Link("Regions", "/staff/regions", "Define regions by postcode or by distance.", ADMIN),
    Link("Simulator", "/staff/simulator",
         "Try the bot as a participant would, without sending anything.", EVERYONE),
    Link("Link Telegram", "/staff/telegram",
         "Use the coordinators' commands from your own Telegram.", COORDINATOR),
)


def links_for(staff: StaffUser) -> list[Link]:
    """Return the home page links for this person's role."""
    return [link for link in LINKS if staff.role in link.roles]


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, staff: CurrentStaff, session: SessionDep,
               now: NowDep) -> HTMLResponse:
    """Show the tasks for this person's role, meetings that may not be running (coordinators
    and admins), and every staff account (admins)."""
    accounts = await list_staff(session) if staff.role == StaffRole.ADMIN else []
    stale = []
    if staff.role in COORDINATOR:
        stale = await stale_meetings(session, await meetings_for_staff(session, staff), now=now)
    return render(request, "staff/home.html", {"links": links_for(staff), "accounts": accounts,
                                               "stale": stale,
                                               "window_days": STALE_WINDOW.days})
