"""Staff sessions: redirects, cookies, CSRF, idle timeout, signing out, headers."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.web import create_app
from tests.auxil.web import read_page, submit
from tests.web.conftest import Clock, NewClient, StaffLogin, make_staff, sign_in, staff_settings


@pytest.mark.parametrize("path", ["/staff/", "/staff/password"])
async def test_no_staff_page_without_a_session(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/login"


async def test_after_signing_in_you_go_where_you_were_going(
        client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    _user, password = await make_staff(engine, role="admin")
    assert (await client.get("/staff/password")).status_code == 303
    response = await sign_in(client, "admin@example.org", password)
    assert response.headers["location"] == "/staff/password"


async def test_session_cookie_is_httponly_lax_and_only_for_staff_pages(
        client: httpx.AsyncClient) -> None:
    cookie = (await client.get("/staff/login")).headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/staff" in cookie
    assert "secure" not in cookie
    assert "set-cookie" not in (await client.get("/healthz")).headers


async def test_session_cookie_is_secure_behind_https(engine: AsyncEngine, clock: Clock) -> None:
    settings = staff_settings(public_base_url="https://throughcare.example.org")
    app = create_app(settings, engine, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                 base_url=settings.public_base_url) as browser:
        cookie = (await browser.get("/staff/login")).headers["set-cookie"].lower()
    assert "; secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


@pytest.mark.parametrize("token", [None, "forged-token"])
async def test_a_post_without_the_session_csrf_token_is_refused(
        client: httpx.AsyncClient, staff_login: StaffLogin, token: str | None) -> None:
    await staff_login(client)
    data = {} if token is None else {"csrf_token": token}
    response = await client.post("/staff/logout", data=data)
    assert response.status_code == 403
    assert "This form has expired" in response.text
    assert (await client.get("/staff/")).status_code == 200  # still signed in


async def test_sign_in_form_needs_its_csrf_token_too(client: httpx.AsyncClient,
                                                      engine: AsyncEngine) -> None:
    _user, password = await make_staff(engine)
    await client.get("/staff/login")
    response = await client.post("/staff/login", data={"email": "champion@example.org",
                                                       "password": password})
    assert response.status_code == 403


async def test_idle_staff_are_signed_out(client: httpx.AsyncClient, staff_login: StaffLogin,
                                         clock: Clock) -> None:
    await staff_login(client)
    for _ in range(3):  # activity keeps the session alive well past 30 minutes in all
        clock.advance(minutes=29)
        assert (await client.get("/staff/")).status_code == 200
    clock.advance(minutes=30, seconds=1)
    response = await client.get("/staff/")
    assert response.headers["location"] == "/staff/login"
    page = read_page((await client.get("/staff/login")).text)
    assert page.notice == ("You were signed out after 30 minutes without activity. "
                           "Sign in again.")
    assert (await client.get("/staff/")).status_code == 303


async def test_idle_timeout_follows_the_setting(engine: AsyncEngine, clock: Clock) -> None:
    settings = staff_settings(staff_idle_minutes=5)
    app: FastAPI = create_app(settings, engine, clock=clock)
    _user, password = await make_staff(engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                 base_url=settings.public_base_url) as browser:
        await sign_in(browser, "champion@example.org", password)
        clock.advance(minutes=5, seconds=1)
        assert (await browser.get("/staff/")).status_code == 303


async def test_sign_out_ends_the_session_even_for_a_copied_cookie(
        client: httpx.AsyncClient, staff_login: StaffLogin, new_client: NewClient) -> None:
    await staff_login(client)
    copy = await new_client()
    copy.cookies = httpx.Cookies(client.cookies)
    assert (await copy.get("/staff/")).status_code == 200
    response = await submit(client, "/staff/logout", {}, form_page="/staff/")
    assert response.status_code == 303 and response.headers["location"] == "/staff/login"
    assert read_page((await client.get("/staff/login")).text).notice == "You have signed out."
    assert (await client.get("/staff/")).status_code == 303
    assert (await copy.get("/staff/")).status_code == 303


async def test_a_new_password_ends_other_sessions(
        client: httpx.AsyncClient, staff_login: StaffLogin, new_client: NewClient) -> None:
    me = await staff_login(client)
    other = await new_client()
    await sign_in(other, me.email, me.password)
    assert (await other.get("/staff/")).status_code == 200
    await submit(client, "/staff/password", {
        "current_password": me.password, "new_password": "another long password",
        "confirm_password": "another long password"})
    assert (await client.get("/staff/")).status_code == 200
    assert (await other.get("/staff/")).status_code == 303


async def test_staff_pages_are_not_cached_or_framed(client: httpx.AsyncClient) -> None:
    headers = (await client.get("/staff/login")).headers
    assert headers["cache-control"] == "no-store"
    assert headers["x-frame-options"] == "DENY"
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp


async def test_the_stylesheet_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/staff/static/staff.css")
    assert response.status_code == 200 and "text/css" in response.headers["content-type"]
    assert ":focus" in response.text


async def test_unknown_staff_pages_are_a_page_not_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/staff/no-such-page")
    assert response.status_code == 404
    assert read_page(response.text).h1 == "Page not found"
    assert (await client.get("/no-such-page")).json() == {"detail": "Not Found"}


async def test_signed_in_person_is_named_in_the_header(
        client: httpx.AsyncClient, staff_login: StaffLogin) -> None:
    await staff_login(client, role="coordinator", region="West Midlands")
    html = (await client.get("/staff/")).text
    assert "Signed in as <strong>coordinator@example.org</strong>" in html
    assert "Coordinator, West Midlands" in html
