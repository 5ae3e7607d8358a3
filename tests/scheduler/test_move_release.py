"""Moving a release date cancels steps the new plan does not want; the move-release command."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from scheduler.planning import plan
from storage.db import session_scope
from storage.models import AuditEvent, MessageKind, OutboxStatus, Participant
from tests.core.test_cli import run_cli
from tests.scheduler.conftest import add_person, rows

NOW = datetime(2025, 6, 5, 12, tzinfo=UTC)


async def _move(engine: AsyncEngine, pid: int, day: date) -> None:
    async with session_scope(engine) as session:
        p = await session.get(Participant, pid)
        assert p is not None
        p.release_date = day
        session.add(p)


async def _queued_steps(engine: AsyncEngine) -> dict[str, datetime]:
    return {r.dedupe_key.rsplit(":", 1)[1]: r.due_at for r in await rows(engine)
            if r.kind == MessageKind.SEQUENCE and r.status == OutboxStatus.QUEUED}


async def test_release_moved_beyond_the_planning_window_cancels_the_old_sequence(
    engine: AsyncEngine,
) -> None:
    pid = await add_person(engine, release=date(2025, 6, 10))
    await plan(engine, now=NOW)
    assert len(await _queued_steps(engine)) == 6
    await _move(engine, pid, date(2025, 8, 1))  # release postponed by seven weeks
    stats = await plan(engine, now=NOW)
    assert await _queued_steps(engine) == {}
    assert stats.cancelled == 6
    # When the new date comes into the window, the sequence is planned afresh.
    later = datetime(2025, 7, 28, 12, tzinfo=UTC)
    await plan(engine, now=later)
    steps = await _queued_steps(engine)
    assert steps["welcome"] == datetime(2025, 8, 1, 9, tzinfo=UTC)
    assert len(steps) == 6


async def test_release_moved_earlier_cancels_steps_now_past_and_moves_the_rest(
    engine: AsyncEngine,
) -> None:
    pid = await add_person(engine, release=date(2025, 6, 10))
    await plan(engine, now=NOW)
    await _move(engine, pid, date(2025, 5, 20))  # they were out already
    await plan(engine, now=NOW)
    # Welcome and check-ins on days 1 to 14 are past; only day 28 (17 June) is left.
    assert await _queued_steps(engine) == {"checkin28": datetime(2025, 6, 17, 9, tzinfo=UTC)}
    cancelled = [r for r in await rows(engine) if r.status == OutboxStatus.CANCELLED]
    assert len(cancelled) == 5 and {r.error for r in cancelled} == {"release date moved"}


async def test_move_release_command_updates_the_date_and_replans_at_once(
    engine: AsyncEngine, db_url: str
) -> None:
    pid = await add_person(engine, release=date(2025, 6, 10))
    other = await add_person(engine, name="Ali", phone="+447700900002",
                             release=date(2025, 6, 10))
    await plan(engine, now=NOW)

    out = run_cli(db_url, "move-release", "--participant", str(pid),
                  "--release-date", "2025-06-12", "--now", NOW.isoformat())

    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["release_date"] == "2025-06-12" and report["sequence"]["moved"] == 6
    mine = {r.dedupe_key.rsplit(":", 1)[1]: r.due_at for r in await rows(engine)
            if r.participant_id == pid and r.status == OutboxStatus.QUEUED}
    assert mine["welcome"] == datetime(2025, 6, 12, 9, tzinfo=UTC)
    theirs = {r.due_at for r in await rows(engine)
              if r.participant_id == other and r.dedupe_key.endswith(":welcome")}
    assert theirs == {datetime(2025, 6, 10, 9, tzinfo=UTC)}  # nobody else moved
    async with session_scope(engine) as session:
        p = await session.get(Participant, pid)
        assert p is not None and p.release_date == date(2025, 6, 12)
        audit = (await session.exec(select(AuditEvent).where(
            AuditEvent.action == "release_date_moved"))).one()
        assert audit.participant_id == pid and audit.detail == {
            "from": "2025-06-10", "to": "2025-06-12"}


def test_move_release_command_refuses_bad_input_in_one_line(db_url: str) -> None:
    bad_date = run_cli(db_url, "move-release", "--participant", "1",
                       "--release-date", "12/06/2025")
    assert bad_date.returncode == 2
    assert bad_date.stderr.strip().splitlines() == [
        "--release-date '12/06/2025' is not a date like 2026-11-20"]
    nobody = run_cli(db_url, "move-release", "--participant", "999",
                     "--release-date", "2025-06-12")
    assert nobody.returncode == 1
    assert "no participant 999" in nobody.stderr and "Traceback" not in nobody.stderr
