"""Times: a feed without zones needs one said; an unknown zone is kept, never invented."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from typer.testing import CliRunner

from bot.cli_meetings import app
from meeting_finder.errors import ExportError
from meeting_finder.feeds.ics import meeting_to_ics
from meeting_finder.feeds.importer import import_meeting_guide
from meeting_finder.feeds.meeting_guide_export import export_meeting_guide
from meeting_finder.search import find_nearest
from storage.db import make_engine, session_factory
from storage.models.meetings import Meeting
from tests.meeting_finder import mg_reader
from tests.meeting_finder.conftest import NOW, feeds_dir

EDA = "tsml_ui_eda_international.json"
MARIN = "tsml_ui_aasfmarin_timezone_field.json"
LONDON_READINGS = "London Daily Readings - 2am Eastern - Online"
runner = CliRunner()


def feed_rows(name: str) -> list[dict[str, Any]]:
    return json.loads((feeds_dir() / name).read_text(encoding="utf-8"))


async def stored(session: AsyncSession, source: str) -> list[Meeting]:
    return list(await session.exec(select(Meeting).where(Meeting.source == source)))


async def test_zoneless_feed_is_stored_with_unknown_zone(session: AsyncSession) -> None:
    rows = feed_rows(EDA)
    assert not any("timezone" in row for row in rows)
    await import_meeting_guide(session, rows, now=NOW, source_name="eda")
    session.expunge_all()
    meetings = await stored(session, "eda")
    assert len(meetings) == len(rows) and {m.timezone for m in meetings} == {None}
    async with session.bind.connect() as conn:  # type: ignore[union-attr]
        zones = (await conn.execute(text("SELECT DISTINCT timezone FROM meeting"))).all()
    assert zones == [(None,)]  # not the column's old default, Europe/London
    exported = export_meeting_guide(meetings)
    assert not any("timezone" in row for row in exported)
    reading = mg_reader.read_feed(exported)  # a reader with no site zone of its own
    assert reading.meetings == {} and {why for _, why in reading.dropped} == {"no timezone"}


async def test_unknown_zone_is_never_offered_at_a_made_up_time(session: AsyncSession) -> None:
    rows = feed_rows(EDA)
    await import_meeting_guide(session, rows, now=NOW, source_name="eda")
    found = await find_nearest(session, lat=51.5, lon=-0.12, now=NOW, limit=50,
                               online_only=True)
    assert found.hits == []
    readings = [m for m in await stored(session, "eda") if m.name == LONDON_READINGS]
    with pytest.raises(ExportError, match="time zone"):
        meeting_to_ics(readings[0], now=NOW)
    await import_meeting_guide(session, rows, now=NOW, source_name="eda",
                               default_tz="America/New_York")
    found = await find_nearest(session, lat=51.5, lon=-0.12, now=NOW, limit=50,
                               online_only=True)
    hits = [h for h in found.hits if h.meeting.name == LONDON_READINGS]
    assert hits and all(h.meeting.timezone == "America/New_York" for h in hits)
    assert hits[0].meeting.start_time == time(2, 0)
    assert hits[0].next_start is not None
    # 2am Eastern (UTC-4 by late March) is 06:00 UTC, not 2am in London.
    assert hits[0].next_start.astimezone(UTC).hour == 6


@pytest.fixture
def cli_db(engine: AsyncEngine, db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the CLI's settings at the test database."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    return db_url


def zones_in(db_url: str) -> list[str | None]:
    """Return every stored meeting's zone (the CLI runs its own event loop, so this does too)."""

    async def read() -> list[str | None]:
        engine = make_engine(db_url)
        try:
            async with session_factory(engine)() as session:
                return [m.timezone for m in await session.exec(select(Meeting))]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_cli_refuses_zoneless_feed_without_timezone(cli_db: str) -> None:
    result = runner.invoke(app, ["import", str(feeds_dir() / EDA), "--source", "eda"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--timezone" in lines[0] and "185 of 185 rows" in lines[0]
    assert "Traceback" not in result.output
    assert zones_in(cli_db) == []
    help_text = runner.invoke(app, ["import", "--help"]).stdout
    assert "refused" in help_text and "--timezone" in help_text


def test_cli_imports_with_timezone_and_preview_saves_nothing(cli_db: str) -> None:
    path = str(feeds_dir() / EDA)
    preview = runner.invoke(app, ["import", path, "--timezone", "America/New_York",
                                  "--preview"])
    assert preview.exit_code == 0, preview.output
    assert preview.stdout.startswith("preview, nothing saved: 185 rows: 185 added")
    assert zones_in(cli_db) == []
    result = runner.invoke(app, ["import", path, "--timezone", "America/New_York"])
    assert result.exit_code == 0, result.output
    assert "185 rows had no timezone and were read as America/New_York" in result.stdout
    assert set(zones_in(cli_db)) == {"America/New_York"}


def test_cli_rejects_a_made_up_zone(cli_db: str) -> None:
    result = runner.invoke(app, ["import", str(feeds_dir() / EDA), "--timezone", "Eastern"])
    assert result.exit_code == 2
    assert "IANA" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_feed_with_its_own_zones_needs_no_option(cli_db: str) -> None:
    result = runner.invoke(app, ["import", str(feeds_dir() / MARIN)])
    assert result.exit_code == 0, result.output
    assert set(zones_in(cli_db)) == {"America/Los_Angeles"}


def test_cli_csv_without_zone_column_is_refused(cli_db: str, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("slug,name,day,time\nc1,Longton SMART,Monday,19:00\n", encoding="utf-8")
    refused = runner.invoke(app, ["import", str(sheet), "--format", "csv"])
    assert refused.exit_code == 2 and "--timezone" in refused.stderr
    done = runner.invoke(app, ["import", str(sheet), "--format", "csv",
                               "--timezone", "Europe/London"])
    assert done.exit_code == 0, done.output
    assert zones_in(cli_db) == ["Europe/London"]
