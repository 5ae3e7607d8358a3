"""WhatsApp through Twilio, end to end through the fake: link, the 24-hour window, templates,
the wait-or-SMS fallback, STOP, erasure, signatures, status callbacks and its own budget."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from bot.channels.whatsapp import WhatsAppSender
from bot.serve import build_limiter
from scheduler.clock import SimClock
from scheduler.dispatcher import dispatch
from scheduler.planning import plan
from scheduler.ratelimit import RateLimiter
from storage.db import session_scope
from storage.models import (
    ChannelIdentity,
    InboundMessage,
    Meeting,
    MessageKind,
    OutboundMessage,
    OutboxStatus,
    Participant,
    ParticipantStatus,
    Priority,
)
from storage.outbox import enqueue
from storage.subscriptions import subscribe
from storage.whatsapp_q import WAITING
from tests.auxil.senders import instant_limiter
from tests.bot.conftest import (
    NOW,
    PHONE,
    PUBLIC,
    Enrolled,
    Stack,
    make_settings,
    outbox,
    participant,
)

WA_NUMBER = "+447700900002"
TO = "whatsapp:" + PHONE
DAY_TEMPLATE = "HX" + "d" * 32
SOON_TEMPLATE = "HX" + "5" * 32
QUIET_DAY = "HX" + "q" * 32
TEMPLATES = {
    "reminder.meeting_day": {"sid": DAY_TEMPLATE, "variables": ["meeting", "when"]},
    "discreet.reminder.meeting_day": {"sid": QUIET_DAY, "variables": ["when"]},
    "reminder.meeting_soon": {"sid": SOON_TEMPLATE, "variables": ["body"]},
}


@dataclass
class WhatsApp:
    """The stack with a WhatsApp sender, and a phone on WhatsApp."""

    stack: Stack
    sender: WhatsAppSender

    @property
    def senders(self) -> Any:
        return self.stack.app.state.channels.senders

    async def send(self, text: str) -> list[str]:
        """Write on WhatsApp; return what the phone shows next."""
        before = len(self.stack.twilio.seen(TO))
        self.stack.pause()
        response = await self.stack.twilio.whatsapp_from(PHONE, text)
        assert response.status_code == 200, response.text
        return self.stack.twilio.seen(TO)[before:]

    async def link(self, code: str) -> None:
        assert any("linked" in t.lower() or "Sam" in t for t in await self.send(code))
        await self.send("YES")

    async def dispatch(self, **later: float) -> None:
        """Run the worker's dispatch pass `later` from the stack's clock."""
        self.stack.clock.advance(**later)
        await dispatch(self.stack.engine, self.senders, now=self.stack.clock.now,
                       limiter=instant_limiter())


@pytest.fixture
async def wa(stack: Stack) -> AsyncIterator[WhatsApp]:
    settings = make_settings(whatsapp_from_number=WA_NUMBER, whatsapp_templates=TEMPLATES)
    sender = WhatsAppSender.from_settings(
        settings, engine=stack.engine, sms=stack.app.state.channels.senders["sms"],
        transport=httpx.ASGITransport(stack.twilio.app))
    stack.app.state.channels.senders["whatsapp"] = sender
    stack.twilio.contents[DAY_TEMPLATE] = "Reminder: {{1}} is tomorrow, {{2}}."
    stack.twilio.contents[QUIET_DAY] = "Reminder: tomorrow, {{1}}."
    yield WhatsApp(stack, sender)
    await sender.aclose()


async def _identities(stack: Stack) -> list[ChannelIdentity]:
    async with session_scope(stack.engine) as session:
        return list((await session.exec(select(ChannelIdentity))).all())


async def _queue(stack: Stack, pid: int, *, kind: MessageKind = MessageKind.BROADCAST,
                 key: str = "bc:1:1") -> None:
    async with session_scope(stack.engine) as session:
        await enqueue(session, channel="whatsapp", address=PHONE, body="The Tuesday group "
                      "has a new room.", dedupe_key=key, now=stack.clock.now,
                      participant_id=pid, kind=kind, priority=Priority.BULK,
                      not_after=stack.clock.now + timedelta(days=5))


async def test_journey_link_reply_in_window_then_a_template_reminder(
    wa: WhatsApp, enrolled: Enrolled
) -> None:
    seen = await wa.send(enrolled.code)
    assert seen and "Sam" in seen[0]
    (identity,) = await _identities(wa.stack)
    assert (identity.channel, identity.address) == ("whatsapp", PHONE)  # no SMS identity
    assert identity.last_inbound_at == wa.stack.clock.now
    replies = await wa.send("YES")
    assert replies  # free text within the window, from our WhatsApp number
    free = [m for m in wa.stack.twilio.messages if m["to"] == TO]
    assert free and all(m["from"] == "whatsapp:" + WA_NUMBER and m["content_sid"] is None
                        and m["body"] for m in free)
    assert not wa.stack.twilio.seen(PHONE)  # nothing by SMS
    async with session_scope(wa.stack.engine) as session:
        meeting = Meeting(slug="stoke", name="Stoke SMART Recovery", weekday=0,
                          start_time=time(19), timezone="Europe/London", venue="Hope Hall",
                          postcode="ST4 2RR", address="1 High Street", lat=52.98,
                          lon=-2.15, types=["SMART"])  # Mondays: NOW is a Thursday
        session.add(meeting)
        await session.flush()
        await subscribe(session, participant_id=enrolled.participant_id,
                        meeting_id=meeting.id or 0, now=NOW)
    wa.stack.clock.advance(days=2)
    await plan(wa.stack.engine, now=wa.stack.clock.now)
    (day,) = [r for r in await outbox(wa.stack.engine, "whatsapp")
              if r.kind == MessageKind.REMINDER and (r.meta or {}).get("offset") == 1440]
    last = identity.last_inbound_at + timedelta(seconds=5)  # the YES
    assert day.due_at - last > timedelta(hours=24)
    before = len(wa.stack.twilio.messages)
    await wa.dispatch(seconds=(day.due_at - wa.stack.clock.now).total_seconds())
    # WhatsApp is discreet by default: the discreet template, and no meeting name.
    (sent,) = [m for m in wa.stack.twilio.messages[before:] if m["content_sid"]]
    assert sent["to"] == TO and sent["content_sid"] == QUIET_DAY
    variables = json.loads(sent["content_variables"])
    assert list(variables) == ["1"] and variables["1"] == "Mon 30 Nov 7pm"
    assert sent["body"] == f"Reminder: tomorrow, {variables['1']}."
    (row,) = [r for r in await outbox(wa.stack.engine, "whatsapp") if r.id == day.id]
    assert row.status == OutboxStatus.SENT and row.provider_id == sent["sid"]


async def test_a_reader_who_is_not_discreet_gets_the_named_template(
    wa: WhatsApp, enrolled: Enrolled
) -> None:
    await wa.link(enrolled.code)
    async with session_scope(wa.stack.engine) as session:
        person = await session.get(Participant, enrolled.participant_id)
        assert person is not None
        person.discreet = False
        session.add(person)
        meeting = Meeting(slug="stoke", name="Stoke SMART Recovery", weekday=0,
                          start_time=time(19), timezone="Europe/London", venue="Hope Hall",
                          postcode="ST4 2RR", address="1 High Street", lat=52.98, lon=-2.15,
                          types=["SMART"])
        session.add(meeting)
        await session.flush()
        await subscribe(session, participant_id=enrolled.participant_id,
                        meeting_id=meeting.id or 0, now=NOW)
    wa.stack.clock.advance(days=2)
    await plan(wa.stack.engine, now=wa.stack.clock.now)
    (day,) = [r for r in await outbox(wa.stack.engine, "whatsapp")
              if r.kind == MessageKind.REMINDER and (r.meta or {}).get("offset") == 1440]
    await wa.dispatch(seconds=(day.due_at - wa.stack.clock.now).total_seconds())
    (sent,) = [m for m in wa.stack.twilio.messages if m["content_sid"]]
    assert sent["content_sid"] == DAY_TEMPLATE
    variables = json.loads(sent["content_variables"])
    assert variables["1"] in day.body and variables["2"] == "Mon 30 Nov 7pm"


async def test_stop_on_whatsapp_stops_it(wa: WhatsApp, enrolled: Enrolled) -> None:
    await wa.link(enrolled.code)
    await _queue(wa.stack, enrolled.participant_id)
    await wa.send("STOP")
    assert (await participant(wa.stack.engine, enrolled.participant_id)).status == \
        ParticipantStatus.STOPPED
    before = len(wa.stack.twilio.messages)
    await wa.dispatch(minutes=1)
    assert wa.stack.twilio.messages[before:] == []
    assert [r.status for r in await outbox(wa.stack.engine, "whatsapp")
            if r.kind == MessageKind.BROADCAST] in ([], [OutboxStatus.CANCELLED])


async def test_erasure_removes_the_whatsapp_identity(wa: WhatsApp, enrolled: Enrolled) -> None:
    await wa.link(enrolled.code)
    assert [i.channel for i in await _identities(wa.stack)] == ["whatsapp"]
    await wa.send("DELETE")
    await wa.send("YES")
    assert await _identities(wa.stack) == []
    assert (await participant(wa.stack.engine, enrolled.participant_id)).status == \
        ParticipantStatus.DELETED


async def test_a_forged_whatsapp_webhook_is_refused(wa: WhatsApp, enrolled: Enrolled) -> None:
    form = {"MessageSid": "SM" + "1" * 32, "From": TO, "To": "whatsapp:" + WA_NUMBER,
            "Body": enrolled.code, "AccountSid": "AC" + "0" * 32}
    response = await wa.stack.client.post(f"{PUBLIC}/sms/inbound", data=form,
                                          headers={"X-Twilio-Signature": "bm90IGl0"})
    assert response.status_code == 403
    async with session_scope(wa.stack.engine) as session:
        assert (await session.exec(select(InboundMessage))).all() == []
    assert await _identities(wa.stack) == []


async def test_a_status_callback_moves_the_whatsapp_row(wa: WhatsApp, enrolled: Enrolled
                                                        ) -> None:
    await wa.link(enrolled.code)
    last = wa.stack.twilio.messages[-1]
    response = await wa.stack.twilio.report(last["sid"], "read")
    assert response.status_code == 200
    (row,) = [r for r in await outbox(wa.stack.engine, "whatsapp")
              if r.provider_id == last["sid"]]
    assert row.status == OutboxStatus.DELIVERED


async def test_whatsapp_has_its_own_rate_budget() -> None:
    limits = build_limiter(make_settings(twilio_mps=1, whatsapp_mps=5)).limits
    assert limits["whatsapp"].per_second == 5 and limits["sms"].per_second == 1
    limiter = RateLimiter(limits=limits, clock=SimClock())
    assert await limiter.acquire("sms", 1.0, max_wait=0)
    assert not await limiter.acquire("sms", 1.0, max_wait=0)  # SMS spent for this second
    assert await limiter.acquire("whatsapp", 1.0, max_wait=0)  # WhatsApp is not


async def test_wait_keeps_it_queued_until_they_write(wa: WhatsApp, enrolled: Enrolled
                                                     ) -> None:
    await wa.link(enrolled.code)
    wa.stack.clock.advance(days=2)
    await _queue(wa.stack, enrolled.participant_id)
    before = len(wa.stack.twilio.messages)
    await wa.dispatch(seconds=1)
    (row,) = [r for r in await outbox(wa.stack.engine, "whatsapp") if r.dedupe_key == "bc:1:1"]
    assert (row.status, row.error, row.attempts) == (OutboxStatus.QUEUED, WAITING, 0)
    assert wa.stack.twilio.messages[before:] == []
    await wa.send("hi")  # the window opens: the waiting message is due at once
    await wa.dispatch(seconds=1)
    (row,) = [r for r in await outbox(wa.stack.engine, "whatsapp") if r.dedupe_key == "bc:1:1"]
    assert row.status == OutboxStatus.SENT
    assert "The Tuesday group has a new room." in wa.stack.twilio.seen(TO)


async def test_sms_choice_sends_it_by_text_instead(wa: WhatsApp, enrolled: Enrolled) -> None:
    await wa.link(enrolled.code)
    (answer,) = await wa.send("WHATSAPP SMS")
    assert "by text" in answer
    assert (await participant(wa.stack.engine, enrolled.participant_id)).whatsapp_fallback \
        == "sms"
    wa.stack.clock.advance(days=2)
    await _queue(wa.stack, enrolled.participant_id)
    await wa.dispatch(seconds=1)
    assert wa.stack.twilio.seen(PHONE) == ["The Tuesday group has a new room."]
    (sms,) = [m for m in wa.stack.twilio.messages if m["to"] == PHONE]
    assert sms["from"] == "+447700900001"  # our SMS number
    (row,) = [r for r in await outbox(wa.stack.engine, "whatsapp") if r.dedupe_key == "bc:1:1"]
    assert row.status == OutboxStatus.SENT and (row.meta or {})["sent_by"] == "sms"
    assert row.provider_id == sms["sid"]
    await wa.stack.twilio.report(sms["sid"], "delivered")  # its callback finds the row
    async with session_scope(wa.stack.engine) as session:
        again = (await session.exec(select(OutboundMessage)
                                    .where(col(OutboundMessage.id) == row.id))).one()
    assert again.status == OutboxStatus.DELIVERED


async def test_without_a_choice_shown_and_usage(wa: WhatsApp, enrolled: Enrolled) -> None:
    await wa.link(enrolled.code)
    now, usage = await wa.send("WHATSAPP")
    assert "waits" in now and "WHATSAPP SMS" in usage
