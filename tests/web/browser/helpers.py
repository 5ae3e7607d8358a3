"""What a person does in the staff console, in a real browser: sign in, fill a GOV.UK date.

Everything is found as a person finds it: by label, role and name (Playwright's guidance).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from playwright.async_api import Locator, Page, expect

CHROMIUM = Path("/usr/bin/chromium")
ARTEFACTS = Path(os.environ.get("TC_ARTEFACTS")
                 or Path(tempfile.gettempdir()) / "throughcare-artefacts")
CODE = re.compile(r"\b[2-9A-HJ-NP-Z]{5}-[2-9A-HJ-NP-Z]{5}\b")  # a link code as printed


@dataclass(frozen=True)
class Account:
    """A staff member's email and password."""

    email: str
    password: str


def artefact_name(test_name: str, what: str) -> str:
    """Return a file name for a screenshot: the test's name and what it shows."""
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', test_name)}-{what}.png"


async def sign_in(page: Page, account: Account) -> None:
    """Open the sign-in page, fill in Email and Password, press Sign in."""
    await page.goto("/staff/login")
    await fill_sign_in(page, account)


async def fill_sign_in(page: Page, account: Account) -> None:
    """On the sign-in page, fill in Email and Password and press Sign in."""
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    await page.get_by_label("Email").fill(account.email)
    await page.get_by_label("Password").fill(account.password)
    await page.get_by_role("button", name="Sign in").click()


def date_group(page: Page | Locator, legend: str) -> Locator:
    """Return the Day, Month, Year boxes grouped under a legend ("Release date")."""
    return page.get_by_role("group", name=legend, exact=True)


async def fill_date(page: Page | Locator, legend: str, day: date) -> None:
    """Type a date into the Day, Month and Year boxes under a legend."""
    group = date_group(page, legend)
    await group.get_by_label("Day").fill(str(day.day))
    await group.get_by_label("Month").fill(str(day.month))
    await group.get_by_label("Year").fill(str(day.year))


async def press(page: Page, button: str) -> None:
    """Press the button with this name (the main content's, not the header's)."""
    await page.get_by_role("main").get_by_role("button", name=button, exact=True).click()


def table_row(table: Locator, name: str | re.Pattern[str]) -> Locator:
    """Return the row of a table whose row header or link is `name`."""
    return table.get_by_role("row").filter(
        has=table.page.get_by_role("rowheader", name=name).or_(
            table.page.get_by_role("link", name=name, exact=True)))


async def cell(table: Locator, row: str | re.Pattern[str], column: str) -> Locator:
    """Return the cell of a table under the column header `column`, in the row `row`."""
    headers = [h.strip() for h in await table.get_by_role("columnheader").all_inner_texts()]
    assert column in headers, f"no column {column!r} in {headers}"
    return table_row(table, row).locator("th, td").nth(headers.index(column))
