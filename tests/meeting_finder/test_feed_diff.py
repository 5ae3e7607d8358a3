"""What an import would change, meeting by meeting: the importer's diff and the CLI preview."""

from __future__ import annotations

import asyncio
import json
from datetime import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from typer.testing import CliRunner

from bot.cli_meetings import app
from meeting_finder.feeds.diff import NONE_SHOWN, Change, MeetingLine, diff_lines, show
from meeting_finder.feeds.importer import import_rows
from storage.db import make_engine, session_factory
from storage.models.meetings import Meeting
from tests.meeting_finder.conftest import NOW, make_meeting


def row(slug: str, name: str, **extra: Any) -> dict[str, Any]:
    """Return a Meeting Guide row: Monday (day 1) 19:00 in London, unless told."""
    return {"slug": slug, "name": name, "day": 1, "time": "19:00",
            "timezone": "Europe/London", "address": "1 High Street, Stoke-on-Trent ST1 1AA",
            **extra}


FIRST = [row("a", "Group A"), row("b", "Group B", day=3), row("c", "Group C")]
SECOND = [row("a", "Group A", time="19:30", notes="Upstairs"), row("c", "Group C"),
          row("d", "Group D", day=[2, 4]), {"slug": "e", "day": 1}, "not an object"]


async def meetings(session: AsyncSession) -> dict[str, Meeting]:
    return {m.slug: m for m in await session.exec(select(Meeting))}


async def test_preview_lists_each_meeting_and_saves_nothing(session: AsyncSession) -> None:
    await import_rows(session, FIRST, now=NOW, source_name="stoke")
    summary = await import_rows(session, SECOND, now=NOW, source_name="stoke", preview=True)

    assert [(m.slug, m.name, m.when) for m in summary.added_meetings] == [
        ("d-tue", "Group D", "Tuesday 19:00 (Europe/London)"),
        ("d-thu", "Group D", "Thursday 19:00 (Europe/London)")]
    [updated] = summary.updated_meetings
    assert (updated.slug, updated.when) == ("a", "Monday 19:30 (Europe/London)")
    assert updated.changes == (Change("Start time", "19:00", "19:30"),
                               Change("Notes", NONE_SHOWN, "Upstairs"))
    assert [(m.slug, m.name) for m in summary.cancelled_meetings] == [("b", "Group B")]
    assert summary.skipped == [("e", "no name"), ("row 5", "not a JSON object")]
    assert (summary.added, summary.updated, summary.unchanged, summary.cancelled) == (1, 1, 1, 1)
    assert summary.counts() == {"total_rows": 5, "added": 1, "updated": 1, "unchanged": 1,
                                "skipped": 2, "cancelled": 1}

    stored = await meetings(session)
    assert set(stored) == {"a", "b", "c"} and stored["a"].start_time == time(19, 0)
    assert stored["b"].status == "active" and stored["b"].status_changed_at is None


async def test_applying_notes_status_changes_and_lists_the_same(session: AsyncSession) -> None:
    await import_rows(session, FIRST, now=NOW, source_name="stoke")
    preview = await import_rows(session, SECOND, now=NOW, source_name="stoke", preview=True)
    applied = await import_rows(session, SECOND, now=NOW, source_name="stoke")
    assert applied.diff_lines() == preview.diff_lines()
    stored = await meetings(session)
    assert stored["b"].status == "cancelled" and stored["b"].status_changed_at == NOW
    back = await import_rows(session, FIRST, now=NOW, source_name="stoke", preview=True)
    changed = {m.slug: m.changes for m in back.updated_meetings}
    assert Change("Status", "cancelled", "active") in changed["b"]


async def test_a_slug_another_source_uses_is_shown_as_stored(session: AsyncSession) -> None:
    session.add(make_meeting(slug="a", source="other"))
    await session.commit()
    summary = await import_rows(session, [row("a", "Group A")], now=NOW, source_name="Stoke",
                                preview=True)
    assert [m.slug for m in summary.added_meetings] == ["a--stoke"]


def test_diff_lines_are_plain_text_by_section() -> None:
    lines = diff_lines(
        added=[MeetingLine("d", "Group D", "Tuesday 19:00 (Europe/London)")],
        updated=[MeetingLine("a", "Group A", "Monday 19:30 (Europe/London)",
                             (Change("Start time", "19:00", "19:30"),))],
        cancelled=[], skipped=[("e", "no name")])
    assert lines == ["Added (1):", "  Group D [d], Tuesday 19:00 (Europe/London)",
                     "Updated (1):", "  Group A [a], Monday 19:30 (Europe/London)",
                     "    Start time: 19:00 -> 19:30", "Skipped (1):", "  e: no name"]


@pytest.mark.parametrize(("field", "value", "shown"), [
    ("weekday", 6, "Sunday"), ("start_time", time(7, 5), "07:05"), ("notes", None, NONE_SHOWN),
    ("types", ["SMART", "O"], "SMART, O"), ("types", [], NONE_SHOWN),
    ("approximate", True, "yes"), ("lat", 52.9856140, "52.985614"),
    ("notes", "a\n  b", "a b"), ("notes", "x" * 500, "x" * 117 + "..."),
])
def test_values_are_shown_as_people_read_them(field: str, value: Any, shown: str) -> None:
    assert show(field, value) == shown


def test_cli_preview_prints_the_diff_and_saves_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps(FIRST))
    second.write_text(json.dumps(SECOND))
    runner = CliRunner()
    done = runner.invoke(app, ["import", str(first), "--source", "stoke"])
    assert done.exit_code == 0, done.output
    shown = runner.invoke(app, ["import", str(second), "--source", "stoke", "--preview",
                                "--timezone", "Europe/London"])
    assert shown.exit_code == 0, shown.output
    out = shown.stdout.splitlines()
    assert out[0].startswith("preview, nothing saved: 5 rows: 1 added, 1 updated")
    for line in ("Added (2):", "  Group D [d-tue], Tuesday 19:00 (Europe/London)",
                 "Updated (1):", "    Start time: 19:00 -> 19:30",
                 "Cancelled (1):", "  Group B [b], Wednesday 19:00 (Europe/London)",
                 "Skipped (2):", "  e: no name"):
        assert line in out

    async def count() -> int:
        engine = make_engine(db_url)
        try:
            async with session_factory(engine)() as session:
                return len(await meetings(session))
        finally:
            await engine.dispose()

    assert asyncio.run(count()) == 3
