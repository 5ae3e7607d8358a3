"""A coordinator's journey in a real browser: find a meeting by searching, cancel one date,
and see how many people were told; each of them has one text waiting, and no reminder for it.
"""

from __future__ import annotations

from datetime import timedelta

from playwright.async_api import Page, expect
from sqlmodel import select

from scheduler.planning import plan
from storage.db import session_scope
from storage.models import Meeting, OutboxStatus
from storage.subscriptions import subscribe
from tests.scheduler.conftest import add_person, rows
from tests.web.browser.conftest import Live
from tests.web.browser.helpers import Account, press, sign_in
from tests.web.conftest import make_staff

MEETING = "SMART Recovery Hanley Tuesday (demo)"
TUESDAY = "Tuesday 1 December 2026"  # the next Tuesday after the clock's Thursday


async def _chosen_by_two(live: Live) -> int:
    """Have two people choose the Hanley demo meeting, and plan their reminders."""
    async with session_scope(live.engine) as session:
        meeting = (await session.exec(select(Meeting).where(
            Meeting.slug == "demo-hanley-tue"))).one()
    people = [await add_person(live.engine, name=name, phone=phone)
              for name, phone in (("Sam", "+447700900201"), ("Alex", "+447700900202"))]
    async with session_scope(live.engine) as session:
        for pid in people:
            await subscribe(session, participant_id=pid, meeting_id=meeting.id or 0,
                            now=live.clock.now - timedelta(days=2))
    await plan(live.engine, now=live.clock.now)
    return meeting.id or 0


async def test_a_coordinator_finds_a_meeting_and_cancels_one_date(page: Page,
                                                                 live: Live) -> None:
    mid = await _chosen_by_two(live)
    user, password = await make_staff(live.engine, role="coordinator", region="Hanley",
                                      email="coordinator@example.org", now=live.clock.now)
    await sign_in(page, Account(user.email, password))
    await page.get_by_role("link", name="Meetings", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Meetings")

    await page.get_by_label("Search meetings").fill("hanley tuesday")
    await press(page, "Search")
    await page.get_by_role("link", name=MEETING).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(MEETING)

    await page.get_by_role("link", name="Cancel one date").click()
    await page.get_by_label(TUESDAY).check()
    await press(page, "Continue")
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Cancel {MEETING} on {TUESDAY}?")
    await press(page, "Yes, cancel this date")

    await expect(page.get_by_role("status")).to_have_text(
        f"{MEETING} on {TUESDAY} is cancelled. 2 people were told.")
    dates = page.get_by_role("table", name="The next 6 dates of this meeting")
    await expect(dates.get_by_role("row").nth(1)).to_contain_text("Cancelled")
    await expect(page.get_by_role("button", name=f"Restore {TUESDAY}")).to_be_visible()

    outbox = await rows(live.engine)
    told = [r for r in outbox if (r.meta or {}).get("change")]
    assert len(told) == 2 and len({r.participant_id for r in told}) == 2
    tuesday = [r for r in outbox if r.meeting_id == mid and r.dedupe_key.startswith("rem:")
               and "20261201" in r.dedupe_key]  # the day before and the hour before, each
    assert len(tuesday) == 4 and {r.status for r in tuesday} == {OutboxStatus.CANCELLED}
