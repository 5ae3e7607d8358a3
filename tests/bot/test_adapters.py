"""Adapters only translate: Telegram updates and Twilio forms in, provider calls out."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from telegram import Bot, Update

from bot.channels.sms import (
    TwilioSender,
    identity_status_for,
    normalise_number,
)
from bot.channels.telegram import activate, build_application, start_text, update_to_inbound
from bot.serve import build_senders
from scheduler.errors import PermanentSendError, TransientSendError
from scheduler.sender import OutgoingMessage
from storage.models import IdentityStatus
from tests.bot.conftest import BOT_TOKEN, NOW, PUBLIC, WEBHOOK_SECRET, make_settings
from tests.fakes.telegram_api import FakeTelegram, FakeTelegramUser
from tests.fakes.twilio_api import FakeTwilio

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bot() -> Bot:
    """Return a bot object for de_json (never used to make a request)."""
    return Bot(BOT_TOKEN)


def test_text_update_becomes_one_inbound(bot: Bot) -> None:
    user = FakeTelegramUser(FakeTelegram(BOT_TOKEN), chat_id=99, first_name="Jo")
    payload = user.text("meetings ST3 2QH")
    inbound = update_to_inbound(Update.de_json(payload, bot), now=NOW)
    assert inbound is not None
    assert (inbound.channel, inbound.address, inbound.text, inbound.provider_id,
            inbound.display_name) == ("telegram", "99", "meetings ST3 2QH",
                                      str(payload["update_id"]), "Jo")


def test_location_and_button_updates(bot: Bot) -> None:
    fake = FakeTelegram(BOT_TOKEN)
    user = FakeTelegramUser(fake, chat_id=99)
    located = update_to_inbound(Update.de_json(user.location(52.99, -2.13), bot), now=NOW)
    assert located is not None and located.location == (52.99, -2.13)
    fake.messages[(99, 5)] = {"message_id": 5, "date": 0, "text": "Is that OK?",
                              "chat": {"id": 99, "type": "private"},
                              "reply_markup": {"inline_keyboard": [[
                                  {"text": "Yes", "callback_data": "YES"}]]}}
    pressed = update_to_inbound(Update.de_json(user.press("Yes"), bot), now=NOW)
    assert pressed is not None and (pressed.payload, pressed.text) == ("YES", "YES")


def test_group_chats_are_ignored(bot: Bot) -> None:
    payload = FakeTelegramUser(FakeTelegram(BOT_TOKEN)).text("hello")
    payload["message"]["chat"] = {"id": -100123, "title": "A group", "type": "supergroup"}
    assert update_to_inbound(Update.de_json(payload, bot), now=NOW) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("/start ABCDE-FGHJK", "/start ABCDE-FGHJK"),
    ("/start " + "a" * 64, "/start " + "a" * 64),
    ("/start " + "a" * 65, "/start"),  # longer than Telegram allows: payload dropped
    ("/start ab+cd", "/start"),
    ("/start <script>", "/start"),
    ("/start", "/start"),
])
def test_start_payload_rules(text: str, expected: str) -> None:
    assert start_text(text) == expected


@pytest.mark.parametrize(("raw", "e164"), [
    ("07700 900123", "+447700900123"), ("+44 7700 900123", "+447700900123"),
    ("00447700900123", "+447700900123"), ("+1 415 555 2671", "+14155552671"),
    ("hello", None), ("", None), ("123", None),
])
def test_phone_numbers_normalise_to_e164(raw: str, e164: str | None) -> None:
    assert normalise_number(raw) == e164


def test_error_codes_map_to_identity_status() -> None:
    assert identity_status_for(21610) == IdentityStatus.OPTED_OUT
    for code in (21211, 21614, 30003, 30004, 30005, 30006):
        assert identity_status_for(code) == IdentityStatus.UNREACHABLE
    assert identity_status_for(30007) is None and identity_status_for(None) is None


async def test_sms_sender_uses_messaging_service_and_maps_errors() -> None:
    settings = make_settings(twilio_messaging_service_sid="MG" + "1" * 32)
    fake = FakeTwilio(settings.twilio_account_sid or "", "f" * 32)
    sender = TwilioSender.from_settings(settings, transport=httpx.ASGITransport(fake.app))
    message = OutgoingMessage(id=1, channel="sms", address="+447700900123",
                              body="Choose one", choices=(("Yes", "YES"), ("No", "NO")))
    try:
        result = await sender.send(message)
        assert result.provider_id == fake.messages[0]["sid"] and result.segments == 1
        sent = fake.requests[0]
        assert sent["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in sent
        assert sent["Body"] == "Choose one\n1 Yes\n2 No"
        assert sent["StatusCallback"] == f"{PUBLIC}/sms/status"
        fake.fail_next(21211)
        with pytest.raises(PermanentSendError) as permanent:
            await sender.send(message)
        assert permanent.value.identity_status == IdentityStatus.UNREACHABLE
        fake.fail_next(20429, retry_after=12)
        with pytest.raises(TransientSendError) as transient:
            await sender.send(message)
        assert transient.value.retry_after == 12.0
        fake.auth_token = "0" * 32  # our credentials no longer match: keep the message
        with pytest.raises(TransientSendError):
            await sender.send(message)
    finally:
        await sender.aclose()


async def test_activate_sets_commands_and_webhook_with_secret(engine: object) -> None:
    from bot.channels.inbox import ChannelRuntime

    settings = make_settings()
    fake = FakeTelegram(BOT_TOKEN)
    app = build_application(settings, ChannelRuntime(engine=engine, settings=settings),  # type: ignore[arg-type]
                            transport=httpx.ASGITransport(fake.app))
    await app.initialize()
    try:
        await activate(app, settings, webhook=True)
        assert [c["command"] for c in fake.commands] == ["start", "menu", "meetings", "help",
                                                         "stop"]
        assert all(c["description"] for c in fake.commands)
        welsh = {c["command"]: c["description"] for c in fake.commands_for["cy"]}
        assert list(welsh) == [c["command"] for c in fake.commands]  # Welsh apps: Welsh menu
        assert welsh["meetings"] == "Cael cyfarfod yn agos atoch"
        assert fake.commands[2]["description"] != welsh["meetings"]
        assert fake.webhook["url"] == f"{PUBLIC}/telegram/webhook"
        assert fake.webhook["secret_token"] == WEBHOOK_SECRET
        await activate(app, settings, webhook=False)  # polling: the webhook must go
        assert fake.webhook == {} and fake.called("deleteWebhook")
    finally:
        await app.shutdown()


def test_senders_follow_credentials() -> None:
    none = build_senders(make_settings(twilio_account_sid=None, twilio_auth_token=None,
                                       telegram_bot_token=None))
    assert {k: type(v).__name__ for k, v in none.items()} == {"sms": "LogSender",
                                                               "telegram": "LogSender"}
    real = build_senders(make_settings(), telegram_bot=Bot(BOT_TOKEN))
    assert {k: type(v).__name__ for k, v in real.items()} == {"sms": "TwilioSender",
                                                               "telegram": "TelegramSender"}


def test_retry_after_reads_as_seconds() -> None:
    from telegram.error import RetryAfter

    assert RetryAfter(timedelta(seconds=7)).retry_after == timedelta(seconds=7)


@pytest.mark.parametrize("package", ["handlers", "storage", "meeting_finder", "scheduler"])
def test_core_never_imports_a_channel_sdk(package: str) -> None:
    banned = {"telegram", "twilio", "fastapi", "starlette", "bot"}
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names
                          if n.split(".")[0] in banned]
    assert offenders == []
