"""Regions (admins only): define a region by postcode areas or districts, or a centre and
radius, see how many active participants and running meetings fall in each, change or
delete one. The CLI (`throughcare regions`) calls the same storage functions.

A centre is typed as a postcode, a town or "lat, lon" and resolved offline
(meeting_finder.geocode); the page says where it landed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import FormData

from bot.web.staff import form_values as fv
from bot.web.staff.deps import AdminStaff, NowDep, SessionDep
from bot.web.staff.session import set_notice
from bot.web.templating import render
from meeting_finder import postcodes as offline
from meeting_finder.errors import PlaceNotFound
from meeting_finder.geocode import resolve_place
from meeting_finder.places import town_index
from storage.audit_q import record_staff_action
from storage.errors import RegionError
from storage.meeting_scope_q import meeting_in_region, meetings_for_staff
from storage.models import MeetingStatus, Region, StaffUser
from storage.regions_q import (
    MAX_MILES,
    MAX_NAME,
    PREFIX,
    active_counts,
    check_name,
    coordinators_of,
    create_region,
    delete_region,
    get_region,
    list_regions,
    miles_between,
    region_by_id,
    town_only_count,
    update_region,
)

router = APIRouter()

PATH = "/staff/regions"
# Areas people use whose postcodes the offline data does not ship (Northern Ireland, islands).
UNSHIPPED_AREAS = frozenset({"BT", "GY", "JE", "IM"})
SPLIT = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class Definition:
    """A region as typed into the form, checked."""

    postcodes: list[str]
    centre: tuple[float, float] | None
    landed: str | None  # where the centre resolved to, in words
    miles: float | None


@dataclass(frozen=True)
class RegionRow:
    """One region as the page lists it."""

    region: Region
    near: str | None  # the big town nearest its centre
    people: int
    meetings: int


def near_town(lat: float, lon: float) -> str:
    """Return the big town nearest a point, to show where a centre landed."""
    towns = town_index().landmarks
    if not towns:
        return f"{lat:.4f}, {lon:.4f}"
    best = min(towns, key=lambda t: miles_between(lat, lon, t.lat, t.lon))
    return best.name


def shown(text: str, limit: int = 40) -> str:
    """Return typed text safe to quote back: printable characters only, cut short."""
    kept = "".join(ch for ch in text if ch.isprintable())
    return kept if len(kept) <= limit else kept[: limit - 3] + "..."


def _postcodes(raw: str) -> list[str]:
    """Return the areas and districts typed, checked against the offline postcode data."""
    codes = [c.upper() for c in SPLIT.split(raw) if c]
    for code in codes:
        if not PREFIX.match(code):
            raise fv.FieldProblem("postcodes", f"{shown(code, 12)!r} is not a postcode area "
                                  "(like ST) or district (like ST3)")
        area = offline.area_of(code) if not code.isalpha() else code
        if area in UNSHIPPED_AREAS:
            continue
        if area not in offline.known_areas():
            raise fv.FieldProblem("postcodes", f"{code} is not a UK postcode area or district")
        if not code.isalpha() and offline.lookup_outward(code) is None:
            raise fv.FieldProblem("postcodes", f"{code} is not a postcode district we know")
    return list(dict.fromkeys(codes))


def _centre(raw: str) -> tuple[tuple[float, float], str] | None:
    """Return the centre typed (a postcode, a town or "lat, lon") and where it landed."""
    if not raw:
        return None
    try:
        place = resolve_place(raw)
    except PlaceNotFound as exc:
        hint = f": did you mean {' or '.join(exc.suggestions)}?" if exc.suggestions else ""
        raise fv.FieldProblem("centre", f"Cannot find {shown(raw)!r} as a postcode, town or "
                              f"latitude and longitude{hint}") from None
    landed = place.label if place.precision != "latlon" else near_town(place.lat, place.lon)
    return (place.lat, place.lon), landed


def _miles(raw: str) -> float | None:
    """Return the radius typed in miles, or None if empty."""
    if not raw:
        return None
    try:
        miles = float(raw.removesuffix("miles").removesuffix("mi").strip())
    except ValueError:
        raise fv.FieldProblem("miles", "Radius must be a number of miles, like 10") from None
    if not math.isfinite(miles) or not 0 < miles <= MAX_MILES:
        raise fv.FieldProblem("miles", f"Radius must be more than 0 and at most "
                              f"{MAX_MILES:g} miles")
    return miles


def read_definition(form: FormData) -> Definition:
    """Return the region typed into the form, or raise FieldProblems (in page order)."""
    problems: dict[str, str] = {}
    codes: list[str] = []
    centre = miles = None
    try:
        codes = _postcodes(fv.text(form, "postcodes", 2000))
    except fv.FieldProblem as exc:
        problems[exc.field] = exc.message
    try:
        centre = _centre(fv.text(form, "centre", 250))
    except fv.FieldProblem as exc:
        problems[exc.field] = exc.message
    try:
        miles = _miles(fv.text(form, "miles", 20))
    except fv.FieldProblem as exc:
        problems[exc.field] = exc.message
    if not problems:
        if centre is None and miles is not None:
            problems["centre"] = "Enter a centre for the radius, or leave the radius empty"
        elif centre is not None and miles is None:
            problems["miles"] = "Enter the radius in miles around the centre"
        elif not codes and centre is None:
            problems["postcodes"] = ("Enter postcode areas or districts, or a centre and "
                                     "radius")
    if problems:
        raise fv.FieldProblems(problems)
    return Definition(codes, centre[0] if centre else None, centre[1] if centre else None,
                      miles)


async def _name(session: AsyncSession, form: FormData) -> str:
    """Return the new region's name, or raise FieldProblem."""
    raw = form.get("name")
    try:
        name = check_name(raw if isinstance(raw, str) else "")
    except RegionError as exc:
        message = str(exc)
        raise fv.FieldProblem("name", message[0].upper() + message[1:]) from None
    if await get_region(session, name) is not None:
        raise fv.FieldProblem("name", f"There is already a region called {name[:MAX_NAME]}")
    return name


async def region_rows(session: AsyncSession, staff: StaffUser) -> list[RegionRow]:
    """Return every region with its counts of active participants and running meetings."""
    regions = await list_regions(session)
    people = await active_counts(session, regions)
    meetings = [m for m in await meetings_for_staff(session, staff)
                if m.status == MeetingStatus.ACTIVE]
    return [RegionRow(r, near_town(r.centre_lat, r.centre_lon)
                      if r.centre_lat is not None and r.centre_lon is not None else None,
                      people.get(r.id or 0, 0), sum(meeting_in_region(m, r) for m in meetings))
            for r in regions]


async def _list_page(request: Request, session: AsyncSession, staff: StaffUser, *,
                     errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                     status_code: int = 200) -> HTMLResponse:
    return render(request, "staff/regions/list.html", {
        "rows": await region_rows(session, staff), "town_only": await town_only_count(session),
        "errors": errors or {}, "values": values or {}, "max_miles": MAX_MILES},
        status_code=status_code)


def _landed(d: Definition) -> str:
    if d.centre is None or d.miles is None:
        return ""
    lat, lon = d.centre
    return (f" Its centre landed at {d.landed} ({lat:.5f}, {lon:.5f}); it reaches {d.miles:g} "
            "miles around it.")


@router.get("/regions", response_class=HTMLResponse)
async def show_regions(request: Request, staff: AdminStaff,
                       session: SessionDep) -> HTMLResponse:
    """List the regions, with the form to add one."""
    return await _list_page(request, session, staff)


@router.post("/regions", response_class=HTMLResponse)
async def add_region(request: Request, staff: AdminStaff, session: SessionDep,
                     now: NowDep) -> Response:
    """Add a region by postcode areas or districts, or by a centre and radius."""
    form = await request.form()
    problems: dict[str, str] = {}
    name = ""
    try:
        name = await _name(session, form)
    except fv.FieldProblem as exc:
        problems[exc.field] = exc.message
    try:
        d = read_definition(form)
    except fv.FieldProblems as exc:
        problems.update(exc.problems)
    if problems:
        return await _list_page(request, session, staff, errors=problems,
                                values=fv.typed(form), status_code=400)
    region = await create_region(session, name=name, now=now, postcodes=d.postcodes,
                                 centre=d.centre, miles=d.miles)
    await record_staff_action(session, staff_id=staff.id or 0, action="region_add", now=now,
                              detail={"region": region.name})
    set_notice(request, f"Added region {region.name}.{_landed(d)}")
    return RedirectResponse(PATH, status_code=303)


async def _region(session: AsyncSession, region_id: int) -> Region:
    region = await region_by_id(session, region_id)
    if region is None:
        raise HTTPException(404)
    return region


def _edit_values(region: Region) -> dict[str, str]:
    centre = ("" if region.centre_lat is None or region.centre_lon is None
              else f"{region.centre_lat:.5f}, {region.centre_lon:.5f}")
    miles = "" if region.radius_miles is None else f"{region.radius_miles:g}"
    return {"postcodes": ", ".join(region.postcodes or []), "centre": centre, "miles": miles}


def _edit_page(request: Request, region: Region, *, errors: dict[str, str] | None = None,
               values: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    return render(request, "staff/regions/edit.html", {
        "region": region, "errors": errors or {}, "values": values or _edit_values(region),
        "max_miles": MAX_MILES},
        status_code=status_code)


@router.get("/regions/{region_id}/edit", response_class=HTMLResponse)
async def edit_region(request: Request, region_id: int, staff: AdminStaff,
                      session: SessionDep) -> HTMLResponse:
    """Show the form to change a region's postcodes, centre and radius."""
    return _edit_page(request, await _region(session, region_id))


@router.post("/regions/{region_id}/edit", response_class=HTMLResponse)
async def change_region(request: Request, region_id: int, staff: AdminStaff,
                        session: SessionDep, now: NowDep) -> Response:
    """Replace a region's definition (an empty centre and radius removes them)."""
    region = await _region(session, region_id)
    form = await request.form()
    try:
        d = read_definition(form)
    except fv.FieldProblems as exc:
        return _edit_page(request, region, errors=exc.problems, values=fv.typed(form),
                          status_code=400)
    await update_region(session, name=region.name, now=now, postcodes=d.postcodes,
                        centre=d.centre, miles=d.miles, drop_centre=d.centre is None)
    await record_staff_action(session, staff_id=staff.id or 0, action="region_change",
                              now=now, detail={"region": region.name})
    set_notice(request, f"Changed region {region.name}.{_landed(d)}")
    return RedirectResponse(PATH, status_code=303)


@router.get("/regions/{region_id}/delete", response_class=HTMLResponse)
async def confirm_delete(request: Request, region_id: int, staff: AdminStaff,
                         session: SessionDep) -> HTMLResponse:
    """Ask before deleting a region, or say whose account still names it."""
    region = await _region(session, region_id)
    return render(request, "staff/regions/delete.html", {
        "region": region, "coordinators": await coordinators_of(session, region.name)})


@router.post("/regions/{region_id}/delete", response_class=HTMLResponse)
async def remove_region(request: Request, region_id: int, staff: AdminStaff,
                        session: SessionDep, now: NowDep) -> Response:
    """Delete a region no coordinator's account names."""
    region = await _region(session, region_id)
    name = region.name
    try:
        await delete_region(session, name=name)
    except RegionError:
        return render(request, "staff/regions/delete.html", {
            "region": region, "coordinators": await coordinators_of(session, name)},
            status_code=409)
    await record_staff_action(session, staff_id=staff.id or 0, action="region_delete",
                              now=now, detail={"region": name})
    set_notice(request, f"Deleted region {name}.")
    return RedirectResponse(PATH, status_code=303)
