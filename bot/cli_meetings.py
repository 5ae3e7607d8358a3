"""`throughcare meetings ...`: import and export meeting feeds, and find meetings near a place."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.config import ConfigError, Settings, load_settings
from bot.runtime import open_engine, prepare_database
from meeting_finder.errors import ExportError, FeedError, PlaceNotFound
from meeting_finder.feeds.csv_feed import CSV_PHONE_REGION, read_csv_rows
from meeting_finder.feeds.ics import meeting_to_ics
from meeting_finder.feeds.importer import ImportSummary, fetch_source, import_rows
from meeting_finder.feeds.meeting_guide import rows_without_zone
from meeting_finder.feeds.meeting_guide_export import export_meeting_guide
from meeting_finder.geocode import resolve_place
from meeting_finder.search import MeetingHit, find_nearest
from storage.audit_q import record_cli_action
from storage.db import session_factory
from storage.models.meetings import Access, Meeting

app = typer.Typer(help="Meetings: import and export feeds, find meetings near a place.")
IMPORT_HELP = (
    "Import a meeting feed: add new meetings, update changed ones, cancel vanished ones.\n\n"
    "Times are read in each row's `timezone`. A feed with rows that have none is refused "
    "unless --timezone says which zone they are in; no zone is ever assumed."
)
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class ImportFormat(StrEnum):
    MEETING_GUIDE = "meeting-guide"
    CSV = "csv"


class ExportFormat(StrEnum):
    MEETING_GUIDE = "meeting-guide"
    ICS = "ics"


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None


async def _engine(settings: Settings) -> AsyncEngine:
    engine = open_engine(settings)
    await prepare_database(engine)
    return engine


def _zone_option(timezone: str | None) -> str | None:
    """Check --timezone names a real IANA zone; exit 2 if not."""
    if timezone is None:
        return None
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(f"--timezone must be an IANA zone like America/New_York: {timezone!r}",
                    2) from None
    return timezone


def _load_rows(path_or_url: str, format: ImportFormat) -> list[Any]:
    """Read a feed's rows; exit 1 with one line if it cannot be read."""
    try:
        if format == ImportFormat.CSV:
            return asyncio.run(read_csv_rows(path_or_url))
        return asyncio.run(fetch_source(path_or_url))
    except FeedError as exc:
        raise _fail(f"cannot import: {exc}", 1) from None


@app.command("import", help=IMPORT_HELP)
def import_feed(
    path_or_url: Annotated[str, typer.Argument(help="feed file or http(s) URL")],
    format: Annotated[ImportFormat, typer.Option(help="feed format")] = ImportFormat.MEETING_GUIDE,
    source: Annotated[str | None, typer.Option(help="source name (default: PATH_OR_URL)")] = None,
    timezone: Annotated[str | None, typer.Option(
        help="IANA zone of rows without a `timezone`, e.g. America/New_York; needed if any")
    ] = None,
    preview: Annotated[bool, typer.Option(help="show what would change; save nothing")] = False,
) -> None:
    """Import a meeting feed; refuse rows without a zone unless --timezone gives one."""
    settings = _settings()
    zone = _zone_option(timezone)
    source_name = source or path_or_url
    rows = _load_rows(path_or_url, format)
    zoneless = rows_without_zone(rows)
    if zoneless and zone is None:
        raise _fail(
            f"cannot import: {zoneless} of {len(rows)} rows have no timezone; say which zone "
            "their times are in with --timezone ZONE (e.g. --timezone America/New_York)", 2)
    console = Console(stderr=True)

    async def run() -> ImportSummary:
        engine = await _engine(settings)
        try:
            async with session_factory(engine)() as session:
                with Progress(
                    TextColumn("importing"), BarColumn(), MofNCompleteColumn(),
                    console=console, transient=True,
                ) as bar:
                    task = bar.add_task("rows", total=None)

                    def step(done: int, total: int) -> None:
                        bar.update(task, completed=done, total=total)

                    now = datetime.now(UTC)
                    summary = await import_rows(
                        session, rows, now=now, source_name=source_name,
                        default_tz=zone, progress=step, preview=preview,
                        phone_region=CSV_PHONE_REGION if format == ImportFormat.CSV else None,
                    )
                if not preview:
                    await record_cli_action(session, action="feed_import", now=now,
                                            detail={"format": str(format), **summary.counts()})
                    await session.commit()
                return summary
        finally:
            await engine.dispose()

    summary = asyncio.run(run())
    _print_summary(summary, zoneless=zoneless, zone=zone, preview=preview)


def _print_summary(summary: ImportSummary, *, zoneless: int, zone: str | None,
                   preview: bool) -> None:
    typer.echo(
        f"{'preview, nothing saved: ' if preview else ''}"
        f"{summary.total_rows} rows: {summary.added} added, {summary.updated} updated, "
        f"{summary.unchanged} unchanged, {len(summary.skipped)} skipped; "
        f"{summary.cancelled} cancelled (no longer in the feed)"
    )
    if zoneless:
        typer.echo(f"  {zoneless} rows had no timezone and were read as {zone}")
    if preview:
        # Meeting by meeting, as the staff Feeds page shows it (skipped rows included).
        for line in summary.diff_lines():
            typer.echo(line)
        return
    for label, reason in summary.skipped:
        typer.echo(f"  skipped {label}: {reason}")


@app.command("export")
def export_feed(
    format: Annotated[ExportFormat, typer.Option(help="format")] = ExportFormat.MEETING_GUIDE,
    meeting: Annotated[str | None, typer.Option(help="slug of one meeting (ics needs it)")] = None,
    output: Annotated[Path | None, typer.Option(help="file to write (default: stdout)")] = None,
    include_demo: Annotated[bool, typer.Option(help="include fictional demo meetings")] = False,
) -> None:
    """Export open meetings as a Meeting Guide feed, or one meeting as an iCalendar file."""
    settings = _settings()
    if format == ExportFormat.ICS and not meeting:
        raise _fail("ics export needs --meeting SLUG", 1)

    async def run() -> list[Meeting]:
        engine = await _engine(settings)
        try:
            async with session_factory(engine)() as session:
                stmt = select(Meeting)
                if meeting:
                    stmt = stmt.where(Meeting.slug == meeting)
                else:
                    stmt = stmt.where(Meeting.access == Access.OPEN.value)
                    if not include_demo:
                        stmt = stmt.where(Meeting.demo == False)  # noqa: E712
                found = list(await session.exec(stmt))
                await record_cli_action(session, action="meetings_export", now=datetime.now(UTC),
                                        detail={"format": str(format), "meetings": len(found)})
                await session.commit()
                return found
        finally:
            await engine.dispose()

    meetings = asyncio.run(run())
    if meeting and not meetings:
        raise _fail(f"no meeting with slug {meeting!r}", 1)
    if format == ExportFormat.ICS:
        try:
            data = meeting_to_ics(meetings[0], now=datetime.now(UTC))
        except ExportError as exc:
            raise _fail(str(exc), 1) from None
    else:
        feed = export_meeting_guide(meetings)
        data = (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        typer.echo(f"wrote {output}", err=True)


def _hit_json(hit: MeetingHit, tz: ZoneInfo) -> dict[str, Any]:
    m = hit.meeting
    start = hit.next_start.astimezone(tz) if hit.next_start else None
    return {
        "name": m.name,
        "slug": m.slug,
        "distance_miles": round(hit.distance_miles, 2) if hit.distance_miles is not None else None,
        "next_start": start.isoformat() if start else None,  # in the service zone
        "weekday": DAYS[m.weekday],
        "attendance": str(getattr(m.attendance, "value", m.attendance)),
        "venue": m.venue,
        "address": m.address,
        "postcode": m.postcode,
        "directions_url": hit.directions_url,
        "conference_url": m.conference_url,
        "conference_phone": m.conference_phone,
        "contact": m.contact,
        "demo": m.demo,
    }


def _parse_at(at: str | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        raise _fail(f"--at must be ISO 8601, like 2026-03-30T18:00:00+01:00: {at!r}", 1) from None
    if when.tzinfo is None:
        raise _fail("--at needs a UTC offset, like 2026-03-30T18:00:00+01:00", 1)
    return when


@app.command("near")
def near(
    query: Annotated[str, typer.Argument(help="postcode, town, or LAT,LON")],
    limit: Annotated[int, typer.Option(min=1, max=50, help="how many meetings")] = 3,
    online: Annotated[bool, typer.Option(help="online meetings only")] = False,
    day: Annotated[str | None, typer.Option(help="today, tomorrow or monday..sunday")] = None,
    at: Annotated[str | None, typer.Option(help="pretend it is this time (ISO 8601)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Find the nearest open meetings to a postcode, town or LAT,LON."""
    settings = _settings()
    now = _parse_at(at)
    weekday: int | None = None
    day_filter: str | None = None
    if day is not None:
        word = day.strip().lower()
        if word in ("today", "tomorrow"):
            day_filter = word
        elif word in DAYS:
            weekday = DAYS.index(word)
        else:
            raise _fail("--day must be today, tomorrow or a day name like monday", 1)
    try:
        place = resolve_place(query)
    except PlaceNotFound as exc:
        raise _fail(f"Unknown place: {exc}", 1) from None

    async def run() -> tuple[list[MeetingHit], list[MeetingHit]]:
        engine = await _engine(settings)
        try:
            async with session_factory(engine)() as session:
                result = await find_nearest(
                    session, lat=place.lat, lon=place.lon, now=now, limit=limit,
                    weekday=weekday, day_filter=day_filter, online_only=online, tz=settings.tz,
                )
                return result.hits, result.online
        finally:
            await engine.dispose()

    hits, extra = asyncio.run(run())
    if as_json:
        rows = [_hit_json(h, settings.tz) for h in hits + extra]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if place.note:
        typer.echo(place.note)
    if not hits and not extra:
        typer.echo(f"No meetings found near {place.label}.")
        return
    table = Table(title=f"Meetings near {place.label}")
    for column in ("miles", "when", "meeting", "where / how to join"):
        table.add_column(column)
    for hit in hits + extra:
        m = hit.meeting
        miles = f"{hit.distance_miles:.1f}" if hit.distance_miles is not None else "online"
        start = hit.next_start.astimezone(settings.tz) if hit.next_start else None
        when = start.strftime("%a %d %b %H:%M") if start else "time not set"
        where = ", ".join(p for p in (m.venue, m.address, m.postcode) if p) or (
            m.conference_url or m.conference_phone or ""
        )
        table.add_row(miles, when, m.name, where)
    Console(width=120).print(table)
    typer.echo("First time? Check with the contact before you go; times can change.")
