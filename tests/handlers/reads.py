"""Checks on what a participant reads about meetings, judged against the stored meetings.

A shortened name or place must be the start of the real one cut at a space, with "...";
a dial string or postcode is shown whole or not at all; every SMS is GSM-7 and at most
three segments as the SMS channel renders and counts it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.channels.render import is_gsm7, render_sms, sms_segments
from handlers.textin import plain_letters
from meeting_finder.feeds.importer import import_meeting_guide
from storage.db import session_scope
from storage.models import Meeting, OutboundMessage, Participant
from tests.handlers.conftest import Person

FEEDS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "meeting-feeds"
# Zones for feeds that give none (from SOURCES.md and the places they list).
FEED_ZONES = {
    "tsml_ui_aasfmarin_timezone_field.json": None,
    "tsml_ui_alanon_ma_attendance.json": "America/New_York",
    "tsml_ui_eda_international.json": "America/New_York",
    "spec_kansas_city_data_sample.json": "America/Toronto",
    "tsml_ui_timezones_test.json": None,
}
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # a Tuesday, noon in London
MAX_SEGMENTS = 3
_PREFIX = re.compile(r"^\s*smart\s+recovery\b\s*[:,-]?\s*", re.IGNORECASE)
_DEMO = re.compile(r"\s*\(demo(?: address)?\)", re.IGNORECASE)
_DIAL = re.compile(r"\+\d[\d,#*]{6,}")
BOUNDARY = " ,;:-&/(."


async def import_feeds(engine: AsyncEngine) -> None:
    """Import every real feed with the project's importer."""
    for name, zone in FEED_ZONES.items():
        rows = json.loads((FEEDS / name).read_text(encoding="utf-8"))
        async with session_scope(engine) as session:
            await import_meeting_guide(session, rows, now=NOW, source_name=name,
                                       default_tz=zone)


async def move_to(engine: AsyncEngine, person: Person, lat: float, lon: float) -> None:
    """Set where a person was released, so MEETINGS alone searches there."""
    async with session_scope(engine) as session:
        p = await session.get(Participant, person.participant_id)
        assert p is not None
        p.release_lat, p.release_lon = lat, lon
        session.add(p)


def _variants(text: str | None) -> set[str]:
    if not text:
        return set()
    plain = " ".join(plain_letters(text).split())
    out = {plain, " ".join(_DEMO.sub("", plain).split())}
    return out | {" ".join(_PREFIX.sub("", v).split()) for v in out}


_LABEL = re.compile(r"^(\d+\. |Notes: |Saved: |Address: |Contact: |Reminder: |Done\. )")


@dataclass
class Oracle:
    """Every whole text the stored meetings could be shown as, and their dial strings."""

    names: set[str] = field(default_factory=set)
    places: set[str] = field(default_factory=set)
    others: set[str] = field(default_factory=set)  # addresses in full, contacts, notes
    dials: set[str] = field(default_factory=set)

    @classmethod
    async def load(cls, engine: AsyncEngine) -> Oracle:
        """Read the meetings."""
        oracle = cls()
        async with session_scope(engine) as session:
            for m in (await session.exec(select(Meeting))).all():
                oracle.add(m)
        return oracle

    def add(self, m: Meeting) -> None:
        """Add one meeting's texts."""
        self.names |= _variants(m.name)
        pc = plain_letters(m.postcode or "")
        for venue in _variants(m.venue) | {""}:
            self.places.add(", ".join(p for p in (venue, pc) if p))
            for address in _variants(m.address) | {""}:
                self.others.add(", ".join(p for p in (venue, address, pc) if p))
                self.others.add(", ".join(p for p in (venue, address) if p))
        self.places |= _variants(m.address) | _variants(m.venue)
        people = [m.contact_name, m.contact_phone, m.contact_email]
        self.others |= _variants(", ".join(p for p in people if p)) | _variants(m.contact)
        for note in (m.location_notes, m.conference_url_notes, m.conference_phone_notes,
                     m.notes):
            self.others |= _variants(note)
        self.dials |= {p for p in (m.conference_phone, m.contact_phone) if p}

    def whole_or_cut_at_a_space(self, shown: str, whole: set[str]) -> bool:
        """Say whether `shown` is one of `whole`, or the start of one cut at a word's end."""
        if not shown.endswith("..."):
            return shown in whole
        kept = shown[:-3]
        return any(w.startswith(kept) and len(w) > len(kept) and w[len(kept)] in BOUNDARY
                   for w in whole)

    def check_list(self, text: str) -> None:
        """Check every entry of a meeting list: its name, and the place of one to go to."""
        lines = text.split("\n")
        for i, line in enumerate(lines[:-1]):
            entry = re.match(r"^(\d+)\. (.+)$", line)
            if not entry:
                continue
            assert self.whole_or_cut_at_a_space(entry.group(2), self.names), line
            if lines[i + 1].endswith(" miles") and i + 2 < len(lines):
                assert self.whole_or_cut_at_a_space(lines[i + 2], self.places), lines[i + 2]

    def check_cuts(self, text: str) -> None:
        """Check that every "..." ends a real text cut after a whole word or number."""
        every = self.names | self.places | self.others
        for line in text.split("\n"):
            if "..." not in line:
                continue
            shown = _LABEL.sub("", line).split("...")[0] + "..."
            assert self.whole_or_cut_at_a_space(shown, every), f"cut badly: {line!r}"

    def check_sms(self, text: str) -> None:
        """Check one SMS as the phone shows it."""
        assert is_gsm7(text), f"not GSM-7: {text!r}"
        assert sms_segments(text) <= MAX_SEGMENTS, f"{sms_segments(text)} segments: {text!r}"
        assert "...." not in text, text
        for dial in _DIAL.findall(text):
            assert dial.rstrip(".,") in self.dials, f"dial string cut: {dial} in {text!r}"
        self.check_cuts(text)
        if text.startswith(("Meetings near", "Online meetings")) or "\nMeetings near" in text:
            self.check_list(text)


def rendered(rows: list[OutboundMessage]) -> list[str]:
    """Return replies as an SMS phone shows them."""
    return [render_sms(r.body, r.choices or ()) for r in rows]


async def walk(person: Person, *texts: str) -> list[str]:
    """Send each text; return every reply as the channel shows it (SMS rendering for SMS)."""
    out: list[str] = []
    for text in texts:
        await person.say(text)
        out += rendered(person.last) if person.channel == "sms" else [
            r.body for r in person.last]
    return out
