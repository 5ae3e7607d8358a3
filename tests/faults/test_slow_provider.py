"""One channel's provider slow or refusing never holds up another channel's replies: the
fakes answer over real HTTP clients (Twilio's, python-telegram-bot's) through one loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.sms import TwilioSender
from bot.channels.telegram import TelegramSender, build_application
from scheduler.ratelimit import ChannelLimit, RateLimiter
from scheduler.sender import Sender
from scheduler.service import DispatchLoop
from storage.models import MessageKind
from tests.bot.conftest import CHAT_ID, Stack, make_settings
from tests.scheduler.conftest import put

SLOW = 3.0  # seconds the slow provider takes to answer each call
SMS_BACKLOG = 12  # more SMS replies than the loop makes calls at once


async def _loop(engine: AsyncEngine, senders: dict[str, Sender]) -> AsyncIterator[DispatchLoop]:
    limits = {"sms": ChannelLimit(per_second=100.0),
              "telegram": ChannelLimit(per_second=30.0, per_chat_per_second=1.0)}
    loop = DispatchLoop(engine, senders, limiter=RateLimiter(limits=limits), safety=0.5)
    await loop.start()
    try:
        yield loop
    finally:
        await loop.stop(grace=SLOW + 5)


async def _queue(engine: AsyncEngine, first: str, then: str) -> None:
    """Queue a backlog of replies on `first`, then one reply on `then`."""
    now = datetime.now(UTC)
    for i in range(SMS_BACKLOG):
        address = f"+4477009{i:05d}" if first == "sms" else str(CHAT_ID + 1 + i)
        await put(engine, f"{first}{i}", now=now, channel=first, address=address,
                  kind=MessageKind.REPLY)
    await put(engine, "other", now=now, channel=then,
              address=str(CHAT_ID) if then == "telegram" else "+447700900123",
              kind=MessageKind.REPLY)


async def _took(arrived: Callable[[], bool]) -> float:
    t0 = time.monotonic()
    while not arrived():
        assert time.monotonic() - t0 < 20, "never arrived"
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


@pytest.mark.parametrize("fault", ["slow", "refusing"])
async def test_twilio_slow_or_down_never_holds_up_telegram(
    stack: Stack, engine: AsyncEngine, fault: str
) -> None:
    if fault == "slow":
        stack.twilio.answer_delay = SLOW
        sms = TwilioSender.from_settings(stack.settings,
                                         transport=httpx.ASGITransport(stack.twilio.app))
    else:  # nothing listens where Twilio should be
        sms = TwilioSender.from_settings(make_settings(twilio_api_base_url="http://127.0.0.1:9"))
    await _queue(engine, "sms", "telegram")
    senders: dict[str, Sender] = {"sms": sms, "telegram": TelegramSender(stack.tg_app.bot)}
    try:
        async for _loop_running in _loop(engine, senders):
            took = await _took(lambda: bool(stack.telegram.seen(CHAT_ID)))
    finally:
        await sms.aclose()
    print(f"telegram reply behind a {fault} Twilio: {took:.2f}s")
    assert took < 1.0


class Slow(httpx.AsyncBaseTransport):
    """The network to a provider that takes `SLOW` seconds over every answer."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer late."""
        await asyncio.sleep(SLOW)
        return await self.inner.handle_async_request(request)


async def test_telegram_slow_never_holds_up_sms(stack: Stack, engine: AsyncEngine) -> None:
    sms = TwilioSender.from_settings(stack.settings,
                                     transport=httpx.ASGITransport(stack.twilio.app))
    slow = build_application(stack.settings, stack.app.state.channels,
                             transport=Slow(stack.telegram.app))
    await _queue(engine, "telegram", "sms")
    senders: dict[str, Sender] = {"sms": sms, "telegram": TelegramSender(slow.bot)}
    try:
        async for _loop_running in _loop(engine, senders):
            took = await _took(lambda: bool(stack.twilio.seen("+447700900123")))
    finally:
        await sms.aclose()
        await slow.shutdown()
    print(f"sms reply behind a slow Telegram: {took:.2f}s")
    assert took < 1.0


async def test_a_reply_written_while_a_slow_call_is_out_is_not_held_up_by_it(
    stack: Stack, engine: AsyncEngine
) -> None:
    """The loop's pass waits for its calls; a reply written while one is out at a slow
    Telegram waited for it too (2.8 s of the 3). Now the write wakes the pass to look."""
    sms = TwilioSender.from_settings(stack.settings,
                                     transport=httpx.ASGITransport(stack.twilio.app))
    slow = build_application(stack.settings, stack.app.state.channels,
                             transport=Slow(stack.telegram.app))
    senders: dict[str, Sender] = {"sms": sms, "telegram": TelegramSender(slow.bot)}
    try:
        async for _loop_running in _loop(engine, senders):
            await asyncio.sleep(0.3)  # the loop is idle
            await put(engine, "slow", now=datetime.now(UTC), channel="telegram",
                      address=str(CHAT_ID), kind=MessageKind.REPLY)
            await asyncio.sleep(0.3)  # that call is out, and will be for seconds
            await put(engine, "quick", now=datetime.now(UTC), channel="sms",
                      address="+447700900123", kind=MessageKind.REPLY)
            took = await _took(lambda: bool(stack.twilio.seen("+447700900123")))
            assert not stack.telegram.seen(CHAT_ID)  # the slow one is still out
    finally:
        await sms.aclose()
        await slow.shutdown()
    print(f"sms reply written during a slow Telegram call: {took:.2f}s")
    assert took < 1.0
