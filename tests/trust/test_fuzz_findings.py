"""What bench.fuzz found, pinned: each request once answered 500, now a 4xx."""

from __future__ import annotations

import httpx
import pytest

from bot.channels.whatsapp import WhatsAppSender
from storage.models import OutboxStatus
from tests.bot.conftest import Stack, make_settings, outbox

STRANGER = "+447700900999"


def _update(date: int) -> dict[str, object]:
    chat = {"id": 424242, "type": "private", "first_name": "Sam"}
    return {"update_id": 5, "message": {"message_id": 1, "date": date, "chat": chat,
                                        "from": {"id": 424242, "is_bot": False,
                                                 "first_name": "Sam"}, "text": "MENU"}}


@pytest.mark.parametrize("date", [2**63, 3616316234723913728, 10**17, 10**30])
async def test_a_date_too_far_out_for_a_timestamp_is_refused(stack: Stack, date: int) -> None:
    """A message date past what a timestamp holds (OverflowError, or EOVERFLOW as OSError)."""
    response = await stack.telegram_update(_update(date))
    assert response.status_code == 400
    assert not stack.telegram.called("sendMessage")


async def test_a_stranger_on_whatsapp_is_answered_at_once(stack: Stack) -> None:
    """A "hi" from a number with no identity opened the window: the answer goes as free text
    at once, not queued until it expires waiting for a window already open."""
    settings = make_settings(whatsapp_from_number="+447700900002")
    sender = WhatsAppSender.from_settings(
        settings, engine=stack.engine, sms=stack.app.state.channels.senders["sms"],
        transport=httpx.ASGITransport(stack.twilio.app))
    stack.app.state.channels.senders["whatsapp"] = sender
    try:
        stack.pause()
        response = await stack.twilio.whatsapp_from(STRANGER, "hello")
        assert response.status_code == 200
        (seen,) = stack.twilio.seen("whatsapp:" + STRANGER)
        assert "send the code from your release card" in seen
        (row,) = await outbox(stack.engine, "whatsapp")
        assert row.status == OutboxStatus.SENT
    finally:
        await sender.aclose()
