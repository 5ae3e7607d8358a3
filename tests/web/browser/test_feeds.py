"""A coordinator uploads a meeting feed in a real browser, reads the preview, and applies it."""

from __future__ import annotations

import json
import re

from playwright.async_api import FilePayload, Page, expect

from tests.web.browser.conftest import Live
from tests.web.browser.helpers import Account, press, sign_in, table_row
from tests.web.conftest import make_staff

FEED_ROWS = [{"slug": f"stoke-{n}", "name": f"Stoke group {n}", "day": 1, "time": "19:00",
         "address": "1 High Street, Stoke-on-Trent ST1 1AA"} for n in (1, 2)]
FEED = FilePayload(name="stoke.json", mimeType="application/json",
                   buffer=json.dumps(FEED_ROWS).encode())


async def test_coordinator_previews_and_applies_an_uploaded_feed(page: Page,
                                                                 live: Live) -> None:
    user, password = await make_staff(live.engine, role="coordinator", region="Stoke",
                                      email="coordinator@example.org", now=live.clock.now)
    await sign_in(page, Account(user.email, password))
    await page.get_by_role("link", name="Feeds", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Feeds")

    await page.get_by_label("Name").fill("Stoke sheet")
    await page.get_by_label("Upload a file").set_input_files(files=FEED)
    await page.get_by_label("Time zone").fill("Mars/Olympus")
    await press(page, "Preview the import")
    await expect(page).to_have_title(re.compile(r"^Error: Feeds"))
    zone = page.get_by_label("Time zone")
    await expect(zone).to_have_accessible_description(re.compile("Time zone must be a zone"))

    await zone.fill("Europe/London")
    await page.get_by_label("Upload a file").set_input_files(files=FEED)
    await press(page, "Preview the import")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Preview")
    await expect(page.get_by_role("heading", name="Added (2)")).to_be_visible()
    await expect(page.get_by_text("Stoke group 1, Monday 19:00 (Europe/London)")).to_be_visible()
    await press(page, "Apply this import")

    await expect(page.get_by_role("heading", level=1)).to_have_text("Import applied")
    await expect(page.get_by_text("People with reminders for changed meetings will be told")
                 ).to_be_visible()
    await page.get_by_role("link", name="Back to feeds").first.click()
    row = table_row(page.get_by_role("table"), "Stoke sheet")
    await expect(row).to_contain_text("2 added, 0 updated, 0 cancelled")
    await expect(row.get_by_role("button", name="Preview new file for Stoke sheet")
                 ).to_be_visible()
