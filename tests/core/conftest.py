"""Fixtures for the core journey: an enrolled participant and a way to talk as them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from handlers.engine import handle_inbound
from handlers.types import EngineContext, Inbound
from meeting_finder.demo import load_demo_meetings
from storage.db import session_scope
from storage.models import OutboundMessage
from storage.participants import enrol

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PHONE = "+447700900123"


@dataclass
class Enrolled:
    participant_id: int
    code: str


@pytest.fixture
async def demo_meetings(engine: AsyncEngine) -> int:
    """Load the demo meetings."""
    async with session_scope(engine) as session:
        return await load_demo_meetings(session, now=NOW)


@pytest.fixture
async def enrolled(engine: AsyncEngine) -> Enrolled:
    """Enrol Sam, released a week ago near Stoke-on-Trent, with a phone number."""
    async with session_scope(engine) as session:
        participant, code = await enrol(
            session, prison_name="HMP Test", display_name="Sam",
            release_date=date(2026, 11, 19), release_postcode="ST3 2", now=NOW,
            phone=PHONE, release_lat=52.9856, release_lon=-2.1495,
        )
    assert participant.id is not None
    return Enrolled(participant.id, code)


Say = Callable[..., Awaitable[list[str]]]


@pytest.fixture
def say(engine: AsyncEngine) -> Say:
    """Send one message as a person and return the reply texts written to the outbox."""
    counter = iter(range(1, 10_000))

    async def _say(text: str, *, channel: str = "sms", address: str = PHONE,
                   now: datetime = NOW, provider_id: str | None = None,
                   payload: str | None = None,
                   location: tuple[float, float] | None = None) -> list[str]:
        pid = provider_id or f"test-{next(counter)}"
        inbound = Inbound(channel=channel, address=address, text=text, provider_id=pid,
                          received_at=now, payload=payload, location=location)
        async with session_scope(engine) as session:
            result = await handle_inbound(session, inbound, EngineContext(now=now))
        async with session_scope(engine) as session:
            rows = (await session.exec(select(OutboundMessage).where(
                OutboundMessage.dedupe_key.in_(result.outbox_keys)  # type: ignore[attr-defined]
            ).order_by(OutboundMessage.id))).all()  # type: ignore[arg-type]
        return [r.body for r in rows]

    return _say
