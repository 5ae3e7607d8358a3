"""The `meetings` sub-app through typer's CliRunner, on the test database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from icalendar import Calendar
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from bot.cli_meetings import app
from meeting_finder.demo import load_demo_meetings
from storage.db import session_factory
from tests.meeting_finder.conftest import NOW, feeds_dir

runner = CliRunner()
FIELDS = {"name", "slug", "distance_miles", "next_start", "attendance", "address", "postcode",
          "directions_url"}


@pytest.fixture
async def demo_db(engine: AsyncEngine, db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Load the demo meetings and point the CLI's settings at the test database."""
    async with session_factory(engine)() as session:
        await load_demo_meetings(session, now=NOW)
    monkeypatch.setenv("DATABASE_URL", db_url)
    return db_url


def near_json(*args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["near", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("at", "offset"),
    [("2026-03-28T12:00:00+00:00", "+01:00"), ("2026-03-21T12:00:00+00:00", "+00:00"),
     ("2026-10-24T12:00:00+00:00", "+00:00"), ("2026-10-17T12:00:00+00:00", "+01:00")],
)
def test_near_json_across_clock_changes(demo_db: str, at: str, offset: str) -> None:
    # The Monday after a clock change is in the new offset; the Monday before in the old.
    rows = near_json("ST3 2QH", "--limit", "5", "--at", at, "--day", "monday")
    assert rows and all(FIELDS <= set(row) for row in rows)
    assert rows[0]["slug"] == "demo-longton-mon"
    assert all(str(row["next_start"]).endswith(offset) for row in rows)
    assert str(rows[0]["next_start"])[11:19] == "19:00:00"


def test_near_json_sorted_open_active_only(demo_db: str) -> None:
    rows = near_json("ST3 2QH", "--limit", "10", "--at", "2026-03-30T12:00:00+01:00")
    in_person = [r for r in rows if r["distance_miles"] is not None]
    assert len(in_person) == 10
    miles = [float(r["distance_miles"]) for r in in_person]  # type: ignore[arg-type]
    assert miles == sorted(miles)
    slugs = " ".join(str(r["slug"]) for r in rows)
    for never in ("clinic", "prison", "fenton", "meir"):
        assert never not in slugs
    assert rows[0]["next_start"] == "2026-03-30T19:00:00+01:00"


def test_near_online_and_table(demo_db: str) -> None:
    rows = near_json("Stoke", "--online", "--at", "2026-03-28T12:00:00+00:00")
    assert rows and all(r["attendance"] in ("online", "hybrid") for r in rows)
    result = runner.invoke(app, ["near", "st32qh", "--at", "2026-03-28T12:00:00+00:00"])
    assert result.exit_code == 0
    assert "ST3 2QH is not in our list" in result.stdout
    assert "SMART Recovery Longton" in result.stdout


def test_near_unknown_place_is_one_line_exit_1(demo_db: str) -> None:
    result = runner.invoke(app, ["near", "Xyzzyville"])
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Xyzzyville" in result.stderr or "place" in result.stderr


def test_bad_settings_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://nope")
    result = runner.invoke(app, ["near", "ST3"])
    assert result.exit_code == 2
    assert "DATABASE_URL" in result.stderr


def test_import_then_export(demo_db: str, tmp_path: Path) -> None:
    feed = feeds_dir() / "spec_kansas_city_data_sample.json"
    result = runner.invoke(app, ["import", str(feed), "--source", "kc", "--timezone",
                                 "America/Chicago"])
    assert result.exit_code == 0, result.output
    assert "45 rows: 45 added, 0 updated, 0 unchanged, 0 skipped" in result.stdout
    out = tmp_path / "feed.json"
    result = runner.invoke(app, ["export", "--format", "meeting-guide", "--output", str(out)])
    assert result.exit_code == 0, result.output
    exported = json.loads(out.read_text(encoding="utf-8"))
    assert len(exported) == 45 and all(r["timezone"] == "America/Chicago" for r in exported)
    result = runner.invoke(app, ["export", "--format", "ics", "--meeting", "demo-longton-mon"])
    assert result.exit_code == 0, result.output
    [event] = Calendar.from_ical(result.stdout_bytes).walk("VEVENT")
    assert event["DTSTART"].params["TZID"] == "Europe/London"
    missing = runner.invoke(app, ["export", "--format", "ics", "--meeting", "nope"])
    assert missing.exit_code == 1


def test_import_unreadable_file(demo_db: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    result = runner.invoke(app, ["import", str(bad)])
    assert result.exit_code == 1
    assert "cannot import" in result.stderr
