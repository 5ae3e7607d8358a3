"""Telegram through python-telegram-bot: the application, update translation, the sender."""

from __future__ import annotations

import html
import logging
import math
import os
import re
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from telegram import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.channels import PROVIDER_LIMITS
from bot.channels.inbox import ChannelRuntime, receive, send_replies
from bot.channels.render import render_telegram
from bot.channels.sms import clean_text
from bot.channels.staff_chat import receive_staff
from bot.config import Settings
from bot.logs import sensitive
from handlers.engine import HandleResult
from handlers.texts import DEFAULT_LANGUAGE, LANGUAGES, reading_as, t
from handlers.types import Inbound
from scheduler.errors import PermanentSendError, TransientSendError
from scheduler.sender import OutgoingMessage, SendResult
from storage.channels_q import set_identity_status
from storage.db import session_scope
from storage.models import IdentityStatus
from storage.notify import HeldWakes

logger = logging.getLogger(__name__)
# Opt in to PTB 23's time periods as timedelta now: without it PTB 22 warns on every RetryAfter.
os.environ.setdefault("PTB_TIMEDELTA", "true")

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEEP_LINK_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")
COMMANDS = ("start", "menu", "meetings", "help", "stop")
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
RUNTIME_KEY = "runtime"
MAX_TELEGRAM_ID = 2**53  # Telegram's ids (updates, chats) fit in 52 bits


def start_text(text: str) -> str:
    """Keep a `/start` deep-link payload only if it follows Telegram's rules."""
    head, _, payload = text.strip().partition(" ")
    payload = payload.strip()
    if payload and not DEEP_LINK_PAYLOAD.fullmatch(payload):
        return head
    return f"{head} {payload}".strip()


def _text(value: object) -> str | None:
    """Return a string field made safe to store; TypeError if it is there but not a string."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("text that is not a string")
    return clean_text(value)


def _usable_location(lat: object, lon: object) -> bool:
    """Say whether a shared location is two finite numbers on the globe."""
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon)):
        return False
    la, lo = float(lat), float(lon)  # type: ignore[arg-type]
    return math.isfinite(la) and math.isfinite(lo) and abs(la) <= 90 and abs(lo) <= 180


def update_to_inbound(update: Update, *, now: Any) -> Inbound | None:
    """Translate one Telegram update into an Inbound, or None if it is not for the engine."""
    chat = update.effective_chat
    user = update.effective_user
    if chat is None or chat.type != ChatType.PRIVATE:
        return None
    if not isinstance(chat.id, int) or abs(chat.id) > MAX_TELEGRAM_ID:
        return None  # not a chat id Telegram gives out
    name = _text(user.first_name) if user else None
    base: dict[str, Any] = {
        "channel": "telegram", "address": str(chat.id), "received_at": now,
        "provider_id": str(update.update_id), "display_name": (name or "")[:64] or None,
    }
    if update.callback_query is not None:
        data = _text(update.callback_query.data) or ""
        return Inbound(text=data, payload=data, **base)
    message = update.message
    if message is None:
        return None
    if message.location is not None:
        loc = message.location
        if not _usable_location(loc.latitude, loc.longitude):
            return None
        return Inbound(text="MEETINGS", location=(loc.latitude, loc.longitude), **base)
    text = _text(message.text) or _text(message.caption)
    if not text:  # stickers, photos without a caption, voice: nothing for the engine to read
        return None
    if text.lower().startswith("/start"):
        text = start_text(text)
    return Inbound(text=text, **base)


def _runtime(context: ContextTypes.DEFAULT_TYPE) -> ChannelRuntime:
    return context.application.bot_data[RUNTIME_KEY]


class NotAnUpdate(ValueError):
    """Webhook JSON that is not a Telegram update we can read."""


def read_update(data: object, bot: Any, *, now: datetime) -> tuple[Update, Inbound | None]:
    """Build an Update and its Inbound from webhook JSON; raise NotAnUpdate if malformed."""
    if not isinstance(data, dict):
        raise NotAnUpdate("not an object")
    update_id = data.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool) \
            or not 0 <= update_id <= MAX_TELEGRAM_ID:
        raise NotAnUpdate("no update_id")
    try:
        update = Update.de_json(data, bot)
        inbound = update_to_inbound(update, now=now)
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
        # A date too far out for a timestamp: OverflowError past 2**63 seconds, and the C
        # library's EOVERFLOW (an OSError, though nothing is read) from about 10**17.
        raise NotAnUpdate(type(exc).__name__) from None
    if inbound is not None and not all(
        isinstance(value, str | None)
        for value in (inbound.text, inbound.payload, inbound.display_name)
    ):
        raise NotAnUpdate("text that is not a string")
    return update, inbound


async def record_update(
    runtime: ChannelRuntime, update: Update, inbound: Inbound | None
) -> HandleResult | None:
    """Write down what an update means (engine state and replies, or a block) and commit."""
    change = update.my_chat_member
    if change is not None:
        blocked = change.new_chat_member.status in (ChatMemberStatus.BANNED,
                                                    ChatMemberStatus.LEFT)
        if change.chat.type == ChatType.PRIVATE and blocked:
            async with session_scope(runtime.engine) as session:
                await set_identity_status(
                    session, channel="telegram", address=str(change.chat.id),
                    status=IdentityStatus.BLOCKED, now=runtime.clock(), error_code="blocked")
        return None
    if inbound is None:
        return None
    staff = await receive_staff(runtime, inbound)  # a coordinator's chat, or a staff code
    return staff if staff is not None else await receive(runtime, inbound)


async def finish_update(
    runtime: ChannelRuntime, update: Update, result: HandleResult | None,
    held: HeldWakes | None = None,
) -> None:
    """Answer a pressed button, mark the choice on its message, and send the replies
    (giving the loops any wakes `held` while they were written)."""
    if result is None or result.duplicate:
        if held is not None:
            held.release()
        if result is not None:
            return
    query = update.callback_query
    if query is not None:
        try:
            await query.answer()
            if result is not None:
                await _mark_choice(query)
        except TelegramError as exc:  # too old or unchanged: the choice still counts
            logger.info("could not answer telegram button (%s)",
                        telegram_reason(None, exc.message))
    if result is not None:
        await send_replies(runtime, result.outbox_keys, held)


async def _mark_choice(query: CallbackQuery) -> None:
    message = query.message
    if not isinstance(message, Message):  # None, or too old for the bot to see
        return
    markup = message.reply_markup
    if markup is None or not message.text:
        return
    label = next((b.text for row in markup.inline_keyboard for b in row
                  if b.callback_data == query.data), query.data or "")
    chosen = html.escape(t("telegram.chosen", label=label), quote=False)
    await query.edit_message_text(f"{message.text_html}\n\n<i>{chosen}</i>",
                                  parse_mode=ParseMode.HTML)


async def on_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Handle one polled update: record it, then answer and reply."""
    runtime = _runtime(context)
    inbound = update_to_inbound(update, now=runtime.clock())
    await finish_update(runtime, update, await record_update(runtime, update, inbound))


def build_application(
    settings: Settings,
    runtime: ChannelRuntime,
    *,
    polling: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Application:
    """Build the PTB application against TELEGRAM_API_BASE_URL, with our handlers."""
    assert settings.telegram_bot_token is not None
    kwargs: dict[str, Any] = {"limits": PROVIDER_LIMITS}
    if transport is not None:
        kwargs["transport"] = transport
    base = settings.telegram_api_base_url
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(f"{base}/bot")
        .base_file_url(f"{base}/file/bot")
        .request(HTTPXRequest(httpx_kwargs=kwargs))
    )
    if polling:
        builder = builder.get_updates_request(HTTPXRequest(read_timeout=30, httpx_kwargs=kwargs))
    else:
        builder = builder.updater(None)
    app = builder.build()
    app.bot_data[RUNTIME_KEY] = runtime
    app.add_handler(CallbackQueryHandler(on_update))
    app.add_handler(ChatMemberHandler(on_update, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(MessageHandler(
        filters.ChatType.PRIVATE & (filters.TEXT | filters.LOCATION | filters.CAPTION),
        on_update))
    return app


async def activate(app: Application, settings: Settings, *, webhook: bool) -> None:
    """Set the command menu (English for everyone, and each other language's for people
    whose app is set to it), and the webhook when PUBLIC_BASE_URL is https."""
    for language in LANGUAGES:
        with reading_as(language):
            menu = [BotCommand(name, t(f"telegram.commands.{name}")) for name in COMMANDS]
        await app.bot.set_my_commands(
            menu, language_code=None if language == DEFAULT_LANGUAGE else language)
    if webhook and settings.public_base_url.startswith("https://"):
        secret = settings.telegram_webhook_secret
        await app.bot.set_webhook(
            settings.public_base_url + WEBHOOK_PATH, allowed_updates=ALLOWED_UPDATES,
            secret_token=secret.get_secret_value() if secret else None)
        logger.info("telegram webhook set to %s%s", settings.public_base_url, WEBHOOK_PATH)
    elif webhook:
        logger.warning("telegram webhook not set: PUBLIC_BASE_URL is not https "
                       "(use --telegram-polling for local development)")
    else:
        await app.bot.delete_webhook()


async def deactivate(app: Application) -> None:
    """Remove the webhook so Telegram stops calling us."""
    await app.bot.delete_webhook()


# Bot API descriptions we recognise, as the fixed words we store. Telegram's own description
# is never kept: it can carry a person's name or the text we tried to send.
TELEGRAM_REASONS = (
    ("blocked by the user", "bot blocked by the user"),
    ("user is deactivated", "user deactivated"),
    ("can't initiate conversation", "user has not started the bot"),
    ("chat not found", "chat not found"),
    ("message is too long", "message too long"),
    ("can't parse entities", "bad HTML"),
    ("message text is empty", "empty message"),
    ("message to edit not found", "message to edit not found"),
    ("message is not modified", "message not modified"),
)


def telegram_reason(status: int | None, description: str) -> str:
    """Return the short fixed text stored for a Bot API error (never its own words)."""
    lowered = description.lower()
    reason = next((ours for theirs, ours in TELEGRAM_REASONS if theirs in lowered), "rejected")
    return f"telegram {status}: {reason}" if status else f"telegram: {reason}"


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass
class TelegramSender:
    """Send to a Telegram chat as HTML, with inline buttons or a location button."""

    bot: Any  # telegram.Bot
    channel: str = "telegram"
    # httpx errors (PTB's TimedOut or NetworkError carries one as its cause) raised before the
    # request left this machine: Telegram certainly does not have the message.
    _NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
                   httpx.ProxyError, httpx.UnsupportedProtocol, httpx.LocalProtocolError)

    def cost(self, message: OutgoingMessage) -> float:
        """Return one: Telegram's limits count messages, whatever their length."""
        return 1.0

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Send one message; turn Bot API errors into ours."""
        try:
            chat_id = int(message.address)
        except ValueError:
            raise PermanentSendError("telegram: not a chat id", code="chat_id",
                                     identity_status=IdentityStatus.UNREACHABLE) from None
        with reading_as(message.language):  # "Share my location" in the reader's language
            text, markup = render_telegram(message.body, message.choices,
                                           message.request_location)
        sensitive(message.body, text)  # kept out of every log line from here on
        reply_markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None = None
        if markup and "inline_keyboard" in markup:
            reply_markup = InlineKeyboardMarkup.de_json(markup, self.bot)
        elif markup:
            reply_markup = ReplyKeyboardMarkup.de_json(markup, self.bot)
        try:
            sent = await self.bot.send_message(
                chat_id=chat_id, text=text, parse_mode=ParseMode.HTML,
                reply_markup=reply_markup, disable_web_page_preview=True)
        except Forbidden as exc:
            raise PermanentSendError(telegram_reason(403, exc.message), code="403",
                                     identity_status=IdentityStatus.BLOCKED) from None
        except RetryAfter as exc:
            with warnings.catch_warnings():  # PTB 22 warns on the int form; we take either
                warnings.simplefilter("ignore", PTBDeprecationWarning)
                wait = _seconds(exc.retry_after)
            raise TransientSendError("telegram: flood control", code="429",
                                     retry_after=wait) from None
        except BadRequest as exc:
            unreachable = "chat not found" in exc.message.lower()
            raise PermanentSendError(
                telegram_reason(400, exc.message), code="400",
                identity_status=IdentityStatus.UNREACHABLE if unreachable else None) from None
        except NetworkError as exc:  # TimedOut too: PTB raises it from the httpx error
            never_sent = isinstance(exc.__cause__, self._NEVER_SENT)
            raise TransientSendError(f"telegram: {type(exc).__name__}",
                                     maybe_sent=not never_sent) from None
        except TelegramError as exc:
            raise TransientSendError(telegram_reason(None, exc.message)) from None
        logger.info("telegram outbox #%s sent as message %s", message.id, sent.message_id)
        return SendResult(provider_id=f"{sent.chat.id}:{sent.message_id}")
