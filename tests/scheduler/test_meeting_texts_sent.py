"""What the scheduler sends about meetings: the reader's clock, near and still ahead, GSM-7."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.channels.log_sender import ConsoleSender
from bot.channels.render import is_gsm7, render_sms, sms_segments
from bot.chat import run_chat
from bot.config import load_settings
from meeting_finder.demo import load_demo_meetings
from meeting_finder.feeds.importer import import_meeting_guide
from scheduler.dispatcher import dispatch
from scheduler.planning import plan
from storage.db import session_scope
from storage.models import Meeting, MessageKind, OutboundMessage, OutboxStatus
from storage.participants import enrol
from storage.subscriptions import subscribe
from tests.auxil.senders import instant_limiter
from tests.scheduler.conftest import FakeProvider, add_person, rows

FEEDS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "meeting-feeds"
MARIN = FEEDS / "tsml_ui_aasfmarin_timezone_field.json"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # Tuesday noon in London
RELEASE = date(2026, 12, 1)
STOKE = (52.9856, -2.1495)
SHREWSBURY = (52.7073, -2.7553)  # the nearest meeting is 25.5 miles away (Wrexham)
PHONE = "+447700900777"


@pytest.mark.skipif(not MARIN.exists(), reason=f"no feed at {MARIN}")
async def test_chat_and_reminder_show_a_los_angeles_meeting_in_uk_time(
    engine: AsyncEngine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with session_scope(engine) as session:
        await import_meeting_guide(session, json.loads(MARIN.read_text(encoding="utf-8")),
                                   now=NOW, source_name="marin")
        _p, code = await enrol(session, prison_name="HMP Test", display_name="Sam",
                               release_date=date(2026, 11, 20), release_postcode="ST3 2QH",
                               now=NOW - timedelta(days=12), phone=PHONE)
        _p.discreet = False  # the reminder below names the meeting
    settings = load_settings(database_url=db_url)
    await run_chat(settings, channel="sms", address=PHONE, lines=[code, "YES", "ONLINE"],
                   now=NOW)
    listing = capsys.readouterr().out.split("Online meetings:", 1)[1]
    found = re.search(r"(\d+)\. On Awakening\n(.+)\n", listing)
    assert found, listing
    assert found.group(2).startswith("Today 1 Dec 1:30pm (UK time), online, or dial ")
    assert "5:30am" not in listing
    await run_chat(settings, channel="sms", address=PHONE, lines=[f"SAVE {found.group(1)}"],
                   now=NOW)
    assert "Today 1 Dec 1:30pm (UK time)" in capsys.readouterr().out
    await plan(engine, now=NOW)
    console = ConsoleSender("sms")
    await dispatch(engine, {"sms": console}, now=NOW + timedelta(minutes=31),
                   limiter=instant_limiter())
    (reminder,) = [x for x in console.outbox if x.startswith("Reminder:")]
    assert reminder.startswith("Reminder: On Awakening starts at 1:30pm (UK time), online at "
                               "https://zoom.us/j/382544042 or by phone on +16699009128,,")
    assert sms_segments(reminder) <= 3


async def _suggestion(engine: AsyncEngine) -> OutboundMessage:
    (row,) = [r for r in await rows(engine) if r.dedupe_key.endswith(":suggest")]
    return row


async def test_release_day_suggestion_is_near_and_before_the_meeting(
    engine: AsyncEngine,
) -> None:
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=NOW)
    await add_person(engine, release=RELEASE, release_lat=STOKE[0], release_lon=STOKE[1],
                     discreet=False)  # the suggestion names the meeting
    await plan(engine, now=NOW - timedelta(days=1))
    row = await _suggestion(engine)
    assert row.body.startswith("Hi Sam. A meeting near you soon: Stoke-on-Trent Wednesday "
                               "(demo), Wed 2 Dec 10am, Stoke-on-Trent Community Rooms (demo)")
    assert "New? Contact: Ask the demo facilitator on arrival (demo)." in row.body
    assert row.not_after == datetime(2026, 12, 2, 9, 30, tzinfo=UTC)  # before it starts
    # The worker was down until after that meeting: the text is not sent late...
    provider = FakeProvider("sms")
    late = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)
    await dispatch(engine, {"sms": provider}, now=late, limiter=instant_limiter())
    assert not any("meeting near you" in b for b in provider.bodies())
    assert (await _suggestion(engine)).status == OutboxStatus.EXPIRED


async def test_a_suggestion_replanned_late_names_a_meeting_still_ahead(
    engine: AsyncEngine,
) -> None:
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=NOW)
    await add_person(engine, release=RELEASE, release_lat=STOKE[0], release_lon=STOKE[1],
                     discreet=False)  # the suggestion names the meeting
    await plan(engine, now=NOW - timedelta(days=1))
    late = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)
    await plan(engine, now=late)  # the worker is back: planning runs before sending
    provider = FakeProvider("sms")
    await dispatch(engine, {"sms": provider}, now=late, limiter=instant_limiter())
    (sent,) = [b for b in provider.bodies() if "meeting near you" in b]
    assert "Newcastle-under-Lyme Thursday (demo), Thu 3 Dec 7pm" in sent


async def test_far_from_any_meeting_the_suggestion_is_online(engine: AsyncEngine) -> None:
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=NOW)
    await add_person(engine, release=RELEASE, release_lat=SHREWSBURY[0], discreet=False,
                     release_lon=SHREWSBURY[1])
    await plan(engine, now=NOW - timedelta(days=1))
    row = await _suggestion(engine)
    assert "near you" not in row.body
    assert row.body.startswith(  # a hybrid meeting, joined from home
        "Hi Sam. A meeting you can join from home soon: Stoke-on-Trent Wednesday (demo), "
        "Wed 2 Dec 10am, online at https://meet.example.org/smart-demo-stoke-wed. New?")
    assert row.not_after == datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


async def test_names_and_meetings_are_plain_letters_by_sms(engine: AsyncEngine) -> None:
    sms = await add_person(engine, name="Łukasz \U0001f44d", release=RELEASE, discreet=False,
                           release_lat=STOKE[0], release_lon=STOKE[1])
    tg = await add_person(engine, name="Łukasz", phone="5551234", channel="telegram",
                          release=RELEASE)
    long_name = ("SMART Recovery Łódź Friends of Bill Wednesday Evening Discussion Group "
                 "meeting in the Ćwiczenia Rooms")
    async with session_scope(engine) as session:
        m = Meeting(slug="lodz", name=long_name, weekday=2, start_time=time(19),
                    timezone="Europe/London", venue="Zdrowie Hall", postcode="ST4 2RR",
                    address="1 Ulica Street", lat=STOKE[0], lon=STOKE[1], types=["SMART"])
        session.add(m)
        await session.flush()
        for pid in (sms, tg):
            await subscribe(session, participant_id=pid, meeting_id=m.id or 0, now=NOW)
    await plan(engine, now=NOW - timedelta(days=1))
    async with session_scope(engine) as session:
        outbox = (await session.exec(select(OutboundMessage))).all()
    by_sms = [r.body for r in outbox if r.participant_id == sms]
    assert len(by_sms) >= 8
    for body in by_sms:
        text = render_sms(body)
        assert is_gsm7(text) and sms_segments(text) <= 3, text
        assert "...." not in text
    assert any(b.startswith("Hi Lukasz, welcome out.") for b in by_sms)
    soon = [b for b in by_sms if b.startswith("Reminder:") and "tomorrow" not in b]
    assert soon[0] == ("Reminder: Lodz Friends of Bill Wednesday Evening Discussion Group... "
                    "starts at 7pm, Zdrowie Hall, ST4 2RR.")
    by_telegram = [r.body for r in outbox if r.participant_id == tg]
    assert any(b.startswith("Hi Łukasz, welcome out.") for b in by_telegram)
    assert any("Łódź Friends of Bill" in b for b in by_telegram)
    assert all(r.kind != MessageKind.REMINDER or "Ćwiczenia" not in r.body for r in outbox)


async def test_a_family_and_friends_meeting_is_never_suggested(engine: AsyncEngine) -> None:
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=NOW)
    sunday = date(2026, 12, 6)  # the soonest online meeting is Family & Friends, at 7pm
    await add_person(engine, release=sunday, release_lat=SHREWSBURY[0], discreet=False,
                     release_lon=SHREWSBURY[1])
    await plan(engine, now=datetime(2026, 12, 5, 12, 0, tzinfo=UTC))
    row = await _suggestion(engine)
    assert "Family" not in row.body
    assert "SMART Recovery online, Monday evening (demo), Mon 7 Dec 8pm" in row.body
