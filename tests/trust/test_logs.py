"""Whatever happens, log lines carry no numbers, link codes, tokens or message bodies."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bot.logs import QUIET_LOGGERS, redact, setup_logging
from storage.db import session_scope
from tests.bot.conftest import ACCOUNT_SID, AUTH_TOKEN, BOT_TOKEN, PHONE, Enrolled, Stack

SENTENCE = "I used again last night and I am scared"
OTHER_PHONE = "07700 900456"


@pytest.fixture(params=["INFO", "DEBUG"])
def log_output(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """Install our logging at INFO or DEBUG, writing JSON lines to a buffer."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level,
             {name: logging.getLogger(name).level for name in QUIET_LOGGERS})
    buffer = io.StringIO()
    setup_logging(request.param, stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved[0]
        for handler in root.handlers:
            handler.filters.clear()
        root.setLevel(saved[1])
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)


def _assert_clean(output: str, *secrets: str) -> list[dict[str, str]]:
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert lines, "nothing was logged: the test would prove nothing"
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    for secret in (*secrets, PHONE, PHONE[1:], "07700900123", BOT_TOKEN, AUTH_TOKEN,
                   ACCOUNT_SID, SENTENCE, "scared", OTHER_PHONE, "900456"):
        assert secret not in output, f"{secret!r} reached the log"
    return lines


async def test_sms_journey_leaves_nothing_personal(
    stack: Stack, enrolled: Enrolled, log_output: io.StringIO
) -> None:
    await stack.sms(enrolled.code)
    await stack.sms("YES")
    await stack.sms(f"CHECKIN {SENTENCE}, call me on {OTHER_PHONE}")
    await stack.sms(SENTENCE)
    stack.twilio.fail_next(20500)  # the provider fails: a transient error is logged
    await stack.sms(f"{SENTENCE} again")
    stack.twilio.fail_next(21211)  # and a permanent one, whose Twilio text quotes the number
    await stack.sms("MENU")
    lines = _assert_clean(log_output.getvalue(), enrolled.code,
                          enrolled.code.replace("-", ""))
    assert any(line["logger"].startswith(("bot.", "scheduler.")) for line in lines)


async def test_telegram_link_leaves_nothing_personal(
    stack: Stack, enrolled: Enrolled, log_output: io.StringIO
) -> None:
    await stack.tg(f"/start {enrolled.code.replace('-', '')}")
    await stack.tg(SENTENCE)
    logging.getLogger("httpx").warning("HTTP Request: POST https://api.telegram.org/bot%s/"
                                       "sendMessage", BOT_TOKEN)
    _assert_clean(log_output.getvalue(), enrolled.code.replace("-", ""))


async def test_database_error_hides_parameters(
    stack: Stack, log_output: io.StringIO
) -> None:
    logger = logging.getLogger("tests.trust")
    try:
        async with session_scope(stack.engine) as session:
            await session.exec(text(  # type: ignore[call-overload]
                "INSERT INTO no_such_table (body, phone) VALUES (:body, :phone)"),
                params={"body": SENTENCE, "phone": "+447700900999"})
    except SQLAlchemyError as exc:
        assert "no_such_table" in str(exc) and SENTENCE not in str(exc)
        logger.exception("database failed")
    logger.error("failed with %r and %s", ("+447700900999", "07700900998"), AUTH_TOKEN)
    output = log_output.getvalue()
    lines = _assert_clean(output, "+447700900999", "07700900998", "7700900999")
    assert any("no_such_table" in line.get("exception", "") for line in lines)


def test_redaction_patterns() -> None:
    assert redact("code ABCDE-FGHJK and abcde fghjk and ABCDEFGHJK") == \
        "code [code] and [code] and [code]"
    assert redact("from +44 7700 900123 or 07700900123 or 447700900123") == \
        "from [phone] or [phone] or [phone]"
    assert redact(f"/bot{BOT_TOKEN}/getMe") == "/bot[token]/getMe"
    assert redact(f"{ACCOUNT_SID} {AUTH_TOKEN}") == "[sid] [secret]"
    kept = "outbox #12 sent as SM" + "0123456789abcdef" * 2 + " at 2026-11-26 12:00:00+00:00"
    assert redact(kept) == kept
