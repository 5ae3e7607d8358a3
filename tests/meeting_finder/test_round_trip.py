"""Round trip: import each real feed, export it, and read the export back two ways.

A reader written to the spec (mg_reader, as tsml-ui reads) must keep every meeting it kept
from the feed itself, with the same attendance, address, zone and join details; our own
importer must find nothing changed.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from meeting_finder.feeds.importer import import_meeting_guide
from meeting_finder.feeds.meeting_guide_export import export_meeting_guide
from storage.models.meetings import Meeting
from tests.meeting_finder import mg_reader
from tests.meeting_finder.conftest import NOW, feeds_dir

# The zone each feed's own site shows its times in (SOURCES.md); None: every row has one.
FEEDS = {
    "spec_kansas_city_data_sample.json": "America/Chicago",
    "tsml_ui_aasfmarin_timezone_field.json": None,
    "tsml_ui_alanon_ma_attendance.json": "America/New_York",
    "tsml_ui_eda_international.json": "America/New_York",
    "tsml_ui_timezones_test.json": None,
}
# What the reader makes of each export, per attendance option (measured on the real feeds).
READ_BACK = {
    "spec_kansas_city_data_sample.json": {"in_person": 45},
    "tsml_ui_aasfmarin_timezone_field.json": {
        "hybrid": 89, "in_person": 55, "inactive": 20, "online": 494},
    "tsml_ui_alanon_ma_attendance.json": {
        "hybrid": 60, "in_person": 156, "inactive": 34, "online": 110},
    "tsml_ui_eda_international.json": {
        "hybrid": 14, "in_person": 70, "inactive": 1, "online": 100},
    "tsml_ui_timezones_test.json": {"inactive": 2},
}


def comparable(listing: mg_reader.Listing) -> mg_reader.Listing:
    """Drop the "+" a dial-in gains on the way (ours are E.164; tsml-ui keeps what it got)."""
    phone = (listing.conference_phone or "").lstrip("+") or None
    return dataclasses.replace(listing, conference_phone=phone)


def guessed_approximate(row: dict[str, Any]) -> bool:
    """Say whether a reader had to guess `approximate` for a row with a street address."""
    return "approximate" not in row and bool(row.get("address") or row.get("formatted_address"))


@pytest.mark.parametrize("name", sorted(FEEDS))
async def test_export_reads_back_as_the_feed_did(session: AsyncSession, name: str) -> None:
    rows = json.loads((feeds_dir() / name).read_text(encoding="utf-8"))
    zone = FEEDS[name]
    feed = mg_reader.read_feed(rows, site_timezone=zone)
    assert feed.dropped == [] and len(feed.meetings) == len(rows)
    summary = await import_meeting_guide(
        session, rows, now=NOW, source_name=name, default_tz=zone
    )
    assert summary.skipped == [] and summary.added == len(rows)
    meetings = list(await session.exec(select(Meeting).where(Meeting.source == name)))
    exported = json.loads(json.dumps(export_meeting_guide(meetings)))
    back = mg_reader.read_feed(exported)  # no site zone: the export must carry its own
    assert back.dropped == []
    assert len(exported) == len(back.meetings) == len(meetings) == len(rows)
    assert back.by_attendance() == READ_BACK[name]
    by_slug = {str(r["slug"]): r for r in rows}
    for slug, before in feed.meetings.items():
        after = back.meetings[slug]
        if guessed_approximate(by_slug[slug]) and before != after:
            # The feed left `approximate` out; the export says "no" for a street address.
            assert (after.approximate, after.attendance) == (False, "in_person")
            before = dataclasses.replace(before, approximate=False, attendance="in_person")
        assert comparable(after) == comparable(before), slug
    again = await import_meeting_guide(session, exported, now=NOW, source_name=name)
    assert (again.added, again.updated, again.cancelled, again.skipped) == (0, 0, 0, [])
    assert again.unchanged == len(exported)
