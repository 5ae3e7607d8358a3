"""An admin defines a region by postcodes in a real browser and sees who falls in it."""

from __future__ import annotations

import re
from datetime import date

from playwright.async_api import Page, expect

from storage.db import session_scope
from storage.models import ParticipantStatus
from storage.participants import enrol
from tests.web.browser.conftest import Live
from tests.web.browser.helpers import Account, press, sign_in, table_row
from tests.web.conftest import make_staff


async def test_admin_adds_a_region_by_postcodes_and_sees_its_count(page: Page,
                                                                    live: Live) -> None:
    async with session_scope(live.engine) as session:
        for n, postcode in enumerate(("ST3 2QH", "WS1 1AA", "LS1 4AP")):
            p, _ = await enrol(session, prison_name="HMP Test", display_name=f"P{n}",
                               release_date=date(2026, 11, 1), release_postcode=postcode,
                               now=live.clock.now)
            p.status = ParticipantStatus.ACTIVE
            session.add(p)
    user, password = await make_staff(live.engine, role="admin", email="admin@example.org",
                                      now=live.clock.now)
    await sign_in(page, Account(user.email, password))
    await page.get_by_role("link", name="Regions", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Regions")

    await page.get_by_label("Name").fill("Potteries and Walsall")
    await page.get_by_label("Postcode areas or districts").fill("ST, W-S")
    await press(page, "Add region")
    await expect(page).to_have_title(re.compile(r"^Error: Regions"))
    field = page.get_by_label("Postcode areas or districts")
    await expect(field).to_have_accessible_description(
        re.compile(r"Error: 'W-S' is not a postcode area"))
    await expect(page.get_by_label("Name")).to_have_value("Potteries and Walsall")

    await field.fill("ST, WS")
    await press(page, "Add region")
    await expect(page.get_by_role("status")).to_have_text("Added region Potteries and Walsall.")
    regions = page.get_by_role("table")
    headers = [h.strip() for h in await regions.get_by_role("columnheader").all_inner_texts()]
    row = table_row(regions, "Potteries and Walsall").get_by_role("cell")
    # The region's name is the row header, so the cells start at the second column.
    await expect(row.nth(headers.index("Postcode areas or districts") - 1)).to_have_text("ST, WS")
    await expect(row.nth(headers.index("Active participants") - 1)).to_have_text("2")
