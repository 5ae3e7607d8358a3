"""URGE: the DEADS walk, ratings, the urge log, CBA offered, and the 15-minute check-back."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from scheduler.dispatcher import dispatch
from storage.db import session_scope
from storage.models import (
    MessageKind,
    OutboundMessage,
    OutboxStatus,
    ToolEntry,
    ToolKind,
)
from tests.auxil.senders import RecordingSender, instant_limiter
from tests.handlers.conftest import MakePerson, Person


async def _urge_logs(engine: AsyncEngine, pid: int) -> list[ToolEntry]:
    async with session_scope(engine) as session:
        rows = await session.exec(select(ToolEntry).where(ToolEntry.participant_id == pid)
                                  .where(ToolEntry.kind == ToolKind.URGE))
        return list(rows.all())


async def _followups(engine: AsyncEngine, pid: int) -> list[OutboundMessage]:
    async with session_scope(engine) as session:
        rows = await session.exec(select(OutboundMessage)
                                  .where(OutboundMessage.participant_id == pid)
                                  .where(OutboundMessage.kind == MessageKind.FOLLOWUP))
        return list(rows.all())


async def test_full_walk_through_all_five_steps(engine: AsyncEngine, person: Person) -> None:
    start = await person.say("URGE")
    assert "0 (none) to 10" in start[0]
    step = await person.rate(8)
    assert step[0].startswith("Step 1 of 5: Delay")
    assert person.offered()[:3] == ["U_NEXT", "U_SURF", "U_DONE"]
    for name in ("Escape", "Accept", "Distract", "Swap"):
        if name == "Accept":
            await person.restart()  # a deploy mid-walk: the next message carries on
        step = await person.choose("U_NEXT")
        assert name in step[0]
    after = await person.choose("U_NEXT")
    assert "How strong is the urge now" in after[0]
    helped = await person.rate(3)
    assert "What helped most" in helped[0]
    done = await person.choose("H_DISTRACT")
    assert "went from 8 to 3" in done[0]
    assert any("send CBA" in d for d in done), "a CBA is offered to someone without one"
    logs = await _urge_logs(engine, person.participant_id)
    assert len(logs) == 1
    assert logs[0].data == {"before": 8, "after": 3, "helped": "distract", "surfed": False,
                            "steps": 5}
    assert (await person.state()).flow == "menu"


async def test_eased_early_records_the_step_that_helped(engine: AsyncEngine,
                                                        person: Person) -> None:
    await person.say("urge 9")  # the rating can come with the keyword
    await person.choose("U_NEXT")
    await person.choose("U_DONE")
    done = await person.rate(9)
    assert "went from 9 to 9" in done[0] and "116 123" in done[0]
    (log,) = await _urge_logs(engine, person.participant_id)
    assert log.data is not None
    assert log.data["helped"] == "escape" and log.data["after"] == 9


async def test_surfing_check_back_arrives_through_the_outbox_after_15_minutes(
    engine: AsyncEngine, person: Person
) -> None:
    await person.say("URGE")
    await person.rate(7)
    surf = await person.choose("U_SURF")
    assert "check on you in 15 minutes" in surf[0]
    (row,) = await _followups(engine, person.participant_id)
    assert row.status == OutboxStatus.QUEUED
    assert row.due_at == person.now + timedelta(minutes=15)
    assert row.channel == person.channel and row.address == person.address
    sender = RecordingSender(person.channel)
    senders = {person.channel: sender}
    limiter = instant_limiter()
    await dispatch(engine, senders, now=person.now, limiter=limiter)
    assert sender.bodies()[-1] == surf[0]
    await dispatch(engine, senders, now=person.now + timedelta(minutes=14, seconds=59),
                   limiter=limiter)
    assert not any("Checking in" in b for b in sender.bodies()), "sent too early"
    await dispatch(engine, senders, now=person.now + timedelta(minutes=15), limiter=limiter)
    assert [b for b in sender.bodies() if "Checking in" in b] == [row.body]
    if person.channel == "telegram":
        assert ("4", "4") in sender.sent[-1].choices
    await person.restart()    # The answer to the check-back lands back in the urge flow.
    later = person.now + timedelta(minutes=17)
    reply = await person.say("4", now=later)
    assert "What helped most" in reply[0]
    done = await person.say("SKIP", now=later)
    assert "went from 7 to 4" in done[0]
    (log,) = await _urge_logs(engine, person.participant_id)
    assert log.data == {"before": 7, "after": 4, "helped": None, "surfed": True, "steps": 1}


async def test_answering_before_the_check_back_cancels_it(engine: AsyncEngine,
                                                          make_person: MakePerson) -> None:
    person = await make_person("sms")
    await person.say("URGE")
    await person.say("6")
    await person.choose("U_SURF")
    reply = await person.say("2", now=person.now + timedelta(minutes=5))
    assert "What helped most" in reply[0]
    (row,) = await _followups(engine, person.participant_id)
    assert row.status == OutboxStatus.CANCELLED
    sender = RecordingSender("sms")
    await dispatch(engine, {"sms": sender}, now=person.now + timedelta(minutes=30),
                   limiter=instant_limiter())
    assert not any("Checking in" in b for b in sender.bodies())


async def test_stop_while_surfing_cancels_the_check_back(engine: AsyncEngine,
                                                         make_person: MakePerson) -> None:
    person = await make_person("telegram")
    await person.say("URGE")
    await person.rate(5)
    await person.choose("U_SURF")
    await person.say("STOP")
    (row,) = await _followups(engine, person.participant_id)
    assert row.status == OutboxStatus.CANCELLED
    assert (await person.state()).flow == "menu"
    assert "messages are on again" in (await person.say("START"))[0]


async def test_own_cba_answers_are_offered_during_an_urge(make_person: MakePerson) -> None:
    person = await make_person("sms")
    await person.say("CBA")
    await person.say("It numbs everything")
    await person.say("My kids and my health")
    await person.say("Being a dad again")
    await person.say("SKIP")
    await person.say("URGE")
    await person.say("8")
    assert "U_REASONS" in person.offered()
    reasons = await person.choose("U_REASONS")
    assert "My kids and my health" in reasons[0] and "Being a dad again" in reasons[0]
    assert reasons[1].startswith("Step 1 of 5")  # still on the same step
    await person.choose("U_DONE")
    done = await person.say("2")
    assert not any("send CBA" in d for d in done)


async def test_menu_leaves_and_nonsense_keeps_the_step(person: Person) -> None:
    await person.say("URGE")
    assert "0 to 10" in (await person.say("banana"))[0]
    await person.rate(6)
    again = await person.say("what?")
    assert "pick one" in again[0] and again[1].startswith("Step 1 of 5")
    assert (await person.state()).step == "delay"
    menu = await person.say("MENU")
    assert "What would you like to do?" in menu[0]
    assert (await person.state()).flow == "menu"


async def test_rating_out_of_range_is_asked_again(make_person: MakePerson) -> None:
    person = await make_person("sms")
    await person.say("URGE")
    for bad in ("11", "-3", "\U0001f525", "x" * 5000, "'; DROP TABLE toolentry; --"):
        reply = await person.say(bad)
        assert reply and "Traceback" not in reply[0]
        assert (await person.state()).step == "before"
    assert (await person.say("ten"))[0].startswith("Step 1 of 5")


async def test_urge_is_on_the_menu(person: Person) -> None:
    await person.say("MENU")
    offered = person.offered()
    assert offered.index("URGE") < offered.index("CHECKIN") < offered.index("PLAN")
    reply = await person.choose("URGE")
    assert "How strong is it right now" in reply[0]


async def test_rows_are_queued_once_per_run(engine: AsyncEngine, person: Person) -> None:
    await person.say("URGE")
    await person.rate(7)
    await person.choose("U_SURF")
    async with session_scope(engine) as session:
        keys = (await session.exec(select(OutboundMessage.dedupe_key)
                                   .where(OutboundMessage.kind == MessageKind.FOLLOWUP))).all()
    assert len(keys) == 1 and keys[0].startswith(f"urge-followup:{person.participant_id}:")
