"""Regions by geography: define them, and say whether a participant's release area is in one.

A region is a list of postcode areas ("ST") or districts ("ST3"), a centre and radius, or
both; a participant is in it if their release postcode falls in a listed area or district, or
their release point (set at enrolment from a postcode or a town) lies within the radius.

A release area entered as a town has no postcode, so only a centre and radius can match it.
That is deliberate. The offline data (meeting_finder: GeoNames towns, Code-Point Open
postcode centroids) has no town-to-postcode table: a town is one point, and a town spans
several districts (Stoke-on-Trent's point sits among ST1, ST4 and others), so "the town's
district" would be a guess; its area is usually right but wrong for towns near an area
border, and finding the nearest postcode needs every area loaded (about 10 s). So a town
entry never matches a postcode area by inference; `town_only_count` lets the Regions page
say how many people only a centre and radius can reach.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.errors import RegionError
from storage.models import Participant, ParticipantStatus, Region, StaffRole, StaffUser

EARTH_MILES = 3958.8
MAX_MILES = 200.0
MAX_NAME = 100
PREFIX = re.compile(r"^[A-Z]{1,2}(\d[A-Z\d]?)?$")  # an area (ST) or a district (ST3, W1A)
INWARD = re.compile(r"\d[A-Z]{2}$")


def miles_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the great-circle distance in miles."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_MILES * math.asin(min(1.0, math.sqrt(h)))


def outward_code(postcode: str) -> str:
    """Return a postcode's outward code ("ST3" of "st3 2qh", "ST32QH" or "ST3 2")."""
    text = postcode.strip().upper()
    if " " in text:
        return text.split()[0]
    if len(text) >= 5 and INWARD.search(text):
        return text[:-3]
    return text


def postcode_area(postcode: str) -> str:
    """Return a postcode's area: the leading letters ("ST" of "ST3 2QH")."""
    match = re.match(r"[A-Z]*", outward_code(postcode))
    return match.group(0) if match else ""


def normalise_prefixes(raw: Sequence[str]) -> list[str]:
    """Return postcode areas or districts upper case without spaces; raise RegionError if bad."""
    out: list[str] = []
    for item in raw:
        code = "".join(item.split()).upper()
        if not code:
            continue
        if not PREFIX.match(code):
            raise RegionError(f"{item.strip()[:20]!r} is not a postcode area (ST) or "
                              "district (ST3)")
        if code not in out:
            out.append(code)
    return out


def place_in_region(
    postcode: str | None, lat: float | None, lon: float | None, region: Region
) -> bool:
    """Return whether a postcode (area or district listed) or a point (in the radius) is in."""
    postcode = (postcode or "").strip()
    if postcode:
        outward, area = outward_code(postcode), postcode_area(postcode)
        for prefix in region.postcodes or []:
            if prefix == (area if prefix.isalpha() else outward):
                return True
    if (lat is None or lon is None or region.centre_lat is None or region.centre_lon is None
            or region.radius_miles is None):
        return False
    return miles_between(region.centre_lat, region.centre_lon, lat, lon) <= region.radius_miles


def participant_in_region(participant: Participant, region: Region) -> bool:
    """Return whether a participant's release area lies in the region, however it was entered."""
    return place_in_region(participant.release_postcode, participant.release_lat,
                           participant.release_lon, region)


def check_name(name: str) -> str:
    """Return a region name with spaces collapsed; raise RegionError if empty, long or odd."""
    if len(name) > MAX_NAME * 4:
        raise RegionError(f"a region's name must be {MAX_NAME} characters or fewer")
    name = " ".join(name.split())
    if not name:
        raise RegionError("a region needs a name")
    if len(name) > MAX_NAME:
        raise RegionError(f"a region's name must be {MAX_NAME} characters or fewer")
    if any(unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) == "So"
           for ch in name):
        raise RegionError("a region's name can use letters, numbers, spaces and punctuation "
                          "only")
    return name


def _check_centre(centre: tuple[float, float] | None, miles: float | None) -> None:
    if (centre is None) != (miles is None):
        raise RegionError("give a centre and a radius in miles together")
    if centre is not None and miles is not None:
        lat, lon = centre
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise RegionError("the centre must be a latitude and longitude, like 53.0,-2.18")
        if not 0 < miles <= MAX_MILES:
            raise RegionError(f"miles must be more than 0 and at most {MAX_MILES:g}")


async def get_region(session: AsyncSession, name: str) -> Region | None:
    """Return the region with this name (any case), or None."""
    found = await session.exec(
        select(Region).where(func.lower(Region.name) == name.strip().lower()))
    return found.first()


async def list_regions(session: AsyncSession) -> list[Region]:
    """Return every region, by name."""
    return list((await session.exec(select(Region).order_by(col(Region.name)))).all())


async def create_region(
    session: AsyncSession,
    *,
    name: str,
    now: datetime,
    postcodes: Sequence[str] = (),
    centre: tuple[float, float] | None = None,
    miles: float | None = None,
) -> Region:
    """Add a region; raise RegionError if it is badly defined or the name is taken."""
    name = check_name(name)
    prefixes = normalise_prefixes(postcodes)
    _check_centre(centre, miles)
    if not prefixes and centre is None:
        raise RegionError("give postcode areas or districts, or a centre and radius")
    if await get_region(session, name) is not None:
        raise RegionError(f"a region called {name!r} already exists")
    region = Region(name=name, postcodes=prefixes, radius_miles=miles,
                    centre_lat=centre[0] if centre else None,
                    centre_lon=centre[1] if centre else None, created_at=now, updated_at=now)
    session.add(region)
    await session.flush()
    return region


async def update_region(
    session: AsyncSession,
    *,
    name: str,
    now: datetime,
    postcodes: Sequence[str] | None = None,
    centre: tuple[float, float] | None = None,
    miles: float | None = None,
    drop_centre: bool = False,
) -> Region:
    """Replace a region's postcodes and/or centre and radius; raise RegionError if unknown.

    None leaves a part as it was; `miles` alone changes the radius of an existing centre;
    `drop_centre` removes the centre and radius. A region must keep postcodes or a centre.
    """
    region = await get_region(session, name)
    if region is None:
        raise RegionError(f"no region called {name.strip()[:MAX_NAME]!r}")
    if drop_centre and (centre is not None or miles is not None):
        raise RegionError("give a new centre and radius, or remove them, not both")
    if centre is None and miles is not None and region.centre_lat is not None:
        centre = (region.centre_lat, region.centre_lon or 0.0)
    _check_centre(centre, miles)
    prefixes = normalise_prefixes(postcodes) if postcodes is not None else region.postcodes
    keeps_centre = not drop_centre and (centre is not None or region.centre_lat is not None)
    if not prefixes and not keeps_centre:
        raise RegionError("give postcode areas or districts, or a centre and radius")
    region.postcodes = list(prefixes or [])
    if drop_centre:
        region.centre_lat = region.centre_lon = region.radius_miles = None
    elif centre is not None:
        region.centre_lat, region.centre_lon = centre
        region.radius_miles = miles
    region.updated_at = now
    session.add(region)
    await session.flush()
    return region


async def region_by_id(session: AsyncSession, region_id: int) -> Region | None:
    """Return the region with this id, or None."""
    return await session.get(Region, region_id)


async def coordinators_of(session: AsyncSession, name: str) -> list[str]:
    """Return the emails of coordinators whose account names this region (any case)."""
    found = await session.exec(
        select(StaffUser.email).where(col(StaffUser.role) == StaffRole.COORDINATOR,
                                      func.lower(StaffUser.region) == name.strip().lower())
        .order_by(col(StaffUser.email)))
    return list(found.all())


async def delete_region(session: AsyncSession, *, name: str) -> Region:
    """Delete a region; raise RegionError if unknown or a coordinator's account names it."""
    region = await get_region(session, name)
    if region is None:
        raise RegionError(f"no region called {name.strip()[:MAX_NAME]!r}")
    users = await coordinators_of(session, region.name)
    if users:
        raise RegionError(f"{region.name!r} is the region of {len(users)} coordinator "
                          f"account{'s' if len(users) != 1 else ''} ({', '.join(users)}): "
                          "change their region first")
    await session.delete(region)
    await session.flush()
    return region


async def ids_in_region(
    session: AsyncSession, region: Region, *, active_only: bool = False
) -> list[int]:
    """Return the ids of participants (not erased) whose release area is in the region."""
    query = select(Participant).where(col(Participant.status) != ParticipantStatus.DELETED)
    if active_only:
        query = query.where(col(Participant.status) == ParticipantStatus.ACTIVE)
    people = (await session.exec(query)).all()
    return sorted(p.id for p in people if p.id is not None and participant_in_region(p, region))


async def active_counts(session: AsyncSession, regions: Sequence[Region]) -> dict[int, int]:
    """Return, per region id, how many active participants' release areas lie in it."""
    people = (await session.exec(
        select(Participant).where(col(Participant.status) == ParticipantStatus.ACTIVE))).all()
    return {r.id: sum(participant_in_region(p, r) for p in people)
            for r in regions if r.id is not None}


async def town_only_count(session: AsyncSession) -> int:
    """Return how many active participants gave a town, not a postcode (only a radius reaches
    them)."""
    found = await session.exec(
        select(func.count()).select_from(Participant).where(
            col(Participant.status) == ParticipantStatus.ACTIVE,
            func.coalesce(func.trim(Participant.release_postcode), "") == "",
            col(Participant.release_lat).is_not(None)))
    return int(found.one())
