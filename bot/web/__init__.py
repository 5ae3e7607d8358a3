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
from bot.logs import LogScope
from bot.web.limits import BodySizeLimit
from bot.web.staff import install_staff_console
from scheduler.ratelimit import RateLimiter
from scheduler.sender import Sender
from storage.db import session_scope
from storage.models import OutboundMessage
from storage.outbox_q import lane_depths

logger = logging.getLogger(__name__)


LANE_METRICS = (
    ("throughcare_outbox_queued", "Queued outbox messages, due or not, by lane and channel."),
    ("throughcare_outbox_due", "Outbox messages due now, not yet claimed, by lane and channel."),
    ("throughcare_outbox_oldest_due_age_seconds",
     "How long the oldest due message has waited, by lane and channel (0 when none)."),
)


async def _lane_lines(engine: AsyncEngine, now: datetime) -> list[str]:
    """Return the per-lane, per-channel queue gauges."""
    async with session_scope(engine) as session:
        depths = await lane_depths(session, now=now)
    lines: list[str] = []
    for n, (name, help_text) in enumerate(LANE_METRICS):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for lane, channel, queued, due, oldest in sorted(depths):
            age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
            value = (queued, due, round(age, 3))[n]
            lines.append(f'{name}{{lane="{lane}",channel="{channel}"}} {value}')
    return lines


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
    app.state.clock = clock
    app.include_router(webhooks_router)
    install_staff_console(app, settings)
    # Added last, so they run first: nothing reads a body over the limit, and every request
    # (its background tasks too) has its own set of values the logs must not show.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(LogScope)

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
        lines += await _lane_lines(engine, clock())
        return PlainTextResponse("\n".join(lines) + "\n",
                                 media_type="text/plain; version=0.0.4")

    @app.get("/")
    async def index() -> Response:
        return PlainTextResponse("throughcare is running. Staff sign in at /staff/login. "
                                 "See /healthz and /metrics.\n")

    return app
