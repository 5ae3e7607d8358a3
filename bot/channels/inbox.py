"""What every channel adapter does with an authenticated message: engine, then fast path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import Settings
from handlers.channels import traits
from handlers.engine import HandleResult, SenderOf, find_sender, handle_inbound
from handlers.safety import check_crisis
from handlers.textin import MAX_LEN, clean, is_stop
from handlers.texts import reading_as, t
from handlers.types import EngineContext, Inbound, Reply
from scheduler.dispatcher import DispatchStats, dispatch
from scheduler.ratelimit import RateLimiter
from scheduler.sender import Sender
from storage.db import is_lock_error, session_scope
from storage.inbound_limits_q import address_key, count_inbound_since, hold_sender, pause_sender
from storage.models import MessageKind, ParticipantStatus, Priority
from storage.notify import HeldWakes, hold_wakes
from storage.outbox import enqueue
from storage.participants import record_inbound
from storage.sqlite_turns import urgent_writes
from storage.whatsapp_q import note_inbound

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
    # A crisis text goes before other waiting webhooks for the database (SQLite).
    urgent = check_crisis(clean(inbound.payload or inbound.text)) is not None
    with urgent_writes() if urgent else contextlib.nullcontext():
        return await _receive(runtime, inbound)


async def _receive(runtime: ChannelRuntime, inbound: Inbound) -> HandleResult:
    now = inbound.received_at or runtime.clock()
    deadline = time.monotonic() + RECEIVE_RETRY_FOR
    attempt = 0
    while True:
        attempt += 1
        try:
            async with session_scope(runtime.engine) as session:
                held, sender = await hold_back(session, inbound, now)
                if held is not None:
                    return held
                result = await handle_inbound(session, inbound, runtime.context(now), sender)
                if not result.duplicate and traits(inbound.channel).reply_window:
                    # WhatsApp's 24-hour window runs from here; rows waiting for it go now.
                    await note_inbound(session, channel=inbound.channel,
                                       address=inbound.address, now=now)
                return result
        except DBAPIError as exc:
            pause = _backoff(attempt)
            if not is_lock_error(exc) or time.monotonic() + pause > deadline:
                raise
            # Channel and attempt only: never the body or the number.
            logger.warning("database busy for an inbound %s message (attempt %d); "
                           "trying again", inbound.channel, attempt)
            await asyncio.sleep(pause)


RECEIVE_RETRY_FOR = 20.0  # seconds an inbound message keeps trying a busy database
# Flood limits: messages one sender may send in FLOOD_WINDOW and still be answered. Every
# answer may be a paid text (an SMS-pumping attack is paid per reply), so a number that is
# not linked to anyone gets fewer; a person mid-tool answers quickly, but not 3 a minute.
FLOOD_WINDOW = timedelta(minutes=10)
LINKED_PER_WINDOW = 30
UNKNOWN_PER_WINDOW = 15


async def hold_back(session: AsyncSession, inbound: Inbound, now: datetime
                    ) -> tuple[HandleResult | None, SenderOf]:
    """Answer a sender over the flood limit: one calm text, then silence until the pause
    ends; return None when the engine should answer as usual, and who the sender is (looked
    up once the sender's turn is taken, for the engine).

    Crisis words are always answered, and STOP from a linked person not yet stopped always
    stops. Every message is still recorded. Messages from one sender take turns, so the
    count holds under concurrency; it counts what they sent, answered or not, so a steady
    flood stays held until it stops for a window.
    """
    key = address_key(inbound.channel, inbound.address)
    paused_until = await hold_sender(session, key, now=now)
    sender = await find_sender(session, inbound)
    person = sender.participant
    if person is not None and person.status == ParticipantStatus.DELETED:
        person = None  # as unknown as a stranger
    limit = UNKNOWN_PER_WINDOW if person is None else LINKED_PER_WINDOW
    if await count_inbound_since(session, key, since=now - FLOOD_WINDOW) < limit:
        return None, sender
    text = clean(inbound.payload or inbound.text)
    if check_crisis(text) or (person is not None and is_stop(text)
                              and person.status != ParticipantStatus.STOPPED):
        return None, sender
    provider_id = inbound.provider_id or f"local-{uuid.uuid4().hex}"
    result = HandleResult(participant_id=person.id if person else None)
    if not await record_inbound(session, channel=inbound.channel, provider_id=provider_id,
                                body=text[:MAX_LEN] or None, now=now,
                                participant_id=result.participant_id, address=inbound.address):
        result.duplicate = True
        return result, sender
    quiet = paused_until > now.timestamp()
    logger.info("inbound %s message rate limited (%s)", inbound.channel,
                "no answer" if quiet else "told once")
    if not quiet:
        await pause_sender(session, key, until=now + FLOOD_WINDOW)
        with reading_as(person.language if person else None):
            reply = Reply(t("limits.calm"))
        out_key = f"reply:{inbound.channel}:{provider_id}:0"
        await enqueue(session, channel=inbound.channel, address=inbound.address,
                      body=reply.text, dedupe_key=out_key, now=now,
                      participant_id=result.participant_id, kind=MessageKind.REPLY,
                      priority=Priority.REPLY, not_after=now + timedelta(hours=1),
                      meta={"seq": 0, "always": True})
        result.replies.append(reply)
        result.outbox_keys.append(out_key)
    return result, sender


def _backoff(attempt: int) -> float:
    """Return the pause before another try: doubling from 50 ms to 1 s, jittered."""
    return min(1.0, 0.05 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


async def send_replies(runtime: ChannelRuntime, keys: list[str],
                       held: HeldWakes | None = None) -> DispatchStats:
    """Send the replies just written, now (the fast path); the worker catches leftovers.

    With `held` (`storage.notify.hold_wakes` around the writing) and a dispatch loop in
    this process, only crisis numbers go here and the loop sends the other replies: a
    crisis reply never waits for its turn in the loop's pass, and the loop claims the rest
    many at a time. The two claim the same rows at most once between them (a claim is one
    conditional UPDATE). Held wakes go to the loops afterwards unless every row was sent.
    """
    fast = keys if held is None else held.fast(keys)
    stats = DispatchStats()
    try:
        if fast:
            stats = await dispatch(runtime.engine, runtime.senders, now=runtime.clock(),
                                   keys=fast, limiter=runtime.limiter)
    finally:
        if held is not None:
            clean_pass = not (stats.failed or stats.retried or stats.deferred
                              or stats.expired or stats.cancelled)
            held.release(fast if clean_pass and stats.sent == len(fast) else None)
    return stats


async def receive_and_reply(runtime: ChannelRuntime, inbound: Inbound) -> HandleResult:
    """Handle one message and send its replies at once."""
    with hold_wakes() as held:
        result = await receive(runtime, inbound)
    await send_replies(runtime, result.outbox_keys, held)
    return result
