"""Region commands: `throughcare regions add`, `list`, `update` and `delete` (see cli.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cli import fail, settings_or_exit
from bot.runtime import open_engine, prepare_database
from storage.db import session_scope
from storage.errors import RegionError
from storage.models import Region
from storage.regions_q import create_region, delete_region, list_regions, update_region

T = TypeVar("T")
app = typer.Typer(help="Regions by geography, for broadcasts and coordinators' reports.",
                  no_args_is_help=True)


def region_data(region: Region) -> dict[str, Any]:
    """Return a region as plain data."""
    centre = (None if region.centre_lat is None or region.centre_lon is None
              else [region.centre_lat, region.centre_lon])
    return {"name": region.name, "postcodes": region.postcodes or [], "centre": centre,
            "miles": region.radius_miles}


def describe(data: dict[str, Any]) -> str:
    """Return one line saying what a region covers."""
    parts = []
    if data["postcodes"]:
        parts.append("postcodes " + ", ".join(data["postcodes"]))
    if data["centre"]:
        lat, lon = data["centre"]
        parts.append(f"within {data['miles']:g} miles of {lat:g},{lon:g}")
    return f"{data['name']}: {' or '.join(parts)}"


def parse_centre(raw: str) -> tuple[float, float]:
    """Parse "LAT,LON", or exit 2 with one line."""
    try:
        lat, lon = (float(x) for x in raw.split(","))
    except ValueError:
        fail(f"--centre {raw[:40]!r} is not LAT,LON like 53.0,-2.18", 2)
        raise
    return lat, lon


def in_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed session on the configured database; RegionError exits 2."""
    settings = settings_or_exit()

    async def go() -> T:
        engine = open_engine(settings)
        try:
            await prepare_database(engine)
            async with session_scope(engine) as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except RegionError as exc:
        fail(str(exc), 2)
        raise


def split_postcodes(raw: str) -> list[str]:
    """Split "ST, WS CW" into its areas and districts (commas separate; so do spaces)."""
    return [code for part in raw.split(",") for code in part.split()]


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The region's name, e.g. Stoke-on-Trent.")],
    postcodes: Annotated[str | None, typer.Option(help='Postcode areas or districts, '
                                                  'e.g. "ST,WS,CW" or "ST3,ST4".')] = None,
    centre: Annotated[str | None, typer.Option(help='Centre as "LAT,LON".')] = None,
    miles: Annotated[float | None, typer.Option(help="Radius around --centre.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Define a region by postcode areas or districts, or by a centre and radius."""
    if postcodes is None and centre is None:
        fail("give --postcodes \"ST,WS\" or --centre LAT,LON --miles N", 2)
    point = parse_centre(centre) if centre is not None else None

    async def work(session: AsyncSession) -> dict[str, Any]:
        region = await create_region(
            session, name=name, now=datetime.now(UTC), centre=point, miles=miles,
            postcodes=split_postcodes(postcodes or ""))
        return region_data(region)

    out = in_session(work)
    typer.echo(json.dumps(out) if as_json else f"Added region {describe(out)}.")


@app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show every region and what it covers."""

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        return [region_data(r) for r in await list_regions(session)]

    found = in_session(work)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    if not found:
        typer.echo("No regions yet. Add one with `throughcare regions add`.")
    for data in found:
        typer.echo(describe(data))


@app.command("update")
def update(
    name: Annotated[str, typer.Argument(help="The region to change (any case).")],
    postcodes: Annotated[str | None, typer.Option(help='Replace its postcode areas or '
                                                  'districts, e.g. "ST,WS"; "" removes them.'
                                                  )] = None,
    centre: Annotated[str | None, typer.Option(help='A new centre as "LAT,LON".')] = None,
    miles: Annotated[float | None, typer.Option(help="A new radius in miles.")] = None,
    no_centre: Annotated[bool, typer.Option("--no-centre",
                                            help="Remove the centre and radius.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Change a region's postcodes, centre or radius; what is not given stays as it was."""
    if postcodes is None and centre is None and miles is None and not no_centre:
        fail('give --postcodes "ST,WS", --centre LAT,LON --miles N, --miles N or --no-centre', 2)
    point = parse_centre(centre) if centre is not None else None

    async def work(session: AsyncSession) -> dict[str, Any]:
        region = await update_region(
            session, name=name, now=datetime.now(UTC), centre=point, miles=miles,
            drop_centre=no_centre,
            postcodes=None if postcodes is None else split_postcodes(postcodes))
        return region_data(region)

    out = in_session(work)
    typer.echo(json.dumps(out) if as_json else f"Changed region {describe(out)}.")


@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="The region to delete (any case).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Delete a region, unless a coordinator's account names it."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        return region_data(await delete_region(session, name=name))

    out = in_session(work)
    typer.echo(json.dumps({"deleted": out}) if as_json else f"Deleted region {out['name']}.")
