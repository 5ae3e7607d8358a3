"""What each provider error does to the outbox row and to the person's channel identity."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from bot.channels.inbox import ChannelRuntime
from handlers.texts import t
from scheduler.dispatcher import dispatch
from scheduler.ratelimit import RateLimiter
from storage.db import session_scope
from storage.models import IdentityStatus, OutboxStatus, Participant, ParticipantStatus
from tests.bot.conftest import (
    CHAT_ID,
    PHONE,
    Enrolled,
    Stack,
    identity,
    outbox,
    participant,
)


async def _linked_sms(stack: Stack, enrolled: Enrolled) -> None:
    await stack.sms(enrolled.code)
    await stack.sms("YES")


async def _linked_telegram(stack: Stack, enrolled: Enrolled) -> None:
    await stack.tg(f"/start {enrolled.code}")
    await stack.press(t("consent.yes_label"))


async def _sweep(stack: Stack, seconds: float) -> None:
    """Let the worker run `seconds` later, as its periodic sweep would."""
    stack.pause(seconds)
    runtime: ChannelRuntime = stack.app.state.channels
    await dispatch(stack.engine, runtime.senders, now=stack.clock.now,
                   limiter=runtime.limiter or RateLimiter())


@pytest.mark.parametrize(("code", "status", "reason"), [
    (21610, IdentityStatus.OPTED_OUT, "recipient unsubscribed"),
    (21211, IdentityStatus.UNREACHABLE, "invalid number"),
    (21614, IdentityStatus.UNREACHABLE, "not a mobile number"),
])
async def test_permanent_twilio_errors_on_send(
    stack: Stack, enrolled: Enrolled, code: int, status: IdentityStatus, reason: str
) -> None:
    await _linked_sms(stack, enrolled)
    stack.twilio.fail_next(code)
    assert await stack.sms("MENU") == []  # nothing reached the phone
    last = (await outbox(stack.engine, "sms"))[-1]
    assert last.status == OutboxStatus.FAILED
    assert last.error == f"twilio {code}: {reason}"
    assert last.provider_id is None
    ident = await identity(stack.engine, "sms", PHONE)
    assert (ident.status, ident.error_code) == (status, str(code))
    # Nothing more is tried on that number: the next reply fails without a Twilio call.
    calls = len(stack.twilio.requests)
    await stack.sms("MENU")
    assert len(stack.twilio.requests) == calls
    assert (await outbox(stack.engine, "sms"))[-1].status == OutboxStatus.FAILED


async def test_opted_out_number_comes_back_with_start(stack: Stack, enrolled: Enrolled) -> None:
    await _linked_sms(stack, enrolled)
    stack.twilio.opted_out.add(PHONE)  # the person texted STOP while we were down
    await stack.sms("MENU")
    assert (await identity(stack.engine, "sms", PHONE)).status == IdentityStatus.OPTED_OUT
    async with session_scope(stack.engine) as session:
        person = (await session.exec(select(Participant))).one()
    assert person.status == ParticipantStatus.STOPPED  # 21610 stops every channel
    stack.twilio.opted_out.discard(PHONE)  # they send START; Twilio lifts its block
    assert await stack.sms("START") == [t("stop.restarted", name="Sam")]
    ident = await identity(stack.engine, "sms", PHONE)
    assert (ident.status, ident.error_code) == (IdentityStatus.ACTIVE, None)
    assert (await outbox(stack.engine, "sms"))[-1].status == OutboxStatus.SENT


async def test_twilio_default_opt_out_end_to_end(stack: Stack, enrolled: Enrolled) -> None:
    stack.twilio.default_opt_out = True  # Twilio answers STOP itself and blocks the number
    await _linked_sms(stack, enrolled)
    [twilio_says] = await stack.sms("STOP")
    assert twilio_says.startswith("You have successfully been unsubscribed")
    stop_reply = (await outbox(stack.engine, "sms"))[-1]
    assert stop_reply.body == t("stop.done")
    assert stop_reply.status == OutboxStatus.FAILED
    assert stop_reply.error == "twilio 21610: recipient unsubscribed"
    assert (await identity(stack.engine, "sms", PHONE)).status == IdentityStatus.OPTED_OUT
    assert (await participant(stack.engine, enrolled.participant_id)).status == \
        ParticipantStatus.STOPPED
    seen = await stack.sms("START")
    assert seen[0].startswith("You have successfully been re-subscribed")
    assert seen[1:] == [t("stop.restarted", name="Sam")]
    assert (await identity(stack.engine, "sms", PHONE)).status == IdentityStatus.ACTIVE


@pytest.mark.parametrize("code", [30003, 30004, 30005, 30006])
async def test_undelivered_status_callback_marks_number_unreachable(
    stack: Stack, enrolled: Enrolled, code: int
) -> None:
    await _linked_sms(stack, enrolled)
    sid = stack.twilio.messages[-1]["sid"]
    response = await stack.twilio.report(sid, "undelivered", error_code=code)
    assert response.status_code == 200
    row = next(r for r in await outbox(stack.engine, "sms") if r.provider_id == sid)
    assert (row.status, row.error) == (OutboxStatus.FAILED, f"twilio {code}: undelivered")
    ident = await identity(stack.engine, "sms", PHONE)
    assert (ident.status, ident.error_code) == (IdentityStatus.UNREACHABLE, str(code))


async def test_status_callbacks_only_move_forward(stack: Stack, enrolled: Enrolled) -> None:
    await _linked_sms(stack, enrolled)
    sid = stack.twilio.messages[-1]["sid"]

    async def status() -> OutboxStatus:
        rows = await outbox(stack.engine, "sms")
        return next(r.status for r in rows if r.provider_id == sid)

    for reported in ("queued", "sending", "sent"):
        await stack.twilio.report(sid, reported)
        assert await status() == OutboxStatus.SENT
    await stack.twilio.report(sid, "delivered")
    assert await status() == OutboxStatus.DELIVERED
    await stack.twilio.report(sid, "sent")  # late and out of order
    await stack.twilio.report(sid, "undelivered", error_code=30003)
    assert await status() == OutboxStatus.DELIVERED
    assert (await identity(stack.engine, "sms", PHONE)).status == IdentityStatus.ACTIVE
    row = next(r for r in await outbox(stack.engine, "sms") if r.provider_id == sid)
    assert row.delivered_at == stack.clock.now and row.error is None


async def test_status_for_unknown_message_is_accepted_and_ignored(stack: Stack) -> None:
    stack.twilio.messages.append({"sid": "SM" + "9" * 32, "to": PHONE, "from": "+447700900001",
                                  "messaging_service_sid": None,
                                  "status_callback": "https://throughcare.example.org/sms/status"})
    response = await stack.twilio.report("SM" + "9" * 32, "delivered")
    assert response.status_code == 200
    assert await outbox(stack.engine, "sms") == []


async def test_twilio_429_honours_retry_after(stack: Stack, enrolled: Enrolled) -> None:
    await _linked_sms(stack, enrolled)
    stack.twilio.fail_next(20429, retry_after=30)
    assert await stack.sms("MENU") == []
    row = (await outbox(stack.engine, "sms"))[-1]
    assert row.status == OutboxStatus.QUEUED
    assert row.due_at == stack.clock.now + timedelta(seconds=30)
    assert row.error == "twilio http 429" and row.attempts == 1
    await _sweep(stack, 31)
    row = (await outbox(stack.engine, "sms"))[-1]
    assert row.status == OutboxStatus.SENT and row.attempts == 2
    assert stack.twilio.seen(PHONE)[-1].startswith(t("menu.title"))
    assert (await identity(stack.engine, "sms", PHONE)).status == IdentityStatus.ACTIVE


async def test_twilio_500_is_retried_later(stack: Stack, enrolled: Enrolled) -> None:
    await _linked_sms(stack, enrolled)
    stack.twilio.fail_next(20500)
    await stack.sms("MENU")
    row = (await outbox(stack.engine, "sms"))[-1]
    assert (row.status, row.error) == (OutboxStatus.QUEUED, "twilio http 500")
    assert row.due_at > stack.clock.now
    assert (await identity(stack.engine, "sms", PHONE)).status == IdentityStatus.ACTIVE


async def test_telegram_blocked_bot(stack: Stack, enrolled: Enrolled) -> None:
    await _linked_telegram(stack, enrolled)
    stack.telegram.blocked_chats.add(CHAT_ID)
    assert await stack.tg("MENU") == []
    row = (await outbox(stack.engine, "telegram"))[-1]
    assert (row.status, row.error) == (
        OutboxStatus.FAILED, "telegram 403: bot blocked by the user")
    ident = await identity(stack.engine, "telegram", str(CHAT_ID))
    assert (ident.status, ident.error_code) == (IdentityStatus.BLOCKED, "403")
    # Writing to the bot again means they unblocked it.
    stack.telegram.blocked_chats.clear()
    assert await stack.tg("MENU") != []
    assert (await identity(stack.engine, "telegram", str(CHAT_ID))).status == \
        IdentityStatus.ACTIVE


async def test_telegram_block_update_marks_identity(stack: Stack, enrolled: Enrolled) -> None:
    await _linked_telegram(stack, enrolled)
    response = await stack.telegram_update(stack.user.blocks_bot())
    assert response.status_code == 200
    assert (await identity(stack.engine, "telegram", str(CHAT_ID))).status == \
        IdentityStatus.BLOCKED


async def test_telegram_429_honours_retry_after(stack: Stack, enrolled: Enrolled) -> None:
    await _linked_telegram(stack, enrolled)
    stack.telegram.fail_next(429, "Too Many Requests: retry after 7", retry_after=7)
    assert await stack.tg("MENU") == []
    row = (await outbox(stack.engine, "telegram"))[-1]
    assert (row.status, row.error) == (OutboxStatus.QUEUED, "telegram: flood control")
    assert row.due_at == stack.clock.now + timedelta(seconds=7)
    await _sweep(stack, 8)
    assert (await outbox(stack.engine, "telegram"))[-1].status == OutboxStatus.SENT
    assert stack.telegram.seen(CHAT_ID)[-1].startswith(t("menu.title"))



async def test_twilio_error_text_with_the_number_is_not_kept(
    stack: Stack, enrolled: Enrolled
) -> None:
    await _linked_sms(stack, enrolled)
    stack.twilio.fail_next(21211)
    await stack.sms("MENU")
    # Twilio's own message quotes the number; the outbox keeps only the code and our words.
    assert stack.twilio.errors[-1]["message"] == \
        f"The 'To' number {PHONE} is not a valid phone number."
    row = (await outbox(stack.engine, "sms"))[-1]
    assert (row.status, row.error) == (OutboxStatus.FAILED, "twilio 21211: invalid number")


async def test_telegram_error_text_with_a_name_is_not_kept(
    stack: Stack, enrolled: Enrolled
) -> None:
    await _linked_telegram(stack, enrolled)
    stack.telegram.fail_next(400, "Bad Request: can't parse entities: unsupported start tag "
                                  "\"Sam Smith\" at byte offset 12")
    await stack.tg("MENU")
    stack.telegram.fail_next(409, "Conflict: terminated by other request from Sam Smith")
    await stack.tg("HELP")
    rows = await outbox(stack.engine, "telegram")
    assert [(r.status, r.error) for r in rows if r.error is not None] == [
        (OutboxStatus.FAILED, "telegram 400: bad HTML"),
        (OutboxStatus.QUEUED, "telegram: rejected"),
    ]
