"""The chat CLI: talk to the engine as a participant would, one line at a time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from bot.channels.log_sender import ConsoleSender
from bot.config import Settings
from bot.runtime import open_engine, prepare_database
from handlers.engine import handle_inbound
from handlers.types import EngineContext, Inbound
from scheduler.dispatcher import dispatch
from scheduler.ratelimit import ChannelLimit, RateLimiter
from storage.db import session_scope

# The console is a terminal, not a provider: no reason to wait between lines.
CONSOLE_LIMITER = RateLimiter(limits={
    "sms": ChannelLimit(per_second=10_000.0, count_segments=True),
    "telegram": ChannelLimit(per_second=10_000.0),
})


async def run_chat(
    settings: Settings,
    *,
    channel: str,
    address: str,
    lines: Iterable[str],
    interactive: bool = False,
    now: datetime | None = None,
) -> None:
    """Feed each line to the engine and print what the person would receive."""
    engine = open_engine(settings)
    try:
        await prepare_database(engine)
        sender = ConsoleSender(channel)
        if interactive:
            print("Type a message and press Enter. Ctrl-D to finish.")
        for line in lines:
            moment = now or datetime.now(UTC)
            ctx = EngineContext(now=moment, timezone=settings.tz,
                                public_base_url=settings.public_base_url)
            inbound = Inbound(channel=channel, address=address, text=line.rstrip("\r\n"),
                              received_at=moment)
            async with session_scope(engine) as session:
                result = await handle_inbound(session, inbound, ctx)
            await dispatch(engine, {channel: sender}, now=moment, keys=result.outbox_keys,
                           limiter=CONSOLE_LIMITER)
            for text in sender.outbox:
                print(text)
                print()
            sender.outbox.clear()
    finally:
        await engine.dispose()
