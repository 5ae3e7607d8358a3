"""A meeting two people say did not run, in a real browser: they are asked "did you make it?"
by SMS and reply NORUN; their coordinator sees the meeting flagged on the home page, opens
the report, suspends it, and both phones are told, once.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta

import httpx
import pytest
from playwright.async_api import Page, expect

from bot.channels.sms import TwilioSender
from scheduler.clock import SimClock
from scheduler.dispatcher import dispatch
from scheduler.planning import plan
from scheduler.ratelimit import RateLimiter
from storage.db import session_scope
from storage.models import Meeting
from storage.subscriptions import subscribe
from tests.auxil.builders import enrolled_participant
from tests.web.browser.conftest import Live
from tests.web.browser.helpers import Account, sign_in
from tests.web.conftest import make_staff

PHONES = ("+447700900111", "+447700900222")  # Ofcom's drama range: never real phones
TUESDAY = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)  # 6pm in London, two days before now


@pytest.fixture
async def sender(live: Live) -> AsyncIterator[TwilioSender]:
    """Return an SMS sender to the fake Twilio, as the worker has."""
    made = TwilioSender.from_settings(live.settings,
                                      transport=httpx.ASGITransport(live.twilio.app))
    yield made
    await made.aclose()


async def asked_after_longton(live: Live, sender: TwilioSender) -> None:
    """Two people chose Longton SMART; the worker reminds them, then asks if they made it."""
    async with session_scope(live.engine) as session:
        longton = Meeting(slug="longton", name="Longton SMART", weekday=1,
                          start_time=time(18), end_time=time(19, 30),
                          timezone="Europe/London", region="Stoke", venue="Longton Library",
                          postcode="ST3 1AA", lat=52.9890, lon=-2.1330)
        session.add(longton)
        await session.flush()
        for name, phone in zip(("Alex", "Bea"), PHONES, strict=True):
            p = await enrolled_participant(session, address=phone, name=name,
                                           now=live.clock.now - timedelta(days=5))
            p.discreet = False  # texts naming the meeting (discreet ones: test_discreet)
            session.add(p)
            await subscribe(session, participant_id=p.id or 0, meeting_id=longton.id or 0,
                            now=live.clock.now - timedelta(days=5))
    limiter = RateLimiter(clock=SimClock())
    await plan(live.engine, now=TUESDAY - timedelta(days=1))
    await dispatch(live.engine, {"sms": sender}, now=TUESDAY - timedelta(hours=1),
                   limiter=limiter)
    await plan(live.engine, now=TUESDAY + timedelta(hours=2))
    await dispatch(live.engine, {"sms": sender}, now=TUESDAY + timedelta(hours=15),
                   limiter=limiter)
    for phone in PHONES:
        assert live.texts_to(phone)[-1].startswith("Did you make it to Longton SMART?")


async def test_two_norun_replies_flag_the_meeting_and_suspending_tells_them(
        page: Page, live: Live, sender: TwilioSender) -> None:
    await asked_after_longton(live, sender)
    for phone in PHONES:
        replies = await live.text_from(phone, "NORUN")
        assert replies[0].startswith("Thank you for telling us")
    user, password = await make_staff(live.engine, role="coordinator", region="Stoke",
                                      email="coordinator@example.org", now=live.clock.now)

    await sign_in(page, Account(user.email, password))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Coordinator home")
    await expect(page.get_by_role("heading", name="Meetings that may not be running")
                 ).to_be_visible()
    await expect(page.get_by_text("2 people said it did not run")).to_be_visible()
    await page.get_by_role("link", name="Longton SMART").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Meetings reported as not running")
    longton = page.get_by_role("region", name="Longton SMART")
    await expect(longton.get_by_text("May not be running")).to_be_visible()
    await expect(longton.get_by_role("row", name=re.compile("Tuesday 24 November 2026"))
                 ).to_contain_text("2 people")
    await expect(page.get_by_role("main")).not_to_contain_text("Alex")
    await longton.get_by_role("button", name="Suspend this meeting").click()

    await expect(page.get_by_role("status")).to_have_text(
        "Longton SMART is suspended. 2 people were told, with the nearest other meeting.")
    longton = page.get_by_role("region", name="Longton SMART")
    await expect(longton.get_by_text("Suspended", exact=True)).to_be_visible()
    await expect(longton.get_by_text("May not be running")).to_have_count(0)
    await page.get_by_role("link", name="Back to home").click()
    await expect(page.get_by_role("heading", name="Meetings that may not be running")
                 ).to_have_count(0)

    before = {phone: len(live.texts_to(phone)) for phone in PHONES}
    await dispatch(live.engine, {"sms": sender}, now=live.clock.now,
                   limiter=RateLimiter(clock=SimClock()))
    for phone in PHONES:
        told = [text for text in live.texts_to(phone)[before[phone]:] if "Longton SMART" in text]
        assert len(told) == 1, told
        assert "(demo)" in told[0], told  # the nearest other meeting: here, only demo ones
