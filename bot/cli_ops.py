"""Operations commands: `throughcare broadcast`, `outbox` and `move-release` (see cli.py)."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer

from bot.aftercare import PlanError, move_release
from bot.cli import fail, parse_when, settings_or_exit
from bot.runtime import open_engine, prepare_database
from scheduler.broadcast import (
    Audience,
    AudienceError,
    delivery_report,
    queue_broadcast,
    send_broadcast,
)
from storage.audit_q import record_cli_action, record_cli_reads
from storage.db import session_scope
from storage.models import OutboxStatus
from storage.scheduling import list_outbox


def broadcast_cmd(
    text: Annotated[str | None, typer.Option(help="What to send (plain text, short).")] = None,
    meeting: Annotated[str | None, typer.Option(help="Subscribers of this meeting slug.")] = None,
    near: Annotated[str | None, typer.Option(help="People near a meeting slug or place.")] = None,
    miles: Annotated[float, typer.Option(help="Radius for --near.")] = 5.0,
    region: Annotated[str | None, typer.Option(help="People in this region.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Show the audience count only.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before sending.")] = False,
    report: Annotated[int | None, typer.Option(help="Show the delivery report of a "
                                               "broadcast id instead.")] = None,
) -> None:
    """Send a message to a meeting's subscribers, people near a place, or a region."""
    if report is None and not (text and text.strip()):
        fail("--text is needed: what to send", 2)
    if report is None and len(text or "") > 640:
        fail("--text is too long: keep it under 640 characters (4 SMS)", 2)
    settings = settings_or_exit()
    body = " ".join((text or "").split())
    audience = Audience(meeting_slug=meeting, near=near, miles=miles, region=region)

    async def go() -> dict[str, Any]:
        engine = open_engine(settings)
        try:
            await prepare_database(engine)
            if report is not None:
                return await delivery_report(engine, report)
            now = datetime.now(UTC)
            counted = await send_broadcast(engine, audience=audience, text=body,
                                           created_by="cli", now=now, dry_run=True)
            typer.echo(f"Audience: {counted['audience_count']} people.")
            if dry_run or counted["audience_count"] == 0:
                return counted
            # Ask only a person at a terminal; scripts and cron send after the count.
            if not yes and sys.stdin.isatty() and not typer.confirm("Send now?"):
                return {"cancelled": True}
            async with session_scope(engine) as session:  # queued and audited together
                sent = await queue_broadcast(session, audience=audience, text=body,
                                             created_by="cli", now=now)
                await record_cli_action(session, action="broadcast_sent", now=now, detail={
                    "broadcast_id": sent["broadcast_id"], "audience": audience.describe(),
                    "people": sent["audience_count"]})
            return sent
        finally:
            await engine.dispose()

    try:
        out = asyncio.run(go())
    except AudienceError as exc:
        fail(str(exc), 2)
    typer.echo(json.dumps(out, indent=2))


def outbox_cmd(
    participant: Annotated[int | None, typer.Option(help="Only this participant id.")] = None,
    status: Annotated[str | None, typer.Option(help="queued, sending, sent, delivered, "
                                               "failed, expired or cancelled.")] = None,
    limit: Annotated[int, typer.Option(help="How many rows, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show outbox rows (bodies are not shown; they may hold personal details)."""
    if status is not None and status not in {s.value for s in OutboxStatus}:
        fail(f"--status must be one of {', '.join(s.value for s in OutboxStatus)}", 2)
    settings = settings_or_exit()

    async def go() -> list[dict[str, Any]]:
        engine = open_engine(settings)
        try:
            await prepare_database(engine)
            async with session_scope(engine) as session:
                found = await list_outbox(session, participant_id=participant, status=status,
                                          limit=max(1, min(limit, 1000)))
                await record_cli_reads(session, now=datetime.now(UTC), detail={
                    "command": "outbox"}, participant_ids=[r.participant_id for r in found])
            return [{"id": r.id, "participant_id": r.participant_id, "channel": r.channel,
                     "kind": str(r.kind), "status": str(r.status), "priority": r.priority,
                     "due_at": r.due_at.isoformat(), "attempts": r.attempts,
                     "error": r.error, "dedupe_key": r.dedupe_key} for r in found]
        finally:
            await engine.dispose()

    found = asyncio.run(go())
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    if not found:
        typer.echo("No messages.")
    for r in found:
        typer.echo(f"#{r['id']:<6} {r['status']:<9} {r['kind']:<9} {r['channel']:<8} "
                   f"due {r['due_at'][:16]}  tries {r['attempts']}  {r['error'] or ''}")


def move_release_cmd(
    participant: Annotated[int, typer.Option(help="Participant id.")],
    release_date: Annotated[str, typer.Option(help="New release date, YYYY-MM-DD.")],
    now: Annotated[str | None, typer.Option(help="Plan as of this ISO 8601 time "
                                            "(for tests and simulation).")] = None,
) -> None:
    """Move a participant's release date; the release sequence moves with it at once."""
    try:
        new_date = date.fromisoformat(release_date.strip())
    except ValueError:
        fail(f"--release-date {release_date[:40]!r} is not a date like 2026-11-20", 2)
        raise
    moment = parse_when(now)
    settings = settings_or_exit()

    async def go() -> dict[str, Any]:
        engine = open_engine(settings)
        try:
            await prepare_database(engine)
            moved = await move_release(engine, participant_id=participant,
                                       release_date=new_date, now=moment)
            return {"participant_id": participant, "release_date": new_date.isoformat(),
                    "sequence": asdict(moved.sequence)}
        finally:
            await engine.dispose()

    try:
        out = asyncio.run(go())
    except PlanError as exc:
        fail(exc.message if exc.field == "participant" else f"--{exc.field.replace('_', '-')} "
             f"{exc.message}", 1 if exc.field == "participant" else 2)
    typer.echo(json.dumps(out, indent=2))
