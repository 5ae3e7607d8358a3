"""The audit trail: who did what to whose data, and when (append-only).

Staff pages write as `staff:<id>`, the command line as `cli`, the service as `system`,
a participant as `participant:<id>`, an unlinked sender as `address:<keyed hash>`. Details
hold ids, counts and page names, never message bodies, names or phone numbers.

The table only grows: database triggers (install_append_only, installed by migration 0010
and by storage.db.create_all) refuse every UPDATE and DELETE of its rows, on SQLite and
PostgreSQL alike, so neither a bug nor an erasure can rewrite what was recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.dialect import is_postgres
from storage.models import AuditEvent, Participant, StaffUser

CLI_ACTOR = "cli"  # the `throughcare` command line: whoever runs it on the server
APPEND_ONLY = "auditevent is append-only"  # the error the triggers raise
_TRIGGERS = ("auditevent_no_update", "auditevent_no_delete")
_SQLITE_TRIGGER = ("CREATE TRIGGER IF NOT EXISTS {name} BEFORE {op} ON auditevent "
                   f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END")
_PG_FUNCTION = ("CREATE OR REPLACE FUNCTION auditevent_append_only() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN "
                f"RAISE EXCEPTION '{APPEND_ONLY}: % refused', TG_OP "
                "USING ERRCODE = 'restrict_violation'; END $$")
_PG_TRIGGER = ("CREATE TRIGGER {name} BEFORE {op} ON auditevent "
               "FOR EACH ROW EXECUTE FUNCTION auditevent_append_only()")


def install_append_only(conn: Connection) -> None:
    """Add the triggers that refuse UPDATE and DELETE of audit rows (safe to run twice)."""
    postgres = is_postgres(conn)
    if postgres:
        conn.execute(text(_PG_FUNCTION))
    for name, op in zip(_TRIGGERS, ("UPDATE", "DELETE"), strict=True):
        if postgres:
            conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON auditevent"))
            conn.execute(text(_PG_TRIGGER.format(name=name, op=op)))
        else:
            conn.execute(text(_SQLITE_TRIGGER.format(name=name, op=op)))


def remove_append_only(conn: Connection) -> None:
    """Drop those triggers again (a migration downgrade)."""
    postgres = is_postgres(conn)
    for name in _TRIGGERS:
        conn.execute(text(f"DROP TRIGGER IF EXISTS {name}" + (" ON auditevent" if postgres
                                                              else "")))
    if postgres:
        conn.execute(text("DROP FUNCTION IF EXISTS auditevent_append_only()"))


def staff_actor(staff_id: int) -> str:
    """Return the audit actor for a staff member, e.g. `staff:3`."""
    return f"staff:{staff_id}"


async def record_action(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    now: datetime,
    participant_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one audit row (never message bodies, names or phone numbers in `detail`)."""
    event = AuditEvent(at=now, actor=actor[:100], action=action[:60],
                       participant_id=participant_id, detail=detail)
    session.add(event)
    await session.flush()
    return event


async def record_staff_action(
    session: AsyncSession,
    *,
    staff_id: int,
    action: str,
    now: datetime,
    participant_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one audit row for a staff action (never message bodies or phone numbers)."""
    return await record_action(session, actor=staff_actor(staff_id), action=action, now=now,
                               participant_id=participant_id, detail=detail)


async def record_cli_action(
    session: AsyncSession,
    *,
    action: str,
    now: datetime,
    participant_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one audit row for a command-line action (actor `cli`)."""
    return await record_action(session, actor=CLI_ACTOR, action=action, now=now,
                               participant_id=participant_id, detail=detail)


async def record_cli_reads(
    session: AsyncSession,
    *,
    participant_ids: Iterable[int | None],
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> int:
    """Write a `participant_read` row (actor `cli`) for each participant a command showed."""
    ids = sorted({pid for pid in participant_ids if pid is not None})
    session.add_all([AuditEvent(at=now, actor=CLI_ACTOR, action="participant_read",
                                participant_id=pid, detail=detail) for pid in ids])
    await session.flush()
    return len(ids)


async def record_staff_reads(
    session: AsyncSession,
    *,
    staff_id: int,
    participant_ids: Iterable[int],
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> int:
    """Write a `participant_read` row for each participant a list or download showed."""
    events = [AuditEvent(at=now, actor=staff_actor(staff_id), action="participant_read",
                         participant_id=pid, detail=detail) for pid in participant_ids]
    session.add_all(events)
    await session.flush()
    return len(events)


async def staff_actions_for(session: AsyncSession, participant_id: int) -> list[AuditEvent]:
    """Return the staff actions on one participant's data, oldest first."""
    rows = await session.exec(
        select(AuditEvent)
        .where(col(AuditEvent.participant_id) == participant_id)
        .where(col(AuditEvent.actor).startswith("staff:"))
        .order_by(col(AuditEvent.at), col(AuditEvent.id)))
    return list(rows.all())


async def staff_actions_by(session: AsyncSession, staff_id: int) -> list[AuditEvent]:
    """Return everything one staff member did, oldest first."""
    rows = await session.exec(
        select(AuditEvent)
        .where(col(AuditEvent.actor) == staff_actor(staff_id))
        .order_by(col(AuditEvent.at), col(AuditEvent.id)))
    return list(rows.all())


async def events_for(session: AsyncSession, participant_id: int) -> list[AuditEvent] | None:
    """Return every audit row about a participant, oldest first; None if no such person."""
    if await session.get(Participant, participant_id) is None:
        return None
    rows = await session.exec(
        select(AuditEvent)
        .where(col(AuditEvent.participant_id) == participant_id)
        .order_by(col(AuditEvent.at), col(AuditEvent.id)))
    return list(rows.all())


async def events_by_staff(session: AsyncSession, staff_id: int) -> list[AuditEvent] | None:
    """Return everything one staff member did, oldest first; None if no such account."""
    if await session.get(StaffUser, staff_id) is None:
        return None
    return await staff_actions_by(session, staff_id)
