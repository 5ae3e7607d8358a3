"""Regions by geography: postcode areas and districts, a centre and radius, and the scope."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.errors import RegionError
from storage.models import Participant, ParticipantStatus, Region, StaffRole, StaffUser
from storage.regions_q import (
    active_counts,
    check_name,
    coordinators_of,
    create_region,
    delete_region,
    get_region,
    ids_in_region,
    list_regions,
    participant_in_region,
    town_only_count,
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
    bad: dict[str, Any]
    for bad in ({"name": "Stoke-on-Trent", "postcodes": ["WS"]},  # name taken, any case
                {"name": "X", "postcodes": ["ST3 2QH"]},  # a full postcode, not an area
                {"name": "X", "postcodes": []},
                {"name": "X", "centre": STOKE},  # no radius
                {"name": "X", "centre": STOKE, "miles": 0},
                {"name": "X", "centre": (95.0, 0.0), "miles": 5}):
        with pytest.raises(RegionError):
            await create_region(session, now=NOW, **bad)
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


async def test_update_radius_alone_drop_centre_and_refusals(session: AsyncSession) -> None:
    await create_region(session, name="Stoke", now=NOW, postcodes=["ST"], centre=STOKE,
                        miles=10)
    wider = await update_region(session, name="stoke", now=NOW, miles=25)
    assert (wider.centre_lat, wider.centre_lon, wider.radius_miles) == (*STOKE, 25)
    plain = await update_region(session, name="Stoke", now=NOW, drop_centre=True)
    assert plain.postcodes == ["ST"] and plain.centre_lat is None and plain.radius_miles is None
    bad: dict[str, Any]
    for bad in ({"postcodes": []},  # nothing would be left
                {"miles": 5},  # no centre to widen now
                {"drop_centre": True, "centre": STOKE, "miles": 5},
                {"postcodes": ["ST3 2QH"]}):
        with pytest.raises(RegionError):
            await update_region(session, name="Stoke", now=NOW, **bad)
    got = await get_region(session, "Stoke")
    assert got is not None and got.postcodes == ["ST"] and got.centre_lat is None


async def test_names_must_be_plain_and_short(session: AsyncSession) -> None:
    assert check_name("  North   Staffs ") == "North Staffs"
    for bad in ("", "   ", "x" * 101, "x" * 10_000, "Stoke \U0001f600", "Bell\x07"):
        with pytest.raises(RegionError):
            check_name(bad)
        with pytest.raises(RegionError):
            await create_region(session, name=bad, now=NOW, postcodes=["ST"])


async def test_delete_refuses_while_a_coordinator_names_the_region(
        session: AsyncSession) -> None:
    await create_region(session, name="Stoke", now=NOW, postcodes=["ST"])
    await create_region(session, name="Leeds", now=NOW, postcodes=["LS"])
    session.add(StaffUser(email="c@example.org", display_name="C", password_hash="x",
                          role=StaffRole.COORDINATOR, region="STOKE"))
    session.add(StaffUser(email="champ@example.org", display_name="D", password_hash="x",
                          role=StaffRole.CHAMPION, region="Leeds"))
    await session.flush()
    assert await coordinators_of(session, "stoke") == ["c@example.org"]
    with pytest.raises(RegionError, match="c@example.org"):
        await delete_region(session, name="Stoke")
    assert await coordinators_of(session, "Leeds") == []  # a Champion's field does not count
    gone = await delete_region(session, name="leeds")
    assert gone.name == "Leeds"
    assert [r.name for r in await list_regions(session)] == ["Stoke"]
    with pytest.raises(RegionError):
        await delete_region(session, name="Leeds")


async def test_counts_of_active_people_and_town_only_entries(session: AsyncSession) -> None:
    people = [person("ST3 2QH", 52.9886, -2.1260), person("ST4", 52.9943, -2.1853),
              person(None, *STOKE, town="Stoke-on-Trent"), person("WS1 1AA", 52.5850, -1.9829),
              person("ST3 2QH", 52.9886, -2.1260), person(" ", *STOKE, town="Stoke")]
    for p in people[:4] + people[5:]:
        p.status = ParticipantStatus.ACTIVE
    session.add_all(people)  # people[4] stays enrolled, not active
    st = await create_region(session, name="ST", now=NOW, postcodes=["ST"])
    ring = await create_region(session, name="Ring", now=NOW, centre=STOKE, miles=10)
    west = await create_region(session, name="West", now=NOW, postcodes=["WS", "CW"])
    counts = await active_counts(session, [st, ring, west])
    assert counts == {st.id: 2, ring.id: 4, west.id: 1}
    assert await town_only_count(session) == 2
