"""First contact: link codes, enrolled numbers, consent, STOP and START."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, func, select

from handlers.proving import proves_identity
from handlers.texts import t
from storage.db import session_scope
from storage.models import (
    ChannelIdentity,
    InboundMessage,
    LinkCode,
    OutboundMessage,
    OutboxStatus,
    Participant,
    ParticipantStatus,
)
from storage.participants import (
    CODE_ALPHABET,
    MAX_FAILED_LINKS_PER_HOUR,
    hash_code,
    new_link_code,
    normalise_code,
)
from tests.core.conftest import NOW, PHONE, Enrolled, Say


async def _participant(engine: AsyncEngine, pid: int) -> Participant:
    async with session_scope(engine) as session:
        p = await session.get(Participant, pid)
        assert p is not None
        return p


def test_link_codes_are_unambiguous_and_long_enough() -> None:
    codes = {new_link_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in codes:
        raw = code.replace("-", "")
        assert len(raw) == 10 and set(raw) <= set(CODE_ALPHABET)
    assert not set("01IO") & set(CODE_ALPHABET)
    assert len(CODE_ALPHABET) ** 10 >= 2**40


def test_codes_are_read_forgivingly() -> None:
    assert normalise_code("abcde-fghjk") == "ABCDEFGHJK"
    assert normalise_code(" ABCDE FGHJK ") == "ABCDEFGHJK"
    assert normalise_code("ABCDE-FGHJ0") is None
    assert normalise_code("'; DROP TABLE x; --") is None


async def test_code_links_then_consent_then_menu(
    engine: AsyncEngine, enrolled: Enrolled, say: Say
) -> None:
    replies = await say(enrolled.code.lower(), address="+447700900999")
    assert replies[0].startswith("Hi Sam")
    assert "not part of your licence" in replies[1] and "STOP" in replies[1]
    assert (await _participant(engine, enrolled.participant_id)).consent_at is None
    again = await say("maybe", address="+447700900999")
    assert "say yes" in again[0]
    assert (await _participant(engine, enrolled.participant_id)).consent_at is None
    done = await say("yes", address="+447700900999")
    assert "Thank you, Sam" in done[0]
    p = await _participant(engine, enrolled.participant_id)
    assert p.consent_at == NOW and p.status == ParticipantStatus.ACTIVE


async def test_code_is_single_use(enrolled: Enrolled, say: Say) -> None:
    await say(enrolled.code, address="+447700900111")
    replies = await say(enrolled.code, address="+447700900222")
    assert "used already" in replies[0]


async def test_code_expires(enrolled: Enrolled, say: Say) -> None:
    replies = await say(enrolled.code, address="+447700900111", now=NOW + timedelta(days=400))
    assert "run out" in replies[0]


async def test_wrong_codes_are_limited(engine: AsyncEngine, enrolled: Enrolled, say: Say) -> None:
    for n in range(MAX_FAILED_LINKS_PER_HOUR):
        replies = await say(f"ABCDE-FGHJ{CODE_ALPHABET[n]}", address="+447700900333")
        assert "did not work" in replies[0]
    blocked = await say(enrolled.code, address="+447700900333")
    assert "Too many tries" in blocked[0]
    later = await say(enrolled.code, address="+447700900333", now=NOW + timedelta(hours=2))
    assert later[0].startswith("Hi Sam")


async def test_enrolled_phone_links_once_the_person_proves_it_is_them(
    engine: AsyncEngine, enrolled: Enrolled, say: Say
) -> None:
    first = await say("hello")
    assert first == [t("welcome.prove")] and "Sam" not in first[0]  # says nothing personal
    wrong = await say("Jo November")
    assert wrong == [t("welcome.not_proved")]
    also_wrong = await say("sam march")
    assert also_wrong == [t("welcome.not_proved")]
    async with session_scope(engine) as session:
        assert (await session.exec(select(ChannelIdentity))).all() == []
    replies = await say("SAM 11")
    assert replies[0].startswith("Hi Sam")
    async with session_scope(engine) as session:
        ident = (await session.exec(select(ChannelIdentity))).one()
    assert (ident.channel, ident.address) == ("sms", PHONE)


async def test_a_recycled_number_cannot_guess_its_way_in(
    engine: AsyncEngine, enrolled: Enrolled, say: Say
) -> None:
    months = ["January", "February", "March", "April", "May", "June", "July"]
    replies = [await say(f"Sam {m}") for m in months]
    assert replies[:MAX_FAILED_LINKS_PER_HOUR] == [[t("welcome.not_proved")]] * 5
    assert replies[5:] == [[t("welcome.too_many_tries")]] * 2
    assert await say("Sam November") == [t("welcome.too_many_tries")]
    assert not any("Sam" in r[0] for r in replies)


@pytest.mark.parametrize(("text", "proved"), [
    ("Sam November", True), ("sam nov", True), ("Sam, 11", True), ("november sam", True),
    ("Sâm Tachwedd", True), ("Sam", False), ("November", False), ("Samuel November", False),
    ("Sam December", False), ("Sam 111", False), ("Sam November " + "x" * 100, False),
])
def test_what_counts_as_proof(text: str, proved: bool) -> None:
    person = Participant(display_name="Sam", release_date=date(2026, 11, 19))
    assert proves_identity(text, person) is proved


@pytest.mark.parametrize("code", ["AB3DE-MAY7K", "MAR2X-DEC9Z", "2JUN3-SEPT4", "MARCH-DEC22",
                                  "mar2x dec9z"])
async def test_the_enrolled_phone_links_with_a_code_that_spells_a_month(
    engine: AsyncEngine, enrolled: Enrolled, say: Say, code: str
) -> None:
    """A code's letters can spell MAY or DEC; it is still a code, not a wrong name and month."""
    canonical = normalise_code(code)
    assert canonical is not None
    async with session_scope(engine) as session:
        row = (await session.exec(select(LinkCode).where(
            LinkCode.participant_id == enrolled.participant_id))).one()
        row.code_hash = hash_code(canonical)
        session.add(row)
    replies = await say(code)
    assert replies[0].startswith("Hi Sam"), replies


async def test_stranger_gets_a_short_hint(say: Say) -> None:
    replies = await say("hello", address="+447700900444")
    assert replies == [
        "Hello. This is throughcare, the SMART Recovery link after release. "
        "To start, send the code from your release card."
    ]


async def test_stop_stops_everything_once_and_start_resumes(
    engine: AsyncEngine, enrolled: Enrolled, say: Say
) -> None:
    await say("Sam November")
    await say("YES")
    async with session_scope(engine) as session:
        session.add(OutboundMessage(participant_id=enrolled.participant_id, channel="sms",
                                    address=PHONE, body="reminder", dedupe_key="r1",
                                    kind="reminder", due_at=NOW + timedelta(days=1)))
    assert "not get any more" in (await say("Stop"))[0]
    assert "already off" in (await say("STOP"))[0]
    assert await say("what meetings") == []  # nothing is sent to a stopped SMS number
    async with session_scope(engine) as session:
        row = (await session.exec(select(OutboundMessage).where(
            col(OutboundMessage.dedupe_key).startswith("r1")))).one()
    assert row.status == OutboxStatus.CANCELLED
    assert row.dedupe_key != "r1", "the key is freed so planning can add it again after START"
    assert (await _participant(engine, enrolled.participant_id)).status == "stopped"
    assert "Welcome back" in (await say("START"))[0]
    assert (await _participant(engine, enrolled.participant_id)).status == "active"


async def test_every_opt_out_word_stops(engine: AsyncEngine, enrolled: Enrolled,
                                        say: Say) -> None:
    await say("Sam November")
    await say("YES")
    for word in ("STOPALL", "unsubscribe", "Cancel", "END", "quit", "OPTOUT", "revoke"):
        await say(word)
        assert (await _participant(engine, enrolled.participant_id)).status == "stopped"
        await say("UNSTOP")
        assert (await _participant(engine, enrolled.participant_id)).status == "active"


async def test_replayed_provider_id_is_processed_once(engine: AsyncEngine, enrolled: Enrolled,
                                                      say: Say) -> None:
    first = await say("hi", provider_id="SM1")
    second = await say("hi", provider_id="SM1")
    assert first and second == []
    async with session_scope(engine) as session:
        n_in = (await session.exec(select(func.count()).select_from(InboundMessage))).one()
        n_out = (await session.exec(select(func.count()).select_from(OutboundMessage))).one()
    assert n_in == 1 and n_out == len(first)


async def test_link_adds_the_other_channel_to_the_same_person(
    engine: AsyncEngine, enrolled: Enrolled, say: Say
) -> None:
    await say("Sam November")
    await say("YES")
    (text,) = await say("LINK")
    code = next(w.strip(".") for w in text.split() if "-" in w and len(w.strip(".")) == 11)
    assert "Telegram" in text
    replies = await say(code, channel="telegram", address="777")
    assert replies == ["Hi Sam, welcome to throughcare. You are linked."]  # consent is shared
    async with session_scope(engine) as session:
        ids = (await session.exec(select(ChannelIdentity))).all()
    assert {(i.channel, i.participant_id) for i in ids} == {
        ("sms", enrolled.participant_id), ("telegram", enrolled.participant_id)}
    assert "used already" in (await say(code, channel="telegram", address="888"))[0]
    (fresh,) = await say("LINK")
    code = next(w.strip(".") for w in fresh.split() if "-" in w and len(w.strip(".")) == 11)
    assert "run out" in (await say(code, channel="telegram", address="888",
                                   now=NOW + timedelta(days=2)))[0]
    # STOP on Telegram stops SMS too.
    await say("STOP", channel="telegram", address="777")
    assert await say("MENU") == []


async def test_delete_erases_what_was_sent_before_linking(
    engine: AsyncEngine, enrolled: Enrolled, say: Say
) -> None:
    await say("Hi this is Zebedee Quux, my code is lost", address="+447700900999")
    await say("ABCDE-FGHJ2", address="+447700900999")  # a mistyped code
    await say(enrolled.code, address="+447700900999")
    await say("YES", address="+447700900999")
    await say("DELETE", address="+447700900999")
    await say("YES", address="+447700900999")
    async with session_scope(engine) as session:
        rows = (await session.exec(select(InboundMessage))).all()
    assert rows and all(r.body is None and r.address_hash is None for r in rows)
