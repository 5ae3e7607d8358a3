"""Signing in as staff: the form, what is wrong shown beside the field, lockout, new passwords."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from storage.db import session_scope
from storage.models import StaffUser
from tests.auxil.web import read_page, submit
from tests.web.conftest import Clock, NewClient, StaffLogin, make_staff, sign_in


async def test_sign_in_page_has_labelled_fields_and_a_button(client: httpx.AsyncClient) -> None:
    response = await client.get("/staff/login")
    assert response.status_code == 200
    page = read_page(response.text)
    assert page.title == "Sign in – throughcare" and page.h1 == "Sign in"
    assert page.inputs[page.labels["Email"]]["type"] == "email"
    assert page.inputs[page.labels["Password"]]["type"] == "password"
    assert page.buttons == ["Sign in"]
    assert page.csrf


async def test_right_password_signs_in_to_the_role_home(client: httpx.AsyncClient,
                                                        engine: AsyncEngine) -> None:
    user, password = await make_staff(engine, role="champion", prison="HMP Test")
    response = await sign_in(client, "  Champion@Example.org ", password)
    assert response.status_code == 303 and response.headers["location"] == "/staff/"
    page = read_page((await client.get("/staff/")).text)
    assert page.h1 == "Recovery Champion home"
    assert "Sign out" in page.buttons


async def test_wrong_password_is_shown_beside_the_field_and_in_the_summary(
        client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await make_staff(engine, role="champion")
    response = await sign_in(client, "champion@example.org", "not-the-password")
    assert response.status_code == 400
    page = read_page(response.text)
    assert page.title.startswith("Error: ")
    assert page.error_for("Password") == "Your email or password is not right"
    assert page.summary == [("#password", "Your email or password is not right")]
    assert page.value_of("Email") == "champion@example.org"  # what was typed is kept
    assert page.value_of("Password") == ""  # but never the password
    assert (await client.get("/staff/")).headers["location"] == "/staff/login"


async def test_unknown_email_reads_the_same_as_a_wrong_password(
        client: httpx.AsyncClient) -> None:
    page = read_page((await sign_in(client, "nobody@example.org", "whatever-it-is")).text)
    assert page.error_for("Password") == "Your email or password is not right"


async def test_empty_fields_each_get_their_message(client: httpx.AsyncClient) -> None:
    response = await sign_in(client, "", "")
    page = read_page(response.text)
    assert response.status_code == 400
    assert page.summary == [("#email", "Enter your email address"),
                            ("#password", "Enter your password")]
    assert page.error_for("Email") == "Enter your email address"
    assert page.inputs["email"]["aria-describedby"] == "email-error"


async def test_five_wrong_passwords_lock_the_account_for_15_minutes(
        client: httpx.AsyncClient, engine: AsyncEngine, clock: Clock) -> None:
    _user, password = await make_staff(engine, role="champion")
    for _ in range(4):
        page = read_page((await sign_in(client, "champion@example.org", "wrong-guess")).text)
        assert page.error_for("Password") == "Your email or password is not right"
    page = read_page((await sign_in(client, "champion@example.org", "wrong-guess")).text)
    locked = ("This account is locked after 5 wrong passwords. Try again after 12:15pm")
    assert page.error_for("Password") == locked  # 12:00 UTC is 12:00 in London in November
    clock.advance(minutes=14, seconds=59)
    page = read_page((await sign_in(client, "champion@example.org", password)).text)
    assert page.error_for("Password") == locked  # even the right password waits
    async with session_scope(engine) as session:
        row = (await session.exec(select(StaffUser))).one()
    assert row.locked_until == clock.now.replace(minute=15, second=0)
    clock.advance(seconds=1)
    response = await sign_in(client, "champion@example.org", password)
    assert response.status_code == 303 and response.headers["location"] == "/staff/"


async def test_a_good_sign_in_clears_the_count_of_wrong_ones(
        client: httpx.AsyncClient, new_client: NewClient, engine: AsyncEngine) -> None:
    _user, password = await make_staff(engine, role="champion")
    for _ in range(4):
        await sign_in(client, "champion@example.org", "wrong-guess")
    assert (await sign_in(client, "champion@example.org", password)).status_code == 303
    other = await new_client()
    for _ in range(4):
        page = read_page((await sign_in(other, "champion@example.org", "wrong-guess")).text)
    assert page.error_for("Password") == "Your email or password is not right"


async def test_first_sign_in_asks_for_a_new_password(
        client: httpx.AsyncClient, staff_login: StaffLogin, new_client: NewClient) -> None:
    me = await staff_login(client, must_change_password=True)
    assert (await client.get("/staff/")).headers["location"] == "/staff/password"
    page = read_page((await client.get("/staff/password")).text)
    assert page.h1 == "Choose a new password"
    assert set(page.labels) == {"New password", "Confirm new password"}

    short = await submit(client, "/staff/password", {
        "new_password": "too-short", "confirm_password": "too-shorter"})
    page = read_page(short.text)
    assert short.status_code == 400
    assert page.error_for("New password") == "Your new password must be 12 characters or more"
    assert page.error_for("Confirm new password") == "The passwords do not match"
    assert [href for href, _ in page.summary] == ["#new_password", "#confirm_password"]

    same = await submit(client, "/staff/password", {
        "new_password": me.password, "confirm_password": me.password})
    assert read_page(same.text).error_for("New password") == (
        "Choose a password different from your current one")

    done = await submit(client, "/staff/password", {
        "new_password": "correct horse battery", "confirm_password": "correct horse battery"})
    assert done.status_code == 303 and done.headers["location"] == "/staff/"
    home = read_page((await client.get("/staff/")).text)
    assert home.notice == "Your password has been changed."

    again = await new_client()
    assert (await sign_in(again, me.email, me.password)).status_code == 400
    response = await sign_in(again, me.email, "correct horse battery")
    assert response.headers["location"] == "/staff/"


async def test_changing_a_password_later_needs_the_current_one(
        client: httpx.AsyncClient, staff_login: StaffLogin) -> None:
    me = await staff_login(client)
    page = read_page((await client.get("/staff/password")).text)
    assert page.h1 == "Change your password" and "Current password" in page.labels
    wrong = await submit(client, "/staff/password", {
        "current_password": "not it at all", "new_password": "a brand new password",
        "confirm_password": "a brand new password"})
    assert read_page(wrong.text).error_for("Current password") == (
        "Your current password is not right")
    right = await submit(client, "/staff/password", {
        "current_password": me.password, "new_password": "a brand new password",
        "confirm_password": "a brand new password"})
    assert right.status_code == 303
