"""Fixtures for browser tests: the real app served by uvicorn on loopback, Debian's Chromium
driven by Playwright, and the fake Twilio playing the phone network against the live server.

    async def test_home(page: Page, champion: Account) -> None:
        await sign_in(page, champion)                       # tests.web.browser.helpers
        await expect(page.get_by_role("heading", level=1)).to_have_text("Recovery Champion home")

`live` is the served app: its URL, the clock the app reads (tests move it), the database, and
`live.twilio`, whose `text_from()` posts signed inbound SMS to the live URL. Pages find things
as a person does (labels, roles, names), never by CSS. Failed tests leave a screenshot in
ARTEFACTS (TC_ARTEFACTS, or throughcare-artefacts in the temp directory), never in the repo.
Tests that need `browser` or `page` skip, saying so, when /usr/bin/chromium is absent.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, Page, async_playwright, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.sms import TwilioSender
from bot.config import Settings
from bot.web import create_app
from meeting_finder.demo import load_demo_meetings
from storage.db import session_scope
from tests.fakes.twilio_api import FakeTwilio
from tests.web.browser.helpers import ARTEFACTS, CHROMIUM, Account, artefact_name
from tests.web.conftest import Clock, make_staff, staff_settings

BOT = "ThroughcareTestBot"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 32
OUR_NUMBER = "+447700900001"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
WAIT_MS = 30_000  # the longest any one step may take before the test fails (a busy CI machine)


@dataclass
class Live:
    """The app as served on loopback, and what it talks to."""

    url: str
    clock: Clock
    engine: AsyncEngine
    twilio: FakeTwilio
    settings: Settings

    def texts_to(self, number: str) -> list[str]:
        """Return every SMS the phone with this number has received, in order."""
        return self.twilio.seen(number)

    async def text_from(self, number: str, body: str,
                        until: Callable[[list[str]], bool] | None = None) -> list[str]:
        """Send an SMS from a phone; wait for the replies `until` accepts; return them."""
        before = len(self.texts_to(number))
        self.clock.advance(seconds=5)  # people take a moment to type
        response = await self.twilio.text_from(number, body)
        assert response.status_code == 200, response.text
        check = until or (lambda replies: bool(replies))
        # The replies go after the 200, in the server's background: wait for them to land.
        for _ in range(WAIT_MS // 20):
            if check(self.texts_to(number)[before:]):
                break
            await asyncio.sleep(0.02)
        replies = self.texts_to(number)[before:]
        assert check(replies), f"the phone did not get the replies expected: {replies}"
        return replies


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    """Return a socket bound to a free loopback port (kept, so no one else can take it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


@pytest.fixture
def base_url(listening: socket.socket) -> str:
    """Return the live server's URL: what PUBLIC_BASE_URL says and Twilio signs against."""
    return f"http://127.0.0.1:{listening.getsockname()[1]}"


@pytest.fixture
def settings(base_url: str) -> Settings:
    """Return the app's settings: SMS through the fake Twilio, and a bot name for the QR."""
    return staff_settings(public_base_url=base_url, twilio_account_sid=ACCOUNT_SID,
                          twilio_auth_token=AUTH_TOKEN, twilio_from_number=OUR_NUMBER,
                          telegram_bot_username=BOT)


@pytest.fixture
def twilio(base_url: str) -> FakeTwilio:
    """Return the fake Twilio, with our live webhook set on its number."""
    return FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, webhook_url=f"{base_url}/sms/inbound",
                      our_number=OUR_NUMBER)


@pytest.fixture
async def app(engine: AsyncEngine, settings: Settings, clock: Clock,
              twilio: FakeTwilio) -> AsyncIterator[FastAPI]:
    """Return the real app on this test's database and clock, sending SMS to the fake."""
    sender = TwilioSender.from_settings(settings, transport=httpx.ASGITransport(twilio.app))
    async with session_scope(engine) as session:  # the meetings a plan can choose from
        await load_demo_meetings(session, now=clock.now)
    yield create_app(settings, engine, senders={"sms": sender}, clock=clock)
    await sender.aclose()


@pytest.fixture
async def live(app: FastAPI, listening: socket.socket, base_url: str, clock: Clock,
               engine: AsyncEngine, twilio: FakeTwilio,
               settings: Settings) -> AsyncIterator[Live]:
    """Serve the app with uvicorn on loopback, in this test's event loop."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listening]))
    for _ in range(500):  # up to 10 s
        if server.started or task.done():
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    twilio.client = httpx.AsyncClient(base_url=base_url, timeout=WAIT_MS / 1000)
    try:
        yield Live(base_url, clock, engine, twilio, settings)
    finally:
        await twilio.client.aclose()
        server.should_exit = True
        await task


@pytest.fixture
async def champion(engine: AsyncEngine, clock: Clock) -> Account:
    """Add a Recovery Champion at HMP Test who has chosen their own password."""
    user, password = await make_staff(engine, role="champion", prison="HMP Test",
                                      email="champion@example.org", now=clock.now)
    return Account(user.email, password)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Launch Debian's Chromium (never a downloaded one), headless."""
    if not CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                    args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser, live: Live,
               request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """Open a fresh browser window on the live app; keep a screenshot if the test fails."""
    context = await browser.new_context(base_url=live.url, locale="en-GB",
                                        timezone_id="Europe/London",
                                        viewport={"width": 1100, "height": 900})
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    opened = await context.new_page()
    try:
        yield opened
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            ARTEFACTS.mkdir(parents=True, exist_ok=True)
            await opened.screenshot(path=ARTEFACTS / artefact_name(request.node.name, "failed"),
                                    full_page=True)
    finally:
        await context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, so fixtures can see whether it failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
