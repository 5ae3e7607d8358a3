"""Fixtures for the staff console: the real app on this test's database, a client that keeps
cookies like a browser, a clock the test moves, and signing in through the real form.

    async def test_home(client: httpx.AsyncClient, staff_login: StaffLogin) -> None:
        me = await staff_login(client, role="champion", prison="HMP Test")
        page = read_page((await client.get("/staff/")).text)   # tests.auxil.web
        assert page.links["Participants"] == "/staff/participants"

    async def test_form(client, staff_login) -> None:
        await staff_login(client)
        response = await submit(client, "/staff/password", {...})  # GET, token, POST

`staff_login` makes the account with `add_staff` (the domain function the CLI uses) and signs
in with its one-time password; pass `must_change_password=True` to land on the password page.
A second client (`await new_client()`) is a second browser on the same app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.accounts import add_staff
from bot.config import Settings
from bot.web import create_app
from storage.db import session_scope
from storage.models import StaffUser
from tests.auxil.web import read_page

BASE_URL = "http://127.0.0.1:8000"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday, midday
SECRET = "test-secret-key-for-staff-sessions"


@dataclass
class Clock:
    """The time the web app thinks it is; tests move it."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move time forward."""
        self.now += timedelta(**delta)


def staff_settings(**overrides: Any) -> Settings:
    """Return settings for the staff console, ignoring any .env file."""
    values: dict[str, Any] = {"database_url": "sqlite:///unused.db",
                              "public_base_url": BASE_URL, "secret_key": SECRET}
    return Settings(_env_file=None, **{**values, **overrides})  # type: ignore[call-arg]


@dataclass(frozen=True)
class SignedIn:
    """A staff member signed in on a client."""

    staff_id: int
    email: str
    password: str
    role: str


NewClient = Callable[[], Awaitable[httpx.AsyncClient]]


class StaffLogin(Protocol):
    def __call__(self, client: httpx.AsyncClient, *, role: str = ..., prison: str | None = ...,
                 region: str | None = ..., email: str | None = ...,
                 must_change_password: bool = ...) -> Awaitable[SignedIn]: ...


async def make_staff(engine: AsyncEngine, *, role: str = "champion",
                     prison: str | None = "HMP Test", region: str | None = None,
                     email: str | None = None, must_change_password: bool = False,
                     now: datetime = NOW) -> tuple[StaffUser, str]:
    """Add a staff account with `add_staff`; return it and its one-time password."""
    if role != "champion":
        prison = None
    async with session_scope(engine) as session:
        return await add_staff(session, email=email or f"{role}@example.org", role=role,
                               prison=prison, region=region, now=now,
                               must_change_password=must_change_password)


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    """Open the sign-in page, fill in Email and Password, press Sign in."""
    page = read_page((await client.get("/staff/login")).text)
    return await client.post("/staff/login", data={
        "csrf_token": page.csrf, page.labels["Email"]: email, page.labels["Password"]: password})


@pytest.fixture
def clock() -> Clock:
    """Return the app's clock, at NOW."""
    return Clock()


@pytest.fixture
def settings() -> Settings:
    """Return the app's settings (http, so cookies are not Secure)."""
    return staff_settings()


@pytest.fixture
def app(engine: AsyncEngine, settings: Settings, clock: Clock) -> FastAPI:
    """Return the real web app on this test's database and clock."""
    return create_app(settings, engine, clock=clock)


@pytest.fixture
async def new_client(app: FastAPI, settings: Settings) -> AsyncIterator[NewClient]:
    """Return a maker of clients: each is a separate browser with its own cookies."""
    made: list[httpx.AsyncClient] = []

    async def make() -> httpx.AsyncClient:
        made.append(httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                      base_url=settings.public_base_url))
        return made[-1]

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
async def client(new_client: NewClient) -> httpx.AsyncClient:
    """Return a browser-like client: keeps cookies, does not follow redirects."""
    return await new_client()


@pytest.fixture
def staff_login(engine: AsyncEngine, clock: Clock) -> StaffLogin:
    """Return `await staff_login(client, role=..., prison=...)`: a new account, signed in."""

    async def login(client: httpx.AsyncClient, *, role: str = "champion",
                    prison: str | None = "HMP Test", region: str | None = None,
                    email: str | None = None, must_change_password: bool = False) -> SignedIn:
        user, password = await make_staff(engine, role=role, prison=prison, region=region,
                                          email=email, now=clock.now,
                                          must_change_password=must_change_password)
        response = await sign_in(client, user.email, password)
        assert response.status_code == 303, response.text
        assert user.id is not None
        return SignedIn(user.id, user.email, password, role)

    return login
