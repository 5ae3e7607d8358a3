"""`throughcare audit --participant ID` (and `--staff ID`, `--json`): the trail, oldest first;
and the command line's own reads and changes are on it as `cli`."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta

from sqlmodel import col, select
from typer.testing import CliRunner, Result

from bot.cli import _register_subapps, app
from storage.audit_q import record_staff_action
from storage.db import make_engine, session_scope
from storage.models import AuditEvent
from storage.outbox import enqueue
from storage.participants import enrol

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def _seed(db_url: str, staff_id: int = 5) -> int:
    """Enrol one person (as the CLI would) and have a staff member read them twice."""

    async def go() -> int:
        engine = make_engine(db_url)
        try:
            async with session_scope(engine) as session:
                p, _code = await enrol(session, prison_name="HMP Test", display_name="Sam",
                                       release_date=date(2026, 12, 10),
                                       release_postcode="ST3 2QH", now=NOW)
                assert p.id is not None
                await enqueue(session, channel="sms", address="+447700900777", now=NOW,
                              body="Hello", dedupe_key=f"t:{p.id}", participant_id=p.id)
                for minutes, page in ((30, "/staff/participants"), (5, "/staff/reports")):
                    await record_staff_action(
                        session, staff_id=staff_id, action="participant_read", participant_id=p.id,
                        now=NOW + timedelta(minutes=minutes), detail={"page": page})
                return p.id
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _events(db_url: str) -> list[AuditEvent]:
    async def go() -> list[AuditEvent]:
        engine = make_engine(db_url)
        try:
            async with session_scope(engine) as session:
                return list((await session.exec(
                    select(AuditEvent).order_by(col(AuditEvent.id)))).all())
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _run(db_url: str, *args: str) -> Result:
    _register_subapps()
    return CliRunner().invoke(app, list(args), env={"DATABASE_URL": db_url})


def test_a_participants_trail_prints_oldest_first_one_line_each(db_url: str) -> None:
    pid = _seed(db_url)
    result = _run(db_url, "audit", "--participant", str(pid))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["2026-11-26T12:00:00Z", "cli", "enrol"],
        ["2026-11-26T12:05:00Z", "staff:5", "participant_read"],
        ["2026-11-26T12:30:00Z", "staff:5", "participant_read"],
    ]
    assert lines[1].endswith('page="/staff/reports"')
    assert "Sam" not in result.stdout
    # Looking was a read of their record: the next look shows it.
    assert _events(db_url)[-1].action == "audit_read"
    again = json.loads(_run(db_url, "audit", "--participant", str(pid), "--json").stdout)
    assert [(e["actor"], e["action"]) for e in again][-1] == ("cli", "audit_read")
    assert again[1] == {"id": again[1]["id"], "at": "2026-11-26T12:05:00Z", "actor": "staff:5",
                        "action": "participant_read", "participant_id": pid,
                        "detail": {"page": "/staff/reports"}}


def test_an_unknown_id_is_one_line_and_exit_1(db_url: str) -> None:
    result = _run(db_url, "audit", "--participant", "999")
    assert result.exit_code == 1
    assert result.stderr.strip() == "no participant 999" and result.stdout == ""
    assert "Traceback" not in result.output
    both = _run(db_url, "audit", "--participant", "1", "--staff", "1")
    assert both.exit_code == 2 and "one of --participant ID or --staff ID" in both.stderr


def test_cli_commands_write_their_audit_rows_and_a_staff_trail_reads_as_json(
        db_url: str) -> None:
    added = _run(db_url, "staff", "add", "--email", "ann@example.org", "--role", "admin",
                 "--json")
    assert added.exit_code == 0, added.output
    pid = _seed(db_url, staff_id=1)
    outbox = _run(db_url, "outbox", "--participant", str(pid), "--json")
    assert outbox.exit_code == 0, outbox.output
    exported = _run(db_url, "meetings", "export")
    assert exported.exit_code == 0, exported.output
    rows = [(e.actor, e.action, e.participant_id, e.detail) for e in _events(db_url)
            if e.actor == "cli"]
    assert ("cli", "staff_added", None, {"staff_id": 1, "role": "admin"}) in rows
    assert ("cli", "participant_read", pid, {"command": "outbox"}) in rows
    assert ("cli", "meetings_export", None, {"format": "meeting-guide", "meetings": 0}) in rows
    assert "ann@example.org" not in str(rows)

    result = _run(db_url, "audit", "--staff", "1", "--json")
    assert result.exit_code == 0, result.output
    assert [(e["at"], e["action"], e["participant_id"]) for e in json.loads(result.stdout)] == [
        ("2026-11-26T12:05:00Z", "participant_read", pid),
        ("2026-11-26T12:30:00Z", "participant_read", pid)]
    unknown = _run(db_url, "audit", "--staff", "5")
    assert unknown.exit_code == 1 and unknown.stderr.strip() == "no staff member 5"
