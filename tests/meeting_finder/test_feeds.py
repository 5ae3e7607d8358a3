"""Feeds: the five real Meeting Guide files, re-import, CSV, exports and ICS."""

from __future__ import annotations

import json
from datetime import time, timedelta

import httpx
import pytest
from icalendar import Calendar
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from meeting_finder.errors import ExportError, FeedError
from meeting_finder.feeds.csv_feed import import_csv
from meeting_finder.feeds.ics import meeting_to_ics
from meeting_finder.feeds.importer import import_meeting_guide
from meeting_finder.feeds.meeting_guide import parse_row
from meeting_finder.feeds.meeting_guide_export import export_meeting_guide
from meeting_finder.feeds.types import SMART_TYPES
from storage.models.meetings import Meeting
from tests.meeting_finder.conftest import NOW, feeds_dir, make_meeting

FEED_FILES = [
    "spec_kansas_city_data_sample.json",
    "tsml_ui_aasfmarin_timezone_field.json",
    "tsml_ui_alanon_ma_attendance.json",
    "tsml_ui_eda_international.json",
    "tsml_ui_timezones_test.json",
]


async def all_meetings(session: AsyncSession) -> dict[str, Meeting]:
    return {m.slug: m for m in await session.exec(select(Meeting))}


@pytest.mark.parametrize("name", FEED_FILES)
async def test_real_feeds_import_and_counts_add_up(session: AsyncSession, name: str) -> None:
    path = feeds_dir() / name
    rows = json.loads(path.read_text(encoding="utf-8"))
    seen: list[tuple[int, int]] = []
    summary = await import_meeting_guide(
        session, str(path), now=NOW, source_name=name, default_tz="America/New_York",
        progress=lambda done, total: seen.append((done, total)),
    )
    assert summary.total_rows == len(rows)
    assert summary.added + summary.updated + summary.unchanged + len(summary.skipped) == len(rows)
    assert summary.added > 0 and summary.cancelled == 0
    assert seen[-1] == (len(rows), len(rows))
    again = await import_meeting_guide(
        session, str(path), now=NOW, source_name=name, default_tz="America/New_York"
    )
    assert again.unchanged == summary.added and again.added == again.updated == 0


async def test_feed_fields_are_mapped(session: AsyncSession) -> None:
    folder = feeds_dir()
    for name in ("tsml_ui_alanon_ma_attendance.json", "tsml_ui_timezones_test.json",
                 "spec_kansas_city_data_sample.json", "tsml_ui_aasfmarin_timezone_field.json"):
        await import_meeting_guide(session, str(folder / name), now=NOW, source_name=name)
    meetings = await all_meetings(session)
    rows = json.loads((folder / "tsml_ui_alanon_ma_attendance.json").read_text(encoding="utf-8"))
    statuses = {m.status for m in meetings.values() if m.source.startswith("tsml_ui_alanon")}
    assert {"active", "suspended"} <= statuses  # inactive -> suspended
    attendances = {m.attendance for m in meetings.values()}
    assert {"in_person", "online", "hybrid"} <= attendances
    first = rows[0]
    m = meetings[first["slug"]]
    assert m.weekday == (first["day"] - 1) % 7
    assert m.start_time == time.fromisoformat(first["time"])
    assert "AC" in {t for x in meetings.values() for t in (x.types or [])}  # unknown types kept
    zones = {m.slug: m.timezone for m in meetings.values()}
    assert zones["sf-meeting"] == "America/Los_Angeles"
    assert meetings["8"].name == "Tweed Group"  # integer slug
    marin = [m for m in meetings.values() if m.source.startswith("tsml_ui_aasfmarin")]
    assert all(m.timezone == "America/Los_Angeles" for m in marin)
    assert sum(m.lat is not None for m in marin) >= 100


async def test_reimport_updates_and_cancels_vanished(session: AsyncSession) -> None:
    rows = [
        {"slug": "a", "name": "A", "day": 1, "time": "19:00", "formatted_address": "1 High St"},
        {"slug": 7, "name": "B", "day": [1, 3], "time": "10:00"},
        {"slug": "c", "name": "C", "day": 2, "time": "18:00"},
    ]
    first = await import_meeting_guide(session, rows, now=NOW, source_name="feed")
    assert (first.added, first.total_rows) == (3, 3)
    assert set(await all_meetings(session)) == {"a", "7-mon", "7-wed", "c"}
    rows[0] = {**rows[0], "time": "19:30"}
    later = NOW + timedelta(days=1)
    second = await import_meeting_guide(session, rows[:2], now=later, source_name="feed")
    assert (second.added, second.updated, second.unchanged, second.cancelled) == (0, 1, 1, 1)
    meetings = await all_meetings(session)
    assert meetings["a"].start_time == time(19, 30) and meetings["a"].updated == later
    assert meetings["c"].status == "cancelled"
    rows[1] = {**rows[1], "day": [1]}
    third = await import_meeting_guide(session, rows, now=later, source_name="feed")
    assert third.cancelled == 1  # 7-wed is gone
    assert (await all_meetings(session))["c"].status == "active"  # came back


async def test_bad_rows_are_reported_not_fatal(session: AsyncSession) -> None:
    rows = [
        {"slug": "ok", "name": "Fine", "day": 0, "time": "09:00"},
        {"slug": "no-day", "name": "By appointment"},
        {"slug": "bad-time", "name": "X", "day": 1, "time": "25:99"},
        {"slug": "bad-zone", "name": "X", "day": 1, "timezone": "Mars/Olympus"},
        {"slug": "bad-day", "name": "X", "day": 9},
        {"name": "no slug", "day": 1},
        "not an object",
        {"slug": "ok", "name": "Duplicate", "day": 2},
        {"slug": "no-time", "name": "Time to be confirmed", "day": 3},
    ]
    summary = await import_meeting_guide(session, rows, now=NOW, source_name="bad")
    assert (summary.added, summary.total_rows) == (2, len(rows))
    reasons = dict(summary.skipped)
    assert len(summary.skipped) == 7
    assert "day" in reasons["no-day"] and "time" in reasons["bad-time"]
    assert "zone" in reasons["bad-zone"]
    assert (await all_meetings(session))["no-time"].start_time is None


async def test_slug_used_by_another_source_is_kept_apart(session: AsyncSession) -> None:
    row = {"slug": 8, "name": "One", "day": 1, "time": "19:00"}
    await import_meeting_guide(session, [row], now=NOW, source_name="first feed")
    summary = await import_meeting_guide(session, [row], now=NOW, source_name="second feed")
    assert summary.added == 1
    assert set(await all_meetings(session)) == {"8", "8--second-feed"}
    again = await import_meeting_guide(session, [row], now=NOW, source_name="second feed")
    assert again.unchanged == 1 and again.cancelled == 0


def test_parse_row_approximate_location_is_never_somewhere_to_go() -> None:
    row = {"slug": "x", "name": "X", "day": 1, "formatted_address": "London, UK",
           "approximate": "yes", "latitude": 51.5, "longitude": -0.12,
           "attendance_option": "in_person"}
    [fields] = parse_row(row, default_tz="Europe/London")
    assert (fields["address"], fields["approximate"]) == ("London, UK", True)
    assert fields["status"] == "suspended"  # in person at "London, UK" cannot be attended


def test_parse_row_places_uk_postcode_offline() -> None:
    row = {"slug": "x", "name": "X", "day": 1, "address": "1 Example St", "city": "Longton",
           "postal_code": "st32qa", "country": "UK"}
    [fields] = parse_row(row, default_tz="Europe/London")
    assert fields["postcode"] == "ST3 2QA"
    assert fields["lat"] == pytest.approx(52.98, abs=0.02)


async def test_import_from_url_uses_httpx(session: AsyncSession) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        if request.url.path == "/missing.json":
            return httpx.Response(404)
        return httpx.Response(200, json=[{"slug": "u", "name": "U", "day": 1, "time": "19:00"}])

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        summary = await import_meeting_guide(
            session, "https://feeds.example.org/meetings.json", now=NOW,
            source_name="url", client=client,
        )
        assert summary.added == 1
        with pytest.raises(FeedError, match="404"):
            await import_meeting_guide(
                session, "https://feeds.example.org/missing.json", now=NOW,
                source_name="url", client=client,
            )
    assert calls == ["https://feeds.example.org/meetings.json",
                     "https://feeds.example.org/missing.json"]


async def test_unreadable_feeds_raise_feed_error(session: AsyncSession, tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(FeedError):
        await import_meeting_guide(session, b"{not json", now=NOW, source_name="x")
    with pytest.raises(FeedError):
        await import_meeting_guide(session, b'{"a": 1}', now=NOW, source_name="x")
    with pytest.raises(FeedError):
        await import_meeting_guide(session, str(tmp_path / "nope.json"), now=NOW, source_name="x")


async def test_csv_import(session: AsyncSession) -> None:
    data = (
        b"slug,name,day,time,end_time,address,city,postal_code,types,attendance_option\n"
        b"c1,Longton SMART,Monday,19:00,20:30,1 Example St,Longton,ST3 2QA,SMART;O,in_person\n"
        b"c2,Twice weekly,Tue;Thu,10:00,,2 Example St,Longton,ST3 2QA,SMART,\n"
        b"c3,Family,Sunday,11:00,,,,,SMART-FF,online\n"
        b"c4,Broken,Funday,11:00,,,,,,\n"
    )
    summary = await import_csv(session, data, now=NOW, source_name="sheet")
    assert (summary.added, len(summary.skipped), summary.total_rows) == (3, 1, 4)
    meetings = await all_meetings(session)
    assert set(meetings) == {"c1", "c2-tue", "c2-thu", "c3"}
    assert meetings["c1"].weekday == 0 and meetings["c1"].lat is not None
    assert meetings["c1"].types == ["SMART", "O"]
    with pytest.raises(FeedError):
        await import_csv(session, b"just,some\n1,2\n", now=NOW, source_name="sheet")


def test_smart_types_do_not_reuse_meeting_guide_codes() -> None:
    meeting_guide_codes = {"11", "12x12", "A", "ABSI", "AL", "AL-AN", "ASL", "B", "BA", "BE",
                           "BI", "BRK", "C", "CAN", "CF", "D", "DB", "DD", "DR", "EN", "FF",
                           "FR", "G", "GR", "H", "HE", "ITA", "JA", "KOR", "L", "LGBTQ", "LIT",
                           "LS", "M", "MED", "N", "NDG", "O", "OUT", "P", "POA", "POC", "POL",
                           "POR", "PUN", "RUS", "S", "SEN", "SM", "SP", "ST", "T", "TC", "TR",
                           "TUR", "W", "X", "XB", "XT", "Y", "ONL"}
    assert not set(SMART_TYPES) & meeting_guide_codes
    assert "SMART-FF" in SMART_TYPES


def test_meeting_guide_export_round_trips() -> None:
    meeting = make_meeting(slug="rt", weekday=6, start_time=time(11, 0), end_time=time(12, 30),
                           access="prison", postcode="ST3")
    [row] = export_meeting_guide([meeting, make_meeting(status="cancelled")])
    assert (row["slug"], row["day"], row["time"], row["end_time"]) == ("rt", 0, "11:00", "12:30")
    assert "SMART-PRISON" in row["types"]
    [fields] = parse_row(row, default_tz="Europe/London")
    assert (fields["weekday"], fields["start_time"], fields["access"]) == (6, time(11), "prison")


def test_ics_export_parses_with_tzid_and_rrule() -> None:
    meeting = make_meeting(slug="ics", weekday=0, start_time=time(19, 0), end_time=time(20, 30),
                           conference_url="https://meet.example.org/x", attendance="hybrid")
    data = meeting_to_ics(meeting, now=NOW)
    calendar = Calendar.from_ical(data)
    [timezone] = calendar.walk("VTIMEZONE")
    assert str(timezone["TZID"]) == "Europe/London"
    [event] = calendar.walk("VEVENT")
    assert event["DTSTART"].params["TZID"] == "Europe/London"
    start = event["DTSTART"].dt
    assert start.isoformat() == "2026-03-30T19:00:00+01:00"
    assert event["DTEND"].dt.isoformat() == "2026-03-30T20:30:00+01:00"
    assert event["RRULE"]["FREQ"] == ["WEEKLY"] and event["RRULE"]["BYDAY"] == ["MO"]
    assert str(event["UID"]) == "ics@throughcare"
    with pytest.raises(ExportError):
        meeting_to_ics(make_meeting(start_time=None), now=NOW)
