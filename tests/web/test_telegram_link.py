"""The "Link your Telegram" page: a one-time code (only its hash kept), the bot's link,
Unlink; for coordinators and admins only. Sending the code to the bot is tested in
tests/bot/test_staff_commands.py."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.config import Settings
from storage.db import session_scope
from storage.models import AuditEvent, StaffUser
from storage.staff_telegram_q import staff_link_hash
from tests.auxil.web import read_page, submit
from tests.web.conftest import SECRET, Clock, NewClient, StaffLogin, staff_settings

PAGE = "/staff/telegram"
CODE = re.compile(r'class="panel__code">\s*([A-Z0-9]{5}-[A-Z0-9]{5})\s*<')


@pytest.fixture
def settings() -> Settings:
    """Settings with the bot's username, so the page can link to it."""
    return staff_settings(telegram_bot_username="throughcare_test_bot")


async def _row(engine: AsyncEngine, staff_id: int) -> StaffUser:
    async with session_scope(engine) as session:
        row = await session.get(StaffUser, staff_id)
        assert row is not None
        return row


def _code(html: str) -> str:
    found = CODE.search(html)
    assert found, "no code on the page"
    return found.group(1)


async def test_coordinator_sees_a_code_valid_for_15_minutes_and_the_bot_link(
    client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine, clock: Clock
) -> None:
    me = await staff_login(client, role="coordinator", region="Stoke")
    response = await client.get(PAGE)
    assert response.status_code == 200
    page = read_page(response.text)
    assert page.h1 == "Link your Telegram"
    code = _code(response.text)
    assert page.links["@throughcare_test_bot"] == "https://t.me/throughcare_test_bot"
    assert page.links["open the bot with your code"] == \
        f"https://t.me/throughcare_test_bot?start=staff-{code.replace('-', '')}"
    assert f"/staff {code}" in response.text
    assert "26 Nov 2026, 12:15pm" in response.text  # NOW + 15 minutes, London time
    assert "Unlink" not in page.buttons  # nothing linked yet
    row = await _row(engine, me.staff_id)
    assert row.telegram_link_hash == staff_link_hash(code, key=SECRET)
    assert code not in (row.telegram_link_hash or "")
    assert row.telegram_link_expires == clock.now.replace(minute=15)
    # A new visit gives a new code; the one before no longer matches.
    again = _code((await client.get(PAGE)).text)
    assert again != code
    assert (await _row(engine, me.staff_id)).telegram_link_hash == \
        staff_link_hash(again, key=SECRET)


async def test_admin_may_link_champion_may_not(
    client: httpx.AsyncClient, new_client: NewClient, staff_login: StaffLogin
) -> None:
    await staff_login(client, role="champion")
    assert (await client.get(PAGE)).status_code == 403
    other = await new_client()
    await staff_login(other, role="admin")
    assert (await other.get(PAGE)).status_code == 200


async def test_unlink_forgets_the_account_and_is_audited(
    client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine
) -> None:
    me = await staff_login(client, role="coordinator", region="Stoke")
    async with session_scope(engine) as session:
        row = await session.get(StaffUser, me.staff_id)
        assert row is not None
        row.telegram_id = "515151"
        session.add(row)
    page = read_page((await client.get(PAGE)).text)
    assert "Unlink" in page.buttons
    response = await submit(client, f"{PAGE}/unlink", {}, form_page=PAGE)
    assert response.status_code == 303 and response.headers["location"] == PAGE
    after = await client.get(PAGE)
    assert "Your Telegram account is unlinked" in read_page(after.text).notice
    row = await _row(engine, me.staff_id)
    assert row.telegram_id is None
    async with session_scope(engine) as session:
        actions = [e.action for e in (await session.exec(
            select(AuditEvent).where(AuditEvent.actor == f"staff:{me.staff_id}"))).all()]
    assert "telegram_unlinked" in actions and "telegram_code_issued" in actions


async def test_unlink_needs_the_form_token(
    client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine
) -> None:
    me = await staff_login(client, role="coordinator", region="Stoke")
    async with session_scope(engine) as session:
        row = await session.get(StaffUser, me.staff_id)
        assert row is not None
        row.telegram_id = "515151"
        session.add(row)
    response = await client.post(f"{PAGE}/unlink", data={"csrf_token": "forged"})
    assert response.status_code == 403
    assert (await _row(engine, me.staff_id)).telegram_id == "515151"
