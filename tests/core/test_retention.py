"""Messages from numbers that never link are forgotten after the retention period."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from scheduler.worker import run_cycle
from storage.db import session_scope
from storage.models import InboundMessage
from tests.auxil.senders import RecordingSender, instant_limiter
from tests.core.conftest import NOW, Enrolled, Say


async def test_unlinked_messages_are_blanked_after_30_days_linked_ones_kept(
    engine: AsyncEngine, enrolled: Enrolled, say: Say
) -> None:
    await say("Hi, I am Zebedee and my code is lost", address="+447700900777")
    await say("Sam November")  # Sam proves it is them: linked by the enrolled phone
    senders = {"sms": RecordingSender("sms")}
    await run_cycle(engine, senders, now=NOW + timedelta(days=29), limiter=instant_limiter())
    async with session_scope(engine) as session:
        rows = (await session.exec(select(InboundMessage).order_by(InboundMessage.id))).all()
    assert [r.body for r in rows] == ["Hi, I am Zebedee and my code is lost", "Sam November"]
    out = await run_cycle(engine, senders, now=NOW + timedelta(days=31),
                          limiter=instant_limiter())
    assert out["forgotten"] == 1
    async with session_scope(engine) as session:
        rows = (await session.exec(select(InboundMessage).order_by(InboundMessage.id))).all()
    assert [(r.body, r.address_hash) for r in rows][0] == (None, None)
    assert rows[1].body == "Sam November" and rows[1].participant_id == enrolled.participant_id
