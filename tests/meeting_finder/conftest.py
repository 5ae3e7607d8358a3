"""Builders and paths shared by the meeting finder tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest

from storage.models.meetings import Meeting

FEEDS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "meeting-feeds"
NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # a Saturday, the day before the clocks go forward
ST3_2 = (52.985614, -2.149526)
_ids = itertools.count(1)


def make_meeting(**overrides: Any) -> Meeting:
    """Build an open, active, in-person Monday 19:00 meeting near ST3 2, with overrides."""
    n = next(_ids)
    fields: dict[str, Any] = {
        "slug": f"test-{n}",
        "name": f"Test meeting {n}",
        "weekday": 0,
        "start_time": time(19, 0),
        "timezone": "Europe/London",
        "venue": "Test Hall",
        "address": f"{n} Test Street",
        "lat": ST3_2[0],
        "lon": ST3_2[1],
        "types": ["SMART"],
        "source": "test",
        "updated": NOW,
    }
    fields.update(overrides)
    return Meeting(**fields)


def feeds_dir() -> Path:
    """Return the shared feeds folder, or skip the test when it is absent."""
    if not FEEDS.is_dir():
        pytest.skip(f"shared meeting feeds not found at {FEEDS.resolve()}")
    return FEEDS
