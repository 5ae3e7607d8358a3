"""A staff member tries the service in the simulator, in a real browser: Telegram rendering,
buttons that answer when pressed, then End and erase leaves no one behind.
"""

from __future__ import annotations

from playwright.async_api import Page, expect
from sqlmodel import func, select

from storage.db import session_scope
from storage.models import Participant
from tests.web.browser.conftest import Live
from tests.web.browser.helpers import Account, press, sign_in


async def people(live: Live) -> int:
    async with session_scope(live.engine) as session:
        return (await session.exec(select(func.count()).select_from(Participant))).one()


async def test_try_the_bot_on_telegram_then_erase(page: Page, live: Live,
                                                   champion: Account) -> None:
    await sign_in(page, champion)
    await page.goto("/staff/simulator")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Simulator")
    await page.get_by_label("Telegram").check()
    await page.get_by_label("Start as a person who has already linked").check()
    await press(page, "Start")
    assert await people(live) == 1

    await page.get_by_label("Message", exact=True).fill("hello")
    await press(page, "Send")
    conversation = page.get_by_role("list", name="Conversation")
    await expect(conversation).to_contain_text("You sent: hello")
    await press(page, "Yes, that is OK")  # the consent question's button, as Telegram shows it
    await expect(conversation).to_contain_text("You sent: YES")
    await page.get_by_label("Message", exact=True).fill("MEETINGS")
    await press(page, "Send")
    await expect(conversation).to_contain_text("Where are you?")

    await press(page, "End and erase")
    await expect(page.get_by_role("status")).to_contain_text("erased")
    await expect(page.get_by_role("list", name="Conversation")).to_have_count(0)
    assert await people(live) == 0
    assert live.twilio.messages == []
