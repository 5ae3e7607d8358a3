"""Retention queries: blank old message bodies; find and mark texts whose provider copy goes.

Bodies go in short batches, oldest first, so an inbound message never waits long for the
database. A row still queued or sending keeps its body: the dispatcher needs it.

What a provider holds (Twilio keeps every text's body) is redacted once per outbox row; the
row's `meta` says how that went (no column needed):
`provider_copy`: "redacted", "gone" (the provider had no such message) or "kept" (gave up
after REDACT_TRIES refusals); while pending, `provider_copy_tries` counts refusals,
`provider_copy_retry` says when to try again after a failure, and `provider_copy_claim`
names when a worker took it, so two workers never both redact it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, and_, or_, type_coerce, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.limits_q import serialise
from storage.models import InboundMessage, OutboundMessage, OutboxStatus

OB = OutboundMessage
BLANK_BATCH = 1000  # rows blanked by one transaction
REDACT_TRIES = 12  # refusals before a provider copy is left (an outage is not counted)
CLAIM_LEASE = timedelta(minutes=15)  # a claim older than this was a worker that died
RETRY_AFTER = timedelta(minutes=4)  # a failed redaction waits this long (about one pass)
COPY = "provider_copy"  # the meta key that marks a row done
# Rows whose body a dispatcher may still read.
_IN_FLIGHT = (OutboxStatus.QUEUED, OutboxStatus.SENDING)
# Rows the provider has had: delivered, or sent (or failed after reaching it) a while ago.
_AT_PROVIDER = (OutboxStatus.SENT, OutboxStatus.DELIVERED, OutboxStatus.FAILED)


async def blank_old_inbound(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Blank the bodies of up to `limit` messages received before `before`; return how many."""
    due = (select(InboundMessage.id)
           .where(col(InboundMessage.received_at) < before)
           .where(col(InboundMessage.body).is_not(None))
           .order_by(col(InboundMessage.id)).limit(limit))
    result = await session.exec(
        update(InboundMessage).where(col(InboundMessage.id).in_(due.scalar_subquery()))
        .values(body=None))
    return int(result.rowcount or 0)


def _sent_before(before: datetime) -> Any:
    """Rows that went (or, never sent, were written) before `before`."""
    return or_(and_(col(OB.sent_at).is_not(None), col(OB.sent_at) < before),
               and_(col(OB.sent_at).is_(None), col(OB.created_at) < before))


async def blank_old_outbound(
    session: AsyncSession, *, before: datetime, now: datetime, limit: int
) -> int:
    """Blank the bodies (and choices) of up to `limit` outbox rows that left the queue
    before `before`; a row still queued or sending is never touched. Return how many."""
    settled = and_(col(OB.status).not_in([str(s) for s in _IN_FLIGHT]), _sent_before(before),
                   or_(col(OB.body) != "", col(OB.choices).is_not(None)))
    due = select(OB.id).where(settled).order_by(col(OB.id)).limit(limit)
    # The status test is repeated in the UPDATE: a row requeued meanwhile keeps its body.
    result = await session.exec(
        update(OB).where(col(OB.id).in_(due.scalar_subquery())).where(settled)
        .values(body="", choices=None, updated_at=now))
    return int(result.rowcount or 0)


def _undone() -> Any:
    """Rows whose provider copy is not yet dealt with (meta is JSON text: match the key)."""
    meta = type_coerce(col(OB.meta), Text)
    return or_(col(OB.meta).is_(None), ~meta.like(f'%"{COPY}"%'))


async def claim_for_redaction(
    session: AsyncSession, *, channels: Collection[str], now: datetime, settle: timedelta,
    limit: int,
) -> list[tuple[int, str, str]]:
    """Claim up to `limit` rows whose provider copy can go; return (row id, channel,
    provider id).

    A delivered row goes at once; a sent or failed one once `settle` has passed (the
    provider may still be handing it on). Claims take turns, so two workers never take one.
    """
    if not channels:
        return []
    await serialise(session, "retention:redact", now=now)
    ready = or_(col(OB.status) == OutboxStatus.DELIVERED,
                col(OB.updated_at) < now - settle)
    rows = (await session.exec(
        select(OB).where(col(OB.channel).in_(list(channels)))
        .where(col(OB.status).in_([str(s) for s in _AT_PROVIDER]))
        .where(col(OB.provider_id).is_not(None)).where(ready).where(_undone())
        .order_by(col(OB.id)).limit(limit * 3))).all()
    taken: list[tuple[int, str, str]] = []
    for row in rows:
        meta = dict(row.meta or {})
        claim, retry = meta.get(f"{COPY}_claim"), meta.get(f"{COPY}_retry")
        if claim and datetime.fromisoformat(claim) > now - CLAIM_LEASE:
            continue  # another worker has it in hand
        if retry and datetime.fromisoformat(retry) > now:
            continue  # it failed lately: the next pass tries again
        meta[f"{COPY}_claim"] = now.isoformat()
        row.meta = meta
        session.add(row)
        taken.append((row.id or 0, row.channel, row.provider_id or ""))
        if len(taken) == limit:
            break
    return taken


async def note_redaction(
    session: AsyncSession, *, row_id: int, outcome: str, now: datetime
) -> bool:
    """Record how one redaction went; return True when the row is now done.

    `outcome`: "redacted"; "gone" (the provider had no such message); "refused" (counted:
    tried again next pass, left as "kept" after REDACT_TRIES); "later" (the provider was
    unreachable: not counted, tried again next pass).
    """
    row = await session.get(OB, row_id)
    if row is None:
        return True
    meta = dict(row.meta or {})
    meta.pop(f"{COPY}_claim", None)
    meta.pop(f"{COPY}_retry", None)
    if outcome == "refused":
        tries = int(meta.get(f"{COPY}_tries", 0)) + 1
        meta[f"{COPY}_tries"] = tries
        outcome = "kept" if tries >= REDACT_TRIES else "later"
    if outcome == "later":
        meta[f"{COPY}_retry"] = (now + RETRY_AFTER).isoformat()
    else:
        meta[COPY] = outcome
        meta[f"{COPY}_at"] = now.isoformat()
    row.meta = meta
    session.add(row)
    return outcome != "later"
