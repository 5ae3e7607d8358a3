"""Retention: bodies are blanked after BODY_RETENTION_DAYS (never one still queued or
sending), and Twilio's copy of each text is redacted once it is delivered, through the real
twilio library against the fake Twilio API."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.channels.sms import TwilioSender
from scheduler.retention import RetentionPolicy, redactors, run_retention
from scheduler.worker import build_scheduler, run_cycle
from storage.db import session_scope
from storage.models import InboundMessage, OutboundMessage, OutboxStatus
from storage.outbox import enqueue
from storage.participants import record_inbound
from tests.auxil.senders import instant_limiter
from tests.bot.conftest import NOW, PHONE, Stack, make_settings

DAY = timedelta(days=1)


async def _message_pair(engine: AsyncEngine, name: str, *, at: datetime,
                        status: OutboxStatus = OutboxStatus.SENT) -> None:
    """Write one inbound text and one outbox row with this status, both at `at`."""
    async with session_scope(engine) as session:
        await record_inbound(session, channel="sms", provider_id=f"SM-in-{name}",
                             body=f"in {name}", now=at, address=PHONE)
        await enqueue(session, channel="sms", address=PHONE, body=f"out {name}",
                      dedupe_key=f"test:{name}", now=at, choices=[["Yes", "YES"]])
        row = (await session.exec(select(OutboundMessage)
                                  .where(OutboundMessage.dedupe_key == f"test:{name}"))).one()
        row.status = status
        row.sent_at = at if status not in (OutboxStatus.QUEUED, OutboxStatus.SENDING) else None
        session.add(row)


async def _bodies(engine: AsyncEngine) -> tuple[dict[str, str | None], dict[str, str]]:
    async with session_scope(engine) as session:
        inbound = (await session.exec(select(InboundMessage))).all()
        outbound = (await session.exec(select(OutboundMessage))).all()
    return ({r.provider_id: r.body for r in inbound},
            {r.dedupe_key: r.body for r in outbound})


async def test_bodies_older_than_the_retention_are_blanked_newer_and_queued_kept(
    engine: AsyncEngine,
) -> None:
    old, new = NOW - 91 * DAY, NOW - 89 * DAY
    await _message_pair(engine, "old", at=old)
    await _message_pair(engine, "old-delivered", at=old, status=OutboxStatus.DELIVERED)
    await _message_pair(engine, "old-queued", at=old, status=OutboxStatus.QUEUED)
    await _message_pair(engine, "old-sending", at=old, status=OutboxStatus.SENDING)
    await _message_pair(engine, "new", at=new)
    stats = await run_retention(engine, {}, now=NOW)
    assert (stats.inbound_blanked, stats.outbound_blanked) == (4, 2)
    inbound, outbound = await _bodies(engine)
    assert inbound == {"SM-in-old": None, "SM-in-old-delivered": None,
                       "SM-in-old-queued": None, "SM-in-old-sending": None,
                       "SM-in-new": "in new"}
    assert outbound == {"test:old": "", "test:old-delivered": "",
                        "test:old-queued": "out old-queued",
                        "test:old-sending": "out old-sending", "test:new": "out new"}
    async with session_scope(engine) as session:
        row = (await session.exec(select(OutboundMessage)
                                  .where(OutboundMessage.dedupe_key == "test:old"))).one()
    assert row.choices is None  # the labels are text too
    again = await run_retention(engine, {}, now=NOW)
    assert (again.inbound_blanked, again.outbound_blanked) == (0, 0)
    # A shorter setting blanks sooner.
    short = await run_retention(engine, {}, now=NOW, policy=RetentionPolicy(body_days=30))
    assert (short.inbound_blanked, short.outbound_blanked) == (1, 1)


async def test_the_worker_cycle_runs_retention_and_the_scheduler_has_its_job(
    engine: AsyncEngine,
) -> None:
    await _message_pair(engine, "old", at=NOW - 91 * DAY)
    out = await run_cycle(engine, {}, now=NOW, limiter=instant_limiter())
    # The inbound text never linked, so housekeeping forgot it first (after 30 days).
    assert (out["forgotten"], out["retention"]["outbound_blanked"]) == (1, 1)
    assert await _bodies(engine) == ({"SM-in-old": None}, {"test:old": ""})
    scheduler = build_scheduler(engine, {})
    assert scheduler.get_job("retention") is not None


def test_twilio_redaction_is_on_by_default_outside_local_mode_only() -> None:
    assert make_settings().twilio_redacts is False
    # Production refuses to start without its keys; only the switch matters here.
    production = make_settings().model_copy(update={"local_mode": False})
    assert production.twilio_redacts is True
    assert production.model_copy(update={"twilio_redact_bodies": False}).twilio_redacts is False
    assert make_settings(twilio_redact_bodies=True).twilio_redacts is True
    sender = TwilioSender.from_settings(production)
    assert redactors({"sms": sender}) == {"sms": sender}
    assert redactors({"sms": TwilioSender.from_settings(make_settings())}) == {}


def _redacting(stack: Stack) -> TwilioSender:
    settings = make_settings(twilio_redact_bodies=True)
    return TwilioSender.from_settings(settings,
                                      transport=httpx.ASGITransport(stack.twilio.app))


async def _meta(engine: AsyncEngine) -> dict[str, dict[str, object]]:
    async with session_scope(engine) as session:
        rows = (await session.exec(select(OutboundMessage)
                                   .where(col(OutboundMessage.provider_id).is_not(None)))).all()
    return {r.provider_id or "": r.meta or {} for r in rows}


async def test_delivered_texts_are_redacted_at_twilio_once(stack: Stack) -> None:
    sender = _redacting(stack)
    try:
        await stack.sms("Hello")
        await stack.sms("Is anyone there?")
        sids = [m["sid"] for m in stack.twilio.messages]
        assert len(sids) == 2 and all(m["body"] for m in stack.twilio.messages)
        await stack.twilio.report(sids[0], "delivered")
        now = stack.clock.now
        # Delivered goes at once; the other is only "sent": it settles first.
        first = await run_retention(stack.engine, {"sms": sender}, now=now)
        assert first.redacted == 1 and stack.twilio.redactions == [sids[0]]
        assert stack.twilio.messages[0]["body"] == "" and stack.twilio.messages[1]["body"]
        # Two workers at once, later: the sent one goes, once; nothing goes twice.
        later = now + timedelta(minutes=11)
        await asyncio.gather(run_retention(stack.engine, {"sms": sender}, now=later),
                             run_retention(stack.engine, {"sms": sender}, now=later))
        await run_retention(stack.engine, {"sms": sender}, now=later + timedelta(hours=1))
        assert stack.twilio.redactions == sids
        assert all(m["body"] == "" for m in stack.twilio.messages)
        meta = await _meta(stack.engine)
        assert {sid: meta[sid].get("provider_copy") for sid in sids} == \
            dict.fromkeys(sids, "redacted")
        # What our own rows hold is untouched until the retention period.
        async with session_scope(stack.engine) as session:
            bodies = (await session.exec(select(OutboundMessage.body))).all()
        assert all(bodies)
    finally:
        await sender.aclose()


async def test_a_failed_redaction_is_tried_next_pass_and_a_404_counts_as_done(
    stack: Stack,
) -> None:
    sender = _redacting(stack)
    try:
        await stack.sms("Hello")
        sid = stack.twilio.messages[0]["sid"]
        await stack.twilio.report(sid, "delivered")
        stack.twilio.redact_failures.append(20500)  # Twilio has a bad moment
        now = stack.clock.now
        first = await run_retention(stack.engine, {"sms": sender}, now=now)
        assert (first.redacted, first.redact_failed) == (0, 1)
        assert stack.twilio.redactions == []
        again = await run_retention(stack.engine, {"sms": sender}, now=now + timedelta(minutes=5))
        assert (again.redacted, again.redact_failed) == (1, 0)
        assert stack.twilio.redactions == [sid]
        # A message Twilio no longer has (deleted in its console): done, never asked again.
        stack.twilio.messages.clear()
        await stack.sms("Still there?")
        gone = stack.twilio.messages[0]["sid"]
        await stack.twilio.report(gone, "delivered")
        stack.twilio.messages.clear()
        when = now + timedelta(minutes=10)
        assert (await run_retention(stack.engine, {"sms": sender}, now=when)).redacted == 1
        assert (await run_retention(stack.engine, {"sms": sender},
                                    now=when + timedelta(minutes=10))).redacted == 0
        assert (await _meta(stack.engine))[gone]["provider_copy"] == "gone"
        assert stack.twilio.redactions == [sid]
    finally:
        await sender.aclose()


async def test_no_redaction_through_a_sender_that_is_not_told_to(stack: Stack) -> None:
    sender = TwilioSender.from_settings(make_settings(),  # local mode: off by default
                                        transport=httpx.ASGITransport(stack.twilio.app))
    try:
        await stack.sms("Hello")
        await stack.twilio.report(stack.twilio.messages[0]["sid"], "delivered")
        stats = await run_retention(stack.engine, {"sms": sender},
                                    now=stack.clock.now + DAY)
        assert stats.redacted == 0 and stack.twilio.redactions == []
    finally:
        await sender.aclose()
