"""Routing: STOP phrases, HELP when stopped, stale flows, numbered answers to scheduled texts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.texts import t
from storage.db import session_scope
from storage.models import MessageKind, Participant, Priority
from storage.outbox import enqueue
from tests.core.conftest import NOW, PHONE, Enrolled, Say


async def _ready(say: Say) -> None:
    await say("Sam November")
    await say("YES")


async def _status(engine: AsyncEngine, pid: int) -> str:
    async with session_scope(engine) as session:
        p = await session.get(Participant, pid)
        assert p is not None
        return str(p.status)


@pytest.mark.parametrize("text", ["stop texting me", "Please stop.", "STOP NOW!", "stop it",
                                  "Stop sending me messages", "unsubscribe me"])
async def test_clear_stop_phrases_stop(engine: AsyncEngine, enrolled: Enrolled, say: Say,
                                       text: str) -> None:
    await _ready(say)
    assert "not get any more" in (await say(text))[0]
    assert await _status(engine, enrolled.participant_id) == "stopped"


async def test_stop_inside_an_answer_is_an_answer(engine: AsyncEngine, enrolled: Enrolled,
                                                  say: Say) -> None:
    await _ready(say)
    await say("CBA")
    reply = await say("stop wasting money")
    assert reply and reply[0].startswith("2 of 4")
    assert await _status(engine, enrolled.participant_id) == "active"


async def test_help_answers_when_stopped_on_sms(enrolled: Enrolled, say: Say) -> None:
    await _ready(say)
    await say("STOP")
    assert await say("HELP") == [t("stop.help")]
    assert await say("what") == []


async def test_a_tool_left_for_hours_does_not_swallow_a_new_request(
    enrolled: Enrolled, demo_meetings: int, say: Say
) -> None:
    await _ready(say)
    await say("CBA")
    later = NOW + timedelta(days=5)
    (text,) = await say("MEETINGS ST3 2QH", now=later)
    assert "Meetings near" in text


async def test_keywords_win_in_number_steps(enrolled: Enrolled, demo_meetings: int,
                                            say: Say) -> None:
    await _ready(say)
    await say("URGE")
    (text,) = await say("MEETINGS ST3 2QH")
    assert "Meetings near" in text


async def test_number_answers_the_last_scheduled_question(
    engine: AsyncEngine, enrolled: Enrolled, say: Say
) -> None:
    await _ready(say)
    async with session_scope(engine) as session:
        await enqueue(session, channel="sms", address=PHONE, body="Did you make it?",
                      dedupe_key="fu1", now=NOW + timedelta(minutes=1),
                      participant_id=enrolled.participant_id, kind=MessageKind.FOLLOWUP,
                      priority=Priority.SCHEDULED,
                      choices=[["I went", "WENT"], ["I missed it", "MISSED"]])
    reply = await say("2", now=NOW + timedelta(minutes=2))
    assert reply[0] != t("unknown.hint")
    assert reply[0] in (t("followup.missed"), t("followup.nothing"))
