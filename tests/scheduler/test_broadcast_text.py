"""The broadcast code the console and the CLI share: the text rules, the fields a problem
belongs to, counts per channel, and who sent a broadcast from where."""

from __future__ import annotations

from datetime import time

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from scheduler.broadcast import (
    MAX_TEXT,
    Audience,
    AudienceError,
    clean_text,
    queue_broadcast,
    send_broadcast,
)
from storage.db import session_scope
from storage.models import Broadcast, Meeting, OutboundMessage
from storage.subscriptions import subscribe
from tests.scheduler.conftest import NOON, add_person


def test_clean_text_keeps_lines_and_refuses_empty_huge_and_hidden_characters() -> None:
    assert clean_text("  Moved to 7pm.  \r\nSee you there \U0001F44D  ") == \
        "Moved to 7pm.\nSee you there \U0001F44D"
    assert clean_text("a" * MAX_TEXT) == "a" * MAX_TEXT
    for bad, words in (("   ", "empty"), ("a" * (MAX_TEXT + 1), f"{MAX_TEXT} characters"),
                       ("bell\x07", "control"), ("rtl\u202eevil", "control"),
                       ("nul\x00", "control")):
        with pytest.raises(AudienceError, match=words) as caught:
            clean_text(bad)
        assert caught.value.field == "text"


async def _hanley(engine: AsyncEngine) -> None:
    sms = await add_person(engine, phone="+447700900001", release_lat=53.02, release_lon=-2.18)
    tg = await add_person(engine, phone="5550001", channel="telegram", release_lat=53.02,
                          release_lon=-2.18)
    async with session_scope(engine) as session:
        m = Meeting(timezone="Europe/London", slug="hanley-tue", name="Hanley", weekday=1,
                    start_time=time(18), lat=53.025, lon=-2.175)
        session.add(m)
        await session.flush()
        for pid in (sms, tg):
            await subscribe(session, participant_id=pid, meeting_id=m.id or 0, now=NOON)


async def test_problems_name_their_field(engine: AsyncEngine) -> None:
    await _hanley(engine)
    cases = [(Audience(near="hanley-tue", miles=0), "miles"),
             (Audience(near="hanley-tue", miles=999), "miles"),
             (Audience(near="Nowhereville Xq"), "near"), (Audience(near="  "), "near"),
             (Audience(meeting_slug="nope"), "meeting"), (Audience(region="Atlantis"), "region"),
             (Audience(), None)]
    for audience, field in cases:
        with pytest.raises(AudienceError) as caught:
            await send_broadcast(engine, audience=audience, text="Hi", created_by="t",
                                 now=NOON, dry_run=True)
        assert caught.value.field == field, audience


async def test_counts_per_channel_and_the_sender_and_region_are_kept(
        engine: AsyncEngine) -> None:
    await _hanley(engine)
    counted = await send_broadcast(engine, audience=Audience(meeting_slug="hanley-tue"),
                                   text="Hi", created_by="t", now=NOON, dry_run=True)
    assert counted == {"dry_run": True, "audience_count": 2,
                       "channels": {"sms": 1, "telegram": 1}}
    async with session_scope(engine) as session:
        out = await queue_broadcast(session, audience=Audience(meeting_slug="hanley-tue"),
                                    text=" Moved to 7pm ", created_by="c@example.org",
                                    now=NOON, staff_id=7, region=" Stoke ")
        row = await session.get(Broadcast, out["broadcast_id"])
        queued = (await session.exec(select(OutboundMessage))).all()
    assert row is not None and (row.staff_id, row.region, row.text) == (7, "Stoke", "Moved to 7pm")
    assert sorted(m.channel for m in queued) == ["sms", "telegram"]
    assert {m.body for m in queued} == {"Moved to 7pm"}
