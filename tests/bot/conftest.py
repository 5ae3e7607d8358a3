"""Fixtures for the channel tests: our web app wired to the fake Telegram and Twilio APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.channels.inbox import ChannelRuntime
from bot.channels.sms import TwilioSender
from bot.channels.telegram import SECRET_HEADER, TelegramSender, build_application
from bot.config import Settings
from bot.web import create_app
from scheduler.clock import SimClock
from scheduler.ratelimit import RateLimiter
from storage.db import session_scope
from storage.models import AuditEvent, ChannelIdentity, OutboundMessage, Participant
from storage.participants import enrol
from tests.fakes.telegram_api import FakeTelegram, FakeTelegramUser
from tests.fakes.twilio_api import FakeTwilio

PUBLIC = "https://throughcare.example.org"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 32
BOT_TOKEN = "7000000001:AAH-test-token-not-real_0123456789ab"
WEBHOOK_SECRET = "s3cret-Webhook_token"
OUR_NUMBER = "+447700900001"
PHONE = "+447700900123"
CHAT_ID = 424242
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday, midday


@dataclass
class Clock:
    """The time the web app thinks it is; tests move it."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move time forward."""
        self.now += timedelta(**delta)


@dataclass
class Stack:
    """Our app, its HTTP client, and the fakes it talks to."""

    app: FastAPI
    client: httpx.AsyncClient
    twilio: FakeTwilio
    telegram: FakeTelegram
    user: FakeTelegramUser
    clock: Clock
    engine: AsyncEngine
    settings: Settings
    tg_app: Any
    sim: SimClock = field(default_factory=SimClock)  # the rate limiter's clock

    def pause(self, seconds: float = 5.0) -> None:
        """Let time pass between a person's messages (as it does while they type)."""
        self.clock.advance(seconds=seconds)
        self.sim.advance(seconds)

    async def telegram_update(self, update: dict[str, Any], *, secret: str | None = None
                              ) -> httpx.Response:
        """Post an update to our webhook as Telegram does."""
        self.pause()
        return await self.client.post("/telegram/webhook", json=update, headers={
            SECRET_HEADER: WEBHOOK_SECRET if secret is None else secret})

    async def tg(self, text: str) -> list[str]:
        """Type a message on Telegram; return what the person sees next."""
        before = len(self.telegram.seen(self.user.chat_id))
        response = await self.telegram_update(self.user.text(text))
        assert response.status_code == 200
        return self.telegram.seen(self.user.chat_id)[before:]

    async def press(self, label: str) -> list[str]:
        """Press an inline button on Telegram; return what the person sees next."""
        before = len(self.telegram.seen(self.user.chat_id))
        response = await self.telegram_update(self.user.press(label))
        assert response.status_code == 200
        return self.telegram.seen(self.user.chat_id)[before:]

    async def sms(self, text: str, number: str = PHONE) -> list[str]:
        """Send an SMS; return what the phone receives next."""
        before = len(self.twilio.seen(number))
        self.pause()
        response = await self.twilio.text_from(number, text)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/xml")
        return self.twilio.seen(number)[before:]


def make_settings(**overrides: Any) -> Settings:
    """Return settings for the wired stack, ignoring any .env file."""
    values: dict[str, Any] = {
        "database_url": "sqlite:///unused.db", "public_base_url": PUBLIC,
        "twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": AUTH_TOKEN,
        "twilio_from_number": OUR_NUMBER, "telegram_bot_token": BOT_TOKEN,
        "telegram_webhook_secret": WEBHOOK_SECRET,
    }
    return Settings(_env_file=None, **{**values, **overrides})  # type: ignore[call-arg]


@pytest.fixture
def clock() -> Clock:
    """Return the stack's clock, at NOW."""
    return Clock()


@pytest.fixture
async def stack(engine: AsyncEngine, clock: Clock) -> AsyncIterator[Stack]:
    """Wire our app to the fakes through the real twilio and python-telegram-bot libraries."""
    settings = make_settings()
    twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, webhook_url=f"{PUBLIC}/sms/inbound",
                        our_number=OUR_NUMBER)
    telegram = FakeTelegram(BOT_TOKEN)
    sms_sender = TwilioSender.from_settings(settings, transport=httpx.ASGITransport(twilio.app))
    runtime = ChannelRuntime(engine=engine, settings=settings, clock=clock)
    tg_app = build_application(settings, runtime,
                               transport=httpx.ASGITransport(telegram.app))
    await tg_app.initialize()
    senders = {"sms": sms_sender, "telegram": TelegramSender(tg_app.bot)}
    sim = SimClock()
    app = create_app(settings, engine, senders=senders, telegram_app=tg_app, clock=clock,
                     limiter=RateLimiter(clock=sim))
    tg_app.bot_data["runtime"] = app.state.channels
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=PUBLIC)
    twilio.client = client
    try:
        yield Stack(app, client, twilio, telegram, FakeTelegramUser(telegram, CHAT_ID, "Sam"),
                    clock, engine, settings, tg_app, sim)
    finally:
        await client.aclose()
        await sms_sender.aclose()
        await tg_app.shutdown()


@dataclass
class Enrolled:
    participant_id: int
    code: str


@pytest.fixture
async def enrolled(engine: AsyncEngine) -> Enrolled:
    """Enrol Sam, released a week ago near Stoke-on-Trent."""
    async with session_scope(engine) as session:
        participant, code = await enrol(
            session, prison_name="HMP Test", display_name="Sam", release_date=date(2026, 11, 19),
            release_postcode="ST3 2QH", now=NOW, phone=None)
    assert participant.id is not None
    return Enrolled(participant.id, code)


async def db_counts(engine: AsyncEngine) -> dict[str, int]:
    """Count the rows a message could leave behind."""
    from storage.models import InboundMessage

    out = {}
    async with session_scope(engine) as session:
        for model in (InboundMessage, OutboundMessage, ChannelIdentity, AuditEvent):
            out[model.__name__] = len((await session.exec(select(model))).all())
    return out


async def outbox(engine: AsyncEngine, channel: str) -> list[OutboundMessage]:
    """Return the outbox rows of a channel in order."""
    async with session_scope(engine) as session:
        rows = await session.exec(select(OutboundMessage).where(
            OutboundMessage.channel == channel).order_by(col(OutboundMessage.id)))
        return list(rows.all())


async def identity(engine: AsyncEngine, channel: str, address: str) -> ChannelIdentity:
    """Return one channel identity."""
    async with session_scope(engine) as session:
        row = (await session.exec(select(ChannelIdentity).where(
            ChannelIdentity.channel == channel, ChannelIdentity.address == address))).one()
        return row


async def participant(engine: AsyncEngine, participant_id: int) -> Participant:
    """Return one participant."""
    async with session_scope(engine) as session:
        row = await session.get(Participant, participant_id)
        assert row is not None
        return row
