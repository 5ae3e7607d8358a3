"""Quiet hours hold what we start at night, never what the person asked for."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from scheduler.dispatcher import dispatch
from storage.db import session_scope
from storage.models import MessageKind, OutboundMessage, OutboxStatus, Priority
from storage.outbox import enqueue
from tests.auxil.senders import RecordingSender, instant_limiter
from tests.core.conftest import PHONE, Enrolled

NIGHT = datetime(2026, 11, 27, 2, 30, tzinfo=UTC)  # 02:30 in London


async def test_asked_for_check_back_goes_at_night_but_a_nudge_waits(
    engine: AsyncEngine, enrolled: Enrolled
) -> None:
    async with session_scope(engine) as session:
        for key, meta in (("asked", {"always": True}), ("nudge", None)):
            await enqueue(session, channel="sms", address=PHONE, body=key, dedupe_key=key,
                          now=NIGHT, participant_id=enrolled.participant_id,
                          kind=MessageKind.FOLLOWUP, priority=Priority.SCHEDULED, meta=meta)
    sender = RecordingSender("sms")
    await dispatch(engine, {"sms": sender}, now=NIGHT, limiter=instant_limiter())
    assert [m.body for m in sender.sent] == ["asked"]
    async with session_scope(engine) as session:
        rows = {r.body: r for r in (await session.exec(
            select(OutboundMessage))).all()}
    assert rows["nudge"].status == OutboxStatus.QUEUED
    assert rows["nudge"].due_at == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
