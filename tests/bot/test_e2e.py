"""End to end over HTTP: a person links, consents, finds meetings, stops and starts again."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.menu import menu_reply
from handlers.texts import t
from meeting_finder.demo import load_demo_meetings
from storage.db import session_scope
from storage.models import OutboxStatus, ParticipantStatus
from storage.participants import issue_link_code
from tests.bot.conftest import (
    CHAT_ID,
    NOW,
    PHONE,
    Enrolled,
    Stack,
    outbox,
    participant,
)

CONSENT_SMS = t("consent.ask") + f"\n1 {t('consent.yes_label')}\n2 {t('consent.no_label')}"
CONSENT_TG = t("consent.ask") + f"\n[{t('consent.yes_label')}]\n[{t('consent.no_label')}]"
MENU = menu_reply()
MENU_SMS = MENU.text + "".join(f"\n{n} {c.label}" for n, c in enumerate(MENU.choices, 1))
MENU_TG = MENU.text + "".join(f"\n[{c.label}]" for c in MENU.choices)
STOKE = ("Longton", "Stoke", "Hanley", "Newcastle-under-Lyme", "Stone", "Tunstall", "Fenton")


@pytest.fixture
async def meetings(engine: AsyncEngine) -> int:
    """Load the demo meetings (those near ST3 2QH are in Stoke-on-Trent)."""
    async with session_scope(engine) as session:
        return await load_demo_meetings(session, now=NOW)


def _meeting_list(text: str) -> list[str]:
    return [line for line in text.splitlines() if line[:2].rstrip(".").isdigit()]


async def test_sms_journey(stack: Stack, enrolled: Enrolled, meetings: int) -> None:
    assert await stack.sms(enrolled.code) == [t("welcome.linked", name="Sam"), CONSENT_SMS]
    assert await stack.sms("YES") == [
        t("consent.thanks", name="Sam"),
        MENU_SMS,
    ]
    [listing] = await stack.sms("MEETINGS ST3 2QH")
    assert "ST3 2QH" in listing.upper()
    lines = _meeting_list(listing)
    assert len(lines) == 3 and all(any(town in line for town in STOKE) for line in lines)
    assert all(ord(ch) < 0x2000 for ch in listing)  # plain GSM-friendly text
    assert await stack.sms("STOP") == [t("stop.done")]
    assert (await participant(stack.engine, enrolled.participant_id)).status == \
        ParticipantStatus.STOPPED
    assert await stack.sms("START") == [t("stop.restarted", name="Sam")]
    assert (await participant(stack.engine, enrolled.participant_id)).status == \
        ParticipantStatus.ACTIVE
    # Every reply went out through Twilio with a status callback and was recorded as sent.
    rows = await outbox(stack.engine, "sms")
    assert [r.status for r in rows] == [OutboxStatus.SENT] * len(rows) == \
        [OutboxStatus.SENT] * len(stack.twilio.messages)
    assert {r.provider_id for r in rows} == {m["sid"] for m in stack.twilio.messages}
    assert {m["status_callback"] for m in stack.twilio.messages} == \
        {"https://throughcare.example.org/sms/status"}
    assert all(m["from"] == "+447700900001" for m in stack.twilio.messages)


async def test_telegram_journey(stack: Stack, enrolled: Enrolled, meetings: int) -> None:
    assert await stack.tg(f"/start {enrolled.code.replace('-', '')}") == [
        t("welcome.linked", name="Sam"), CONSENT_TG]
    assert await stack.press(t("consent.yes_label")) == [
        t("consent.thanks", name="Sam"),
        MENU_TG,
    ]
    # The press was answered, and the question now shows the choice instead of buttons.
    assert len(stack.telegram.called("answerCallbackQuery")) == 1
    [edit] = stack.telegram.called("editMessageText")
    assert edit["text"].endswith(f"<i>{t('telegram.chosen', label=t('consent.yes_label'))}</i>")
    [listing] = await stack.tg("MEETINGS ST3 2QH")
    lines = _meeting_list(listing.split("\n[")[0])
    assert len(lines) == 3 and all(any(town in line for town in STOKE) for line in lines)
    assert await stack.tg("STOP") == [t("stop.done")]
    assert await stack.tg("START") == [t("stop.restarted", name="Sam")]
    sent = stack.telegram.called("sendMessage")
    assert all(p["parse_mode"] == "HTML" and p["chat_id"] == CHAT_ID for p in sent)


async def test_telegram_location_button_finds_meetings(
    stack: Stack, enrolled: Enrolled, meetings: int
) -> None:
    await stack.tg(f"/start {enrolled.code}")
    await stack.press(t("consent.yes_label"))
    await stack.tg("MEETINGS")  # no place given: on Telegram it may ask for a location
    before = len(stack.telegram.seen(CHAT_ID))
    response = await stack.telegram_update(stack.user.location(52.99, -2.13))
    assert response.status_code == 200
    [listing] = stack.telegram.seen(CHAT_ID)[before:]
    lines = _meeting_list(listing.split("\n[")[0])
    assert lines and "Longton" in lines[0]


async def test_html_in_data_is_escaped(stack: Stack, engine: AsyncEngine) -> None:
    async with session_scope(engine) as session:
        _p, code = await __import__("storage.participants", fromlist=["enrol"]).enrol(
            session, prison_name="HMP Test", display_name="<b>Sam</b> & co",
            release_date=NOW.date(), release_postcode=None, now=NOW)
    await stack.tg(f"/start {code}")
    first = stack.telegram.called("sendMessage")[0]["text"]
    assert "&lt;b&gt;Sam&lt;/b&gt; &amp; co" in first
    assert stack.telegram.seen(CHAT_ID)[0] == t("welcome.linked", name="<b>Sam</b> & co")


async def test_one_person_two_channels_share_state_and_stop(
    stack: Stack, enrolled: Enrolled, engine: AsyncEngine
) -> None:
    await stack.sms(enrolled.code)
    await stack.sms("YES")
    async with session_scope(engine) as session:
        second = await issue_link_code(session, participant_id=enrolled.participant_id,
                                       release_date=NOW.date(), now=NOW)
    # Consent given on SMS holds on Telegram: no second consent question.
    assert await stack.tg(f"/start {second}") == [t("welcome.linked", name="Sam")]
    assert await stack.tg("STOP") == [t("stop.done")]
    # STOP on Telegram stopped SMS too: an SMS gets no answer until START.
    assert await stack.sms("MENU") == []
    assert await stack.sms("START") == [t("stop.restarted", name="Sam")]
    assert await stack.tg("MENU") == [MENU_TG]
    assert (await participant(engine, enrolled.participant_id)).status == \
        ParticipantStatus.ACTIVE
    assert PHONE in {m["to"] for m in stack.twilio.messages}
