"""What every channel adapter does with an authenticated message: engine, then fast path."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from handlers.engine import HandleResult, handle_inbound
from handlers.types import EngineContext, Inbound
from scheduler.dispatcher import DispatchStats, dispatch
from scheduler.ratelimit import RateLimiter
from scheduler.sender import Sender
from storage.db import is_lock_error, session_scope

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    """Return the current moment in UTC (the one place the web edge reads the clock)."""
    return datetime.now(UTC)


@dataclass
class ChannelRuntime:
    """What the adapters share: the database, the senders, settings and the clock."""

    engine: AsyncEngine
    settings: Settings
    senders: Mapping[str, Sender] = field(default_factory=dict)
    clock: Callable[[], datetime] = utc_now
    limiter: RateLimiter | None = None  # None: the process's shared limiter

    def context(self, now: datetime) -> EngineContext:
        """Return the engine context for a moment."""
        return EngineContext(now=now, timezone=self.settings.tz,
                             public_base_url=self.settings.public_base_url)


async def receive(runtime: ChannelRuntime, inbound: Inbound) -> HandleResult:
    """Run the engine on one message and commit its state and replies together.

    While another process holds the database (a locked SQLite file, a PostgreSQL
    serialization failure) the whole message runs again in a new transaction, for up to
    RECEIVE_RETRY_FOR seconds: Twilio does not retry a failed webhook, so giving up loses
    the message. A rerun is safe: the failed transaction left nothing, and the engine skips
    a provider id it has recorded.
    """
    now = inbound.received_at or runtime.clock()
    deadline = time.monotonic() + RECEIVE_RETRY_FOR
    attempt = 0
    while True:
        attempt += 1
        try:
            async with session_scope(runtime.engine) as session:
                return await handle_inbound(session, inbound, runtime.context(now))
        except DBAPIError as exc:
            pause = _backoff(attempt)
            if not is_lock_error(exc) or time.monotonic() + pause > deadline:
                raise
            # Channel and attempt only: never the body or the number.
            logger.warning("database busy for an inbound %s message (attempt %d); "
                           "trying again", inbound.channel, attempt)
            await asyncio.sleep(pause)


RECEIVE_RETRY_FOR = 20.0  # seconds an inbound message keeps trying a busy database


def _backoff(attempt: int) -> float:
    """Return the pause before another try: doubling from 50 ms to 1 s, jittered."""
    return min(1.0, 0.05 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


async def send_replies(runtime: ChannelRuntime, keys: list[str]) -> DispatchStats:
    """Send the replies just written, now (the fast path); the worker catches leftovers."""
    if not keys:
        return DispatchStats()
    return await dispatch(runtime.engine, runtime.senders, now=runtime.clock(), keys=keys,
                          limiter=runtime.limiter)


async def receive_and_reply(runtime: ChannelRuntime, inbound: Inbound) -> HandleResult:
    """Handle one message and send its replies at once."""
    result = await receive(runtime, inbound)
    await send_replies(runtime, result.outbox_keys)
    return result
