"""What happened to a send, written down: sent, retried, failed, or settled by a lookup."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import TypeVar

from sqlalchemy.exc import OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession

from scheduler import telemetry
from scheduler.errors import PermanentSendError, SendLater, TransientSendError
from scheduler.passes import Pass
from scheduler.sender import OutgoingMessage, SendResult
from storage import outbox_q as q
from storage.channels_q import outbox_by_provider_id
from storage.db import is_lock_error, session_scope
from storage.models import MessageKind, OutboundMessage, OutboxStatus

logger = logging.getLogger(__name__)
UNKNOWN_OUTCOME = "outcome unknown: worker stopped during the send; not retried to avoid a double"
__all__ = ["UNKNOWN_OUTCOME", "PermanentSendError", "call", "cost_of", "record_unsent",
           "recover"]
T = TypeVar("T")
CRASHED = "worker stopped during the send"


class Unexpected(Exception):
    """A sender raised something it should not have; only the type name is kept."""


def cost_of(run: Pass, message: OutgoingMessage) -> float:
    """Ask the channel's sender what this message spends of the rate (SMS: segments)."""
    cost = getattr(run.senders.get(message.channel), "cost", None)
    if cost is None:
        return 1.0
    try:
        return max(1.0, float(cost(message)))
    except (TypeError, ValueError):
        return 1.0


async def _write(run: Pass, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one short write, again if the database was busy: an outcome must not be lost."""
    for attempt in range(8):
        try:
            async with session_scope(run.engine) as session:
                return await work(session)
        except OperationalError as exc:
            if not is_lock_error(exc) or attempt == 7:
                raise
            await asyncio.sleep(0.05 * 2 ** attempt)
    raise AssertionError("unreachable")


async def call(run: Pass, row: OutboundMessage) -> object:
    """Send one row and record what happened; return the outcome. Never raises for a row."""
    outcome = await _send(run, row)
    if not isinstance(outcome, SendResult):
        await record_unsent(run, [(row, outcome)])
    return outcome


async def _send(run: Pass, row: OutboundMessage) -> object:
    """Send one row; return the SendResult or the error."""
    message = OutgoingMessage.from_row(row)
    sender = run.senders[row.channel]
    try:
        result: object = await sender.send(message)
    except (PermanentSendError, SendLater) as exc:
        telemetry.count_send_error(row.channel, exc)
        return exc
    except TransientSendError as exc:
        telemetry.count_send_error(row.channel, exc)
        await _note_transient(run, row.channel, exc)
        if exc.maybe_sent:
            return await _settle(run, row, message, exc)
        return exc
    except Exception as exc:  # noqa: BLE001  (a poison row must fail alone, not the pass)
        logger.error("outbox #%s: sender raised %s", row.id, type(exc).__name__)
        return await _settle(run, row, message, Unexpected(f"unexpected {type(exc).__name__}"))
    run.failures_in_row[row.channel] = 0
    if isinstance(result, SendResult):
        run.accepted.append((row, result))
        await _save_accepted(run)
    return result


async def _settle(
    run: Pass, row: OutboundMessage, message: OutgoingMessage, exc: Exception
) -> object:
    """The provider may have the message: look it up if we can, else say so."""
    found = await lookup(run, message)
    if isinstance(found, SendResult):
        run.accepted.append((row, found))
        await _save_accepted(run)
        return found
    if found is None:  # asked, and it is not there: safe to send again
        return exc if isinstance(exc, TransientSendError) else TransientSendError(str(exc))
    return Doubt(str(exc))


class Doubt(Exception):
    """We cannot know whether the provider has the message."""


async def lookup(run: Pass, message: OutgoingMessage) -> SendResult | None | Doubt:
    """Ask the sender whether the provider has this message; Doubt if it cannot say."""
    find = getattr(run.senders.get(message.channel), "lookup", None)
    if find is None:
        return Doubt("no lookup")
    try:
        found: SendResult | None = await find(message)
    except Exception as exc:  # noqa: BLE001  (whatever the lookup raised, we still do not know)
        logger.warning("outbox #%s: lookup failed (%s)", message.id, type(exc).__name__)
        return Doubt("lookup failed")
    if found is not None and found.provider_id:
        async with session_scope(run.engine) as session:
            owner = await outbox_by_provider_id(session, channel=message.channel,
                                                provider_id=found.provider_id)
        if owner is not None and owner.id != message.id:
            return None  # the same words sent earlier as another of our messages: not this one
    return found


async def _save_accepted(run: Pass) -> None:
    """Commit every accepted send not yet saved, this one included, before returning.

    Save the provider id now, not when the group ends: a status callback (Twilio's
    "undelivered") can arrive within milliseconds and must find the row. Sends that return
    while a write is under way wait for it and go together in the next (group commit).
    """
    async with run.write_lock:
        batch, run.accepted = run.accepted, []
        if not batch:
            return  # a write that ended while we waited took ours along
        items = [{"id": row.id, "provider_id": o.provider_id, "segments": o.segments,
                  "delivered": o.delivered, "attempts": row.attempts + 1} for row, o in batch]
        now = run.now()
        await _write(run, lambda s: q.mark_sent_many(s, token=run.token, now=now, sent=items))
        run.stats.sent += len(batch)


async def _note_transient(run: Pass, channel: str, exc: TransientSendError) -> None:
    """Pause a channel the provider asked to wait, or one that keeps failing."""
    run.failures_in_row[channel] = run.failures_in_row.get(channel, 0) + 1
    if exc.retry_after is not None:
        await run.limiter.pause(channel, max(0.0, float(exc.retry_after)))
    elif run.failures_in_row[channel] >= run.policy.outage_after:
        await run.limiter.pause(channel, run.policy.outage_pause)


async def record_unsent(run: Pass, unsent: list[tuple[OutboundMessage, object]]) -> None:
    """Write every outcome other than sent, in one short transaction."""
    if not unsent:
        return

    async def work(session: AsyncSession) -> None:
        for row, outcome in unsent:
            await _record(run, session, row, outcome)

    await _write(run, work)


async def _record(
    run: Pass, session: AsyncSession, row: OutboundMessage, outcome: object
) -> None:
    """Write one outcome: deferred (seconds), retried, failed, or in doubt."""
    row_id, now = row.id or 0, run.now()
    if isinstance(outcome, float | int):
        run.stats.deferred += 1
        await q.release(session, row_id=row_id, token=run.token, now=now,
                        due_at=now + timedelta(seconds=float(outcome)))
    elif isinstance(outcome, SendLater):
        # Waiting is not failing: no attempt is counted and the channel is not paused.
        run.stats.deferred += 1
        await q.release(session, row_id=row_id, token=run.token, now=now, error=outcome.reason,
                        due_at=now + timedelta(seconds=max(0.0, outcome.seconds)))
    elif isinstance(outcome, PermanentSendError):
        if outcome.identity_status:
            run.dead[(row.channel, row.address)] = outcome.identity_status
        run.stats.failed += 1
        _count(run, outcome.reason)
        await q.finish(session, row_id=row_id, token=run.token, now=now,
                       status=OutboxStatus.FAILED, error=outcome.reason,
                       attempts=row.attempts + 1)
        await q.record_permanent_failure(
            session, channel=row.channel, address=row.address,
            participant_id=row.participant_id, identity_status=outcome.identity_status,
            code=outcome.code, now=now)
        logger.info("outbox #%s failed permanently (%s)", row_id, outcome.code or "no code")
    elif isinstance(outcome, Doubt):
        await _decide_doubt(run, session, row, str(outcome))
    elif isinstance(outcome, TransientSendError):
        await _retry_later(run, session, row, outcome)


async def _decide_doubt(run: Pass, session: AsyncSession, row: OutboundMessage, why: str
                        ) -> None:
    """No one can say whether it went: replies and crisis again, anything else not."""
    _count(run, why)
    if row.kind in (MessageKind.REPLY, MessageKind.CRISIS):
        await _retry_later(run, session, row, TransientSendError(why))
        return
    run.stats.failed += 1
    error = UNKNOWN_OUTCOME if why == CRASHED else f"{why}: outcome unknown, not sent again"
    await q.finish(session, row_id=row.id or 0, token=run.token, now=run.now(),
                   status=OutboxStatus.FAILED, error=error, attempts=row.attempts + 1)


async def _retry_later(
    run: Pass, session: AsyncSession, row: OutboundMessage, exc: TransientSendError
) -> None:
    """Retry after retry_after if the provider said, else after a jittered backoff."""
    _count(run, exc.reason)
    attempts, now = row.attempts + 1, run.now()
    delay = (max(0.0, float(exc.retry_after)) if exc.retry_after is not None
             else run.policy.backoff(attempts))
    due = now + timedelta(seconds=delay)
    if row.not_after is not None and due > row.not_after:
        run.stats.expired += 1
        await q.finish(session, row_id=row.id or 0, token=run.token, now=now,
                       status=OutboxStatus.EXPIRED, attempts=attempts,
                       error=f"gave up at its not-after time: {exc.reason}")
    elif attempts >= run.policy.max_attempts:
        run.stats.failed += 1
        await q.finish(session, row_id=row.id or 0, token=run.token, now=now,
                       status=OutboxStatus.FAILED, attempts=attempts,
                       error=f"gave up after {attempts} tries: {exc.reason}")
    else:
        run.stats.retried += 1
        await q.release(session, row_id=row.id or 0, token=run.token, now=now, due_at=due,
                        error=exc.reason, attempts=attempts)


def _count(run: Pass, reason: str) -> None:
    key = reason[:80]
    run.stats.errors[key] = run.stats.errors.get(key, 0) + 1


async def recover(run: Pass) -> None:
    """Take back rows whose worker died, deciding each by whether it reached the provider."""
    async with session_scope(run.engine) as session:
        stale = await q.take_stale_claims(session, now=run.now(), lease=run.policy.lease,
                                          token=run.token)
    for row in stale:
        run.stats.recovered += 1
        logger.warning("recovering outbox #%s from a dead worker", row.id)
        if row.inflight_at is None:
            outcome: object = 0.0  # never reached the provider: queue it again now
        else:
            # The provider got it, if at all, after it was marked in flight.
            message = replace(OutgoingMessage.from_row(row), claimed_at=row.inflight_at)
            found = await lookup(run, message)
            if isinstance(found, SendResult):
                run.accepted.append((row, found))
                await _save_accepted(run)
                continue
            urgent = row.kind in (MessageKind.REPLY, MessageKind.CRISIS)
            # Not there, or a reply nobody can vouch for (a crisis number twice beats never):
            # queue it again at once.
            outcome = 0.0 if found is None or urgent else Doubt(CRASHED)
        await record_unsent(run, [(row, outcome)])
        if outcome == 0.0:
            run.stats.deferred -= 1  # a recovery, not a deferral
