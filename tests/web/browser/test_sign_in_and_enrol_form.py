"""Signing in, and the enrolment form's errors, in a real browser as a Champion uses them."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.web.browser.helpers import Account, date_group, fill_sign_in, press, sign_in


async def test_signing_in_lands_on_the_champion_home(page: Page, champion: Account) -> None:
    await sign_in(page, champion)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Recovery Champion home")
    await expect(page.get_by_role("banner")).to_contain_text(
        "Signed in as champion@example.org")
    for task in ("Participants", "Enrol someone", "Reports"):
        await expect(page.get_by_role("link", name=task, exact=True)).to_be_visible()


async def test_signing_in_after_signing_out_goes_back_where_you_were_going(
        page: Page, champion: Account) -> None:
    await sign_in(page, champion)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    await page.goto("/staff/participants/new")
    await fill_sign_in(page, champion)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Enrol someone")


async def test_a_wrong_password_is_shown_beside_the_field(page: Page,
                                                          champion: Account) -> None:
    await sign_in(page, Account(champion.email, "not-the-password"))
    summary = page.get_by_role("alert")
    await expect(summary.get_by_role("heading", name="There is a problem")).to_be_visible()
    await expect(page.get_by_label("Email")).to_have_value(champion.email)
    await expect(page.get_by_label("Password")).to_have_value("")  # never typed back
    await expect(page.get_by_label("Password")).to_have_accessible_description(
        re.compile(r"^Error: "))


async def test_the_enrol_form_names_each_problem_and_keeps_what_was_typed(
        page: Page, champion: Account) -> None:
    await sign_in(page, champion)
    await page.get_by_role("link", name="Enrol someone").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Enrol someone")
    await press(page, "Enrol")

    await expect(page).to_have_title(re.compile(r"^Error: Enrol someone"))
    summary = page.get_by_role("alert")
    await expect(summary.get_by_role("heading", name="There is a problem")).to_be_visible()
    for field in ("First name", "Release date", "Release area", "Mobile number", "Consent"):
        await expect(summary.get_by_role("link", name=re.compile(field, re.I))).to_be_visible()
    await expect(page.get_by_label("First name")).to_have_accessible_description(
        re.compile(r"Error: First name must not be empty"))
    await expect(date_group(page, "Release date")).to_have_accessible_description(
        re.compile(r"Error: Enter the release date"))

    # Fix some, get one wrong: the rest is kept as typed, the wrong part named.
    await page.get_by_label("First name").fill("Sam")
    release = date_group(page, "Release date")
    await release.get_by_label("Day").fill("31")
    await release.get_by_label("Month").fill("2")
    await release.get_by_label("Year").fill("2027")
    await page.get_by_label("Release area").fill("ST3 2QH")
    await press(page, "Enrol")

    await expect(summary.get_by_role("link", name=re.compile("release date", re.I))
                 ).to_have_count(1)
    for fixed in ("First name", "Release area"):
        await expect(summary.get_by_role("link", name=re.compile(fixed))).to_have_count(0)
    await expect(page.get_by_label("First name")).to_have_value("Sam")
    await expect(page.get_by_label("Release area")).to_have_value("ST3 2QH")
    await expect(release.get_by_label("Day")).to_have_value("31")
    await expect(release.get_by_label("Year")).to_have_value("2027")
    await expect(release).to_have_accessible_description(re.compile("must be a real date"))
    await expect(page.get_by_role("group", name="Channel").get_by_label("SMS")).to_be_checked()

    # The summary's link takes the cursor to the field at fault.
    await summary.get_by_role("link", name=re.compile("Mobile number")).click()
    await expect(page.get_by_label("Mobile number")).to_be_focused()
    await expect(page.get_by_label("Mobile number")).to_have_accessible_description(
        re.compile(r"Error: Mobile number"))
