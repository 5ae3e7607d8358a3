"""A whole journey in Welsh, over HTTP through the real twilio and telegram libraries:
link, consent, CYFARFODYDD, CADW, YSFA, HWYLIAU, a reminder planned and sent, STOP."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.sms import TwilioSender
from bot.channels.telegram import TelegramSender
from handlers.texts import all_texts, reading_as, t
from meeting_finder.demo import load_demo_meetings
from scheduler.clock import SimClock
from scheduler.dispatcher import dispatch
from scheduler.planning import plan
from scheduler.ratelimit import RateLimiter
from scheduler.sender import Sender
from storage.db import session_scope
from storage.models import Participant, ParticipantStatus
from tests.bot.conftest import NOW, Enrolled, Stack, participant

CY = all_texts("cy")
EN = all_texts("en")


@pytest.fixture
async def welsh(engine: AsyncEngine, enrolled: Enrolled) -> Enrolled:
    """Sam chose Cymraeg at enrolment; demo meetings are loaded."""
    async with session_scope(engine) as session:
        p = await session.get(Participant, enrolled.participant_id)
        assert p is not None
        p.language = "cy"
        session.add(p)
        await load_demo_meetings(session, now=NOW)
    return enrolled


def cy(key: str, **values: object) -> str:
    with reading_as("cy"):
        return t(key, **values)


def english_in(texts: list[str]) -> list[str]:
    """Return the texts that carry an English sentence of ours (a missed translation)."""
    probes = [EN[k] for k in ("menu.title", "consent.ask", "urge.start", "checkin.ask_mood",
                              "checkin.thanks", "stop.done", "meetings.footer")]
    return [x for x in texts if any(p.split(".")[0][:25] in x for p in probes)]


async def _reminder(stack: Stack, channel: str) -> list[str]:
    """Plan and send everything due up to the day before the saved meeting; return bodies."""
    sms = TwilioSender.from_settings(stack.settings,
                                     transport=httpx.ASGITransport(stack.twilio.app))
    senders: dict[str, Sender] = {"sms": sms, "telegram": TelegramSender(stack.tg_app.bot)}
    limiter = RateLimiter(clock=SimClock())
    try:
        for hours in range(0, 24 * 4 + 1, 8):
            now = NOW + timedelta(hours=hours)
            await plan(stack.engine, now=now)
            await dispatch(stack.engine, senders, now=now, limiter=limiter)
    finally:
        await sms.aclose()
    if channel == "sms":
        return [m["body"] for m in stack.twilio.messages]
    return [c["text"] for c in stack.telegram.called("sendMessage")]


async def test_sms_journey_in_welsh(stack: Stack, welsh: Enrolled) -> None:
    linked, consent = await stack.sms(welsh.code)
    assert linked == cy("welcome.linked", name="Sam")
    assert consent.startswith(CY["consent.ask"]) and "1 " + CY["consent.yes_label"] in consent
    thanks, menu = await stack.sms("IE")
    assert thanks == cy("consent.thanks", name="Sam") and menu.startswith(CY["menu.title"])
    [listing] = await stack.sms("CYFARFODYDD ST3 2QH")
    assert "\nCyfarfodydd ger" in listing and "milltir" in listing
    assert any(day in listing for day in ("Heddiw", "Yfory", "Llun", "Maw", "Mer", "Iau",
                                          "Gwe", "Sad", "Sul"))
    [saved] = await stack.sms("CADW 1")
    assert saved.startswith("Wedi cadw:")
    assert (await stack.sms("YSFA"))[0].startswith(CY["urge.start"][:40])
    assert (await stack.sms("8"))[0].startswith("Cam 1 o 5")
    assert (await stack.sms("DEWISLEN"))[0].startswith(CY["menu.title"])
    assert (await stack.sms("HWYLIAU"))[0] == CY["checkin.ask_mood"]
    await stack.sms("6")
    assert (await stack.sms("4"))[0] == CY["checkin.ask_note"]
    done = await stack.sms("HEPGOR")
    assert done[0].startswith(CY["checkin.thanks"])
    bodies = await _reminder(stack, "sms")
    reminders = [b for b in bodies if b.startswith("Nodyn atgoffa:")]
    assert reminders, bodies[-5:]
    assert all(("yh" in b or "yb" in b) for b in reminders)
    assert await stack.sms("STOP") == [CY["stop.done"]]
    assert (await participant(stack.engine, welsh.participant_id)).status == \
        ParticipantStatus.STOPPED
    assert english_in(bodies) == []


async def test_telegram_journey_in_welsh(stack: Stack, welsh: Enrolled) -> None:
    linked, consent = await stack.tg(f"/start {welsh.code.replace('-', '')}")
    assert linked == cy("welcome.linked", name="Sam")
    assert consent.startswith(CY["consent.ask"]) and f"[{CY['consent.yes_label']}]" in consent
    thanks, menu = await stack.press(CY["consent.yes_label"])
    assert thanks == cy("consent.thanks", name="Sam") and menu.startswith(CY["menu.title"])
    [listing] = await stack.tg("CYFARFODYDD ST3 2QH")
    assert "Cyfarfodydd ger" in listing
    assert (await stack.tg("CADW 1"))[0].startswith("Wedi cadw:")
    assert (await stack.tg("/ysfa"))[0].startswith(CY["urge.start"][:40])
    await stack.tg("DEWISLEN")
    assert (await stack.tg("HWYLIAU"))[0].startswith(CY["checkin.ask_mood"])
    bodies = await _reminder(stack, "telegram")
    assert any(b.startswith("Nodyn atgoffa:") for b in bodies), bodies[-5:]
    assert await stack.tg("STOP") == [CY["stop.done"]]
    assert english_in(bodies) == []


async def test_language_switches_mid_flow_and_the_flow_carries_on(
        stack: Stack, enrolled: Enrolled) -> None:
    await stack.sms(enrolled.code)
    await stack.sms("YES")
    assert (await stack.sms("CHECKIN"))[0] == EN["checkin.ask_mood"]
    switched = await stack.sms("CYMRAEG")
    assert switched == [CY["language.set"], CY["help.in_flow"]]
    assert (await stack.sms("6"))[0] == CY["checkin.ask_craving"]
    assert (await participant(stack.engine, enrolled.participant_id)).language == "cy"
    assert (await stack.sms("ENGLISH")) == [EN["language.set"], EN["help.in_flow"]]
    assert (await stack.sms("4"))[0] == EN["checkin.ask_note"]
