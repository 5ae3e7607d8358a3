"""`throughcare audit`: read the append-only audit trail of one participant or staff member.

    throughcare audit --participant 12         # everything done to or by participant 12
    throughcare audit --staff 3 --json         # everything staff member 3 did, as JSON

One event a line, oldest first: the time in UTC, who (`staff:3`, `cli`, `system`,
`participant:12`, `address:<keyed hash>`), the action, and its details (ids and counts,
never names, bodies or numbers). Reading a participant's trail is itself audited.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from bot.cli import fail, settings_or_exit
from bot.config import Settings
from bot.runtime import open_engine, prepare_database
from storage.audit_q import events_by_staff, events_for, record_cli_action
from storage.db import session_scope
from storage.models import AuditEvent


def event_json(event: AuditEvent) -> dict[str, Any]:
    """Return one audit row as plain JSON (time in UTC, ISO 8601)."""
    return {"id": event.id, "at": utc_iso(event.at), "actor": event.actor,
            "action": event.action, "participant_id": event.participant_id,
            "detail": event.detail or {}}


def utc_iso(moment: datetime) -> str:
    """Return a moment as `2026-11-26T12:00:00Z`."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def event_line(event: AuditEvent) -> str:
    """Return one audit row as a line: time, actor, action, participant, details."""
    detail = " ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}"
                      for k, v in sorted((event.detail or {}).items()))
    who = f"participant {event.participant_id}" if event.participant_id is not None else "-"
    return f"{utc_iso(event.at)}  {event.actor:<16} {event.action:<26} {who:<16} {detail}"\
        .rstrip()


async def _read(settings: Settings, *, participant: int | None, staff: int | None,
                now: datetime) -> list[AuditEvent] | None:
    engine = open_engine(settings)
    try:
        await prepare_database(engine)
        async with session_scope(engine) as session:
            if participant is not None:
                found = await events_for(session, participant)
                if found is not None:  # looking is a read of their record: note it
                    await record_cli_action(session, action="audit_read", now=now,
                                            participant_id=participant)
                return found
            assert staff is not None
            return await events_by_staff(session, staff)
    finally:
        await engine.dispose()


def audit_cmd(
    participant: Annotated[int | None, typer.Option(
        help="Participant id: what was done to or by them.")] = None,
    staff: Annotated[int | None, typer.Option(help="Staff id: everything they did.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON list.")] = False,
) -> None:
    """Show the audit trail of a participant or a staff member, oldest first."""
    if (participant is None) == (staff is None):
        fail("give one of --participant ID or --staff ID", 2)
    settings = settings_or_exit()
    events = asyncio.run(_read(settings, participant=participant, staff=staff,
                               now=datetime.now(UTC)))
    if events is None:
        fail(f"no participant {participant}" if participant is not None
             else f"no staff member {staff}")
        return
    if as_json:
        typer.echo(json.dumps([event_json(e) for e in events], ensure_ascii=False))
        return
    if not events:
        typer.echo("No audit events.")
    for event in events:
        typer.echo(event_line(event))
