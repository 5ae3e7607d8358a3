"""The ASGI app: webhooks, staff pages, health and metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.inbox import ChannelRuntime, utc_now
from bot.channels.voice import router as voice_router
from bot.channels.webhooks import router as webhooks_router
from bot.config import Settings
from bot.logs import LogScope
from bot.web.health import router as health_router
from bot.web.limits import BodySizeLimit
from bot.web.metrics import install_metrics
from bot.web.staff import install_staff_console
from scheduler.ratelimit import RateLimiter
from scheduler.sender import Sender

logger = logging.getLogger(__name__)


def _paths(*routers: APIRouter) -> list[str]:
    """Return the paths the routers serve (the provider webhooks: none has a parameter)."""
    return [path for r in routers for route in r.routes
            if isinstance(path := getattr(route, "path", None), str)]


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
    app.include_router(voice_router)
    app.include_router(health_router)
    install_staff_console(app, settings)
    # Added last, so they run first: nothing reads a body over the limit, and every request
    # (its background tasks too) has its own set of values the logs must not show.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(LogScope)
    # Outermost of all, so a webhook's time includes everything that runs for it.
    install_metrics(app, webhook_paths=_paths(webhooks_router, voice_router))

    @app.get("/")
    async def index() -> Response:
        return PlainTextResponse("throughcare is running. Staff sign in at /staff/login. "
                                 "See /healthz, /readyz and /metrics.\n")

    return app
