"""Fictional demo meetings in real UK towns, so the service can be tried with no feed.

Town coordinates are real (GeoNames); every venue, address, link and contact is invented,
marked `demo=True`, and carries "(demo)" in its name and venue.
"""

from __future__ import annotations

from datetime import datetime, time

from sqlmodel.ext.asyncio.session import AsyncSession

from meeting_finder.feeds.types import SMART, SMART_CLOSED, SMART_FAMILY, SMART_PRISON
from meeting_finder.spatial import invalidate_index
from storage.meetings_q import slug_sources
from storage.models.meetings import Access, Attendance, Meeting, MeetingStatus

DEMO_SOURCE = "demo"
DEMO_LINK = "https://meet.example.org/smart-demo-{slug}"
DEMO_PHONE = "0300 000 0000 (demo)"  # not a real number (demo)

IN, ON, HY = Attendance.IN_PERSON, Attendance.ONLINE, Attendance.HYBRID
OPEN, CLOSED, PRISON = Access.OPEN, Access.CLOSED, Access.PRISON
ACTIVE, SUSPENDED = MeetingStatus.ACTIVE, MeetingStatus.SUSPENDED
CANCELLED = MeetingStatus.CANCELLED

# slug, town, lat, lon, weekday (0 = Monday), start, attendance, access, status, outward code
_ROWS: list[tuple[str, str, float, float, int, str, Attendance, Access, MeetingStatus, str]] = [
    # Stoke-on-Trent, where UKSR's office is: all within 10 miles of ST3 2QH.
    ("longton-mon", "Longton", 52.9851, -2.1341, 0, "19:00", IN, OPEN, ACTIVE, "ST3"),
    ("hanley-tue", "Hanley", 53.0252, -2.1745, 1, "18:30", IN, OPEN, ACTIVE, "ST1"),
    ("stoke-wed", "Stoke-on-Trent", 53.0050, -2.1830, 2, "10:00", HY, OPEN, ACTIVE, "ST4"),
    ("newcastle-lyme-thu", "Newcastle-under-Lyme", 53.0117, -2.2270, 3, "19:00", IN, OPEN,
     ACTIVE, "ST5"),
    ("stone-sat", "Stone", 52.9050, -2.1530, 5, "11:00", IN, OPEN, ACTIVE, "ST15"),
    ("kidsgrove-sun", "Kidsgrove", 53.0865, -2.2385, 6, "18:00", IN, OPEN, ACTIVE, "ST7"),
    ("cheadle-fri", "Cheadle", 52.9855, -1.9845, 4, "14:00", IN, OPEN, ACTIVE, "ST10"),
    ("tunstall-wed", "Tunstall", 53.0590, -2.2120, 2, "19:30", IN, OPEN, ACTIVE, "ST6"),
    ("longton-sun-family", "Longton", 52.9839, -2.1302, 6, "11:00", IN, OPEN, ACTIVE, "ST3"),
    # Never offered: treatment-service-only, in a prison, paused, stopped.
    ("hanley-clinic-mon", "Hanley", 53.0240, -2.1760, 0, "10:00", IN, CLOSED, ACTIVE, "ST1"),
    ("stoke-prison-tue", "Stoke-on-Trent", 52.9900, -2.1400, 1, "14:00", IN, PRISON, ACTIVE,
     "ST3"),
    ("fenton-thu", "Fenton", 52.9990, -2.1545, 3, "18:00", IN, OPEN, SUSPENDED, "ST4"),
    ("meir-fri", "Meir", 52.9790, -2.1010, 4, "18:00", IN, OPEN, CANCELLED, "ST3"),
    # England
    ("london-mon", "London", 51.5090, -0.1240, 0, "18:30", IN, OPEN, ACTIVE, "WC2"),
    ("london-wed", "London", 51.5230, -0.0850, 2, "12:30", HY, OPEN, ACTIVE, "EC2"),
    ("london-sat", "London", 51.4630, -0.1150, 5, "10:30", IN, OPEN, ACTIVE, "SW9"),
    ("manchester-tue", "Manchester", 53.4810, -2.2380, 1, "19:00", IN, OPEN, ACTIVE, "M1"),
    ("manchester-thu", "Manchester", 53.4700, -2.2500, 3, "13:00", IN, OPEN, ACTIVE, "M15"),
    ("birmingham-mon", "Birmingham", 52.4815, -1.9000, 0, "18:00", IN, OPEN, ACTIVE, "B1"),
    ("birmingham-fri", "Birmingham", 52.4750, -1.8850, 4, "11:00", HY, OPEN, ACTIVE, "B5"),
    ("leeds-wed", "Leeds", 53.7965, -1.5480, 2, "18:30", IN, OPEN, ACTIVE, "LS1"),
    ("liverpool-thu", "Liverpool", 53.4105, -2.9780, 3, "19:00", IN, OPEN, ACTIVE, "L1"),
    ("bristol-tue", "Bristol", 51.4550, -2.5965, 1, "18:00", IN, OPEN, ACTIVE, "BS1"),
    ("sheffield-mon", "Sheffield", 53.3830, -1.4660, 0, "12:00", IN, OPEN, ACTIVE, "S1"),
    ("newcastle-tyne-wed", "Newcastle upon Tyne", 54.9735, -1.6140, 2, "18:30", IN, OPEN,
     ACTIVE, "NE1"),
    ("nottingham-sat", "Nottingham", 52.9535, -1.1505, 5, "10:00", IN, OPEN, ACTIVE, "NG1"),
    ("leicester-thu", "Leicester", 52.6385, -1.1315, 3, "18:00", IN, OPEN, ACTIVE, "LE1"),
    ("derby-tue", "Derby", 52.9230, -1.4765, 1, "19:30", IN, OPEN, ACTIVE, "DE1"),
    ("wolverhampton-wed", "Wolverhampton", 52.5855, -2.1230, 2, "17:30", IN, OPEN, ACTIVE,
     "WV1"),
    ("stafford-thu", "Stafford", 52.8050, -2.1165, 3, "18:30", IN, OPEN, ACTIVE, "ST16"),
    ("crewe-mon", "Crewe", 53.0980, -2.4415, 0, "19:00", IN, OPEN, ACTIVE, "CW1"),
    ("norwich-fri", "Norwich", 52.6280, 1.2985, 4, "18:00", IN, OPEN, ACTIVE, "NR1"),
    ("plymouth-wed", "Plymouth", 50.3715, -4.1430, 2, "18:00", IN, OPEN, ACTIVE, "PL1"),
    ("brighton-sun", "Brighton", 50.8285, -0.1395, 6, "11:00", IN, OPEN, ACTIVE, "BN1"),
    ("hull-tue", "Kingston upon Hull", 53.7445, -0.3355, 1, "18:30", IN, OPEN, ACTIVE, "HU1"),
    ("exeter-thu", "Exeter", 50.7235, -3.5275, 3, "19:00", IN, OPEN, ACTIVE, "EX1"),
    ("carlisle-mon", "Carlisle", 54.8950, -2.9380, 0, "18:00", IN, OPEN, ACTIVE, "CA1"),
    ("middlesbrough-wed", "Middlesbrough", 54.5760, -1.2350, 2, "13:30", IN, OPEN, ACTIVE,
     "TS1"),
    # Wales
    ("cardiff-tue", "Cardiff", 51.4800, -3.1800, 1, "18:30", IN, OPEN, ACTIVE, "CF10"),
    ("swansea-thu", "Swansea", 51.6210, -3.9430, 3, "18:00", IN, OPEN, ACTIVE, "SA1"),
    ("wrexham-mon", "Wrexham", 53.0465, -2.9915, 0, "19:00", IN, OPEN, ACTIVE, "LL11"),
    ("newport-fri", "Newport", 51.5880, -2.9985, 4, "12:00", IN, OPEN, ACTIVE, "NP20"),
    # Scotland
    ("edinburgh-mon", "Edinburgh", 55.9520, -3.1965, 0, "18:30", IN, OPEN, ACTIVE, "EH1"),
    ("edinburgh-sat", "Edinburgh", 55.9580, -3.1880, 5, "11:00", HY, OPEN, ACTIVE, "EH7"),
    ("glasgow-tue", "Glasgow", 55.8650, -4.2575, 1, "19:00", IN, OPEN, ACTIVE, "G1"),
    ("glasgow-thu", "Glasgow", 55.8600, -4.2400, 3, "13:00", IN, OPEN, ACTIVE, "G2"),
    ("aberdeen-wed", "Aberdeen", 57.1435, -2.0980, 2, "18:00", IN, OPEN, ACTIVE, "AB10"),
    ("dundee-fri", "Dundee", 56.4690, -2.9750, 4, "18:30", IN, OPEN, ACTIVE, "DD1"),
    ("inverness-tue", "Inverness", 57.4790, -4.2240, 1, "18:00", IN, OPEN, ACTIVE, "IV1"),
    # Northern Ireland
    ("belfast-mon", "Belfast", 54.5970, -5.9255, 0, "19:00", IN, OPEN, ACTIVE, "BT1"),
    ("belfast-thu", "Belfast", 54.5850, -5.9350, 3, "12:00", IN, OPEN, ACTIVE, "BT7"),
    ("derry-wed", "Derry", 54.9980, -7.3095, 2, "18:30", IN, OPEN, ACTIVE, "BT48"),
    ("lisburn-sat", "Lisburn", 54.5235, -6.0355, 5, "10:30", IN, OPEN, ACTIVE, "BT28"),
]

# slug, weekday, start (London time)
_ONLINE: list[tuple[str, int, str, str]] = [
    ("online-mon-evening", 0, "20:00", "SMART Recovery online, Monday evening (demo)"),
    ("online-wed-lunch", 2, "12:30", "SMART Recovery online, Wednesday lunchtime (demo)"),
    ("online-fri-morning", 4, "09:30", "SMART Recovery online, Friday morning (demo)"),
    ("online-sun-family", 6, "19:00", "SMART Family & Friends online (demo)"),
    ("online-daily-checkin", 1, "08:00", "SMART Recovery online check-in (demo)"),
]

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _hm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _end(start: time) -> time:
    """Return 90 minutes after `start` (the usual length of a SMART meeting)."""
    minutes = (start.hour * 60 + start.minute + 90) % (24 * 60)
    return time(minutes // 60, minutes % 60)


def demo_meetings() -> list[Meeting]:
    """Return the fictional demo meetings (new, unsaved rows)."""
    meetings: list[Meeting] = []
    for slug, town, lat, lon, day, start, attendance, access, status, outward in _ROWS:
        types = [SMART, "O"]
        if access == PRISON:
            types = [SMART, SMART_PRISON]
        elif access == CLOSED:
            types = [SMART, SMART_CLOSED]
        if slug.endswith("family"):
            types.append(SMART_FAMILY)
        if attendance == HY:
            types.append("ONL")
        begins = _hm(start)
        meetings.append(
            Meeting(
                slug=f"demo-{slug}",
                name=f"SMART Recovery {town} {_DAYS[day]} (demo)",
                weekday=day,
                start_time=begins,
                end_time=_end(begins),
                timezone="Europe/London",
                venue=f"{town} Community Rooms (demo)",
                address=f"1 Example Street, {town} (demo address)",
                postcode=outward,
                region=town,
                lat=lat,
                lon=lon,
                attendance=attendance,
                access=access,
                status=status,
                conference_url=DEMO_LINK.format(slug=slug) if attendance == HY else None,
                types=types,
                contact="Ask the demo facilitator on arrival (demo)",
                source=DEMO_SOURCE,
                demo=True,
            )
        )
    for slug, day, start, name in _ONLINE:
        begins = _hm(start)
        meetings.append(
            Meeting(
                slug=f"demo-{slug}",
                name=name,
                weekday=day,
                start_time=begins,
                end_time=_end(begins),
                timezone="Europe/London",
                venue="Online (demo)",
                attendance=ON,
                access=OPEN,
                status=ACTIVE,
                conference_url=DEMO_LINK.format(slug=slug),
                conference_phone=DEMO_PHONE,
                types=[SMART, "ONL", *([SMART_FAMILY] if "family" in slug else [])],
                source=DEMO_SOURCE,
                demo=True,
            )
        )
    return meetings


async def load_demo_meetings(session: AsyncSession, *, now: datetime) -> int:
    """Add the demo meetings that are missing (by slug); return how many were added."""
    wanted = demo_meetings()
    slugs = [m.slug for m in wanted]
    existing = set(await slug_sources(session, slugs))
    added = 0
    for meeting in wanted:
        if meeting.slug in existing:
            continue
        meeting.updated = now
        session.add(meeting)
        added += 1
    await session.commit()
    invalidate_index(session)
    return added
