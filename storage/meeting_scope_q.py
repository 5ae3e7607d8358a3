"""Which meetings a staff member may manage: all for admins, their region's for coordinators.

A meeting is in a coordinator's region when a defined Region of that name (storage.regions_q)
holds its postcode (area or district) or its point (within the centre and radius), or, with
no such Region or no location, when the meeting's own `region` field names the same region
(any case). Champions manage no meetings.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Meeting, Region, StaffRole, StaffUser
from storage.regions_q import get_region, place_in_region


def meeting_in_region(meeting: Meeting, region: Region) -> bool:
    """Return whether a meeting's postcode or point lies in a defined region."""
    return place_in_region(meeting.postcode, meeting.lat, meeting.lon, region)


def _named(meeting: Meeting, name: str) -> bool:
    return (meeting.region or "").strip().lower() == name


async def meetings_for_staff(session: AsyncSession, staff: StaffUser) -> list[Meeting]:
    """Return the meetings (demo ones included) this staff member may manage, by name."""
    if staff.role not in (StaffRole.ADMIN, StaffRole.COORDINATOR):
        return []
    query = select(Meeting).order_by(func.lower(Meeting.name), col(Meeting.id))
    meetings = list((await session.exec(query)).all())
    if staff.role == StaffRole.ADMIN:
        return meetings
    return [m for m in meetings if await _in_scope(session, staff, m)]


async def _in_scope(session: AsyncSession, staff: StaffUser, meeting: Meeting) -> bool:
    name = (staff.region or "").strip().lower()
    if not name:
        return False
    region = await get_region(session, name)
    if region is not None and meeting_in_region(meeting, region):
        return True
    return _named(meeting, name)


async def meeting_for_staff(
    session: AsyncSession, staff: StaffUser, meeting_id: int
) -> Meeting | None:
    """Return the meeting if this staff member may manage it, else None (the page's 404)."""
    meeting = await session.get(Meeting, meeting_id)
    if meeting is None or staff.role not in (StaffRole.ADMIN, StaffRole.COORDINATOR):
        return None
    if staff.role == StaffRole.ADMIN or await _in_scope(session, staff, meeting):
        return meeting
    return None


async def staff_may_manage(session: AsyncSession, staff: StaffUser, meeting: Meeting) -> bool:
    """Return whether this staff member may manage this meeting."""
    if staff.role == StaffRole.ADMIN:
        return True
    return staff.role == StaffRole.COORDINATOR and await _in_scope(session, staff, meeting)
