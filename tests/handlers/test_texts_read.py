"""What a participant reads: plurals, plain letters on SMS, three segments, STOP, /start.

Real replies (long names, the longest answers the tools accept, Welsh and Polish letters,
emoji) are rendered as the SMS channel renders them and counted as the network counts them.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Bot, Update

from bot.channels.render import is_gsm7, render_sms, sms_segments
from bot.channels.telegram import update_to_inbound
from handlers.engine import handle_inbound
from handlers.textin import MAX_LEN, plain_letters
from handlers.texts import t
from handlers.types import EngineContext
from meeting_finder.demo import load_demo_meetings
from storage.db import session_scope
from storage.models import OutboundMessage, Participant, ParticipantStatus
from tests.auxil.builders import NOW
from tests.fakes.telegram_api import FakeTelegram, FakeTelegramUser
from tests.handlers.conftest import MakePerson, Person

MAX_SEGMENTS = 3
BOT_TOKEN = "7000000001:AAH-test-token-not-real_0123456789ab"
NAMES = ["Bartholomew-Fitzwilliam", "Gwenllïan ap Llŷr", "Łukasz Wróbel-Szczepański",
         "Dai \U0001f409"]
# A long answer, as long as one message may be, with Polish letters and emoji in it.
PHRASE = ("pieniądze \U0001f60a for Łódź, my health, my mates who do not use, sleeping "
          "properly, being there for Kayleigh and feeling well in the morning, ")
LONG = [(f"{n} " + PHRASE * 12)[: MAX_LEN - 5].rsplit(" ", 1)[0] for n in "ABCD"]
LABELS = [t(f"cba.show_{box}", answer="") for box in
          ("use_good", "use_bad", "stop_good", "stop_bad")]


class Reader:
    """Keep every message a person was sent, as the SMS channel would render it."""

    def __init__(self, person: Person) -> None:
        self.person = person
        self.rows: list[OutboundMessage] = []

    async def say(self, *texts: str) -> list[str]:
        """Send each text in turn; return the last replies."""
        replies: list[str] = []
        for text in texts:
            replies = await self.person.say(text)
            self.rows += self.person.last
        return replies

    def rendered(self) -> list[str]:
        """Return every reply as the person's phone shows it."""
        return [render_sms(r.body, r.choices or ()) for r in self.rows]


def _whole_words(shown: str, original: str) -> bool:
    """Say whether `shown` is `original`, or its start cut after a whole word and '...'."""
    original = " ".join(original.split())
    if not shown.endswith("..."):
        return shown == original
    kept = shown[:-3]
    return original.startswith(kept) and original[len(kept)] in " ,.;:-"


def _answers_in(text: str) -> list[str]:
    """Return the four answers shown in a MYCBA text."""
    lines = text.split("\n")
    return [line[len(label):] for label in LABELS for line in lines if line.startswith(label)]


async def _use_every_tool(reader: Reader) -> None:
    await reader.say("START", "CBA", *LONG, "MYCBA", "CBA", "SKIP", "SKIP", "SKIP", "SKIP")
    await reader.say("URGE", "8", "4", "3", "HELP", "2", "Riding it out " * 30)
    await reader.say("CHECKIN", "5", "9", "Argued with Darren again \U0001f621 " * 30)
    await reader.say("MEETINGS ST3 2QH", "SAVE 1", "MYDATA", "STOP", "START")


@pytest.mark.parametrize("name", NAMES)
async def test_every_sms_reply_is_plain_and_within_three_segments(
    engine: AsyncEngine, make_person: MakePerson, name: str
) -> None:
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=NOW)
    reader = Reader(await make_person("sms", name=name))
    await _use_every_tool(reader)
    texts = reader.rendered()
    assert len(texts) > 30
    for text in texts:
        assert is_gsm7(text), f"not GSM-7: {text!r}"
        assert sms_segments(text) <= MAX_SEGMENTS, f"{sms_segments(text)} segments: {text!r}"
    hello = next(x for x in texts if x.startswith("Hello "))
    assert plain_letters(name) in hello and "1 Find a meeting" in hello


async def test_long_cba_answers_are_cut_between_words(make_person: MakePerson) -> None:
    reader = Reader(await make_person("sms"))
    shown = await reader.say("CBA", *LONG, "MYCBA")
    (text,) = shown
    answers = _answers_in(text)
    assert len(answers) == 4 and all(a.endswith("...") for a in answers)
    for answer, original in zip(answers, LONG, strict=True):
        assert _whole_words(answer, plain_letters(original)), answer
        assert len(answer) > 60, "the room is shared out, not wasted"
    assert sms_segments(text) == MAX_SEGMENTS
    assert "Lodz" in text and "\U0001f60a" not in text


async def test_short_answers_are_shown_whole_and_leave_room_for_a_long_one(
    make_person: MakePerson
) -> None:
    reader = Reader(await make_person("sms"))
    (text,) = await reader.say("CBA", "Numbs it", "Money", "My kids", LONG[3], "MYCBA")
    answers = _answers_in(text)
    assert answers[:3] == ["Numbs it", "Money", "My kids"]
    assert len(answers[3]) > 200 and _whole_words(answers[3], plain_letters(LONG[3]))
    assert sms_segments(text) <= MAX_SEGMENTS


async def test_telegram_shows_answers_and_names_as_written(make_person: MakePerson) -> None:
    reader = Reader(await make_person("telegram", name="Łukasz"))
    (text,) = await reader.say("CBA", "Pieniądze \U0001f4b8", "Zdrowie", "SKIP", "SKIP",
                               "MYCBA")
    assert "Pieniądze \U0001f4b8" in text
    (summary, _how) = await reader.say("MYDATA")
    assert "your name (Łukasz)" in summary


async def test_mydata_counts_one_and_many_in_plain_english(make_person: MakePerson,
                                                           engine: AsyncEngine) -> None:
    async with session_scope(engine) as session:
        await load_demo_meetings(session, now=NOW)
    reader = Reader(await make_person("sms"))
    await reader.say("URGE", "6", "3", "2", "SKIP")
    await reader.say("CHECKIN", "5", "5", "SKIP", "MEETINGS ST3 2QH", "SAVE 1")
    (summary, _how) = await reader.say("MYDATA")
    for one in ("1 linked phone or chat,", "1 urge log,", "1 check-in,", "1 chosen meeting,",
                "0 appointments,", "0 contacts."):
        assert one in summary, summary
    assert not re.search(r"\b1 (urge logs|check-ins|chosen meetings|messages)", summary)
    await reader.say("URGE 4", "3", "1", "SKIP", "MEETINGS ST3 2QH", "SAVE 2")
    (summary, _how) = await reader.say("MYDATA")
    assert "2 urge logs," in summary and "2 chosen meetings," in summary


@pytest.mark.parametrize("text", [
    "please stop texting me", "Please stop texting me.", "stop messaging me",
    "leave me alone", "Leave me alone please!", "Don't text me anymore",
    "can you stop messaging me please", "STOP texting me now thanks",
])
@pytest.mark.parametrize("where", ["menu", "CBA"])
async def test_clear_stop_phrases_stop_everywhere(engine: AsyncEngine, person: Person,
                                                  text: str, where: str) -> None:
    if where != "menu":
        await person.say(where)
    assert await person.say(text) == [t("stop.done")]
    async with session_scope(engine) as session:
        p = await session.get(Participant, person.participant_id)
        assert p is not None and p.status == ParticipantStatus.STOPPED


@pytest.mark.parametrize("answer", ["stop wasting money", "just quit", "I want to stop using",
                                    "leave me alone with my thoughts and a brew"])
async def test_answers_that_mention_stopping_are_answers(person: Person, answer: str) -> None:
    await person.say("CBA")
    assert (await person.say(answer))[0].startswith("2 of 4")


async def _telegram(person: Person, text: str) -> list[OutboundMessage]:
    """Type `text` in Telegram: the real adapter builds the Inbound from an update."""
    user = FakeTelegramUser(FakeTelegram(BOT_TOKEN), chat_id=int(person.address))
    inbound = update_to_inbound(Update.de_json(user.text(text), Bot(BOT_TOKEN)), now=NOW)
    assert inbound is not None
    async with session_scope(person.engine) as session:
        result = await handle_inbound(session, inbound, EngineContext(now=NOW))
    async with session_scope(person.engine) as session:
        return [row for key in result.outbox_keys
                for row in (await session.exec(OutboundMessage.__table__.select().where(
                    OutboundMessage.dedupe_key == key))).all()]  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", ["/start", "/start 7KQ2MXH4PA", "/start@throughcare_bot",
                                     "/start join_card"])
async def test_start_for_a_linked_person_says_hello_with_the_menu(
    make_person: MakePerson, command: str
) -> None:
    person = await make_person("telegram", name="Siân")
    await person.say("URGE")  # even half-way through a tool
    (reply,) = await _telegram(person, command)
    assert reply.body.startswith("Hello Siân") and t("menu.title") in reply.body
    assert [c[1] for c in reply.choices or []][:2] == ["MEETINGS", "URGE"]
    assert (await person.state()).flow == "menu"


async def test_start_on_sms_says_hello_and_numbers_the_menu(make_person: MakePerson) -> None:
    person = await make_person("sms", name="Gwenllïan")
    (hello,) = await person.say("START")
    assert hello.startswith("Hello Gwenllian,")
    assert "How strong is it right now" in (await person.say("2"))[0]


async def test_start_after_stop_turns_messages_back_on(make_person: MakePerson) -> None:
    person = await make_person("telegram")
    await person.say("please stop texting me")
    (reply,) = await _telegram(person, "/start 7KQ2MXH4PA")
    assert reply.body == t("stop.restarted", name="Sam")


async def test_help_inside_a_tool_fits_an_sms(make_person: MakePerson) -> None:
    person = await make_person("sms")
    await person.say("CHECKIN")
    (text,) = await person.say("HELP", now=NOW + timedelta(minutes=1))
    assert sms_segments(render_sms(text)) <= 2 and t("help.in_flow") in text
