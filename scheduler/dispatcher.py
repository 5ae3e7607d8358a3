"""The outbox dispatcher: claim due rows, send them within limits, record what happened.

Delivery guarantee. Every row is claimed (`sending`, with a lease and a claim token) and
then, just before the provider call, screened again (a STOP or DELETE may have arrived since
the claim) and marked in flight in its own committed transaction; each outcome is committed
as soon as its own call returns, so a fast status callback finds the provider id. A worker
that dies leaves `sending` rows whose lease runs out; the next pass recovers them:

- not in flight: the provider never saw it, so it goes back to `queued` (no loss, no double);
- in flight, and the sender can `lookup` the message at the provider: recorded as found;
- in flight, no lookup: replies and crisis messages are queued again (at-least-once: a
  crisis number twice beats never), everything else is failed "outcome unknown"
  (at-most-once: a reminder or broadcast is never doubled).

So only the one message per worker that was on the wire at the moment of the crash is ever
in doubt, and the policy above decides which way it falls.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from scheduler.clock import Clock
from scheduler.errors import PermanentSendError, TransientSendError
from scheduler.quiet import may_defer, quiet_until
from scheduler.ratelimit import RateLimiter
from scheduler.sender import OutgoingMessage, Sender, SendResult
from storage import outbox_q as q
from storage.db import session_scope
from storage.erasure import scrub_deleted_rows
from storage.models import (
    IdentityStatus,
    MessageKind,
    OutboundMessage,
    OutboxStatus,
    ParticipantStatus,
)

logger = logging.getLogger(__name__)
MAX_GROUP = 25
UNKNOWN_OUTCOME = "outcome unknown: worker stopped during the send; not retried to avoid a double"


@dataclass
class DispatchPolicy:
    """Retry, lease and outage settings."""

    lease: timedelta = timedelta(minutes=2)  # a claim older than this belongs to a dead worker
    backoff_base: float = 30.0  # seconds before the first retry
    backoff_cap: float = 900.0  # never wait longer than this between tries
    max_attempts: int = 10  # then failed, if the not-after time has not ended it first
    outage_after: int = 5  # this many transient failures in a row pause the channel
    outage_pause: float = 60.0  # seconds to leave a failing channel alone
    concurrency: int = 8  # provider calls in flight at once (HTTP latency, not CPU, is slow)
    jitter: Callable[[], float] = random.random

    def backoff(self, attempts: int) -> float:
        """Return seconds to wait after `attempts` failed tries (exponential, jittered)."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** max(0, attempts - 1))
        return ceiling * (0.5 + 0.5 * self.jitter())


@dataclass
class DispatchStats:
    """What one dispatch pass did."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    expired: int = 0
    cancelled: int = 0
    deferred: int = 0
    recovered: int = 0
    attempts: int = 0  # provider calls made
    errors: dict[str, int] = field(default_factory=dict)


_default_limiter: RateLimiter | None = None


def default_limiter() -> RateLimiter:
    """Return this process's shared limiter (real clock, default channel limits)."""
    global _default_limiter
    if _default_limiter is None:
        _default_limiter = RateLimiter()
    return _default_limiter


@dataclass
class _Pass:
    engine: AsyncEngine
    senders: Mapping[str, Sender]
    start: datetime
    limiter: RateLimiter
    policy: DispatchPolicy
    token: str
    stats: DispatchStats
    t0: float = 0.0
    beat: float = 0.0
    failures_in_row: dict[str, int] = field(default_factory=dict)
    dead: dict[tuple[str, str], str] = field(default_factory=dict)  # address -> identity status
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one outcome write at once
    accepted: list[tuple[OutboundMessage, SendResult]] = field(default_factory=list)

    @property
    def clock(self) -> Clock:
        return self.limiter.clock

    def now(self) -> datetime:
        """Return the pass's start time plus what the clock says has passed since."""
        return self.start + timedelta(seconds=self.clock.monotonic() - self.t0)


async def dispatch(
    engine: AsyncEngine,
    senders: Mapping[str, Sender],
    *,
    now: datetime,
    keys: list[str] | None = None,
    limit: int = 200,
    limiter: RateLimiter | None = None,
    policy: DispatchPolicy | None = None,
) -> DispatchStats:
    """Send due queued messages (or just those with `keys`) until none are due."""
    limiter = limiter or default_limiter()
    run = _Pass(engine, senders, now, limiter, policy or DispatchPolicy(), uuid.uuid4().hex,
                DispatchStats(), t0=limiter.clock.monotonic())
    run.beat = run.t0
    if keys is None:
        await _recover(run)
        async with session_scope(engine) as session:
            run.stats.expired += await q.expire_overdue(session, now=run.now())
    while True:
        async with session_scope(engine) as session:
            rows = await q.claim_due(session, now=run.now(), token=run.token, limit=limit,
                                     keys=keys)
            ready = await _screen(session, run, rows)
        groups = _groups(run, ready)
        for n, group in enumerate(groups):
            await _heartbeat(run, [r for g in groups[n:] for r in g])
            await _send_group(run, group)
        if keys is not None or not rows:
            async with session_scope(engine) as session:
                # The DELETE confirmation is the last row holding an erased person's address.
                await scrub_deleted_rows(session)
            return run.stats


async def _recover(run: _Pass) -> None:
    """Take back rows whose worker died, deciding each by whether it reached the provider."""
    async with session_scope(run.engine) as session:
        stale = await q.stale_claims(session, now=run.now(), lease=run.policy.lease)
        for row in stale:
            row.claim_token, row.claimed_at = run.token, run.now()
            session.add(row)
    for row in stale:
        run.stats.recovered += 1
        async with session_scope(run.engine) as session:
            if row.inflight_at is None:
                await q.release(session, row_id=row.id or 0, token=run.token, now=run.now(),
                                due_at=row.due_at)
                continue
            sender = run.senders.get(row.channel)
            lookup = getattr(sender, "lookup", None)
            if lookup is not None:
                found = await lookup(OutgoingMessage.from_row(row))
                if found is not None:
                    await q.mark_sent(session, row_id=row.id or 0, token=run.token,
                                      now=run.now(), provider_id=found.provider_id,
                                      segments=found.segments, delivered=found.delivered)
                else:
                    await q.release(session, row_id=row.id or 0, token=run.token,
                                    now=run.now(), due_at=row.due_at)
            elif row.kind in (MessageKind.REPLY, MessageKind.CRISIS):
                await q.release(session, row_id=row.id or 0, token=run.token, now=run.now(),
                                due_at=row.due_at)
            else:
                await q.finish(session, row_id=row.id or 0, token=run.token, now=run.now(),
                               status=OutboxStatus.FAILED, error=UNKNOWN_OUTCOME)
        logger.warning("recovered outbox #%s from a dead worker", row.id)


async def _screen(
    session: AsyncSession, run: _Pass, rows: list[OutboundMessage]
) -> list[OutboundMessage]:
    """Drop what must not go now (expired, opted out, unreachable, quiet); return the rest."""
    people = await q.participants_by_id(session, (r.participant_id for r in rows))
    identities = await q.identities_for(session, ((r.channel, r.address) for r in rows))
    ready = []
    now = run.now()
    for row in rows:
        person = people.get(row.participant_id or -1)
        identity = identities.get((row.channel, row.address))
        always = bool((row.meta or {}).get("always"))
        end: tuple[OutboxStatus, str] | None = None
        if row.not_after is not None and row.not_after < now:
            end = (OutboxStatus.EXPIRED, "not sent before its not-after time")
        elif person is not None and not always and person.status in (
            ParticipantStatus.STOPPED, ParticipantStatus.DELETED
        ):
            end = (OutboxStatus.CANCELLED, f"participant {person.status}")
        elif identity is not None and identity.status != IdentityStatus.ACTIVE:
            end = (OutboxStatus.FAILED, f"identity {identity.status}")
        elif run.senders.get(row.channel) is None:
            end = (OutboxStatus.FAILED, f"no sender for channel {row.channel}")
        # "always" rows answer something the person just did (a reply, the check-back they
        # asked for): quiet hours are for what we start, not for what they start.
        if end is None and may_defer(row.kind) and not always:
            until = quiet_until(person, now)
            if until is not None and row.not_after is not None and until > row.not_after:
                end = (OutboxStatus.EXPIRED, "quiet hours until after its not-after time")
            elif until is not None:
                _requeue(row, until, now)
                run.stats.deferred += 1
                continue
        if end is not None:
            row.status, row.error, row.claim_token, row.updated_at = end[0], end[1], None, now
            if end[0] == OutboxStatus.EXPIRED:
                run.stats.expired += 1
            elif end[0] == OutboxStatus.CANCELLED:
                run.stats.cancelled += 1
            else:
                run.stats.failed += 1
            continue
        ready.append(row)
    for row in rows:
        session.add(row)
    return ready


def _requeue(row: OutboundMessage, due: datetime, now: datetime) -> None:
    row.status, row.due_at, row.claim_token, row.updated_at = OutboxStatus.QUEUED, due, None, now


async def _heartbeat(run: _Pass, held: list[OutboundMessage]) -> None:
    """Renew the lease on the rest of the batch when a third of it has passed."""
    if run.clock.monotonic() - run.beat < run.policy.lease.total_seconds() / 3:
        return
    run.beat = run.clock.monotonic()
    async with session_scope(run.engine) as session:
        await q.touch_claims(session, ids=[r.id or 0 for r in held], token=run.token,
                             now=run.now())



def _groups(run: _Pass, rows: list[OutboundMessage]) -> list[list[OutboundMessage]]:
    """Split a batch into small groups, one message per chat in each.

    A group is re-screened and marked in flight in one commit, so the database is not the
    bottleneck; the group is small (a quarter second of the slowest
    channel's rate, at most 25), which bounds how many messages a crash can leave in doubt.
    """
    rates = [run.limiter.limits[r.channel].per_second for r in rows
             if r.channel in run.limiter.limits]
    size = max(1, min(MAX_GROUP, int(min(rates, default=100.0) * 0.25)))
    groups: list[list[OutboundMessage]] = []
    chats: list[set[tuple[str, str]]] = []
    for row in rows:
        chat = (row.channel, row.address)
        for group, seen in zip(groups, chats, strict=True):
            if len(group) < size and chat not in seen:
                group.append(row)
                seen.add(chat)
                break
        else:
            groups.append([row])
            chats.append({chat})
    return groups


async def _send_group(run: _Pass, group: list[OutboundMessage]) -> None:
    """Mark a group in flight, send each within the limits, record every outcome."""
    outcomes: list[tuple[OutboundMessage, object]] = []
    ready = []
    for row in group:
        wait = max(run.limiter.paused_for(row.channel),
                   run.limiter.chat_wait(row.channel, row.address))
        (outcomes.append((row, wait)) if wait > 0 else ready.append(row))
    async with session_scope(run.engine) as session:
        ended = await q.recheck_recipients(session, ids=[r.id or 0 for r in ready],
                                           token=run.token, now=run.now())
        owned = await q.mark_inflight(session, ids=[r.id or 0 for r in ready
                                                    if r.id not in ended],
                                      token=run.token, now=run.now())
    for status in ended.values():
        if status == OutboxStatus.CANCELLED:
            run.stats.cancelled += 1
        else:
            run.stats.failed += 1
    started: list[tuple[OutboundMessage, asyncio.Task[object]]] = []
    for row in ready:
        if row.id not in owned:
            continue  # our lease ran out and another worker took it back
        gone = run.dead.get((row.channel, row.address))
        if gone is not None:  # failed permanently earlier in this pass: do not try again
            outcomes.append((row, PermanentSendError(f"identity {gone}")))
            continue
        paused = run.limiter.paused_for(row.channel)
        if paused > 0:
            outcomes.append((row, paused))
            continue
        await run.limiter.acquire(row.channel, row.address,
                                  run.limiter.cost(row.channel, row.body, row.segments))
        run.stats.attempts += 1
        # Start each send when the limiter allows; up to `concurrency` finish concurrently.
        if len(started) >= run.policy.concurrency:
            done_row, task = started.pop(0)
            outcomes.append((done_row, await task))
        started.append((row, asyncio.create_task(_call(run, row))))
        await asyncio.sleep(0)  # let the call leave now, at the moment the limiter allowed
    for row, task in started:
        outcomes.append((row, await task))
    unsent = [(row, o) for row, o in outcomes if not isinstance(o, SendResult)]
    if unsent:
        async with session_scope(run.engine) as session:
            for row, outcome in unsent:
                await _record(run, session, row, outcome)


async def _call(run: _Pass, row: OutboundMessage) -> object:
    """Call the sender; return its result or the send error."""
    try:
        result: object = await run.senders[row.channel].send(OutgoingMessage.from_row(row))
    except (TransientSendError, PermanentSendError) as exc:
        if isinstance(exc, TransientSendError):
            _note_transient(run, row.channel, exc)
        return exc
    run.failures_in_row[row.channel] = 0
    if isinstance(result, SendResult):
        run.accepted.append((row, result))
        await _save_accepted(run)
    return result


async def _save_accepted(run: _Pass) -> None:
    """Commit every accepted send not yet saved, this one included, before returning.

    Save the provider id now, not when the group ends: a status callback (Twilio's
    "undelivered") can arrive within milliseconds and must find the row. Sends that return
    while a write is under way wait for it and go together in the next (group commit), so a
    fast channel costs one commit per write, not one per message.
    """
    async with run.write_lock:
        batch, run.accepted = run.accepted, []
        if not batch:
            return  # a write that ended while we waited took ours along
        async with session_scope(run.engine) as session:
            await q.mark_sent_many(session, token=run.token, now=run.now(), sent=[
                {"id": row.id, "provider_id": o.provider_id, "segments": o.segments,
                 "delivered": o.delivered, "attempts": row.attempts + 1} for row, o in batch])
        run.stats.sent += len(batch)


def _note_transient(run: _Pass, channel: str, exc: TransientSendError) -> None:
    """Pause a channel the provider asked to wait, or one that keeps failing."""
    in_row = run.failures_in_row.get(channel, 0) + 1
    run.failures_in_row[channel] = in_row
    if exc.retry_after is not None:
        run.limiter.pause(channel, max(0.0, float(exc.retry_after)))
    elif in_row >= run.policy.outage_after:
        run.limiter.pause(channel, run.policy.outage_pause)


async def _record(
    run: _Pass, session: AsyncSession, row: OutboundMessage, outcome: object
) -> None:
    """Write one outcome other than sent: deferred (seconds), retried, expired or failed."""
    row_id, now = row.id or 0, run.now()
    if isinstance(outcome, float | int):
        run.stats.deferred += 1
        await q.release(session, row_id=row_id, token=run.token, now=now,
                        due_at=now + timedelta(seconds=float(outcome)))
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
    elif isinstance(outcome, TransientSendError):
        await _retry_later(run, session, row, outcome)


async def _retry_later(
    run: _Pass, session: AsyncSession, row: OutboundMessage, exc: TransientSendError
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


def _count(run: _Pass, reason: str) -> None:
    key = reason[:80]
    run.stats.errors[key] = run.stats.errors.get(key, 0) + 1
