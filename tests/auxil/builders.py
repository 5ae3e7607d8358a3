"""Builders with sensible defaults: inbound messages and participants linked by the engine."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.engine import handle_inbound
from handlers.types import EngineContext, Inbound
from storage.models import Participant
from storage.participants import enrol

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday, midday: outside quiet hours
PHONE = "+447700900321"
TELEGRAM_ID = "987654321"
_ids = itertools.count(1)


def make_inbound(text: str = "", **overrides: Any) -> Inbound:
    """Return an SMS from PHONE at NOW with a fresh provider id, unless overridden."""
    values: dict[str, Any] = {
        "channel": "sms", "address": PHONE, "text": text, "received_at": NOW,
        "provider_id": f"build-{next(_ids)}",
    }
    values.update(overrides)
    return Inbound(**values)


async def enrolled_participant(
    session: AsyncSession,
    *,
    channel: str = "sms",
    address: str | None = None,
    name: str = "Sam",
    now: datetime = NOW,
    release_date: date = date(2026, 11, 12),
    consent: bool = True,
    staff_review_consent: bool = False,
    goals: list[str] | None = None,
) -> Participant:
    """Enrol a participant, link them by code through the engine, and consent (say YES)."""
    address = address or (PHONE if channel == "sms" else TELEGRAM_ID)
    participant, code = await enrol(
        session, prison_name="HMP Test", display_name=name, release_date=release_date,
        release_postcode="ST3 2QH", now=now, phone=address if channel == "sms" else None,
        channel=channel, release_lat=52.9856, release_lon=-2.1495, goals=goals,
    )
    ctx = EngineContext(now=now)
    await handle_inbound(session, make_inbound(code, channel=channel, address=address,
                                               received_at=now), ctx)
    if consent:
        await handle_inbound(session, make_inbound("YES", channel=channel, address=address,
                                                   received_at=now), ctx)
    participant.staff_review_consent = staff_review_consent
    session.add(participant)
    await session.flush()
    return participant
