"""A Champion's whole journey in a real browser: enrol, plan, mark released, print the card;
the person links by SMS with the card's code; the report moves.

The card is screenshotted as it prints (a test artefact in ARTEFACTS, never in the repo) and
its QR code is read back from the picture with zxing-cpp, as a phone would read it.
"""

from __future__ import annotations

import re
from datetime import date

import pytest
import zxingcpp
from PIL import Image
from playwright.async_api import Page, expect

from bot.card import FORBIDDEN_WORDS
from tests.web.browser.conftest import BOT, Live
from tests.web.browser.helpers import (
    ARTEFACTS,
    CODE,
    Account,
    artefact_name,
    cell,
    fill_date,
    fill_sign_in,
    press,
    sign_in,
    table_row,
)

PHONE = "07700 900123"  # Ofcom's drama range: never a real phone
PHONE_E164 = "+447700900123"


async def heading(page: Page, text: str | re.Pattern[str]) -> None:
    """Wait for the page whose main heading is `text`."""
    await expect(page.get_by_role("heading", level=1)).to_have_text(text)


async def notice(page: Page, text: str | re.Pattern[str]) -> None:
    """Wait for the one-off message at the top of the page."""
    await expect(page.get_by_role("status")).to_contain_text(text)


async def enrol_sam(page: Page, today: date) -> str:
    """Enrol Sam through the form; return the link code the answer shows."""
    await page.get_by_role("link", name="Enrol someone").click()
    await heading(page, "Enrol someone")
    await page.get_by_label("First name").fill("Sam")
    await fill_date(page, "Release date", today)
    await page.get_by_label("Release area").fill("ST3 2QH")
    await page.get_by_label("Mobile number").fill(PHONE)
    await page.get_by_role("group", name="Channel").get_by_label("SMS").check()
    await page.get_by_label("Sessions done inside").fill("3")
    await page.get_by_role("checkbox", name=re.compile("agreed to take part")).check()
    await press(page, "Enrol")
    await heading(page, "Sam is enrolled")
    found = CODE.search(await page.get_by_role("main").inner_text())
    assert found, "no link code on the page"
    return found.group()


async def plan_appointment_and_meeting(page: Page) -> str:
    """On Sam's plan, add a probation appointment and choose a meeting; return its name."""
    await page.get_by_role("link", name="Add an appointment").click()
    await heading(page, "Add an appointment for Sam")
    await page.get_by_role("group", name="What").get_by_label("Probation").check()
    await fill_date(page, "Date", date(2026, 12, 1))
    await page.get_by_label("Time", exact=True).fill("14:30")
    await page.get_by_label("Where").fill("Hanley Probation Office")
    await press(page, "Add appointment")
    await heading(page, "Sam")
    await notice(page, "Appointment added.")
    appointments = page.get_by_role("table", name=re.compile("^Appointments to come"))
    await expect(appointments).to_contain_text("Hanley Probation Office")
    await expect(appointments).to_contain_text("1 Dec 2026, 2:30pm")

    await page.get_by_role("link", name="Choose meetings").click()
    await heading(page, "Meetings near Sam's release area")
    choose = page.get_by_role("button", name=re.compile(r"^Choose meeting: ")).first
    meeting = " ".join((await choose.inner_text()).split()).removeprefix("Choose meeting: ")
    await choose.click()
    await notice(page, f"{meeting} added to their meetings.")
    await expect(page.get_by_role("button", name=f"Remove meeting: {meeting}")).to_be_visible()
    await page.get_by_role("link", name="Back to their plan").click()
    await heading(page, "Sam")
    await expect(page.get_by_role("table", name="Meetings they chose")).to_contain_text(meeting)
    return meeting


async def print_card(page: Page, test_name: str) -> str:
    """Print Sam's card; screenshot it as it prints; return the code and check its QR."""
    await page.get_by_role("link", name="Print their release card").click()
    await heading(page, "Release card for Sam")
    await press(page, "Issue a new code and print")
    await notice(page, "New code issued.")
    card = page.get_by_role("region", name="Card for Sam")
    found = CODE.search(await card.inner_text())
    assert found, "no code on the card"
    code = found.group()
    printed_words = (await card.inner_text()).lower()
    assert not [w for w in FORBIDDEN_WORDS if w in printed_words], printed_words

    await page.emulate_media(media="print")  # what comes out of the printer: the card alone
    await expect(page.get_by_role("heading", name="Release card for Sam")).to_be_hidden()
    await expect(card.get_by_role("img", name="QR code for Telegram")).to_be_visible()
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / artefact_name(test_name, "release-card")
    await page.screenshot(path=shot, full_page=True)
    await page.emulate_media(media="screen")

    with Image.open(shot) as picture:
        read = zxingcpp.read_barcodes(picture)
    assert [r.text for r in read] == [f"https://t.me/{BOT}?start={code.replace('-', '')}"]
    return code


async def test_enrol_plan_release_print_link_and_report(
        page: Page, champion: Account, live: Live, request: pytest.FixtureRequest) -> None:
    today = live.clock.now.astimezone(live.settings.tz).date()
    await sign_in(page, champion)
    await heading(page, "Recovery Champion home")
    enrolment_code = await enrol_sam(page, today)

    await page.get_by_role("link", name="Go to their plan").click()
    await heading(page, "Sam")
    await plan_appointment_and_meeting(page)

    await page.get_by_role("link", name="Mark as released").click()
    await heading(page, "Mark Sam as released")
    await expect(page.get_by_role("group", name="Date released").get_by_label("Day")
                 ).to_have_value(str(today.day))  # filled in with now
    await press(page, "Mark as released")
    await notice(page, re.compile(r"Marked as released at 26 Nov 2026, 12(:00)?pm\."))

    code = await print_card(page, request.node.name)
    assert code != enrolment_code  # printing issued a new code; the old one is void

    await page.get_by_role("link", name="throughcare").click()
    await page.get_by_role("link", name="Reports").click()
    await heading(page, "Reports")
    people = page.get_by_role("region", name="Participants table").get_by_role("table")
    await expect(await cell(people, "Sam", "Linked")).to_have_text("No")
    cohort = page.get_by_role("table", name="Figures for everyone released so far")
    linked_72 = table_row(cohort, re.compile("^Linked within 72 hours")).get_by_role("cell")
    await expect(linked_72).to_contain_text("No one yet")  # their 72 hours are not up

    # Sam texts the card's code, then YES, from the enrolled phone, through Twilio.
    replies = await live.text_from(PHONE_E164, code,
                                   until=lambda got: any("Reply YES" in r for r in got))
    assert replies[0].startswith("Hi Sam"), replies
    await live.text_from(PHONE_E164, "YES")

    await page.reload()
    await expect(await cell(people, "Sam", "Linked")).to_have_text("Yes")
    await expect(await cell(people, "Sam", "Channel")).to_have_text("SMS")
    await expect(await cell(people, "Sam", "Last contact")).to_have_text(re.compile("26 Nov"))

    # Three days on (signed out while away), the Champion signs in and the figure has moved.
    live.clock.advance(days=3)
    await page.reload()
    await fill_sign_in(page, champion)
    await heading(page, "Reports")
    await expect(linked_72).to_contain_text("1 of 1 (100%)")
