"""Coordinator commands end to end: broadcast (dry run, send, report), worker --once, outbox."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from meeting_finder.demo import load_demo_meetings
from storage.db import session_scope
from storage.models import Meeting, OutboundMessage, Participant, ParticipantStatus
from storage.participants import enrol, link_identity
from storage.subscriptions import subscribe
from tests.core.test_cli import run_cli

NOW = datetime.now(UTC).replace(microsecond=0)


async def _people(engine: AsyncEngine) -> str:
    """Two active subscribers and one who sent STOP, all to one demo meeting; return its slug."""
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=NOW)
        meeting = (await session.exec(select(Meeting).where(Meeting.access == "open")
                                      .where(Meeting.status == "active"))).first()
        assert meeting is not None and meeting.id is not None
        for n, status in enumerate(("active", "active", "stopped")):
            p, _code = await enrol(session, prison_name="HMP Test", display_name=f"P{n}",
                                   release_date=date(2026, 11, 1), release_postcode="ST3 2",
                                   now=NOW)
            p.status = ParticipantStatus(status)
            p.consent_at = NOW
            session.add(p)
            await link_identity(session, participant=p, channel="sms",
                                address=f"+44770090010{n}", now=NOW)
            await subscribe(session, participant_id=p.id or 0, meeting_id=meeting.id, now=NOW)
        return meeting.slug


async def test_broadcast_dry_run_send_worker_report_and_outbox(
    engine: AsyncEngine, db_url: str
) -> None:
    slug = await _people(engine)
    text = "Room change: tonight's meeting is in Room 2."

    dry = run_cli(db_url, "broadcast", "--meeting", slug, "--text", text, "--dry-run",
                  stdin="")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0] == "Audience: 2 people."
    async with session_scope(engine) as session:
        assert (await session.exec(select(OutboundMessage))).all() == []

    sent = run_cli(db_url, "broadcast", "--meeting", slug, "--text", text, stdin="")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("Audience: 2 people.")
    out = json.loads(sent.stdout.split("\n", 1)[1])
    assert out["queued"] == 2
    async with session_scope(engine) as session:
        rows = (await session.exec(select(OutboundMessage))).all()
        stopped = (await session.exec(select(Participant).where(
            Participant.status == "stopped"))).one()
    assert sorted(r.address for r in rows) == ["+447700900100", "+447700900101"]
    assert all(r.kind == "broadcast" and r.body == text for r in rows)
    assert all(r.participant_id != stopped.id for r in rows)

    # Noon tomorrow, outside quiet hours: the worker sends through the local log sender.
    noon = (NOW + timedelta(days=1)).replace(hour=12, minute=0, second=0)
    worker = run_cli(db_url, "worker", "--once", "--now", noon.isoformat())
    assert worker.returncode == 0, worker.stderr

    report = run_cli(db_url, "broadcast", "--report", str(out["broadcast_id"]))
    assert report.returncode == 0, report.stderr
    by_status = json.loads(report.stdout)["by_status"]
    assert by_status["delivered"] + by_status["sent"] == 2 and by_status["failed"] == 0

    listing = run_cli(db_url, "outbox", "--json", "--status", "delivered")
    assert listing.returncode == 0, listing.stderr
    shown = json.loads(listing.stdout)
    assert {r["kind"] for r in shown} == {"broadcast"} and len(shown) == 2
    assert text not in listing.stdout and "+4477" not in listing.stdout


def test_broadcast_refuses_bad_input(db_url: str) -> None:
    for args, needle in (
        (["--meeting", "x", "--text", "   "], "--text"),
        (["--meeting", "x", "--text", "y" * 2000], "too long"),
        (["--meeting", "no-such-meeting", "--text", "hi"], "meeting"),
        (["--text", "hi"], ""),
    ):
        result = run_cli(db_url, "broadcast", *args, stdin="")
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert needle in result.stderr and "Traceback" not in result.stderr


def test_outbox_refuses_unknown_status(db_url: str) -> None:
    result = run_cli(db_url, "outbox", "--status", "lost")
    assert result.returncode == 2 and "--status" in result.stderr
