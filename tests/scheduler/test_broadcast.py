"""Broadcasts: audiences, dry run, and the delivery report."""

from __future__ import annotations

from datetime import time

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from scheduler.broadcast import Audience, AudienceError, delivery_report, send_broadcast
from scheduler.clock import SimClock
from scheduler.dispatcher import dispatch
from scheduler.ratelimit import RateLimiter
from storage.db import session_scope
from storage.models import Meeting, ParticipantStatus
from storage.regions_q import create_region
from storage.subscriptions import subscribe
from tests.scheduler.conftest import NOON, FakeProvider, add_person, permanent


async def test_meeting_near_and_region_audiences(engine: AsyncEngine) -> None:
    near = await add_person(engine, phone="+447700900001", region="Stoke",
                            release_lat=53.02, release_lon=-2.18)
    await add_person(engine, phone="+447700900002", region="Leeds",
                     release_lat=53.80, release_lon=-1.55)
    await add_person(engine, phone="+447700900003", region="Stoke", release_lat=53.03,
                     release_lon=-2.17, status=ParticipantStatus.STOPPED)
    async with session_scope(engine) as session:
        m = Meeting(timezone="Europe/London",
            slug="hanley-tue", name="Hanley", weekday=1, start_time=time(18),
                    lat=53.025, lon=-2.175)
        session.add(m)
        await session.flush()
        await subscribe(session, participant_id=near, meeting_id=m.id or 0, now=NOON)
        await create_region(session, name="Stoke", now=NOON, centre=(53.025, -2.175), miles=5)

    async def count(audience: Audience) -> int:
        out = await send_broadcast(engine, audience=audience, text="Hello", created_by="t",
                                   now=NOON, dry_run=True)
        return int(out["audience_count"])

    assert await count(Audience(meeting_slug="hanley-tue")) == 1
    assert await count(Audience(near="hanley-tue", miles=5)) == 1  # STOPPED never counted
    assert await count(Audience(near="hanley-tue", miles=100)) == 2
    assert await count(Audience(region="stoke")) == 1  # by geography; STOPPED never counted
    with pytest.raises(AudienceError, match="no region called 'Leeds'; known regions: Stoke"):
        await count(Audience(region="Leeds"))  # a town name is not a defined region
    with pytest.raises(AudienceError):
        await count(Audience(meeting_slug="nope"))
    with pytest.raises(AudienceError):
        await count(Audience(region="x", meeting_slug="hanley-tue"))


async def test_delivery_report_counts_sent_and_failures_by_reason(engine: AsyncEngine) -> None:
    for i in range(4):
        await add_person(engine, phone=f"+44770090000{i}", release_postcode="ST3 2QH")
    async with session_scope(engine) as session:
        await create_region(session, name="Stoke", now=NOON, postcodes=["ST"])
    out = await send_broadcast(engine, audience=Audience(region="Stoke"), text="Moved to 7pm",
                               created_by="t", now=NOON)
    again = await send_broadcast(engine, audience=Audience(region="Stoke"), text="Moved",
                                 created_by="t", now=NOON)
    assert out["queued"] == again["queued"] == 4
    provider = FakeProvider(
        "sms", fail=lambda m: permanent("unreachable") if m.address.endswith("3") else None)
    await dispatch(engine, {"sms": provider}, now=NOON, limiter=RateLimiter(clock=SimClock()))
    report = await delivery_report(engine, int(out["broadcast_id"]))
    assert report["by_status"]["sent"] == 3 and report["by_status"]["failed"] == 1
    assert report["failed_by_reason"] == {"failed: bot was blocked by the user": 1}
    assert report["audience_count"] == 4
