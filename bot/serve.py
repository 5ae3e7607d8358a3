"""Run the web app and the worker, together or apart."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import httpx
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.inbox import ChannelRuntime
from bot.channels.log_sender import LogSender
from bot.config import ConfigError, Settings
from bot.runtime import (
    open_engine,
    prepare_database,
    protect_secrets,
    settle_memory,
    wait_for_database,
)
from bot.web import create_app
from scheduler.errors import TransientSendError
from scheduler.ratelimit import DEFAULT_LIMITS, ChannelLimit, RateLimiter
from scheduler.retention import RetentionPolicy
from scheduler.sender import OutgoingMessage, Sender, SendResult
from scheduler.service import DispatchLoop
from scheduler.worker import build_scheduler, stop_scheduler
from storage.budget import DatabaseBudget
from storage.dialect import is_postgres

logger = logging.getLogger(__name__)


def _telegram_start_errors() -> tuple[type[BaseException], ...]:
    from telegram.error import NetworkError, TelegramError

    return (NetworkError, TelegramError, httpx.HTTPError, OSError)


# What an unreachable or refusing Bot API raises while we set Telegram up.
TELEGRAM_START_ERRORS = _telegram_start_errors()


def build_limiter(settings: Settings, engine: AsyncEngine | None = None) -> RateLimiter:
    """Return the process's rate limiter: TWILIO_MPS for SMS, TELEGRAM_MPS (and Telegram's
    own one-a-second in a chat), WHATSAPP_MPS.

    On PostgreSQL the budgets live in the database, so every web and worker process spends
    from one budget per channel (and per Telegram chat); on SQLite there is one process.
    """
    if not settings.twilio_mps > 0:
        raise ConfigError("TWILIO_MPS: must be above 0 (messages per second)")
    limits = dict(DEFAULT_LIMITS)
    limits["sms"] = replace(DEFAULT_LIMITS["sms"], per_second=float(settings.twilio_mps))
    limits["telegram"] = replace(DEFAULT_LIMITS["telegram"],
                                 per_second=float(settings.telegram_mps))
    # WhatsApp has its own budget at Twilio, apart from the SMS number's (WHATSAPP_MPS).
    limits["whatsapp"] = ChannelLimit(per_second=float(settings.whatsapp_mps))
    if engine is not None and is_postgres(engine):
        return RateLimiter(limits=limits, store=DatabaseBudget(engine))
    return RateLimiter(limits=limits)


def build_senders(settings: Settings, *, telegram_bot: Any = None,
                  engine: AsyncEngine | None = None) -> dict[str, Sender]:
    """Return a sender per channel: real ones where credentials exist, else the log sender."""
    senders: dict[str, Sender] = {"sms": LogSender("sms"), "telegram": LogSender("telegram")}
    if settings.twilio_enabled:
        from bot.channels.sms import TwilioSender

        senders["sms"] = TwilioSender.from_settings(settings)
    if settings.whatsapp_enabled and engine is not None:
        from bot.channels.whatsapp import WhatsAppSender

        # The window and the fallback are read from the database at each send.
        senders["whatsapp"] = WhatsAppSender.from_settings(settings, engine=engine,
                                                           sms=senders["sms"])
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


# Pauses between tries to reach Telegram at start-up: doubling from the first to the last.
TELEGRAM_RETRY_FIRST = 5.0
TELEGRAM_RETRY_LONGEST = 300.0


@dataclass
class TelegramNotReady:
    """Stands in for Telegram until its set-up succeeds: sends wait in the outbox."""

    channel: str = "telegram"

    def cost(self, message: OutgoingMessage) -> float:
        """Return one, as Telegram counts."""
        return 1.0

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Refuse for now; the dispatcher keeps the message and tries again."""
        raise TransientSendError("telegram: not connected yet", code="starting",
                                 retry_after=TELEGRAM_RETRY_FIRST)


async def _connect_telegram(
    settings: Settings, runtime: ChannelRuntime, *, web: bool, polling: bool
) -> tuple[Any, Any, AsyncExitStack]:
    """Start Telegram (app or bare bot); return the app (or None), its bot and its clean-up."""
    local = AsyncExitStack()
    try:
        if web or polling:
            tg_app = await _start_telegram(local, settings, runtime, polling=polling)
            return tg_app, tg_app.bot, local
        return None, await _telegram_bot(local, settings), local
    except BaseException:
        await local.aclose()
        raise


async def _keep_connecting(
    settings: Settings, runtime: ChannelRuntime, stack: AsyncExitStack, *, web: bool,
    polling: bool, install: Callable[[Any, Any], None], pause: float,
) -> None:
    """Try Telegram again, waiting longer each time, until it answers."""
    while True:
        await asyncio.sleep(pause)
        try:
            tg_app, bot, cleanup = await _connect_telegram(settings, runtime, web=web,
                                                           polling=polling)
        except TELEGRAM_START_ERRORS as exc:
            pause = min(pause * 2, TELEGRAM_RETRY_LONGEST)
            logger.warning("telegram still unreachable (%s); trying again in %.0fs",
                           type(exc).__name__, pause)
            continue
        stack.push_async_callback(cleanup.aclose)
        install(tg_app, bot)
        logger.info("telegram connected")
        return


async def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    web: bool,
    worker: bool,
    telegram_polling: bool = False,
) -> None:
    """Serve until interrupted; Telegram being unreachable never stops SMS or the console."""
    protect_secrets(settings)
    engine = open_engine(settings)
    try:
        await wait_for_database(engine, settings)
        await prepare_database(engine)
    except BaseException:
        await engine.dispose()
        raise
    senders = build_senders(settings, engine=engine)
    limiter = build_limiter(settings, engine)  # the worker and the fast path share it
    stop = asyncio.Event()
    runtime = ChannelRuntime(engine=engine, settings=settings, senders=senders, limiter=limiter)
    app: Any = None

    def install(tg_app: Any, bot: Any) -> None:
        senders["telegram"] = _telegram_sender(bot)
        if app is not None:
            app.state.telegram_app = tg_app
            app.state.channels.senders["telegram"] = senders["telegram"]

    async with AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        stack.callback(_on_sigterm(stop))
        stack.push_async_callback(_close_senders, senders)
        tg_app = None
        if settings.telegram_enabled:
            try:
                tg_app, bot, cleanup = await _connect_telegram(
                    settings, runtime, web=web, polling=telegram_polling)
                stack.push_async_callback(cleanup.aclose)
                install(tg_app, bot)
            except TELEGRAM_START_ERRORS as exc:
                logger.warning("telegram unreachable at start-up (%s); serving SMS and the "
                               "staff console, trying Telegram again in the background",
                               type(exc).__name__)
                senders["telegram"] = TelegramNotReady()
                retry = asyncio.create_task(_keep_connecting(
                    settings, runtime, stack, web=web, polling=telegram_polling,
                    install=install, pause=TELEGRAM_RETRY_FIRST))
                stack.callback(retry.cancel)
        if worker:
            loop = DispatchLoop(engine, senders, limiter=limiter)
            await loop.start()
            scheduler = build_scheduler(
                engine, senders, limiter=limiter, loop=loop,
                retention=RetentionPolicy(body_days=settings.body_retention_days))
            scheduler.start()
            stack.push_async_callback(_stop_worker, scheduler, loop,
                                      settings.shutdown_grace_seconds)
            logger.info("worker started")
        if web:
            app = create_app(settings, engine, senders=senders, telegram_app=tg_app,
                             limiter=limiter)
            # log_config=None: uvicorn's records go through our redacting root handler.
            # The fast path's sends run as background tasks of their requests: on SIGTERM
            # uvicorn waits for them, for as long as the worker's sends get.
            config = uvicorn.Config(app, host=host, port=port, log_level="info",
                                    log_config=None,
                                    timeout_graceful_shutdown=int(
                                        settings.shutdown_grace_seconds) or None)
            logger.info("web app at http://%s:%s", host, port)
            settle_memory()
            await _serve_until(uvicorn.Server(config), stop)
        else:
            settle_memory()
            await stop.wait()
        logger.info("stopping: sends on the wire get up to %.0fs to finish",
                    settings.shutdown_grace_seconds)
    logger.info("stopped")


async def _stop_worker(scheduler: Any, loop: DispatchLoop, grace: float) -> None:
    """Stop the jobs and the dispatch loop together, each given up to `grace` seconds."""
    await asyncio.gather(stop_scheduler(scheduler, grace), loop.stop(grace))


def _on_sigterm(stop: asyncio.Event) -> Callable[[], None]:
    """Let SIGTERM set `stop` (so the clean-up runs); return what undoes that.

    uvicorn puts back the handler it found and raises the signal again once it has closed
    its connections: this handler then takes it, rather than the default (die at once).
    """
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
        return lambda: None

    def undo() -> None:
        loop.remove_signal_handler(signal.SIGTERM)

    return undo


async def _serve_until(server: uvicorn.Server, stop: asyncio.Event) -> None:
    """Run uvicorn until it stops by itself or `stop` is set; if we are cancelled, let it
    close its connections before we go."""
    serving = asyncio.create_task(server.serve())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        server.should_exit = True
        await serving
        raise
    finally:
        stopping.cancel()
    server.should_exit = True
    await serving


async def run_worker_once(settings: Settings, *, now: datetime, dry_run: bool) -> dict[str, Any]:
    """Run one planning-and-dispatch cycle as of `now`."""
    from scheduler.worker import run_cycle

    protect_secrets(settings)
    engine = open_engine(settings)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        await prepare_database(engine)
        bot = None
        if settings.telegram_enabled:
            try:
                bot = await _telegram_bot(stack, settings)
            except TELEGRAM_START_ERRORS as exc:
                logger.warning("telegram unreachable (%s); its messages wait for the next "
                               "cycle", type(exc).__name__)
        senders = build_senders(settings, telegram_bot=bot, engine=engine)
        if settings.telegram_enabled and bot is None:
            senders["telegram"] = TelegramNotReady()
        stack.push_async_callback(_close_senders, senders)
        return await run_cycle(engine, senders, now=now, dry_run=dry_run,
                               limiter=build_limiter(settings, engine),
                               retention=RetentionPolicy(body_days=settings.body_retention_days))
