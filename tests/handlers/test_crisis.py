"""Crisis words are answered at once, in every state, and the state is kept."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import func, select

from handlers.crisis import detect_crisis
from handlers.engine import handle_inbound
from handlers.texts import t
from handlers.types import EngineContext
from storage.db import session_scope
from storage.models import (
    AuditEvent,
    CrisisEvent,
    MessageKind,
    OutboundMessage,
    Participant,
    ParticipantStatus,
    Priority,
)
from storage.participants import enrol
from tests.auxil.builders import NOW, make_inbound
from tests.handlers.conftest import MakePerson, Person
from tests.handlers.crisis_phrases import BENIGN, CRISIS

NUMBERS = ["999", "116 123", "111", "option 2", "85258", "0300 123 6600"]


def test_lists_are_long_enough() -> None:
    assert len(CRISIS) >= 40 and len(BENIGN) >= 40
    assert not set(CRISIS) & set(BENIGN)


@pytest.mark.parametrize("text", CRISIS)
def test_crisis_phrasing_is_caught(text: str) -> None:
    assert detect_crisis(text) is not None


@pytest.mark.parametrize("text", BENIGN)
def test_benign_look_alike_is_not_caught(text: str) -> None:
    assert detect_crisis(text) is None


@pytest.mark.parametrize(
    ("text", "category"),
    [("I want to kill myself", "suicide"), ("been cutting myself", "self_harm"),
     ("he's not breathing", "overdose"), ("he's got a knife", "danger"),
     ("I could kill for a coffee but I want to die", "suicide")],
)
def test_categories(text: str, category: str) -> None:
    assert detect_crisis(text) == category


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01", "\U0001f62d" * 50, "x" * 5000])
def test_odd_input_is_not_a_crisis_and_does_not_break(text: str) -> None:
    assert detect_crisis(text) is None


@pytest.mark.parametrize("key", ["crisis.reply", "crisis.overdose"])
def test_crisis_texts_carry_every_number(key: str) -> None:
    text = t(key)
    for number in NUMBERS:
        assert number in text, number
    assert "SHOUT" in text and "FRANK" in text and "not free" in text
    assert text.count("free") >= 3  # Samaritans and Shout are free, FRANK is not


def _crisis_in(replies: list[str]) -> bool:
    return any("116 123" in r and "999" in r for r in replies)


async def test_mid_cba_the_numbers_come_and_the_step_is_kept(person: Person) -> None:
    await person.say("CBA")
    await person.say("Helps me forget")
    before = await person.state()
    replies = await person.say("honestly I wanna die")
    assert _crisis_in(replies)
    assert person.last[0].kind == MessageKind.CRISIS
    assert person.last[0].priority == Priority.URGENT
    after = await person.state()
    assert (after.flow, after.step) == (before.flow, before.step) == ("cba", "use_bad")
    assert (await person.say("Money"))[0].startswith("3 of 4")


async def test_mid_urge_walk_the_step_is_kept(make_person: MakePerson) -> None:
    person = await make_person("telegram")
    await person.say("URGE")
    await person.rate(9)
    assert _crisis_in(await person.say("took too many pills"))
    assert (await person.state()).step == "delay"


async def test_unconsented_person_gets_numbers_and_stays_unconsented(
    engine: AsyncEngine, make_person: MakePerson
) -> None:
    person = await make_person("sms", consent=False)
    assert _crisis_in(await person.say("I'm going to end it all"))
    async with session_scope(engine) as session:
        p = await session.get(Participant, person.participant_id)
        assert p is not None and p.consent_at is None
    assert "YES" in (await person.say("hello"))[0]


async def test_unknown_sender_gets_numbers_and_nothing_is_created(engine: AsyncEngine) -> None:
    async with session_scope(engine) as session:
        result = await handle_inbound(session, make_inbound("kms", address="+447700900555"),
                                      EngineContext(now=NOW))
    assert result.participant_id is None
    async with session_scope(engine) as session:
        rows = (await session.exec(select(OutboundMessage))).all()
        count = (await session.exec(select(func.count()).select_from(Participant))).one()
    assert [r.kind for r in rows] == [MessageKind.CRISIS] and _crisis_in([rows[0].body])
    assert count == 0


async def test_stopped_person_still_gets_numbers_and_stays_stopped(
    engine: AsyncEngine, person: Person
) -> None:
    await person.say("STOP")
    replies = await person.say("i feel suicidal")
    assert _crisis_in(replies)
    assert (person.last[0].meta or {}).get("always") is True
    async with session_scope(engine) as session:
        p = await session.get(Participant, person.participant_id)
        assert p is not None and p.status == ParticipantStatus.STOPPED


async def _events(engine: AsyncEngine) -> list[CrisisEvent]:
    async with session_scope(engine) as session:
        return list((await session.exec(select(CrisisEvent))).all())


async def test_event_recorded_only_with_staff_review_consent(
    engine: AsyncEngine, make_person: MakePerson
) -> None:
    no = await make_person("sms", address="+447700900111")
    yes = await make_person("telegram", staff_review_consent=True)
    await no.say("I want to hurt myself")
    assert await _events(engine) == []
    await yes.say("I want to hurt myself")
    (event,) = await _events(engine)
    assert (event.participant_id, event.category, event.channel) == (
        yes.participant_id, "self_harm", "telegram")


async def test_no_crisis_record_of_any_kind_without_consent(
    engine: AsyncEngine, make_person: MakePerson
) -> None:
    person = await make_person("sms")
    await person.say("I want to hurt myself")
    async with session_scope(engine) as session:
        rows = (await session.exec(select(AuditEvent).where(
            AuditEvent.participant_id == person.participant_id))).all()
    assert not any("crisis" in r.action for r in rows)


async def test_overdose_reply_says_what_to_do_first(make_person: MakePerson) -> None:
    person = await make_person("sms")
    (reply,) = await person.say("my mate OD'd and won't wake up")
    assert reply.startswith("If someone is not breathing") and "naloxone" in reply


async def test_enrolled_but_unlinked_phone_gets_numbers(engine: AsyncEngine) -> None:
    async with session_scope(engine) as session:
        await enrol(session, prison_name="HMP Test", display_name="Ali",
                    release_date=NOW.date(), release_postcode=None, now=NOW,
                    phone="+447700900444")
    async with session_scope(engine) as session:
        result = await handle_inbound(session, make_inbound("want to die",
                                                            address="+447700900444"),
                                      EngineContext(now=NOW))
    assert _crisis_in([r.text for r in result.replies])
