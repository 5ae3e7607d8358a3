"""Region commands: `throughcare regions add` and `regions list` (see cli.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from bot.cli import fail, settings_or_exit
from bot.runtime import open_engine, prepare_database
from storage.db import session_scope
from storage.errors import RegionError
from storage.models import Region
from storage.regions_q import create_region, list_regions

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
    settings = settings_or_exit()

    async def go() -> dict[str, Any]:
        engine = open_engine(settings)
        try:
            await prepare_database(engine)
            async with session_scope(engine) as session:
                region = await create_region(
                    session, name=name, now=datetime.now(UTC), centre=point, miles=miles,
                    postcodes=(postcodes or "").split(","))
                return region_data(region)
        finally:
            await engine.dispose()

    try:
        out = asyncio.run(go())
    except RegionError as exc:
        fail(str(exc), 2)
    typer.echo(json.dumps(out) if as_json else f"Added region {describe(out)}.")


@app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show every region and what it covers."""
    settings = settings_or_exit()

    async def go() -> list[dict[str, Any]]:
        engine = open_engine(settings)
        try:
            await prepare_database(engine)
            async with session_scope(engine) as session:
                return [region_data(r) for r in await list_regions(session)]
        finally:
            await engine.dispose()

    found = asyncio.run(go())
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    if not found:
        typer.echo("No regions yet. Add one with `throughcare regions add`.")
    for data in found:
        typer.echo(describe(data))
