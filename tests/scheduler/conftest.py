"""Fixtures for the scheduler: people with identities, and a fake provider that records sends."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.channels.render import sms_segments
from scheduler.clock import SimClock
from scheduler.errors import PermanentSendError, TransientSendError
from scheduler.ratelimit import ChannelLimit, RateLimiter
from scheduler.sender import OutgoingMessage, SendResult
from storage.db import session_scope
from storage.models import (
    Channel,
    ChannelIdentity,
    MessageKind,
    OutboundMessage,
    Participant,
    ParticipantStatus,
    Priority,
)
from storage.outbox import enqueue

NOON = datetime(2025, 6, 2, 11, 0, tzinfo=UTC)  # 12:00 in London (BST)


@dataclass
class FakeProvider:
    """Stands in for Telegram or Twilio: records every call and fails when told to."""

    channel: str
    clock: SimClock | None = None
    calls: list[tuple[float, OutgoingMessage]] = field(default_factory=list)
    accepted: dict[int, str] = field(default_factory=dict)
    fail: Callable[[OutgoingMessage], Exception | None] | None = None
    ids: Any = field(default_factory=lambda: itertools.count(1))

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Record the call, then accept or raise."""
        at = self.clock.monotonic() if self.clock else 0.0
        self.calls.append((at, message))
        error = self.fail(message) if self.fail else None
        if error is not None:
            raise error
        pid = f"fake-{next(self.ids)}"
        self.accepted[message.id] = pid
        return SendResult(provider_id=pid, segments=1)

    def cost(self, message: OutgoingMessage) -> float:
        """Charge what a real sender would: SMS segments, one Telegram message."""
        return float(sms_segments(message.body)) if self.channel == "sms" else 1.0

    def bodies(self) -> list[str]:
        """Return the bodies accepted, in order."""
        return [m.body for _, m in self.calls if m.id in self.accepted]


@pytest.fixture
def clock() -> SimClock:
    """Return a simulated clock starting at 0."""
    return SimClock(start=1000.0)


@pytest.fixture
def limiter(clock: SimClock) -> RateLimiter:
    """Return a limiter on the simulated clock with fast test limits."""
    return RateLimiter(limits={"sms": ChannelLimit(per_second=100.0, count_segments=True),
                               "telegram": ChannelLimit(per_second=30.0,
                                                        per_chat_per_second=1.0)},
                       clock=clock)


async def add_person(
    engine: AsyncEngine,
    *,
    name: str = "Sam",
    phone: str = "+447700900001",
    channel: str = "sms",
    status: ParticipantStatus = ParticipantStatus.ACTIVE,
    release: date = date(2025, 6, 2),
    **extra: Any,
) -> int:
    """Create an active participant with one identity; return the id."""
    async with session_scope(engine) as session:
        p = Participant(display_name=name, release_date=release, phone=phone,
                        preferred_channel=Channel(channel), status=status,
                        consent_at=NOON - timedelta(days=1), **extra)
        session.add(p)
        await session.flush()
        session.add(ChannelIdentity(participant_id=p.id or 0, channel=Channel(channel),
                                    address=phone))
        return p.id or 0


async def night_owl(engine: AsyncEngine, phone: str = "+447700988888") -> int:
    """Add someone with no quiet hours: tests on the real clock must not hang on the time of
    day they run at (bulk for anyone else waits from 21:00 to 08:00 London time)."""
    return await add_person(engine, name="Owl", phone=phone, quiet_start_hour=0,
                            quiet_end_hour=0)


async def put(
    engine: AsyncEngine,
    key: str,
    *,
    now: datetime = NOON,
    participant_id: int | None = None,
    address: str = "+447700900001",
    channel: str = "sms",
    kind: MessageKind = MessageKind.BROADCAST,
    **extra: Any,
) -> None:
    """Enqueue one message."""
    priority = extra.pop("priority", Priority.BULK if kind == MessageKind.BROADCAST
                         else Priority.REPLY if kind == MessageKind.REPLY else Priority.SCHEDULED)
    async with session_scope(engine) as session:
        await enqueue(session, channel=channel, address=address, body=extra.pop("body", key),
                      dedupe_key=key, now=now, participant_id=participant_id, kind=kind,
                      priority=priority, **extra)


async def rows(engine: AsyncEngine) -> list[OutboundMessage]:
    """Return every outbox row by id."""
    async with session_scope(engine) as session:
        return list((await session.exec(select(OutboundMessage)
                                         .order_by(OutboundMessage.id))).all())  # type: ignore[arg-type]


def transient(reason: str = "provider down", retry_after: float | None = None) -> Exception:
    """Return a transient error."""
    return TransientSendError(reason, retry_after=retry_after)


def permanent(status: str = "blocked") -> Exception:
    """Return a permanent error."""
    return PermanentSendError("bot was blocked by the user", code="403", identity_status=status)
