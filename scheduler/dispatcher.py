"""The outbox dispatcher: claim due rows, send them within limits, record what happened.

Lanes. The **urgent** lane (crisis numbers, replies, STOP/START/HELP confirmations) is
claimed whole and sent first; the **bulk** lane (reminders, sequences, follow-ups,
broadcasts) is claimed in slices of about a second of the channel's rate, and after every
slice the urgent lane is looked at again. The limiter gives an urgent waiter the next free
send slot, in this process or another (`scheduler.ratelimit`), so an urgent message waits at
most for the one send already on the wire. A claim takes at most one row per address (the
head of that address's queue), so messages to one person leave in the order they were
written and one person's flood never holds up another person's reply.

Delivery guarantee. Every row is claimed (`sending`, with a lease and a claim token) and
then, just before the provider call, screened again (a STOP or DELETE may have arrived since
the claim) and marked in flight in its own committed transaction; each outcome is committed
as soon as its own call returns. A worker that dies leaves `sending` rows whose lease runs
out; the next pass recovers them (`scheduler.outcomes.recover`):

- not in flight: the provider never saw it, so it goes back to `queued` (no loss, no double);
- in flight, and the sender can `lookup` the message at the provider (Twilio): recorded as
  sent if found, queued again if not (exactly once);
- in flight, no lookup (Telegram): replies and crisis messages are queued again
  (at-least-once: a crisis number twice beats never), everything else is failed "outcome
  unknown" (at-most-once: a reminder or broadcast is never doubled).

A provider timeout (`maybe_sent`) or an unexpected error in a send is settled the same way,
by lookup where the sender has one. A send that raises anything unexpected fails alone: it
is retried with backoff and the error type recorded, and the rest of the pass goes on.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from scheduler import outcomes
from scheduler.passes import DispatchPolicy, DispatchStats, Pass, default_limiter
from scheduler.quiet import may_defer, quiet_until
from scheduler.ratelimit import RateLimiter, level_for
from scheduler.sender import OutgoingMessage, Sender
from storage import outbox_q as q
from storage.claims_q import Lane, claim_due, recipients_of
from storage.db import session_scope
from storage.erasure import scrub_deleted_rows
from storage.models import IdentityStatus, OutboundMessage, OutboxStatus, ParticipantStatus
from storage.sqlite_turns import urgent_writes

logger = logging.getLogger(__name__)
MAX_GROUP = 25
SLOW_CALL = 0.1  # seconds a call may be out before a write since makes its pass look again
UNKNOWN_OUTCOME = outcomes.UNKNOWN_OUTCOME
__all__ = ["UNKNOWN_OUTCOME", "DispatchPolicy", "DispatchStats", "default_limiter", "dispatch"]


async def dispatch(
    engine: AsyncEngine,
    senders: Mapping[str, Sender],
    *,
    now: datetime,
    keys: list[str] | None = None,
    lane: Lane | None = None,
    limit: int | None = None,
    limiter: RateLimiter | None = None,
    policy: DispatchPolicy | None = None,
    housekeeping: bool = True,
    wake: asyncio.Event | None = None,
) -> DispatchStats:
    """Send what is due until none is, urgent lane first.

    With `keys` (the fast path after an inbound message), send the urgent rows due for the
    addresses those rows go to, in order, and nothing else. Without `housekeeping` a pass
    skips recovering lapsed claims, expiring overdue rows and scrubbing erased addresses
    (a loop passing many times a second does those once a second). Its writes are short and
    go before waiting webhooks' on SQLite (`storage.sqlite_turns.urgent_writes`). `wake`:
    the calling loop's wake-up, set by writes, so a pass with a slow call out still sends
    what is written meanwhile.
    """
    with urgent_writes():
        return await _dispatch(engine, senders, now=now, keys=keys, lane=lane, limit=limit,
                               limiter=limiter, policy=policy, housekeeping=housekeeping,
                               wake=wake)


async def _dispatch(
    engine: AsyncEngine,
    senders: Mapping[str, Sender],
    *,
    now: datetime,
    keys: list[str] | None,
    lane: Lane | None,
    limit: int | None,
    limiter: RateLimiter | None,
    policy: DispatchPolicy | None,
    housekeeping: bool,
    wake: asyncio.Event | None,
) -> DispatchStats:
    limiter = limiter or default_limiter()
    run = Pass(engine, senders, now, limiter, policy or DispatchPolicy(), uuid.uuid4().hex,
               DispatchStats(), t0=limiter.clock.monotonic())
    run.beat = run.t0
    addresses = None
    if keys is not None:
        async with session_scope(engine) as session:
            addresses = await q.addresses_of(session, keys)
        if not addresses:
            return run.stats
        lanes = [Lane.URGENT]
    else:
        if housekeeping:
            await outcomes.recover(run)
            async with session_scope(engine) as session:
                run.stats.expired += await q.expire_overdue(session, now=run.now())
        lanes = [Lane.URGENT, Lane.BULK] if lane is None else [lane]
    try:
        await _slices(run, lanes, addresses=addresses, limit=limit, wake=wake)
    finally:
        if run.inflight:
            await asyncio.wait(run.inflight)
        if wake is not None and run.woken:
            wake.set()  # what woke it may wait for a call that was out: another pass
    if keys is None and housekeeping:
        async with session_scope(engine) as session:
            # The DELETE confirmation is the last row holding an erased person's address.
            await scrub_deleted_rows(session)
    return run.stats


async def _slices(run: Pass, lanes: list[Lane], *, addresses: list[tuple[str, str]] | None,
                  limit: int | None, wake: asyncio.Event | None) -> None:
    """Claim and send slices until nothing more is due and no call out may let more go."""
    while True:
        finished = run.finished
        if await _one_slice(run, lanes, addresses=addresses, limit=limit) == _MORE:
            continue
        if not run.inflight:
            if run.behind and run.finished != finished:
                continue  # a call came back while we looked: its person may have more
            return
        if not await _calls_or_wake(run, wake):
            return


async def _calls_or_wake(run: Pass, wake: asyncio.Event | None) -> bool:
    """Wait while calls are out; return whether to look again.

    A claimed row with another to its address behind it: look again when a call comes back
    (that person may be next). Otherwise wait for every call; but when a write wakes the
    pass (`wake`, the loop's) while a call has been out SLOW_CALL, look again at once: what
    was written meanwhile must not wait for a slow provider."""
    while run.inflight:
        done, _ = await asyncio.wait(
            run.inflight, timeout=None if wake is None else SLOW_CALL,
            return_when=asyncio.FIRST_COMPLETED if run.behind else asyncio.ALL_COMPLETED)
        if run.behind and done:
            return True
        if wake is not None and wake.is_set() and run.inflight:
            wake.clear()
            run.woken = True
            return True
    return run.behind


def bulk_slice(run: Pass) -> int:
    """Return how many bulk rows make about `bulk_slice_seconds` of the slowest rate."""
    rates = [limit.per_second for channel, limit in run.limiter.limits.items()
             if channel in run.senders]
    size = int(min(rates, default=100.0) * run.policy.bulk_slice_seconds)
    return max(1, min(MAX_GROUP, size))


_NONE, _ALL, _MORE = 0, 1, 2  # a slice found nothing; all that was due; maybe not all


async def _one_slice(
    run: Pass, lanes: list[Lane], *, addresses: list[tuple[str, str]] | None,
    limit: int | None,
) -> int:
    """Claim and send one slice of the most urgent lane that has work; say whether there
    was none, all that was due, or maybe more."""
    for n, lane in enumerate(lanes):
        size = limit or (run.policy.urgent_claim if lane == Lane.URGENT else bulk_slice(run))
        async with session_scope(run.engine) as session:
            rows = await claim_due(session, now=run.now(), token=run.token, limit=size,
                                     lane=lane, addresses=addresses, lease=run.policy.lease)
            run.behind = run.behind or rows.behind  # for the rest of the pass
            ready = await _screen(session, run, rows)
        if not rows:
            continue
        groups = _groups(run, ready)
        for i, group in enumerate(groups):
            await _heartbeat(run, [r for g in groups[i:] for r in g])
            await _send_group(run, group, recheck=i > 0)
        # More may be due now: the claim was full, a lane was not looked at, or a row was
        # ended here (expired, cancelled), which lets that person's next one go.
        more = len(rows) >= size or n < len(lanes) - 1 or len(ready) < len(rows)
        return _MORE if more else _ALL
    return _NONE


async def _screen(
    session: AsyncSession, run: Pass, rows: list[OutboundMessage]
) -> list[OutboundMessage]:
    """Drop what must not go now (expired, opted out, unreachable, quiet); return the rest."""
    found = await recipients_of(session, [r.id or 0 for r in rows])
    ready = []
    now = run.now()
    for row in rows:
        recipient = found.get(row.id or 0)
        person = recipient if recipient is not None and recipient.status is not None else None
        identity = recipient.identity if recipient is not None else None
        always = bool((row.meta or {}).get("always"))
        end: tuple[OutboxStatus, str] | None = None
        if row.not_after is not None and row.not_after < now:
            end = (OutboxStatus.EXPIRED, "not sent before its not-after time")
        elif person is not None and not always and person.status in (
            ParticipantStatus.STOPPED, ParticipantStatus.DELETED
        ):
            end = (OutboxStatus.CANCELLED, f"participant {person.status}")
        elif identity is not None and identity != IdentityStatus.ACTIVE:
            end = (OutboxStatus.FAILED, f"identity {identity}")
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
            _end(run, row, end, now)
            continue
        ready.append(row)
    for row in rows:
        session.add(row)
    return ready


def _end(run: Pass, row: OutboundMessage, end: tuple[OutboxStatus, str], now: datetime) -> None:
    row.status, row.error, row.claim_token, row.updated_at = end[0], end[1], None, now
    if end[0] == OutboxStatus.EXPIRED:
        run.stats.expired += 1
    elif end[0] == OutboxStatus.CANCELLED:
        run.stats.cancelled += 1
    else:
        run.stats.failed += 1


def _requeue(row: OutboundMessage, due: datetime, now: datetime) -> None:
    row.status, row.due_at, row.claim_token, row.updated_at = OutboxStatus.QUEUED, due, None, now


async def _heartbeat(run: Pass, held: list[OutboundMessage]) -> None:
    """Renew the lease on the rest of the batch when a third of it has passed."""
    if run.clock.monotonic() - run.beat < run.policy.lease.total_seconds() / 3:
        return
    run.beat = run.clock.monotonic()
    async with session_scope(run.engine) as session:
        await q.touch_claims(session, ids=[r.id or 0 for r in held], token=run.token,
                             now=run.now())


def _groups(run: Pass, rows: list[OutboundMessage]) -> list[list[OutboundMessage]]:
    """Split a slice into small groups, one message per chat in each.

    A group is re-screened and marked in flight in one commit, so the database is not the
    bottleneck; the group is small (a quarter second of the slowest channel's rate, at most
    25), which bounds how many messages a crash can leave in doubt.
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


async def _send_group(run: Pass, group: list[OutboundMessage], *, recheck: bool = True
                      ) -> None:
    """Mark a group in flight and start each send as the limits allow.

    Later groups of a slice look again for people who stopped (or addresses that did)
    since the claim; the first goes straight after the claim's own screen, which did.

    Calls run concurrently (up to `concurrency`, across groups and slices): one provider
    call that hangs until its timeout holds only its own row, not the rows behind it.
    Each call records its own outcome.
    """
    deferred: list[tuple[OutboundMessage, object]] = []
    ready = []
    paused = {ch: await run.limiter.paused_for(ch) for ch in {r.channel for r in group}}
    for row in group:
        wait = paused[row.channel] or await run.limiter.take_chat(row.channel, row.address)
        (deferred.append((row, wait)) if wait > 0 else ready.append(row))
    async with session_scope(run.engine) as session:
        ended = await q.recheck_recipients(session, ids=[r.id or 0 for r in ready],
                                           token=run.token, now=run.now()) if recheck else {}
        owned = await q.mark_inflight(session, ids=[r.id or 0 for r in ready
                                                    if r.id not in ended],
                                      token=run.token, now=run.now())
    for status in ended.values():
        if status == OutboxStatus.CANCELLED:
            run.stats.cancelled += 1
        else:
            run.stats.failed += 1
    for row in ready:
        if row.id not in owned:
            continue  # our lease ran out and another worker took it back
        early = await _before_send(run, row)
        if early is not None:
            deferred.append((row, early))
            continue
        run.stats.attempts += 1
        while len(run.inflight) >= run.policy.concurrency:
            await asyncio.wait(run.inflight, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(outcomes.call(run, row))
        run.inflight.add(task)
        task.add_done_callback(run.call_done)
        await asyncio.sleep(0)  # let the call leave now, at the moment the limiter allowed
    await outcomes.record_unsent(run, deferred)


async def _before_send(run: Pass, row: OutboundMessage) -> object | None:
    """Wait for this row's send slot; return an outcome instead if it must not go now."""
    gone = run.dead.get((row.channel, row.address))
    if gone is not None:  # failed permanently earlier in this pass: do not try again
        return outcomes.PermanentSendError(f"identity {gone}")
    message = OutgoingMessage.from_row(row)
    taken = await run.limiter.acquire(row.channel, outcomes.cost_of(run, message),
                                      level=level_for(row.priority),
                                      max_wait=run.policy.max_slot_wait)
    # Not within a few seconds (the channel was paused, or far more urgent work came):
    # put it back for a moment rather than hold the rest of the group.
    return None if taken else 1.0
