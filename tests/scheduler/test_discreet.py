"""Discreet texts: what we start by SMS names a day, a time and a town, never the meeting.

A lock screen shows the first line (and at least the first 40 characters) of a text to
anyone near the phone. These run the real planner, meeting changes and conversation engine,
and render every text we start with values from the real meeting feeds.
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.channels.render import is_gsm7, sms_segments
from handlers.engine import handle_inbound
from handlers.meeting_text import clip_words, contact_of, when
from handlers.texts import all_texts, reading_as, t
from handlers.tools.discreet import telling
from handlers.types import EngineContext, Inbound
from meeting_finder.feeds.importer import import_meeting_guide
from scheduler import reminders
from scheduler.meeting_changes import suspend
from scheduler.planning import plan
from storage.db import session_scope
from storage.models import (
    Appointment,
    AppointmentKind,
    Meeting,
    MessageKind,
    OutboxStatus,
)
from storage.subscriptions import subscribe
from tests.scheduler.conftest import add_person, rows

FEEDS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "meeting-feeds"
NOW = datetime(2025, 6, 2, 12, tzinfo=UTC)  # Monday noon in London
PHONE = "+447700900001"
BANNED = re.compile(r"recover|smart|drug|alcohol|drink|prison|probation|releas|addict|\burge"
                    r"|craving|relapse|crisis", re.IGNORECASE)
# The same words in Welsh: adferiad (recovery), carchar (prison), cyffur (drug), diod
# (drink), prawf (probation), rhyddhau (release), caethiwed (addiction), ysfa (urge),
# chwant (craving), argyfwng (crisis).
BANNED_CY = re.compile(r"adferiad|carchar|cyffur|diod|prawf|rhyddhau|caethiwed|ysfa|chwant"
                       r"|argyfwng", re.IGNORECASE)
LOCK_SCREEN = 40  # characters a lock screen shows at the least
MAX_SEGMENTS = 3
HANLEY: dict[str, Any] = {"slug": "hanley-tue", "name": "Hanley SMART Recovery", "weekday": 1,
          "start_time": time(19), "end_time": time(20, 30), "timezone": "Europe/London",
          "venue": "Hope Centre", "address": "Hope Centre, 12 Town Road, Hanley ST1 1AA",
          "postcode": "ST1 1AA", "lat": 53.0246, "lon": -2.1759}
BURSLEM: dict[str, Any] = {
    **HANLEY, "slug": "burslem-wed", "name": "Burslem SMART Recovery", "weekday": 2,
    "venue": "Recovery Cafe", "address": "Recovery Cafe, 3 Market Place, Burslem",
    "postcode": "ST6 3AA", "lat": 53.0450, "lon": -2.1990}
_ids = itertools.count(1)


def shown_on_lock_screen(text: str) -> str:
    """Return what a locked phone shows: the first line, and the first 40 characters."""
    return f"{text.split(chr(10), 1)[0]}\n{text[:LOCK_SCREEN]}"


def assert_discreet(text: str) -> None:
    seen = shown_on_lock_screen(text)
    assert not BANNED.search(seen) and not BANNED_CY.search(seen), text


async def _meeting(engine: AsyncEngine, **values: Any) -> int:
    async with session_scope(engine) as session:
        m = Meeting(**{**HANLEY, **values})
        session.add(m)
        await session.flush()
        return m.id or 0


async def _subscribe(engine: AsyncEngine, pid: int, mid: int) -> None:
    async with session_scope(engine) as session:
        await subscribe(session, participant_id=pid, meeting_id=mid, now=NOW - timedelta(days=1))


async def _reminders(engine: AsyncEngine, pid: int) -> dict[int, str]:
    """Return the queued meeting reminders' bodies by offset (1440: the day before)."""
    return {(r.meta or {})["offset"]: r.body for r in await rows(engine)
            if r.participant_id == pid and r.dedupe_key.startswith("rem:")
            and r.status == OutboxStatus.QUEUED}


async def say(engine: AsyncEngine, text: str, now: datetime = NOW) -> list[str]:
    async with session_scope(engine) as session:
        result = await handle_inbound(
            session, Inbound(channel="sms", address=PHONE, text=text,
                             provider_id=f"in-{next(_ids)}"), EngineContext(now=now))
    return [r.text for r in result.replies]


async def test_an_sms_reminder_is_discreet_by_default(engine: AsyncEngine) -> None:
    pid = await add_person(engine)  # discreet left unset: the SMS default
    await _subscribe(engine, pid, await _meeting(engine))
    await plan(engine, now=NOW)
    sent = await _reminders(engine, pid)
    assert sent[1440] == ("Reminder: tomorrow, Tue 7pm, Hanley. Send PLAN for details, or "
                          "REMIND to change when they come.")
    assert sent[60] == "Reminder: today 7pm, Hanley. Send PLAN for details."
    for body in sent.values():
        assert_discreet(body)


async def test_a_telegram_reminder_names_the_meeting_by_default(engine: AsyncEngine) -> None:
    pid = await add_person(engine, phone="5551234", channel="telegram")
    await _subscribe(engine, pid, await _meeting(engine))
    await plan(engine, now=NOW)
    day_before = (await _reminders(engine, pid))[1440]
    assert day_before.startswith("Reminder: Hanley SMART Recovery is tomorrow at 7pm")


async def test_discreet_off_by_text_names_the_meeting_again(engine: AsyncEngine) -> None:
    pid = await add_person(engine)
    await _subscribe(engine, pid, await _meeting(engine))
    await plan(engine, now=NOW)
    assert "Hanley SMART" not in (await _reminders(engine, pid))[1440]
    assert await say(engine, "DISCREET") == [
        "Texts I start do not say what they are about. Send DISCREET OFF to name your "
        "meetings in them."]
    assert await say(engine, "discreet off") == [
        "Done. Reminders will name your meetings again. Send DISCREET ON to hide that."]
    later = NOW + timedelta(minutes=5)
    await plan(engine, now=later)  # the queued reminders are reworded, not doubled
    sent = await _reminders(engine, pid)
    assert len(sent) == 2 and sent[1440].startswith(
        "Reminder: Hanley SMART Recovery is tomorrow at 7pm, Hope Centre, ST1 1AA.")
    assert (await say(engine, "DISCREET ON"))[0].startswith("Done. Reminders and other texts")
    await plan(engine, now=later + timedelta(minutes=5))
    assert (await _reminders(engine, pid))[1440].startswith("Reminder: tomorrow, Tue 7pm")
    assert await say(engine, "DISCREET MAYBE") == [
        "Sorry, I did not get that. Send DISCREET ON or DISCREET OFF."]


async def test_a_suspended_meeting_notice_is_discreet_too(engine: AsyncEngine) -> None:
    mid = await _meeting(engine)
    await _meeting(engine, **BURSLEM)  # the nearest other: its venue names recovery
    by_sms = await add_person(engine)
    by_telegram = await add_person(engine, name="Ali", phone="5551234", channel="telegram")
    for pid in (by_sms, by_telegram):
        await _subscribe(engine, pid, mid)
    result = await suspend(engine, meeting_id=mid, by="test", now=NOW)
    notices = {r.participant_id: r.body for r in await rows(engine)
               if (r.meta or {}).get("change")}
    assert result.told == 2
    assert notices[by_sms] == ("Sorry, your Hanley meeting is paused for now. Nearest other: "
                               "Wed 4 Jun 7pm, Burslem. Send MEETINGS to find others.")
    assert_discreet(notices[by_sms])
    assert notices[by_telegram].startswith("Sorry, Hanley SMART Recovery is paused for now. "
                                           "Nearest other: Burslem SMART Recovery")


async def test_an_appointment_reminder_says_appointment_and_hides_a_telling_place(
        engine: AsyncEngine) -> None:
    discreet = await add_person(engine)
    named = await add_person(engine, name="Ali", phone="+447700900002", discreet=False)
    starts = datetime(2025, 6, 3, 13, 30, tzinfo=UTC)  # 2:30pm in London
    async with session_scope(engine) as session:
        for pid in (discreet, named):
            session.add(Appointment(participant_id=pid, kind=AppointmentKind.PROBATION,
                                    starts_at=starts, place="Hanley Probation Office"))
            session.add(Appointment(participant_id=pid, kind=AppointmentKind.GP,
                                    starts_at=starts + timedelta(days=1),
                                    place="Hanley Health Centre"))
    await plan(engine, now=NOW)
    bodies = {(r.participant_id, r.due_at): r.body for r in await rows(engine)
              if r.appointment_id is not None}
    evening = datetime(2025, 6, 2, 17, tzinfo=UTC)
    assert bodies[(discreet, evening)] == "Reminder: your appointment is tomorrow at 2:30pm."
    assert bodies[(named, evening)] == ("Reminder: your probation appointment is tomorrow at "
                                        "2:30pm, Hanley Probation Office.")
    assert bodies[(discreet, evening + timedelta(days=1))] == (
        "Reminder: your GP appointment is tomorrow at 2:30pm, Hanley Health Centre.")
    for (whose, _), body in bodies.items():
        if whose == discreet:
            assert_discreet(body)


async def test_the_release_sequence_by_sms_is_discreet(engine: AsyncEngine) -> None:
    await _meeting(engine, weekday=0, start_time=time(18))  # tonight: the suggestion
    pid = await add_person(engine, release=NOW.date(), release_lat=53.02,
                           release_lon=-2.17)
    await plan(engine, now=NOW - timedelta(hours=4))
    sequence = {r.dedupe_key.rsplit(":", 1)[1]: r.body for r in await rows(engine)
                if r.participant_id == pid and r.kind == MessageKind.SEQUENCE}
    assert set(sequence) == {"welcome", "suggest", "checkin1", "checkin3", "checkin7",
                             "checkin14", "checkin28"}
    assert sequence["suggest"] == ("Hi Sam. A meeting near you soon: Mon 2 Jun 6pm, "
                                   "Hanley. Send MEETINGS for more.")
    for body in sequence.values():
        assert_discreet(body)
        assert "throughcare" not in body and "out." not in body  # "welcome out" says prison


@pytest.fixture
async def feed_meetings(engine: AsyncEngine) -> list[Meeting]:
    """Import every real feed; return its meetings that have a day, time and zone."""
    async with session_scope(engine) as session:
        for path in sorted(FEEDS.glob("*.json")):
            await import_meeting_guide(session, json.loads(path.read_text(encoding="utf-8")),
                                       now=NOW, source_name=path.name,
                                       default_tz="America/New_York")
        found = (await session.exec(select(Meeting))).all()
    return [m for m in found if m.start_time is not None and m.timezone]


STARTED = ["sequence.welcome", "sequence.suggest", "sequence.suggest_online",
           "sequence.suggest_none", *(f"sequence.checkin_{d}" for d in (1, 3, 7, 14, 28)),
           "reminder.meeting_day", "reminder.meeting_soon", "reminder.meeting_cancelled",
           "reminder.meeting_moved", "reminder.meeting_changed", "reminder.meeting_paused",
           "reminder.meeting_stopped", "reminder.meeting_resumed", "reminder.appointment_day",
           "reminder.appointment_morning", "followup.ask", "urge.followup"]
KINDS = ["probation", "treatment", "prescription", "gp", "housing", "other"]


def _values(meeting: Meeting, other: Meeting, kind: str) -> dict[str, str]:
    """Return the values the planners fill a text about `meeting` with, as by SMS."""
    zone = ZoneInfo("Europe/London")
    start = datetime(2025, 6, 3, 18, 30, tzinfo=UTC)
    contact = contact_of(meeting, plain=True)
    contact = "" if telling(contact) else contact  # as the suggestion leaves it out
    alternative = t("reminder.nearest_other", meeting=reminders.name_for(other, "sms"),
                    when=when(start, zone), where=reminders.where_for(other, "sms"),
                    **reminders.discreet_values(other, "sms"))
    return {"name": "Samantha-Jayne", "meeting": reminders.name_for(meeting, "sms"),
            "when": when(start, zone), "time": "6:30pm (UK time)", "day": "Tue",
            "where": reminders.where_for(meeting, "sms"), "alternative": alternative,
            "contact": t("sequence.contact", contact=clip_words(contact, 90)) if contact
            else "", "what": t(f"reminder.what_{kind}"),
            **reminders.discreet_values(meeting, "sms", join=kind == "other")}


@pytest.mark.parametrize("language", ["en", "cy"])
async def test_every_text_we_start_is_discreet_and_fits_three_texts(
        feed_meetings: list[Meeting], language: str) -> None:
    assert len(feed_meetings) > 1000
    longest = sorted(feed_meetings, key=lambda m: -len(m.name + (m.address or "")))[:60]
    checked = 0
    with reading_as(language, discreet=True):
        for n, meeting in enumerate(longest):
            values = _values(meeting, longest[-1 - n], KINDS[n % len(KINDS)])
            for key in STARTED:
                text = t(key, **values)
                assert_discreet(text)
                assert not telling(text), text  # and nowhere further down either
                assert is_gsm7(text) and sms_segments(text) <= MAX_SEGMENTS, text
                checked += 1
    assert checked == 60 * len(STARTED)


def test_every_discreet_variant_has_an_ordinary_text() -> None:
    texts = all_texts()
    variants = [k.removeprefix("discreet.") for k in texts if k.startswith("discreet.")]
    assert len(variants) > 20 and [k for k in variants if k not in texts] == []


def test_the_check_can_fail() -> None:
    with pytest.raises(AssertionError):
        assert_discreet("Reminder: Hanley SMART Recovery is tomorrow at 7pm")
    with pytest.raises(AssertionError):
        assert_discreet("Hi Sam, welcome out.\nYour probation appointment is at 2pm")
    with reading_as("en", discreet=False):
        with pytest.raises(AssertionError):
            assert_discreet(t("reminder.appointment_day", what=t("reminder.what_probation"),
                              time="2pm", place=""))
