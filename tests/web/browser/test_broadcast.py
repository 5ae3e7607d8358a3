"""A broadcast in a real browser: the coordinator types the news and watches the SMS count
change as they type (an emoji doubles it), checks the preview, sends to the meeting's
subscribers; one phone's number is dead, so the report names nobody to the coordinator but
an admin sees who to ring, with their Champion's prison.
"""

from __future__ import annotations

import re
from datetime import time, timedelta

import httpx
from playwright.async_api import Page, expect

from bot.channels.sms import TwilioSender
from scheduler.clock import SimClock
from scheduler.dispatcher import dispatch
from scheduler.ratelimit import ChannelLimit, RateLimiter
from storage.db import session_scope
from storage.models import Meeting
from storage.subscriptions import subscribe
from tests.auxil.builders import enrolled_participant
from tests.web.browser.conftest import Live
from tests.web.browser.helpers import Account, press, sign_in
from tests.web.conftest import make_staff

PHONES = ("+447700900111", "+447700900222")  # Ofcom's drama range: never real phones
NEWS = "Longton SMART is in room 2 tonight. Same time."


async def _send_all(live: Live) -> None:
    sender = TwilioSender.from_settings(live.settings,
                                        transport=httpx.ASGITransport(live.twilio.app))
    limiter = RateLimiter(limits={"sms": ChannelLimit(per_second=100.0, count_segments=True)},
                          clock=SimClock())
    try:
        await dispatch(live.engine, {"sms": sender}, now=live.clock.now + timedelta(minutes=1),
                       limiter=limiter)
    finally:
        await sender.aclose()


async def test_a_coordinator_broadcasts_and_an_admin_sees_who_to_ring(
        page: Page, live: Live) -> None:
    async with session_scope(live.engine) as session:
        longton = Meeting(slug="longton", name="Longton SMART", weekday=1, start_time=time(18),
                          timezone="Europe/London", region="Stoke", postcode="ST3 1AA",
                          lat=52.9890, lon=-2.1330)
        session.add(longton)
        await session.flush()
        for name, phone in zip(("Alex", "Bea"), PHONES, strict=True):
            p = await enrolled_participant(session, address=phone, name=name,
                                           now=live.clock.now - timedelta(days=5))
            await subscribe(session, participant_id=p.id or 0, meeting_id=longton.id or 0,
                            now=live.clock.now - timedelta(days=5))
    await _send_all(live)  # anything their linking queued
    live.twilio.invalid_numbers.add(PHONES[1])
    user, password = await make_staff(live.engine, role="coordinator", region="Stoke",
                                      email="coordinator@example.org", now=live.clock.now)
    await sign_in(page, Account(user.email, password))

    await page.goto("/staff/broadcasts/new")
    await expect(page.get_by_role("heading", level=1)).to_have_text("New broadcast")
    await page.get_by_label("Subscribers of a meeting").check()
    await page.get_by_label("Meeting", exact=True).select_option(label="Longton SMART")
    message = page.get_by_label("Message")
    await message.fill(NEWS)
    count = page.get_by_text(re.compile(r"SMS segments? \("))
    await expect(count).to_have_text(f"1 SMS segment ({len(NEWS)} characters)")
    await message.fill(NEWS + " See you there \U0001F600" + " Bring a friend." * 2)
    await expect(count).to_have_text(re.compile(r"^2 SMS segments \(\d+ characters\)$"))
    await message.fill(NEWS)
    await expect(count).to_have_text(f"1 SMS segment ({len(NEWS)} characters)")
    await press(page, "Preview")

    await expect(page.get_by_role("heading", level=1)).to_have_text("Check your broadcast")
    await expect(page.get_by_text(f"1 SMS segment ({len(NEWS)} characters)")).to_be_visible()
    assert NEWS not in live.texts_to(PHONES[0])  # nothing sent before the confirm
    await press(page, "Send to 2 people")
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        re.compile(r"^Broadcast of "))
    await _send_all(live)
    assert live.texts_to(PHONES[0])[-1] == NEWS

    await page.reload()
    await expect(page.get_by_text("The number is not a valid phone number: 1")).to_be_visible()
    await expect(page.get_by_text("1 person outside your caseload")).to_be_visible()
    report_url = page.url
    await page.get_by_role("button", name="Sign out").click()

    admin, secret = await make_staff(live.engine, role="admin", email="admin@example.org",
                                     now=live.clock.now)
    await sign_in(page, Account(admin.email, secret))
    await page.goto(report_url)
    ring = page.get_by_role("table", name="People whose message failed, with their Champion's "
                                          "prison")
    await expect(ring.get_by_role("row").nth(1)).to_contain_text("Bea")
    await expect(ring.get_by_role("row").nth(1)).to_contain_text("HMP Test")
    await expect(page.get_by_role("link", name="Download who to ring (CSV)")).to_be_visible()
