"""Did Twilio take it? Lookups, slow and unreadable answers, and what a message costs.

The real TwilioSender drives the real twilio library against FakeTwilio, in process through
httpx.ASGITransport, or on a loopback server where a real read timeout is needed.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from telegram import Bot
from telegram.request import HTTPXRequest
from twilio.rest import Client

from bot.channels.render import render_sms, sms_segments
from bot.channels.sms import TWILIO_API, HttpxTwilioClient, TwilioSender
from bot.channels.telegram import TelegramSender
from scheduler.errors import PermanentSendError, TransientSendError
from scheduler.sender import OutgoingMessage
from storage.models import IdentityStatus
from tests.bot.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    BOT_TOKEN,
    NOW,
    OUR_NUMBER,
    PHONE,
    PUBLIC,
    Clock,
)
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio

OTHER_PHONE = "+447700900456"
CHOICES = (("Yes", "YES"), ("No", "NO"))


def outgoing(body: str = "Your meeting is at 6pm.", *, address: str = PHONE, **kw: object
             ) -> OutgoingMessage:
    """Return an SMS outbox message claimed at NOW unless told otherwise."""
    values: dict[str, object] = {"id": 7, "channel": "sms", "address": address, "body": body,
                                 "claimed_at": NOW, **kw}
    return OutgoingMessage(**values)  # type: ignore[arg-type]


def make_sender(clock: Clock, *, transport: httpx.AsyncBaseTransport | None = None,
                api_base_url: str = TWILIO_API, timeout: float = 10.0) -> TwilioSender:
    """Build the sender as from_settings does, with our clock and timeout."""
    http = HttpxTwilioClient(api_base_url=api_base_url, timeout=timeout, transport=transport)
    client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
    return TwilioSender(client=client, status_callback=f"{PUBLIC}/sms/status",
                        from_number=OUR_NUMBER, clock=clock)


@pytest.fixture
def clock() -> Clock:
    """Return the clock Twilio and our sender share, at NOW."""
    return Clock()


@pytest.fixture
def twilio(clock: Clock) -> FakeTwilio:
    """Return a fake Twilio whose messages are dated by the test clock."""
    return FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, our_number=OUR_NUMBER, now=clock)


@pytest.fixture
async def sender(twilio: FakeTwilio, clock: Clock) -> AsyncIterator[TwilioSender]:
    """Return a sender reaching the fake in process."""
    built = make_sender(clock, transport=httpx.ASGITransport(twilio.app))
    yield built
    await built.aclose()


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """Serve an ASGI app on a loopback port; yield its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            lifespan="off", ws="none", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def closed_port() -> int:
    """Return a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_lookup_finds_the_message_twilio_took(
    sender: TwilioSender, twilio: FakeTwilio, clock: Clock
) -> None:
    message = outgoing(choices=CHOICES)
    sent = await sender.send(message)
    clock.advance(seconds=30)
    found = await sender.lookup(message)
    assert found is not None
    assert found.provider_id == sent.provider_id == twilio.messages[0]["sid"]
    assert found.segments == 1
    [query] = twilio.queries
    assert query["To"] == PHONE and query["PageSize"] == "20"


async def test_lookup_returns_none_for_a_message_never_sent(
    sender: TwilioSender, twilio: FakeTwilio
) -> None:
    message = outgoing()
    await sender.send(outgoing("Something else."))  # same number, other text
    await sender.send(outgoing(message.body, address=OTHER_PHONE))  # same text, other number
    await sender.send(outgoing(message.body, choices=CHOICES))  # rendered differently
    assert len(twilio.messages) == 3
    assert await sender.lookup(message) is None
    assert len(twilio.queries) == 1


async def test_lookup_ignores_the_same_text_sent_before_the_claim(
    sender: TwilioSender, twilio: FakeTwilio, clock: Clock
) -> None:
    first = await sender.send(outgoing())  # yesterday's reminder, same words
    clock.advance(minutes=10)
    retry = outgoing(claimed_at=clock.now)
    assert await sender.lookup(retry) is None
    again = await sender.send(retry)
    found = await sender.lookup(retry)
    assert found is not None and found.provider_id == again.provider_id != first.provider_id
    assert [m["sid"] for m in twilio.messages] == [first.provider_id, again.provider_id]


async def test_lookup_allows_for_a_little_clock_skew_only(
    sender: TwilioSender, clock: Clock
) -> None:
    sent = await sender.send(outgoing())
    # Twilio's clock is two seconds behind ours: its date_created is before our claim.
    ahead = outgoing(claimed_at=clock.now + timedelta(seconds=2, microseconds=900_000))
    found = await sender.lookup(ahead)
    assert found is not None and found.provider_id == sent.provider_id
    # Ten seconds later it is the reply to an earlier MENU, not this one: send this one.
    assert await sender.lookup(outgoing(claimed_at=clock.now + timedelta(seconds=10))) is None


async def test_lookup_takes_the_newest_of_two_close_matches(
    sender: TwilioSender, clock: Clock
) -> None:
    await sender.send(outgoing())  # the same words to the same number, a second earlier
    clock.advance(seconds=1)
    ours = await sender.send(outgoing(claimed_at=clock.now))
    found = await sender.lookup(outgoing(claimed_at=clock.now))
    assert found is not None and found.provider_id == ours.provider_id


async def test_lookup_without_a_claim_time_searches_one_day(
    sender: TwilioSender, clock: Clock
) -> None:
    sent = await sender.send(outgoing())
    clock.advance(hours=23)
    found = await sender.lookup(outgoing(claimed_at=None))
    assert found is not None and found.provider_id == sent.provider_id
    clock.advance(hours=2)
    assert await sender.lookup(outgoing(claimed_at=None)) is None


async def test_lookup_reads_further_pages(
    sender: TwilioSender, twilio: FakeTwilio
) -> None:
    sent = await sender.send(outgoing())
    for n in range(25):  # newer messages push ours onto the second page
        await sender.send(outgoing(f"Update {n}."))
    found = await sender.lookup(outgoing())
    assert found is not None and found.provider_id == sent.provider_id
    assert len(twilio.queries) == 2
    assert twilio.queries[1]["PageToken"].startswith("PASM")


async def test_lookup_when_twilio_cannot_be_asked(
    sender: TwilioSender, twilio: FakeTwilio
) -> None:
    await sender.send(outgoing())
    twilio.auth_token = "0" * 32  # our credentials no longer match
    with pytest.raises(TransientSendError):
        await sender.lookup(outgoing())
    assert len(twilio.queries) == 1


async def test_slow_answer_may_have_been_sent_and_lookup_finds_it(
    twilio: FakeTwilio, clock: Clock
) -> None:
    twilio.answer_delay = 0.3  # Twilio takes the message but answers too late
    async with serving(twilio.app) as base:
        slow = make_sender(clock, api_base_url=base, timeout=0.1)
        try:
            with pytest.raises(TransientSendError) as caught:
                await slow.send(outgoing())
            assert caught.value.maybe_sent is True
            assert len(twilio.messages) == 1  # it did arrive
            found = await slow.lookup(outgoing())
        finally:
            await slow.aclose()
    assert found is not None and found.provider_id == twilio.messages[0]["sid"]


async def test_connect_error_was_certainly_not_sent(clock: Clock) -> None:
    nowhere = make_sender(clock, api_base_url=f"http://127.0.0.1:{closed_port()}")
    try:
        with pytest.raises(TransientSendError) as caught:
            await nowhere.send(outgoing())
        assert caught.value.maybe_sent is False
        assert caught.value.reason == "twilio unreachable: ConnectError"
        with pytest.raises(TransientSendError):
            await nowhere.lookup(outgoing())
    finally:
        await nowhere.aclose()


async def test_unreadable_201_may_have_been_sent(
    sender: TwilioSender, twilio: FakeTwilio
) -> None:
    twilio.malformed_next = 1
    with pytest.raises(TransientSendError) as caught:
        await sender.send(outgoing())
    assert caught.value.maybe_sent is True
    assert caught.value.code == "201"
    assert len(twilio.messages) == 1
    found = await sender.lookup(outgoing())
    assert found is not None and found.provider_id == twilio.messages[0]["sid"]
    assert (await sender.send(outgoing("Next."))).provider_id == twilio.messages[1]["sid"]


async def test_rate_limit_and_server_errors_are_not_sent(
    sender: TwilioSender, twilio: FakeTwilio
) -> None:
    twilio.fail_next(20429, retry_after=5)
    with pytest.raises(TransientSendError) as limited:
        await sender.send(outgoing())
    assert (limited.value.maybe_sent, limited.value.retry_after) == (False, 5.0)
    twilio.fail_next(20500)
    with pytest.raises(TransientSendError) as broken:
        await sender.send(outgoing())
    assert (broken.value.maybe_sent, broken.value.reason) == (False, "twilio http 500")
    assert twilio.messages == [] and await sender.lookup(outgoing()) is None


@pytest.mark.parametrize(("body", "choices", "segments"), [
    ("a" * 150, (), 1),
    ("a" * 150, CHOICES, 2),  # the numbered choices push it over 160
    ("Well done \U0001f600 " + "a" * 60, CHOICES, 2),  # an emoji makes it UCS-2: 84 units
    ("Cost \u2014 \u201cnone\u201d " + "a" * 140, (), 1),  # typography swapped: GSM-7
])
async def test_cost_counts_the_segments_twilio_sends(
    sender: TwilioSender, twilio: FakeTwilio, body: str, choices: tuple[tuple[str, str], ...],
    segments: int,
) -> None:
    message = outgoing(body, choices=choices)
    cost = sender.cost(message)
    result = await sender.send(message)
    sent = twilio.messages[-1]
    assert sent["body"] == render_sms(body, choices)
    assert cost == float(sms_segments(sent["body"])) == float(sent["num_segments"])
    assert cost == float(segments) and result.segments == segments


async def test_cost_of_choices_is_more_than_the_bare_body(sender: TwilioSender) -> None:
    assert sender.cost(outgoing("a" * 150)) == 1.0
    assert sender.cost(outgoing("a" * 150, choices=CHOICES)) == 2.0


# Telegram: the same distinction between "maybe sent" and "certainly not" --------------------


class _CutOff(httpx.AsyncBaseTransport):
    """Reach the fake Bot API, but fail sendMessage before or after it arrives."""

    def __init__(self, fake: FakeTelegram, error: type[httpx.TransportError], *, after: bool
                 ) -> None:
        self.inner = httpx.ASGITransport(fake.app)
        self.error = error
        self.after = after

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/sendMessage"):
            return await self.inner.handle_async_request(request)
        if self.after:
            await self.inner.handle_async_request(request)
        raise self.error("cut off", request=request)


@pytest.mark.parametrize(("error", "after", "maybe_sent"), [
    (httpx.ReadTimeout, True, True),
    (httpx.RemoteProtocolError, True, True),
    (httpx.ConnectTimeout, False, False),
    (httpx.ConnectError, False, False),
])
async def test_telegram_failures_say_whether_the_message_may_have_arrived(
    error: type[httpx.TransportError], after: bool, maybe_sent: bool
) -> None:
    fake = FakeTelegram(BOT_TOKEN)
    bot = Bot(BOT_TOKEN, base_url="http://telegram.test/bot",
              request=HTTPXRequest(httpx_kwargs={"transport": _CutOff(fake, error,
                                                                      after=after)}))
    await bot.initialize()
    try:
        with pytest.raises(TransientSendError) as caught:
            await TelegramSender(bot).send(OutgoingMessage(
                id=1, channel="telegram", address="424242", body="Hello"))
    finally:
        await bot.shutdown()
    assert caught.value.maybe_sent is maybe_sent
    assert len(fake.delivered) == (1 if after else 0)


async def test_telegram_address_that_is_not_a_chat_id() -> None:
    fake = FakeTelegram(BOT_TOKEN)
    bot = Bot(BOT_TOKEN, base_url="http://telegram.test/bot",
              request=HTTPXRequest(httpx_kwargs={"transport": httpx.ASGITransport(fake.app)}))
    await bot.initialize()
    sender = TelegramSender(bot)
    message = OutgoingMessage(id=1, channel="telegram", address="None", body="Hello")
    try:
        with pytest.raises(PermanentSendError) as caught:
            await sender.send(message)
    finally:
        await bot.shutdown()
    assert caught.value.identity_status == IdentityStatus.UNREACHABLE
    assert fake.called("sendMessage") == [] and sender.cost(message) == 1.0
