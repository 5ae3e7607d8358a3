"""The release card: a preview, then printing with a new code that links; the PDF; the words."""

from __future__ import annotations

import base64
import io
import re
from datetime import date, time

import httpx
import pypdf
import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import func, select

from bot.card import FORBIDDEN_WORDS, card_meeting
from bot.config import Settings
from handlers.engine import handle_inbound
from handlers.types import EngineContext
from meeting_finder.demo import load_demo_meetings
from storage.audit_q import staff_actions_for
from storage.db import session_scope
from storage.models import ChannelIdentity, LinkCode, Meeting, Participant, ParticipantStatus
from storage.participants import enrol
from storage.voice_q import code_from_phone, grouped_phone_code
from tests.auxil.builders import make_inbound
from tests.auxil.qr import decode, pdf_modules, svg_modules
from tests.auxil.tables import images_in, text_of
from tests.auxil.web import read_page
from tests.web.conftest import NOW, StaffLogin, staff_settings

BOT = "ThroughcareTestBot"
SMS_FROM = "+447700900001"
CODE = re.compile(r"\b[2-9A-HJ-NP-Z]{5}-[2-9A-HJ-NP-Z]{5}\b")
STOKE = (52.9856, -2.1495)  # ST3 2QH


@pytest.fixture
def settings() -> Settings:
    """Return settings with SMS and Telegram switched on (no network is ever called)."""
    return staff_settings(twilio_account_sid="AC" + "0" * 32, twilio_auth_token="test-token",
                          twilio_from_number=SMS_FROM, telegram_bot_username=f"@{BOT}")


async def enrol_sam(engine: AsyncEngine, prison: str = "HMP Test",
                    name: str = "Sam Jones") -> tuple[int, str]:
    """Enrol Sam, released near Stoke-on-Trent, with the demo meetings loaded."""
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=NOW)
    async with session_scope(engine) as session:
        participant, code = await enrol(
            session, prison_name=prison, display_name=name, release_date=date(2026, 12, 10),
            release_postcode="ST3 2QH", release_lat=STOKE[0], release_lon=STOKE[1], now=NOW)
    assert participant.id is not None
    return participant.id, code


async def post_form(client: httpx.AsyncClient, path: str, *, form_page: str) -> httpx.Response:
    """Press a button on a page: open it, post its form with the page's token."""
    token = read_page((await client.get(form_page)).text).csrf
    return await client.post(path, data={"csrf_token": token})


async def say(engine: AsyncEngine, text: str, *, channel: str = "sms",
              address: str = "+447700900555") -> None:
    """Send one message to the conversation engine as a person would."""
    async with session_scope(engine) as session:
        await handle_inbound(session, make_inbound(text, channel=channel, address=address,
                                                   received_at=NOW), EngineContext(now=NOW))


async def linked_to(engine: AsyncEngine, address: str) -> int | None:
    """Return the participant an address is linked to, if any."""
    async with session_scope(engine) as session:
        found = await session.exec(select(ChannelIdentity.participant_id)
                                   .where(ChannelIdentity.address == address))
        return found.first()


async def test_printing_issues_a_code_that_links_and_voids_the_old(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    pid, enrolment_code = await enrol_sam(engine)
    await staff_login(client)
    card_page = f"/staff/participants/{pid}/card"
    preview = await client.get(card_page)
    page = read_page(preview.text)
    assert page.h1 == "Release card for Sam"
    assert page.buttons == ["Sign out", "Issue a new code and print",
                            "Issue a new code and download PDF"]
    assert not CODE.search(text_of(preview.text, "release-card"))
    printed = await post_form(client, card_page, form_page=card_page)
    assert printed.status_code == 200
    shown = text_of(printed.text, "release-card")
    assert shown.startswith("Sam Your code ")
    assert "Text it to 07700 900001" in shown
    codes = CODE.findall(shown)
    assert len(codes) == 1 and codes[0] != enrolment_code
    assert f"To call instead, key this phone code: {grouped_phone_code(codes[0])}" in shown
    assert code_from_phone(grouped_phone_code(codes[0]).replace(" ", "")) == \
        codes[0].replace("-", "")
    assert read_page(printed.text).notice.startswith("New code issued.")
    await say(engine, enrolment_code, address="+447700900444")  # the old card's code is void
    assert await linked_to(engine, "+447700900444") is None
    await say(engine, codes[0], address="+447700900555")
    assert await linked_to(engine, "+447700900555") == pid


async def test_the_qr_code_opens_telegram_with_the_new_code(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    pid, _ = await enrol_sam(engine)
    await staff_login(client)
    card_page = f"/staff/participants/{pid}/card"
    printed = (await post_form(client, card_page, form_page=card_page)).text
    code = CODE.findall(text_of(printed, "release-card"))[0]
    [qr] = images_in(printed, "release-card")
    assert qr["alt"] == "QR code for Telegram"
    svg = base64.b64decode(qr["src"].removeprefix("data:image/svg+xml;base64,"))
    link = decode(svg_modules(svg))
    assert link == f"https://t.me/{BOT}?start={code.replace('-', '')}"
    await say(engine, f"/start {link.partition('start=')[2]}", channel="telegram",
              address="424242")
    assert await linked_to(engine, "424242") == pid


async def test_the_pdf_is_one_a5_page_whose_code_links(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    pid, _ = await enrol_sam(engine)
    await staff_login(client)
    card_page = f"/staff/participants/{pid}/card"
    response = await post_form(client, f"{card_page}.pdf", form_page=card_page)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'inline; filename="card.pdf"'
    assert response.headers["cache-control"] == "no-store"
    pdf = pypdf.PdfReader(io.BytesIO(response.content))
    assert len(pdf.pages) == 1
    box = pdf.pages[0].mediabox
    assert (round(float(box.width), 2), round(float(box.height), 2)) == (419.53, 595.28)
    text = pdf.pages[0].extract_text()
    [code] = CODE.findall(text)
    assert "Sam" in text and "Text it to 07700 900001" in text
    assert decode(pdf_modules(response.content)) == (
        f"https://t.me/{BOT}?start={code.replace('-', '')}")
    await say(engine, code.lower(), address="+447700900666")
    assert await linked_to(engine, "+447700900666") == pid


async def test_a_link_to_the_pdf_goes_to_the_card_page(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    pid, _ = await enrol_sam(engine)
    await staff_login(client)
    response = await client.get(f"/staff/participants/{pid}/card.pdf")
    assert response.status_code == 303
    assert response.headers["location"] == f"/staff/participants/{pid}/card"


async def test_the_card_shows_meetings_and_crisis_numbers_and_nothing_telling(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    pid, _ = await enrol_sam(engine, prison="HMP Stoke Heath")
    async with session_scope(engine) as session:  # the nearest meeting of all says too much
        session.add(Meeting(slug="telling", name="SMART Recovery", weekday=0,
                            start_time=time(9), timezone="Europe/London",
                            venue="Addiction Services Centre", address="2 Example Road",
                            lat=STOKE[0], lon=STOKE[1], updated=NOW))
    await staff_login(client, prison="HMP Stoke Heath")
    card_page = f"/staff/participants/{pid}/card"
    printed = (await post_form(client, card_page, form_page=card_page)).text
    shown = text_of(printed, "release-card")
    pdf = await post_form(client, f"{card_page}.pdf", form_page=card_page)
    pdf_text = " ".join(pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text().split())
    for face in (shown, pdf_text):
        assert "Meetings near you Monday 7pm Longton Community Rooms (demo), " in face
        assert "Samaritans 116 123" in face and "NHS 111, option 2" in face and "999" in face
        assert "Stoke Heath" not in face and "HMP" not in face and "Jones" not in face
        for word in FORBIDDEN_WORDS:
            assert word not in face.lower()
    assert shown.count("(demo address)") == 3


async def test_the_preview_says_what_the_card_lacks(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine,
        settings: Settings) -> None:
    settings.twilio_account_sid = settings.telegram_bot_username = None
    async with session_scope(engine) as session:
        participant, _ = await enrol(session, prison_name="HMP Test", display_name="Jo",
                                     release_date=date(2026, 12, 10), release_postcode=None,
                                     now=NOW)
    await staff_login(client)
    html = (await client.get(f"/staff/participants/{participant.id}/card")).text
    assert "SMS not set up" in html and "Telegram not set up" in html
    assert "No release area" in html
    assert "Text it to" not in text_of(html, "release-card")
    assert images_in(html, "release-card") == []


def test_the_bot_username_is_checked() -> None:
    assert staff_settings(telegram_bot_username=" @ThroughcareBot").telegram_bot_username == (
        "ThroughcareBot")
    assert staff_settings(telegram_bot_username="").telegram_bot_username is None
    for wrong in ("Throughcare", "t.me/ThroughcareBot", "ab_bot x"):
        with pytest.raises(ValidationError, match="ending in bot"):
            staff_settings(telegram_bot_username=wrong)


def test_a_meeting_abroad_says_its_zone() -> None:
    meeting = Meeting(slug="x", name="x", weekday=2, start_time=time(18, 30),
                      timezone="Europe/Dublin", venue="Hall", address="1 Main St, Dundalk")
    assert card_meeting(meeting).when == "Wednesday 6:30pm (Europe/Dublin time)"
    assert card_meeting(meeting).place == "Hall, 1 Main St, Dundalk"


@pytest.mark.parametrize("role", ["champion", "coordinator"])
async def test_no_card_outside_your_scope(client: httpx.AsyncClient, staff_login: StaffLogin,
                                          engine: AsyncEngine, role: str) -> None:
    theirs, _ = await enrol_sam(engine, prison="HMP Elsewhere")
    await staff_login(client, role=role, prison="HMP Test")
    card = f"/staff/participants/{theirs}/card"
    token = read_page((await client.get("/staff/")).text).csrf
    assert (await client.get(card)).status_code == 404
    assert (await client.get(f"{card}.pdf")).status_code == 404
    assert (await client.post(card, data={"csrf_token": token})).status_code == 404
    assert (await client.post(f"{card}.pdf", data={"csrf_token": token})).status_code == 404
    async with session_scope(engine) as session:
        codes = await session.exec(select(func.count()).select_from(LinkCode)
                                   .where(LinkCode.participant_id == theirs))
        assert codes.one() == 1  # only the enrolment code: nothing was issued
        assert await staff_actions_for(session, theirs) == []


async def test_printing_is_audited_and_erased_people_have_no_card(
        client: httpx.AsyncClient, staff_login: StaffLogin, engine: AsyncEngine) -> None:
    pid, _ = await enrol_sam(engine)
    me = await staff_login(client)
    card_page = f"/staff/participants/{pid}/card"
    await post_form(client, card_page, form_page=card_page)
    async with session_scope(engine) as session:
        seen = [(e.actor, e.action) for e in await staff_actions_for(session, pid)]
        participant = await session.get(Participant, pid)
        assert participant is not None
        participant.status = ParticipantStatus.DELETED
    assert seen == [(f"staff:{me.staff_id}", "participant_read"),
                    (f"staff:{me.staff_id}", "participant_change"),
                    (f"staff:{me.staff_id}", "new_code"),
                    (f"staff:{me.staff_id}", "card_printed")]
    assert (await client.get(card_page)).status_code == 404
