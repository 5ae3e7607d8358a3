"""Telegram through python-telegram-bot: the application, update translation, the sender."""

from __future__ import annotations

import html
import logging
import os
import re
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from telegram import (
    BotCommand,
    InlineKeyboardMarkup,
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

from bot.channels.inbox import ChannelRuntime, receive, receive_and_reply, send_replies
from bot.channels.render import render_telegram
from bot.config import Settings
from handlers.texts import t
from handlers.types import Inbound
from scheduler.errors import PermanentSendError, TransientSendError
from scheduler.sender import OutgoingMessage, SendResult
from storage.channels_q import set_identity_status
from storage.db import session_scope
from storage.models import IdentityStatus

logger = logging.getLogger(__name__)
# Opt in to PTB 23's time periods as timedelta now: without it PTB 22 warns on every RetryAfter.
os.environ.setdefault("PTB_TIMEDELTA", "true")

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEEP_LINK_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")
COMMANDS = ("start", "menu", "meetings", "help", "stop")
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
RUNTIME_KEY = "runtime"


def start_text(text: str) -> str:
    """Keep a `/start` deep-link payload only if it follows Telegram's rules."""
    head, _, payload = text.strip().partition(" ")
    payload = payload.strip()
    if payload and not DEEP_LINK_PAYLOAD.fullmatch(payload):
        return head
    return f"{head} {payload}".strip()


def update_to_inbound(update: Update, *, now: Any) -> Inbound | None:
    """Translate one Telegram update into an Inbound, or None if it is not for the engine."""
    chat = update.effective_chat
    user = update.effective_user
    if chat is None or chat.type != ChatType.PRIVATE:
        return None
    base: dict[str, Any] = {
        "channel": "telegram", "address": str(chat.id), "received_at": now,
        "provider_id": str(update.update_id),
        "display_name": user.first_name if user else None,
    }
    if update.callback_query is not None:
        data = update.callback_query.data or ""
        return Inbound(text=data, payload=data, **base)
    message = update.message
    if message is None:
        return None
    if message.location is not None:
        loc = message.location
        return Inbound(text="MEETINGS", location=(loc.latitude, loc.longitude), **base)
    text = message.text or message.caption or ""
    if text.lower().startswith("/start"):
        text = start_text(text)
    return Inbound(text=text, **base)


def _runtime(context: ContextTypes.DEFAULT_TYPE) -> ChannelRuntime:
    return context.application.bot_data[RUNTIME_KEY]


async def on_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Pass a message, command or shared location to the engine."""
    runtime = _runtime(context)
    inbound = update_to_inbound(update, now=runtime.clock())
    if inbound is not None:
        await receive_and_reply(runtime, inbound)


async def on_choice(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Record a button press once, answer it, mark the choice on the message, reply."""
    query = update.callback_query
    assert query is not None
    runtime = _runtime(context)
    inbound = update_to_inbound(update, now=runtime.clock())
    if inbound is None:
        await query.answer()
        return
    result = await receive(runtime, inbound)
    if result.duplicate:
        return
    await query.answer()
    message = query.message
    markup = getattr(message, "reply_markup", None)
    if message is not None and markup is not None and getattr(message, "text", None):
        label = next((b.text for row in markup.inline_keyboard for b in row
                      if b.callback_data == query.data), query.data or "")
        chosen = html.escape(t("telegram.chosen", label=label), quote=False)
        try:
            await query.edit_message_text(f"{message.text_html}\n\n<i>{chosen}</i>",
                                          parse_mode=ParseMode.HTML)
        except BadRequest as exc:  # message too old or unchanged: the choice still counts
            logger.info("could not mark choice on telegram message: %s", exc.message)
    await send_replies(runtime, result.outbox_keys)


async def on_member_change(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Mark the identity blocked when the person blocks the bot."""
    change = update.my_chat_member
    if change is None or change.chat.type != ChatType.PRIVATE:
        return
    if change.new_chat_member.status not in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT):
        return
    runtime = _runtime(context)
    async with session_scope(runtime.engine) as session:
        await set_identity_status(session, channel="telegram", address=str(change.chat.id),
                                  status=IdentityStatus.BLOCKED, now=runtime.clock(),
                                  error_code="blocked")


def build_application(
    settings: Settings,
    runtime: ChannelRuntime,
    *,
    polling: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Application:  # type: ignore[type-arg]
    """Build the PTB application against TELEGRAM_API_BASE_URL, with our handlers."""
    assert settings.telegram_bot_token is not None
    kwargs = {"transport": transport} if transport is not None else {}
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
    app.add_handler(CallbackQueryHandler(on_choice))
    app.add_handler(ChatMemberHandler(on_member_change, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(MessageHandler(
        filters.ChatType.PRIVATE & (filters.TEXT | filters.LOCATION | filters.CAPTION),
        on_message))
    return app


async def activate(app: Application, settings: Settings, *, webhook: bool) -> None:  # type: ignore[type-arg]
    """Set the command menu, and the webhook when PUBLIC_BASE_URL is https."""
    await app.bot.set_my_commands(
        [BotCommand(name, t(f"telegram.commands.{name}")) for name in COMMANDS])
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


async def deactivate(app: Application) -> None:  # type: ignore[type-arg]
    """Remove the webhook so Telegram stops calling us."""
    await app.bot.delete_webhook()


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass
class TelegramSender:
    """Send to a Telegram chat as HTML, with inline buttons or a location button."""

    bot: Any  # telegram.Bot
    channel: str = "telegram"

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Send one message; turn Bot API errors into ours."""
        text, markup = render_telegram(message.body, message.choices, message.request_location)
        reply_markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None = None
        if markup and "inline_keyboard" in markup:
            reply_markup = InlineKeyboardMarkup.de_json(markup, self.bot)
        elif markup:
            reply_markup = ReplyKeyboardMarkup.de_json(markup, self.bot)
        try:
            sent = await self.bot.send_message(
                chat_id=int(message.address), text=text, parse_mode=ParseMode.HTML,
                reply_markup=reply_markup, disable_web_page_preview=True)
        except Forbidden as exc:
            raise PermanentSendError(f"telegram: {exc.message}"[:300], code="403",
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
                f"telegram: {exc.message}"[:300], code="400",
                identity_status=IdentityStatus.UNREACHABLE if unreachable else None) from None
        except NetworkError as exc:
            raise TransientSendError(f"telegram: {type(exc).__name__}") from None
        except TelegramError as exc:
            raise TransientSendError(f"telegram: {exc.message}"[:300]) from None
        logger.info("telegram outbox #%s sent as message %s", message.id, sent.message_id)
        return SendResult(provider_id=f"{sent.chat.id}:{sent.message_id}")
