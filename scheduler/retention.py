"""Retention: message bodies are blanked after the retention period, and the provider's copy
of each text (Twilio keeps every body) is redacted once it has been delivered.

Our copy: every inbound body and every outbox body older than `body_days` is blanked, in
short batches; a row still queued or sending is never touched. The provider's copy: a
worker pass asks each sender that can (a `Redactor` whose `redacts_bodies` is on) to blank
its copy of texts delivered, or sent or failed more than `settle` ago; each row once, noted
in its meta (storage.retention_q). A refusal is tried again next pass; an unreachable
provider ends the pass; a provider with no such message counts as done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncEngine

from scheduler.errors import PermanentSendError, TransientSendError
from storage.db import session_scope
from storage.retention_q import (
    BLANK_BATCH,
    blank_old_inbound,
    blank_old_outbound,
    claim_for_redaction,
    note_redaction,
)

logger = logging.getLogger(__name__)

BODY_RETENTION_DAYS = 90  # the default; BODY_RETENTION_DAYS in the settings
REDACT_SETTLE = timedelta(minutes=10)  # a sent text with no delivery report is left this long
REDACT_BATCH = 50  # provider copies claimed by one transaction
REDACT_PER_PASS = 500  # provider calls one pass makes at most (the rest wait for the next)
BATCH_PAUSE = 0.1  # seconds between blanking transactions, so other writers get the database


@runtime_checkable
class Redactor(Protocol):
    """A sender that can blank the provider's copy of a message it sent."""

    channel: str
    redacts_bodies: bool  # switched on by the settings (TWILIO_REDACT_BODIES)

    async def redact(self, provider_id: str) -> bool:
        """Blank the provider's copy; return False when it has no such message.

        Raise TransientSendError when the provider cannot be reached, PermanentSendError
        when it refuses.
        """
        ...


@dataclass(frozen=True)
class RetentionPolicy:
    """How long bodies are kept, and how long a sent text settles before redaction."""

    body_days: int = BODY_RETENTION_DAYS
    settle: timedelta = REDACT_SETTLE


@dataclass
class RetentionStats:
    """What one retention pass did (counts only)."""

    inbound_blanked: int = 0
    outbound_blanked: int = 0
    redacted: int = 0  # provider copies blanked, or found already gone
    redact_failed: int = 0  # refusals and unreachable tries, tried again next pass


async def blank_old_bodies(
    engine: AsyncEngine, *, now: datetime, days: int = BODY_RETENTION_DAYS,
    batch: int = BLANK_BATCH,
) -> tuple[int, int]:
    """Blank inbound and outbound bodies older than `days`; return (inbound, outbound)."""
    before = now - timedelta(days=days)
    inbound = outbound = 0
    while True:
        async with session_scope(engine) as session:
            done_in = await blank_old_inbound(session, before=before, limit=batch)
            done_out = await blank_old_outbound(session, before=before, now=now, limit=batch)
        inbound, outbound = inbound + done_in, outbound + done_out
        if done_in < batch and done_out < batch:
            return inbound, outbound
        await asyncio.sleep(BATCH_PAUSE)


def redactors(senders: Mapping[str, object]) -> dict[str, Redactor]:
    """Return the senders, by channel, that are to redact their provider's copies."""
    return {channel: s for channel, s in senders.items()
            if isinstance(s, Redactor) and s.redacts_bodies}


async def redact_at_providers(
    engine: AsyncEngine, senders: Mapping[str, object], *, now: datetime,
    settle: timedelta = REDACT_SETTLE, limit: int = REDACT_PER_PASS,
) -> tuple[int, int]:
    """Redact the provider copies that are due; return (done, failed)."""
    by_channel = redactors(senders)
    done = failed = 0
    while done + failed < limit:
        async with session_scope(engine) as session:
            claimed = await claim_for_redaction(
                session, channels=by_channel, now=now, settle=settle,
                limit=min(REDACT_BATCH, limit - done - failed))
        if not claimed:
            break
        outcomes = await _redact_each(by_channel, claimed)
        async with session_scope(engine) as session:
            for (row_id, _channel, _sid), outcome in zip(claimed, outcomes, strict=True):
                if await note_redaction(session, row_id=row_id, outcome=outcome, now=now):
                    done += 1
                else:
                    failed += 1
        if "later" in outcomes:
            logger.warning("redaction: the provider is unreachable; trying next pass")
            break
    return done, failed


async def _redact_each(
    by_channel: Mapping[str, Redactor], claimed: list[tuple[int, str, str]]
) -> list[str]:
    """Ask the provider to blank each claimed copy; stop asking once it is unreachable."""
    outcomes: list[str] = []
    for row_id, channel, sid in claimed:
        if outcomes and outcomes[-1] == "later":
            outcomes.append("later")  # the provider is down: the rest wait for next pass
            continue
        try:
            outcomes.append("redacted" if await by_channel[channel].redact(sid) else "gone")
        except TransientSendError as exc:
            logger.info("redaction of outbox #%s: %s", row_id, exc.reason)
            outcomes.append("later")
        except PermanentSendError as exc:
            logger.warning("redaction of outbox #%s refused: %s", row_id, exc.reason)
            outcomes.append("refused")
    return outcomes


async def run_retention(
    engine: AsyncEngine, senders: Mapping[str, object], *, now: datetime,
    policy: RetentionPolicy | None = None,
) -> RetentionStats:
    """Blank old bodies, then redact provider copies that are due."""
    policy = policy or RetentionPolicy()
    stats = RetentionStats()
    stats.inbound_blanked, stats.outbound_blanked = await blank_old_bodies(
        engine, now=now, days=policy.body_days)
    stats.redacted, stats.redact_failed = await redact_at_providers(
        engine, senders, now=now, settle=policy.settle)
    if stats.inbound_blanked or stats.outbound_blanked or stats.redacted:
        logger.info("retention: %d inbound and %d outbound bodies blanked, %d provider "
                    "copies redacted", stats.inbound_blanked, stats.outbound_blanked,
                    stats.redacted)
    return stats
