"""A Telegram update is written down before we answer 200, and bad JSON gets a short 400."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sqlalchemy import text
from telegram import Update

from handlers.texts import t
from storage.models import IdentityStatus, InboundMessage, OutboxStatus
from tests.bot.conftest import (
    CHAT_ID,
    WEBHOOK_SECRET,
    Enrolled,
    Stack,
    db_counts,
    identity,
    outbox,
)

INBOUND_TABLE = InboundMessage.__tablename__


async def _post_raw(stack: Stack, update: dict[str, Any], on_answer: Any) -> int:
    """Post an update straight to the ASGI app; call `on_answer` as the response goes out."""
    body = json.dumps(update).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "https", "path": "/telegram/webhook", "raw_path": b"/telegram/webhook",
        "query_string": b"", "root_path": "", "client": ("149.154.167.220", 443),
        "server": ("throughcare.example.org", 443),
        "headers": [(b"host", b"throughcare.example.org"),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-telegram-bot-api-secret-token", WEBHOOK_SECRET.encode())],
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            await on_answer()  # the app waits here: nothing after the answer has run yet

    stack.pause()
    await stack.app(scope, receive, send)
    return status


async def test_update_is_recorded_before_telegram_hears_200(
    stack: Stack, enrolled: Enrolled
) -> None:
    at_answer: dict[str, Any] = {}

    async def snapshot() -> None:
        at_answer["counts"] = await db_counts(stack.engine)
        at_answer["outbox"] = [r.status for r in await outbox(stack.engine, "telegram")]
        at_answer["sent"] = len(stack.telegram.called("sendMessage"))

    status = await _post_raw(stack, stack.user.text(f"/start {enrolled.code}"), snapshot)
    assert status == 200
    # When Telegram got its 200 the message and both replies were already in the database.
    assert at_answer["counts"]["InboundMessage"] == 1
    assert at_answer["outbox"] == [OutboxStatus.QUEUED, OutboxStatus.QUEUED]
    assert at_answer["sent"] == 0
    # Sending happened after the answer.
    assert stack.telegram.seen(stack.user.chat_id)[0] == t("welcome.linked", name="Sam")
    assert [r.status for r in await outbox(stack.engine, "telegram")] == [OutboxStatus.SENT] * 2


async def test_update_not_recorded_gets_500_and_the_retry_is_handled(
    stack: Stack, enrolled: Enrolled, caplog: pytest.LogCaptureFixture
) -> None:
    update = stack.user.text(f"/start {enrolled.code}")
    before = await db_counts(stack.engine)
    async with stack.engine.begin() as conn:  # the database fails under us
        await conn.execute(text(f"ALTER TABLE {INBOUND_TABLE} RENAME TO inbound_away"))
    try:
        with caplog.at_level(logging.INFO):
            response = await stack.telegram_update(update)
    finally:
        async with stack.engine.begin() as conn:
            await conn.execute(text(f"ALTER TABLE inbound_away RENAME TO {INBOUND_TABLE}"))
    assert response.status_code == 500  # so Telegram sends the update again
    assert await db_counts(stack.engine) == before
    assert stack.telegram.called("sendMessage") == []
    assert enrolled.code not in caplog.text
    # Telegram's retry of the same update_id is handled, once.
    assert (await stack.telegram_update(update)).status_code == 200
    assert (await stack.telegram_update(update)).status_code == 200
    assert stack.telegram.seen(stack.user.chat_id)[0] == t("welcome.linked", name="Sam")
    assert len(stack.telegram.seen(stack.user.chat_id)) == 2
    assert (await db_counts(stack.engine))["InboundMessage"] == 1


@pytest.mark.parametrize("update", [
    {"update_id": 5, "message": "x"},
    {"update_id": 5, "message": {"message_id": 1, "chat": {"id": 9, "type": "private"}}},
    {"update_id": 5, "message": {"message_id": 1, "date": 1764158400, "text": 5,
                                 "chat": {"id": 9, "type": "private"}}},
    {"update_id": 5, "callback_query": {"id": "1", "data": "secret-body"}},
    {"update_id": 5, "my_chat_member": 3},
    {"update_id": "5", "message": {}},
])
async def test_malformed_update_gets_a_short_400(
    stack: Stack, update: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    before = await db_counts(stack.engine)
    with caplog.at_level(logging.INFO):
        response = await stack.telegram_update(update)
    assert response.status_code == 400
    assert len(response.content) < 100 and b"Traceback" not in response.content
    assert await db_counts(stack.engine) == before
    assert "secret-body" not in caplog.text and "Traceback" not in caplog.text
    assert [r.levelname for r in caplog.records if r.name.startswith("bot")] == ["WARNING"]


async def test_polled_updates_take_the_same_path(stack: Stack, enrolled: Enrolled) -> None:
    async def poll(update: dict[str, Any]) -> None:  # what the PTB updater does per update
        stack.pause()
        await stack.tg_app.process_update(Update.de_json(update, stack.tg_app.bot))

    await poll(stack.user.text(f"/start {enrolled.code}"))
    await poll(stack.user.press(t("consent.yes_label")))
    assert len(stack.telegram.called("answerCallbackQuery")) == 1
    assert len(stack.telegram.called("editMessageText")) == 1
    await poll(stack.user.blocks_bot())
    assert (await identity(stack.engine, "telegram", str(CHAT_ID))).status == \
        IdentityStatus.BLOCKED
    seen = stack.telegram.seen(CHAT_ID)
    assert seen[0] == t("welcome.linked", name="Sam") and len(seen) == 4
    assert (await db_counts(stack.engine))["InboundMessage"] == 2
