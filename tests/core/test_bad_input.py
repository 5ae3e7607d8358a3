"""Hostile and odd input gets a short, helpful reply and leaves the database consistent."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import func, select

from storage.db import session_scope
from storage.models import ConversationState, InboundMessage, OutboundMessage, Participant
from tests.core.conftest import Enrolled, Say

BAD = [
    "",
    "   ",
    "x" * 5000,
    "🙂🙂🙂",
    "\x00\x07\x1b[31mred\x1b[0m",
    "'; DROP TABLE participant; --",
    "MEETINGS '; DROP TABLE meeting; --",
    "MEETINGS " + "🙂" * 300,
    "MEETINGS \u202eetihw",
    "<b>bold</b> & <script>alert(1)</script>",
    "١٢٣",
    "MORE",
    "SAVE 99",
    "SAVE -1",
    "/start",
    "ABCDE-12345",
]


async def _consented(say: Say) -> None:
    await say("Sam November")
    await say("YES")


@pytest.mark.parametrize("text", BAD)
async def test_bad_input_gets_a_short_reply(
    engine: AsyncEngine, enrolled: Enrolled, demo_meetings: int, say: Say, text: str
) -> None:
    await _consented(say)
    replies = await say(text)
    assert replies, "every message gets an answer"
    assert all(0 < len(r) <= 480 for r in replies)
    assert not any("Traceback" in r or "Error" in r for r in replies)
    async with session_scope(engine) as session:
        assert (await session.exec(select(func.count()).select_from(Participant))).one() == 1
        state = await session.get(ConversationState, enrolled.participant_id)
        assert state is not None
    # The service still works after it.
    assert "Meetings near" in "\n".join(await say("MEETINGS ST3 2QH"))


async def test_long_message_is_stored_clipped(engine: AsyncEngine, enrolled: Enrolled,
                                              say: Say) -> None:
    await _consented(say)
    replies = await say("y" * 5000)
    assert "very long" in replies[0]
    async with session_scope(engine) as session:
        rows = (await session.exec(select(InboundMessage))).all()
    assert max(len(r.body or "") for r in rows) <= 1000


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
async def test_any_text_from_a_stranger_is_answered(engine: AsyncEngine, say: Say,
                                                    text: str) -> None:
    replies = await say(text, address="+447700900555")
    assert replies and all(len(r) <= 480 for r in replies)
    async with session_scope(engine) as session:
        outs = (await session.exec(select(OutboundMessage))).all()
    assert all(o.address == "+447700900555" for o in outs)
