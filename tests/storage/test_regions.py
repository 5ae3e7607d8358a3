"""Regions by geography: postcode areas and districts, a centre and radius, and the scope."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.errors import RegionError
from storage.models import Participant, Region, StaffRole, StaffUser
from storage.regions_q import (
    create_region,
    get_region,
    ids_in_region,
    list_regions,
    participant_in_region,
    update_region,
)
from storage.staff_q import cohort_scope

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
STOKE = (53.0027, -2.1794)


def person(postcode: str | None = None, lat: float | None = None, lon: float | None = None,
           town: str | None = None) -> Participant:
    """Return an unsaved participant with a release area entered as postcode or town."""
    return Participant(display_name="Sam", release_date=date(2026, 11, 1),
                       release_postcode=postcode, release_lat=lat, release_lon=lon, region=town)


BY_POSTCODE = person("ST3 2QH", 52.9886, -2.1260)
BY_TOWN = person(None, *STOKE, town="Stoke-on-Trent")  # a town entry has no postcode
WALSALL = person("WS1 1AA", 52.5850, -1.9829)
LEEDS = person("LS1 4AP", 53.7960, -1.5470)


def region(postcodes: list[str] | None = None, centre: tuple[float, float] | None = None,
           miles: float | None = None) -> Region:
    """Return an unsaved region."""
    return Region(name="r", postcodes=postcodes or [], radius_miles=miles,
                  centre_lat=centre[0] if centre else None,
                  centre_lon=centre[1] if centre else None)


def members(r: Region) -> list[Participant]:
    return [p for p in (BY_POSTCODE, BY_TOWN, WALSALL, LEEDS) if participant_in_region(p, r)]


def test_postcode_area_matches_postcodes_only_never_a_town_entry() -> None:
    assert members(region(["ST"])) == [BY_POSTCODE]
    assert members(region(["ST", "WS", "CW"])) == [BY_POSTCODE, WALSALL]
    assert members(region(["S"])) == []  # Sheffield's area is not Stoke's


def test_postcode_district_is_the_outward_code_however_written() -> None:
    assert members(region(["ST3"])) == [BY_POSTCODE]
    assert members(region(["ST4"])) == []
    for written in ("st32qh", " st3 2qh ", "ST3", "ST3 2"):
        assert participant_in_region(person(written), region(["ST3"])), written
    assert not participant_in_region(person("ST32QH"), region(["ST32"]))


def test_centre_and_radius_matches_town_and_postcode_entries() -> None:
    assert members(region(centre=STOKE, miles=10)) == [BY_POSTCODE, BY_TOWN]
    assert members(region(centre=STOKE, miles=40)) == [BY_POSTCODE, BY_TOWN, WALSALL]
    both = region(["LS"], centre=STOKE, miles=10)
    assert members(both) == [BY_POSTCODE, BY_TOWN, LEEDS]
    assert not participant_in_region(person(), region(["ST"], centre=STOKE, miles=200))


async def test_create_update_list_and_refusals(session: AsyncSession) -> None:
    made = await create_region(session, name=" Stoke-on-Trent ", now=NOW,
                               postcodes=["st", " st 4 ", "ST"])
    assert made.name == "Stoke-on-Trent" and made.postcodes == ["ST", "ST4"]
    await create_region(session, name="Black Country", now=NOW, centre=(52.55, -2.05),
                        miles=8)
    assert [r.name for r in await list_regions(session)] == ["Black Country", "Stoke-on-Trent"]
    got = await get_region(session, "stoke-on-trent")
    assert got is not None and got.id == made.id
    moved = await update_region(session, name="STOKE-ON-TRENT", now=NOW, centre=STOKE,
                                miles=12)
    assert moved.postcodes == ["ST", "ST4"] and moved.radius_miles == 12
    for bad in ({"name": "Stoke-on-Trent", "postcodes": ["WS"]},  # name taken, any case
                {"name": "X", "postcodes": ["ST3 2QH"]},  # a full postcode, not an area
                {"name": "X", "postcodes": []},
                {"name": "X", "centre": STOKE},  # no radius
                {"name": "X", "centre": STOKE, "miles": 0},
                {"name": "X", "centre": (95.0, 0.0), "miles": 5}):
        with pytest.raises(RegionError):
            await create_region(session, now=NOW, **bad)  # type: ignore[arg-type]
    with pytest.raises(RegionError):
        await update_region(session, name="Nowhere", now=NOW, postcodes=["ST"])


async def test_coordinator_scope_uses_a_defined_region_else_the_old_rule(
        session: AsyncSession) -> None:
    people = [person("ST3 2QH", 52.9886, -2.1260), person(None, *STOKE, town="Stoke-on-Trent"),
              person("WS1 1AA", 52.5850, -1.9829), person(None, 53.7960, -1.5470, town="Leeds")]
    session.add_all(people)
    await session.flush()
    ids = [p.id for p in people]
    coordinator = StaffUser(email="c@example.org", display_name="C", password_hash="x",
                            role=StaffRole.COORDINATOR, region="Stoke-on-Trent")

    async def scoped() -> list[int | None]:
        scope = await cohort_scope(session, coordinator)
        rows = await session.exec(select(Participant.id).where(scope)
                                  .order_by(col(Participant.id)))
        return list(rows.all())

    assert await scoped() == [ids[1]]  # no Region yet: the town names the area
    await create_region(session, name="stoke-on-trent", now=NOW, postcodes=["ST"])
    assert await scoped() == [ids[0]]
    await update_region(session, name="Stoke-on-Trent", now=NOW, centre=STOKE, miles=10)
    assert await scoped() == ids[:2]
    await update_region(session, name="Stoke-on-Trent", now=NOW, postcodes=["ST", "WS"])
    assert await scoped() == ids[:3]
    found = await get_region(session, "Stoke-on-Trent")
    assert found is not None and await ids_in_region(session, found, active_only=True) == []
