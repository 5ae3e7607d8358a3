"""The voice line, driven as Twilio drives it: signed webhooks in, TwiML out, read as XML."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from twilio.request_validator import RequestValidator

from handlers.texts import reading_as, t
from meeting_finder.demo import load_demo_meetings
from meeting_finder.geocode import resolve_place
from meeting_finder.search import find_nearest
from storage.db import session_scope
from storage.models import AuditEvent, InboundMessage, Meeting, Participant
from storage.participants import enrol
from storage.subscriptions import subscribe
from storage.voice_q import code_from_phone, phone_code
from tests.bot.conftest import AUTH_TOKEN, NOW, PHONE, PUBLIC, Enrolled, Stack, identity, outbox

INBOUND = f"{PUBLIC}/voice/inbound"
STRANGER = "+447700900555"
SPOKEN_WHEN = re.compile(
    r"(today|tomorrow|on (Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)) at "
    r"\d{1,2}(:\d\d)? [ap]\.m\.")
ABBREVIATED = re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun)\b")
AREA = resolve_place("ST3 2QH").label  # the release area as the offline data knows it


@dataclass
class Answer:
    """One TwiML answer, parsed."""

    root: ET.Element

    @property
    def said(self) -> str:
        """Return everything read out, in order, as one string."""
        return " ".join(s.text or "" for s in self.root.iter("Say"))

    @property
    def gather(self) -> ET.Element:
        [found] = self.root.iter("Gather")
        return found

    @property
    def action(self) -> str:
        return self.gather.attrib["action"]

    @property
    def dial(self) -> str | None:
        found = list(self.root.iter("Dial"))
        return found[0].text if found else None


@dataclass
class Phone:
    """A phone calling our line through Twilio: each step is a signed POST."""

    stack: Stack
    number: str = PHONE
    call_sid: str = "CA" + "1" * 32

    async def post(self, url: str, *, signature: str | None = None, **extra: str
                   ) -> httpx.Response:
        params = {"CallSid": self.call_sid, "AccountSid": "AC" + "0" * 32, "From": self.number,
                  "To": "+447700900001", "CallStatus": "in-progress", "Direction": "inbound",
                  "ApiVersion": "2010-04-01", **extra}
        signed = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
        return await self.stack.client.post(
            url, data=params, headers={"X-Twilio-Signature": signature or signed})

    async def answer(self, url: str = INBOUND, **extra: str) -> Answer:
        response = await self.post(url, **extra)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/xml")
        return Answer(ET.fromstring(response.text))

    async def key(self, after: Answer, digits: str) -> Answer:
        """Press keys in answer to a Gather."""
        return await self.answer(after.action, Digits=digits)


@pytest.fixture
async def meetings(engine: AsyncEngine) -> int:
    async with session_scope(engine) as session:
        return await load_demo_meetings(session, now=NOW)


async def _nearest_names(engine: AsyncEngine, offset: int = 0) -> list[str]:
    place = resolve_place("ST3 2QH")
    async with session_scope(engine) as session:
        found = await find_nearest(session, lat=place.lat, lon=place.lon, now=NOW, limit=3,
                                   offset=offset)
    return [h.meeting.name.removeprefix("SMART Recovery").strip(" :-,").replace(" (demo)", "")
            for h in found.hits]


async def _linked_by_text(stack: Stack, enrolled: Enrolled) -> None:
    assert (await stack.sms(enrolled.code))[0] == t("welcome.linked", name="Sam")
    await stack.sms("YES")


async def test_linked_caller_hears_chosen_and_nearest_meetings(
        stack: Stack, enrolled: Enrolled, meetings: int) -> None:
    await _linked_by_text(stack, enrolled)
    names = await _nearest_names(stack.engine)
    async with session_scope(stack.engine) as session:
        meeting = (await session.exec(select(Meeting).where(
            col(Meeting.name).contains(names[1])))).first()
        assert meeting is not None
        await subscribe(session, participant_id=enrolled.participant_id,
                        meeting_id=meeting.id or 0, now=NOW)
    answer = await Phone(stack).answer()
    said = answer.said
    assert said.startswith(t("voice.welcome"))
    assert f"Your next chosen meeting is {names[1]}, " in said
    assert t("voice.nearest", place=AREA) in said
    assert all(f". {name}, " in said for name in names)
    says = [s.text or "" for s in answer.root.iter("Say")]
    lines = [s for s in says if re.match(r"\d\. ", s)]
    assert [line[:3] for line in lines] == ["1. ", "2. ", "3. "]
    assert [line.split(", ")[0][3:] for line in lines] == names
    assert len(SPOKEN_WHEN.findall(said)) == 4 and not ABBREVIATED.search(said)
    gather = answer.gather
    assert [s.text for s in gather.iter("Say")][-1] == t("voice.menu")
    assert gather.attrib["numDigits"] == "1" and gather.attrib["language"] == "en-GB"
    assert urlsplit(answer.action).path == "/voice/menu"
    assert {s.attrib["voice"] for s in answer.root.iter("Say")} == {"Polly.Amy"}
    assert answer.root[-1].tag == "Hangup"  # silence ends the call politely


async def test_keys_1_and_0_page_on_and_repeat(stack: Stack, enrolled: Enrolled,
                                               meetings: int) -> None:
    await _linked_by_text(stack, enrolled)
    phone = Phone(stack)
    first = await phone.answer()
    more = await phone.key(first, "1")
    later = await _nearest_names(stack.engine, offset=3)
    assert later and all(name in more.said for name in later)
    assert "4. " in more.said and "1. " not in more.said
    assert parse_qs(urlsplit(more.action).query)["page"] == ["1"]
    again = await phone.key(more, "0")
    assert again.said == more.said
    assert (await phone.key(first, "0")).said == first.said.removeprefix(
        t("voice.welcome") + " ")
    wrong = await phone.key(first, "7")
    assert wrong.said == f"{t('voice.didnt_get')} {t('voice.menu')} {t('voice.no_key')}"


async def test_key_2_texts_the_meetings_once(stack: Stack, enrolled: Enrolled,
                                             meetings: int) -> None:
    await _linked_by_text(stack, enrolled)
    phone = Phone(stack)
    first = await phone.answer()
    before = len(stack.twilio.seen(PHONE))
    sent = await phone.key(first, "2")
    assert sent.said.startswith(t("voice.sent"))
    await phone.key(sent, "2")  # pressed twice in one call: still one text
    texts = stack.twilio.seen(PHONE)[before:]
    assert len(texts) == 1
    assert texts[0].startswith(t("voice.sms_header"))
    assert all(name in texts[0] for name in await _nearest_names(stack.engine))
    rows = [r for r in await outbox(stack.engine, "sms") if r.dedupe_key.startswith("voice:")]
    assert len(rows) == 1 and rows[0].participant_id == enrolled.participant_id


async def test_key_3_reads_crisis_numbers_and_puts_through_to_samaritans(
        stack: Stack, enrolled: Enrolled, meetings: int) -> None:
    await _linked_by_text(stack, enrolled)
    phone = Phone(stack)
    first = await phone.answer()
    crisis = await phone.key(first, "3")
    assert t("voice.crisis") in crisis.said and "1 1 6, 1 2 3" in crisis.said
    assert crisis.dial == "116123"  # staying on the line puts them through
    assert urlsplit(crisis.action).path == "/voice/crisis"
    through = await phone.key(crisis, "1")
    assert through.dial == "116123" and t("voice.putting_through") in through.said
    back = await phone.key(crisis, "0")
    assert back.dial is None and back.said.endswith(t("voice.menu") + " " + t("voice.no_key"))


@pytest.mark.parametrize("path", ["/voice/inbound", "/voice/menu", "/voice/code",
                                  "/voice/town", "/voice/crisis"])
async def test_forged_or_missing_signature_is_refused(stack: Stack, path: str) -> None:
    phone = Phone(stack)
    forged = await phone.post(PUBLIC + path, signature="bm90IHRoZSByaWdodCBvbmU=", Digits="1")
    assert forged.status_code == 403
    bare = await stack.client.post(path, data={"CallSid": phone.call_sid, "From": PHONE})
    assert bare.status_code == 403
    async with session_scope(stack.engine) as session:
        assert (await session.exec(select(InboundMessage))).all() == []


async def test_enrolled_but_unlinked_number_hears_nothing_personal_until_coded(
        stack: Stack, meetings: int) -> None:
    async with session_scope(stack.engine) as session:
        person, code = await enrol(
            session, prison_name="HMP Test", display_name="Robin",
            release_date=date(2026, 11, 19), release_postcode="ST3 2QH", now=NOW, phone=PHONE)
        await subscribe(session, participant_id=person.id or 0, meeting_id=1, now=NOW)
    phone = Phone(stack)
    first = await phone.answer()
    assert first.said.startswith(t("voice.welcome_unknown"))
    assert "ST3" not in first.said and "chosen" not in first.said
    assert first.gather.attrib["input"] == "dtmf speech"
    assert first.gather.attrib["finishOnKey"] == "#"
    mistyped = phone_code(code)[:-1] + str((int(phone_code(code)[-1]) + 1) % 10)
    assert (await phone.key(first, mistyped)).said.startswith(t("voice.bad_number"))
    linked = await phone.key(first, phone_code(code))
    assert linked.said.startswith(t("voice.linked"))
    assert "Your next chosen meeting is" in linked.said
    assert t("voice.nearest", place=AREA) in linked.said
    row = await identity(stack.engine, "voice", PHONE)
    assert row.participant_id == person.id
    # From now on the caller id is enough.
    assert (await Phone(stack, call_sid="CA" + "2" * 32).answer()).said.startswith(
        t("voice.welcome") + " Your next chosen")


async def test_wrong_code_counts_as_a_failed_link(stack: Stack, enrolled: Enrolled) -> None:
    phone = Phone(stack, number=STRANGER)
    first = await phone.answer()
    other = phone_code("ABCDE-FGHJK")
    assert code_from_phone(other) == "ABCDEFGHJK"
    refused = await phone.key(first, other)
    assert refused.said.startswith(t("voice.bad_code"))
    async with session_scope(stack.engine) as session:
        fails = (await session.exec(select(AuditEvent).where(
            AuditEvent.action == "link_failed"))).all()
    assert len(fails) == 1


async def test_calls_are_logged_without_codes_or_speech(stack: Stack, enrolled: Enrolled,
                                                        meetings: int) -> None:
    phone = Phone(stack, number=STRANGER)
    first = await phone.answer()
    town = await phone.answer(first.action, SpeechResult="Stoke-on-Trent.")
    assert "Stoke" in town.said and town.said.count(" miles away") >= 1
    assert t("voice.menu_unlinked") in town.said
    await phone.key(town, "1")
    await phone.key(first, phone_code(enrolled.code))
    async with session_scope(stack.engine) as session:
        rows = (await session.exec(select(InboundMessage).where(
            InboundMessage.channel == "voice").order_by(col(InboundMessage.id)))).all()
    assert [r.body for r in rows] == ["call: answered", "call: town Stoke-on-Trent",
                                      "call: key 1", "call: code linked"]
    assert len({r.provider_id for r in rows}) == 4
    assert all(r.address_hash for r in rows)
    assert rows[-1].participant_id == enrolled.participant_id


async def test_welsh_participant_hears_welsh(stack: Stack, enrolled: Enrolled,
                                             meetings: int) -> None:
    await _linked_by_text(stack, enrolled)
    async with session_scope(stack.engine) as session:
        person = await session.get(Participant, enrolled.participant_id)
        assert person is not None
        person.language = "cy"
        session.add(person)
    answer = await Phone(stack).answer()
    assert answer.gather.attrib["language"] == "cy-GB"
    assert {s.attrib["language"] for s in answer.root.iter("Say")} == {"cy-GB"}
    assert {s.attrib["voice"] for s in answer.root.iter("Say")} == {"Polly.Gwyneth"}
    with reading_as("cy"):
        assert answer.said.startswith(t("voice.welcome"))
        assert t("voice.menu") in answer.said
    assert re.search(r"(heddiw|yfory|dydd \w+) am \d", answer.said)
    assert " a.m." not in answer.said and " p.m." not in answer.said
