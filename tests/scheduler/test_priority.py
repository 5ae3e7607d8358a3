"""Urgent first, in order: the real dispatcher loop, the real web app, Twilio's fake at 1/s.

These run on the real clock (one SMS segment a second is the point), kept to a few seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.inbox import utc_now
from bot.channels.sms import TwilioSender
from bot.serve import build_limiter
from bot.web import create_app
from handlers.texts import t
from meeting_finder.demo import load_demo_meetings
from scheduler.service import DispatchLoop
from storage.db import session_scope
from storage.models import MessageKind, Priority
from storage.outbox_q import enqueue_many
from tests.bot.conftest import ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER, PUBLIC, make_settings
from tests.fakes.twilio_api import FakeTwilio
from tests.scheduler.conftest import add_person, night_owl

SAM = "+447700900123"
ALI = "+447700900456"
CRISIS_FIRST_LINE = t("crisis.reply")[:30]


@dataclass
class Live:
    """The web app and a dispatcher loop sharing one limiter at TWILIO_MPS=1."""

    client: httpx.AsyncClient
    twilio: FakeTwilio
    loop: DispatchLoop
    engine: AsyncEngine

    def bodies_to(self, number: str) -> list[str]:
        return [m["body"] for m in self.twilio.messages if m["to"] == number]

    async def wait_for(self, check: Callable[[], object], limit: float = 40.0) -> None:
        """Wait until `check()` is true (the loop runs on the real clock)."""
        deadline = time.monotonic() + limit
        while not check():
            assert time.monotonic() < deadline, "timed out waiting"
            await asyncio.sleep(0.02)

    def text_in_background(self, number: str, body: str) -> asyncio.Task[httpx.Response]:
        """Post an inbound SMS; its fast path runs after the 200, so do not wait for it."""
        return asyncio.create_task(self.twilio.text_from(number, body))


@pytest.fixture
async def live(engine: AsyncEngine) -> AsyncIterator[Live]:
    """Wire the app, the fake Twilio and a running DispatchLoop at one segment a second."""
    settings = make_settings(twilio_mps=1, telegram_bot_token=None)
    twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, webhook_url=f"{PUBLIC}/sms/inbound",
                        our_number=OUR_NUMBER)
    sender = TwilioSender.from_settings(settings, transport=httpx.ASGITransport(twilio.app))
    limiter = build_limiter(settings, engine)
    app = create_app(settings, engine, senders={"sms": sender}, clock=utc_now,
                     limiter=limiter)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=PUBLIC)
    twilio.client = client
    loop = DispatchLoop(engine, {"sms": sender}, limiter=limiter)
    await loop.start()
    try:
        yield Live(client, twilio, loop, engine)
    finally:
        await loop.stop()
        await client.aclose()
        await sender.aclose()


async def _broadcast(engine: AsyncEngine, n: int) -> None:
    now = datetime.now(UTC)
    owl = await night_owl(engine)  # real clock: bulk must not wait for the morning
    async with session_scope(engine) as session:
        await enqueue_many(session, [
            {"channel": "sms", "address": f"+4477009{i:05d}", "body": f"Meeting moved {i}",
             "dedupe_key": f"bc:1:{i}", "kind": str(MessageKind.BROADCAST),
             "priority": Priority.BULK, "broadcast_id": 1, "participant_id": owl}
            for i in range(n)], now=now)


async def _sam(engine: AsyncEngine) -> None:
    today = datetime.now(UTC).date()
    await add_person(engine, phone=SAM, release=today - timedelta(days=3),
                     release_postcode="ST3 2QH", release_lat=52.99, release_lon=-2.13)
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=datetime.now(UTC))


@pytest.mark.parametrize("text", ["I want to kill myself", "MEETINGS ST3 2QH"])
async def test_urgent_reply_is_next_after_the_send_on_the_wire(
    live: Live, engine: AsyncEngine, text: str
) -> None:
    await _sam(engine)
    await _broadcast(engine, 200)
    live.loop.notify()
    await live.wait_for(lambda: len(live.twilio.messages) >= 2)  # the broadcast is going
    before = len(live.twilio.messages)
    task = live.text_in_background(SAM, text)
    await live.wait_for(lambda: live.bodies_to(SAM))
    assert (await task).status_code == 200
    order = [m["to"] for m in live.twilio.messages]
    first_reply = order.index(SAM)
    # At most the one broadcast text already on the wire went between.
    assert first_reply <= before, order[before - 1:first_reply + 1]
    if text.startswith("I want"):
        assert live.bodies_to(SAM)[0].startswith(CRISIS_FIRST_LINE)


async def test_one_numbers_flood_never_holds_up_anothers_crisis_reply(
    live: Live, engine: AsyncEngine
) -> None:
    await _sam(engine)
    await add_person(engine, name="Ali", phone=ALI,
                     release=datetime.now(UTC).date() - timedelta(days=3))
    floods = [live.text_in_background(SAM, "HELP") for _ in range(30)]
    await live.wait_for(lambda: len(live.bodies_to(SAM)) >= 2)
    before = len(live.twilio.messages)
    crisis = live.text_in_background(ALI, "I want to kill myself")
    await live.wait_for(lambda: live.bodies_to(ALI))
    order = [m["to"] for m in live.twilio.messages]
    assert order.index(ALI) <= before, "the crisis reply waited behind the flood"
    assert (await crisis).status_code == 200
    for task in floods:
        task.cancel()
    await asyncio.gather(*floods, return_exceptions=True)


async def test_replies_of_different_lengths_leave_in_the_order_written(
    live: Live, engine: AsyncEngine
) -> None:
    await _sam(engine)
    long = live.text_in_background(SAM, "MEETINGS ST3 2QH")  # a 2-3 segment reply
    await asyncio.sleep(0.05)
    short = live.text_in_background(SAM, "HELP")  # a short reply, written just after
    await live.wait_for(lambda: len(live.bodies_to(SAM)) >= 2)
    await asyncio.gather(long, short)
    first, second = live.bodies_to(SAM)[:2]
    assert "ST3 2QH" in first.upper() and second.startswith(t("help.text")[:20])
