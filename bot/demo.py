"""Demo data for the embedded default: a prison, three staff logins, demo meetings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.accounts import add_staff, reset_password
from meeting_finder.demo import load_demo_meetings
from storage.db import session_scope
from storage.models import StaffRole
from storage.participants import get_or_create_prison
from storage.staff_q import staff_by_email

DEMO_PRISON = "HMP Demo"
DEMO_REGION = "West Midlands"
# example.org is kept for examples: these addresses can never reach anyone.
DEMO_STAFF = (
    ("champion@example.org", StaffRole.CHAMPION, "Demo Recovery Champion", DEMO_PRISON, None),
    ("coordinator@example.org", StaffRole.COORDINATOR, "Demo Coordinator", None, DEMO_REGION),
    ("admin@example.org", StaffRole.ADMIN, "Demo Administrator", None, None),
)


async def load_demo(engine: AsyncEngine, *, now: datetime, local_mode: bool) -> dict[str, Any]:
    """Create the demo prison, staff logins (new passwords each run) and meetings.

    In local mode the demo logins work straight away; elsewhere they are one-time passwords
    like any other, and the first sign-in asks for a new one.
    """
    staff: list[dict[str, Any]] = []
    async with session_scope(engine) as session:
        await get_or_create_prison(session, DEMO_PRISON)
        for email, role, name, prison, region in DEMO_STAFF:
            user = await staff_by_email(session, email)
            if user is None:
                user, password = await add_staff(
                    session, email=email, role=role, prison=prison, region=region, now=now,
                    display_name=name, must_change_password=not local_mode)
            else:
                password = await reset_password(session, staff=user, now=now,
                                                must_change_password=not local_mode)
            staff.append({"email": email, "password": password, "role": str(role),
                          "prison": prison, "region": region})
        meetings = await load_demo_meetings(session, now=now)
    return {"prison": DEMO_PRISON, "staff": staff, "meetings": meetings}
