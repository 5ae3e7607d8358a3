"""Run the web app and the worker, together or apart."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import datetime
from typing import Any

import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.inbox import ChannelRuntime
from bot.channels.log_sender import LogSender
from bot.config import ConfigError, Settings
from bot.runtime import open_engine, prepare_database
from bot.web import create_app
from scheduler.ratelimit import DEFAULT_LIMITS, RateLimiter
from scheduler.sender import Sender
from scheduler.service import DispatchLoop
from scheduler.worker import build_scheduler
from storage.budget import DatabaseBudget
from storage.db import is_postgres

logger = logging.getLogger(__name__)


def build_limiter(settings: Settings, engine: AsyncEngine | None = None) -> RateLimiter:
    """Return the process's rate limiter: TWILIO_MPS for SMS, Telegram's own limits.

    On PostgreSQL the budgets live in the database, so every web and worker process spends
    from one budget per channel (and per Telegram chat); on SQLite there is one process.
    """
    if not settings.twilio_mps > 0:
        raise ConfigError("TWILIO_MPS: must be above 0 (messages per second)")
    limits = dict(DEFAULT_LIMITS)
    limits["sms"] = replace(DEFAULT_LIMITS["sms"], per_second=float(settings.twilio_mps))
    if engine is not None and is_postgres(engine):
        return RateLimiter(limits=limits, store=DatabaseBudget(engine))
    return RateLimiter(limits=limits)


def build_senders(settings: Settings, *, telegram_bot: Any = None) -> dict[str, Sender]:
    """Return a sender per channel: real ones where credentials exist, else the log sender."""
    senders: dict[str, Sender] = {"sms": LogSender("sms"), "telegram": LogSender("telegram")}
    if settings.twilio_enabled:
        from bot.channels.sms import TwilioSender

        senders["sms"] = TwilioSender.from_settings(settings)
    if telegram_bot is not None:
        senders["telegram"] = _telegram_sender(telegram_bot)
    for channel, sender in senders.items():
        logger.info("%s: %s", channel, type(sender).__name__)
    return senders


def _telegram_sender(bot: Any) -> Sender:
    from bot.channels.telegram import TelegramSender

    return TelegramSender(bot)


async def _close_senders(senders: dict[str, Sender]) -> None:
    for sender in senders.values():
        close = getattr(sender, "aclose", None)
        if close is not None:
            await close()


async def _start_telegram(
    stack: AsyncExitStack, settings: Settings, runtime: ChannelRuntime, *, polling: bool
) -> Any:
    """Start the PTB application: webhook mode behind our route, or polling."""
    from bot.channels.telegram import activate, build_application

    tg_app = build_application(settings, runtime, polling=polling)
    await tg_app.initialize()
    stack.push_async_callback(tg_app.shutdown)
    await activate(tg_app, settings, webhook=not polling)
    if polling:
        assert tg_app.updater is not None
        await tg_app.updater.start_polling(allowed_updates=["message", "callback_query",
                                                            "my_chat_member"])
        stack.push_async_callback(tg_app.updater.stop)
        await tg_app.start()
        stack.push_async_callback(tg_app.stop)
        logger.info("telegram: polling for updates")
    return tg_app


async def _telegram_bot(stack: AsyncExitStack, settings: Settings) -> Any:
    """Return an initialised bot for sending only (the worker process)."""
    from telegram import Bot

    assert settings.telegram_bot_token is not None
    bot = Bot(settings.telegram_bot_token.get_secret_value(),
              base_url=f"{settings.telegram_api_base_url}/bot")
    await bot.initialize()
    stack.push_async_callback(bot.shutdown)
    return bot


async def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    web: bool,
    worker: bool,
    telegram_polling: bool = False,
) -> None:
    """Serve until interrupted."""
    engine = open_engine(settings)
    await prepare_database(engine)
    senders = build_senders(settings)
    limiter = build_limiter(settings, engine)  # the worker and the fast path share it
    runtime = ChannelRuntime(engine=engine, settings=settings, senders=senders, limiter=limiter)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        stack.push_async_callback(_close_senders, senders)
        tg_app = None
        if settings.telegram_enabled and (web or telegram_polling):
            tg_app = await _start_telegram(stack, settings, runtime, polling=telegram_polling)
            senders["telegram"] = _telegram_sender(tg_app.bot)
        elif settings.telegram_enabled:
            bot = await _telegram_bot(stack, settings)
            senders["telegram"] = _telegram_sender(bot)
        if worker:
            loop = DispatchLoop(engine, senders, limiter=limiter)
            await loop.start()
            stack.push_async_callback(loop.stop)
            scheduler = build_scheduler(engine, senders, limiter=limiter, loop=loop)
            scheduler.start()
            stack.callback(scheduler.shutdown, wait=False)
            logger.info("worker started")
        if web:
            app = create_app(settings, engine, senders=senders, telegram_app=tg_app,
                             limiter=limiter)
            config = uvicorn.Config(app, host=host, port=port, log_level="info")
            logger.info("web app at http://%s:%s", host, port)
            await uvicorn.Server(config).serve()
        else:
            await asyncio.Event().wait()


async def run_worker_once(settings: Settings, *, now: datetime, dry_run: bool) -> dict[str, Any]:
    """Run one planning-and-dispatch cycle as of `now`."""
    from scheduler.worker import run_cycle

    engine = open_engine(settings)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        await prepare_database(engine)
        bot = await _telegram_bot(stack, settings) if settings.telegram_enabled else None
        senders = build_senders(settings, telegram_bot=bot)
        stack.push_async_callback(_close_senders, senders)
        return await run_cycle(engine, senders, now=now, dry_run=dry_run,
                               limiter=build_limiter(settings, engine))
