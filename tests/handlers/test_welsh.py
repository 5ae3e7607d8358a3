"""Welsh: crisis phrasings caught in any language, Welsh words read, dates in Welsh."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.render import render_telegram
from handlers.crisis import detect_crisis
from handlers.meeting_text import weekly, when
from handlers.texts import all_texts, reading_as
from handlers.welsh import language_asked, looks_welsh, to_english
from meeting_finder.demo import load_demo_meetings
from scheduler.sender import OutgoingMessage
from storage.db import session_scope
from storage.models import OutboundMessage
from tests.handlers.conftest import MakePerson
from tests.handlers.crisis_phrases_cy import BENIGN_CY, CRISIS_CY

CY = all_texts("cy")
LONDON = ZoneInfo("Europe/London")


def test_lists_are_long_enough() -> None:
    assert len(CRISIS_CY) >= 30 and len(BENIGN_CY) >= 30


@pytest.mark.parametrize(("text", "category"), CRISIS_CY)
def test_welsh_crisis_phrasing_is_caught(text: str, category: str) -> None:
    assert detect_crisis(text) == category


@pytest.mark.parametrize("text", BENIGN_CY)
def test_welsh_look_alike_is_not_caught(text: str) -> None:
    assert detect_crisis(text) is None


@pytest.mark.parametrize("language", ["en", "cy"])
async def test_welsh_crisis_is_answered_with_welsh_lines_for_welsh_readers(
        make_person: MakePerson, language: str) -> None:
    person = await make_person("sms")
    if language == "cy":
        await person.say("CYMRAEG")
    [reply] = await person.say("dwi isio marw")
    assert "116 123" in reply and "999" in reply
    assert ("0808 164 0123" in reply and "0808 808 2234" in reply) == (language == "cy")


@pytest.mark.parametrize(("sent", "read"), [
    ("CYFARFODYDD CF10 1AA", "MEETINGS CF10 1AA"), ("cyfarfodydd yfory", "MEETINGS TOMORROW"),
    ("Dewislen", "MENU"), ("bwydlen", "MENU"), ("CYMORTH", "HELP"), ("ysfa", "URGE"),
    ("HWYLIAU", "CHECKIN"), ("cadw 2", "SAVE 2"), ("TYNNU 1", "UNSAVE 1"),
    ("manylion 3", "INFO 3"), ("ATGOFFA DAU", "REMIND BOTH"), ("remind dydd", "REMIND DAY"),
    ("ie", "YES"), ("Na", "NO"), ("hepgor", "SKIP"), ("nôl", "BACK"), ("stopio", "STOP"),
    ("DECHRAU", "START"), ("CYNNIL DIFFODD", "DISCREET OFF"), ("MEETINGS ST3", "MEETINGS ST3"),
    ("Cadw fy arian", "SAVE fy arian"),
])
def test_welsh_words_are_read_as_keywords(sent: str, read: str) -> None:
    assert to_english(sent) == read


@pytest.mark.parametrize(("sent", "read"), [
    ("ie", "ie"), ("Cadw fy arian i", "Cadw fy arian i"), ("hepgor", "SKIP"),
    ("DEWISLEN", "MENU"),
])
def test_own_words_are_kept_unless_a_whole_keyword(sent: str, read: str) -> None:
    assert to_english(sent, own_words=True) == read


def test_language_words_and_welsh_greetings() -> None:
    assert language_asked("Cymraeg") == "cy" and language_asked("english!") == "en"
    assert language_asked("Cymraeg plis fy ffrind i") is None
    assert looks_welsh("Shwmae") and looks_welsh("Bore da") and not looks_welsh("Hello")


def test_dates_and_times_in_welsh() -> None:
    tuesday = datetime(2026, 6, 2, 19, 0, tzinfo=LONDON)
    with reading_as("cy"):
        assert when(tuesday, LONDON) == "Maw 2 Meh 7yh"
        assert when(tuesday, LONDON, now=tuesday) == "Heddiw 2 Meh 7yh"
        assert weekly([tuesday, datetime(2026, 6, 4, 9, 30, tzinfo=LONDON)], LONDON) == \
            "Maw 7yh & Iau 9:30yb"
        assert when(datetime(2026, 3, 3, 9, 30, tzinfo=LONDON), LONDON) == "Maw 3 Mawrth 9:30yb"
    assert when(tuesday, LONDON) == "Tue 2 Jun 7pm"


async def test_unknown_sender_greeting_in_welsh_is_answered_in_welsh(
        make_person: MakePerson) -> None:
    person = await make_person("sms")
    person.address = "+447700900777"  # a number nobody enrolled
    assert await person.say("Shwmae") == [CY["welcome.unknown"]]


async def test_a_postcode_we_do_not_know_is_explained_in_the_readers_language(
        make_person: MakePerson, engine: AsyncEngine) -> None:
    person = await make_person("sms")
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=person.now)
    english = await person.say("MEETINGS ST3 2QH")
    assert english[0].startswith("ST3 2QH is not in our list, so I used the ST3")
    await person.say("CYMRAEG")
    welsh = await person.say("CYFARFODYDD ST3 2QH")
    assert welsh[0].startswith("Nid yw ST3 2QH ar ein rhestr, felly defnyddiais ardal ST3")


def test_the_senders_location_button_follows_the_readers_language() -> None:
    row = OutboundMessage(channel="telegram", address="1", body="Where are you?",
                          dedupe_key="k", request_location=True, meta={"language": "cy"})
    message = OutgoingMessage.from_row(row)
    with reading_as(message.language):
        _, markup = render_telegram(message.body, message.choices, message.request_location)
    assert markup is not None and markup["keyboard"][0][0]["text"] == \
        CY["meetings.share_location"]
