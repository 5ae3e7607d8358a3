"""The ASGI app: webhooks, staff pages, health and metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import func, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.channels.inbox import ChannelRuntime, utc_now
from bot.channels.webhooks import router as webhooks_router
from bot.config import Settings
from scheduler.ratelimit import RateLimiter
from scheduler.sender import Sender
from storage.db import session_scope
from storage.models import OutboundMessage

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    engine: AsyncEngine,
    *,
    senders: Mapping[str, Sender] | None = None,
    telegram_app: Any = None,
    clock: Callable[[], datetime] = utc_now,
    limiter: RateLimiter | None = None,
) -> FastAPI:
    """Build the web app around one engine, the channel senders and the Telegram app."""
    app = FastAPI(title="throughcare", docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.engine = engine
    app.state.channels = ChannelRuntime(engine=engine, settings=settings,
                                        senders=dict(senders or {}), clock=clock,
                                        limiter=limiter)
    app.state.telegram_app = telegram_app
    app.include_router(webhooks_router)

    @app.get("/healthz")
    async def healthz() -> Response:
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            logger.error("health check failed: %s", type(exc).__name__)
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    @app.get("/metrics")
    async def metrics() -> Response:
        async with session_scope(engine) as session:
            rows = await session.exec(
                select(OutboundMessage.status, func.count()).group_by(OutboundMessage.status)
            )
            counts = {str(status): n for status, n in rows.all()}
        lines = [
            "# HELP throughcare_outbox_messages Outbox messages by status.",
            "# TYPE throughcare_outbox_messages gauge",
        ]
        lines += [f'throughcare_outbox_messages{{status="{s}"}} {n}' for s, n in sorted(
            counts.items())]
        return PlainTextResponse("\n".join(lines) + "\n",
                                 media_type="text/plain; version=0.0.4")

    @app.get("/")
    async def index() -> Response:
        return PlainTextResponse("throughcare is running. See /healthz and /metrics.\n")

    return app
