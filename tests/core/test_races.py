"""Races: messages arriving at the same moment, as real webhooks do (PostgreSQL is where
they bit: one code linked two phones, a check-in answer was lost, a limit let 20 through)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, func, select

from bot.channels.inbox import ChannelRuntime, receive
from bot.config import Settings
from handlers.texts import t
from handlers.types import Inbound
from storage.db import session_scope
from storage.limits_q import forget_locks
from storage.models import AuditEvent, ChannelIdentity, CheckIn, RateBucket
from storage.participants import MAX_FAILED_LINKS_PER_HOUR, enrol
from tests.core.conftest import NOW, Enrolled

WRONG = "ABCDE-FGHJK"  # well formed, never issued


def _runtime(engine: AsyncEngine) -> ChannelRuntime:
    settings = Settings(_env_file=None, database_url="sqlite:///unused.db")  # type: ignore[call-arg]
    return ChannelRuntime(engine=engine, settings=settings, clock=lambda: NOW)


async def _say(runtime: ChannelRuntime, text: str, address: str, n: int,
               at: datetime = NOW) -> str:
    inbound = Inbound(channel="sms", address=address, text=text, received_at=at,
                      provider_id=f"SM{n:032d}")
    result = await receive(runtime, inbound)
    return result.replies[0].text


async def test_one_code_sent_from_two_phones_at_once_links_exactly_one(
    engine: AsyncEngine, enrolled: Enrolled,
) -> None:
    runtime = _runtime(engine)
    for attempt in range(3):
        async with session_scope(engine) as session:
            _, code = await enrol(session, prison_name="HMP Test", display_name="Jo",
                                  release_date=date(2026, 11, 19), release_postcode="ST3 2QH",
                                  now=NOW, phone=None)
        phones = [f"+4477009{attempt}0001", f"+4477009{attempt}0002"]
        replies = await asyncio.gather(*(
            _say(runtime, code, phone, attempt * 10 + i) for i, phone in enumerate(phones)))
        assert sorted(r.startswith("Hi Jo") for r in replies) == [False, True]
        assert t("welcome.used_code") in replies
        async with session_scope(engine) as session:
            linked = (await session.exec(select(func.count()).select_from(ChannelIdentity)
                                         .where(col(ChannelIdentity.address).in_(phones)))).one()
        assert linked == 1


async def test_wrong_codes_at_once_from_one_sender_stop_at_the_limit(engine: AsyncEngine) -> None:
    runtime = _runtime(engine)
    replies = await asyncio.gather(*(
        _say(runtime, WRONG, "+447700911111", 100 + i) for i in range(12)))
    counts = Counter(replies)
    assert counts[t("welcome.bad_code")] == MAX_FAILED_LINKS_PER_HOUR == 5
    assert counts[t("welcome.too_many_tries")] == 12 - MAX_FAILED_LINKS_PER_HOUR
    other = await _say(runtime, WRONG, "+447700922222", 200)  # another sender is not held up
    assert other == t("welcome.bad_code")
    later = await _say(runtime, WRONG, "+447700911111", 201, at=NOW + timedelta(minutes=61))
    assert later == t("welcome.bad_code")  # an hour on, they may try again
    async with session_scope(engine) as session:
        failed = (await session.exec(select(func.count()).select_from(AuditEvent)
                                     .where(AuditEvent.action == "link_failed"))).one()
        assert failed == MAX_FAILED_LINKS_PER_HOUR + 2
        assert await forget_locks(session, before=NOW + timedelta(hours=2)) == 2
        left = (await session.exec(select(RateBucket))).all()
        assert all("+44" not in row.key for row in left)


async def test_two_checkin_answers_at_once_are_both_recorded(
    engine: AsyncEngine, enrolled: Enrolled,
) -> None:
    runtime = _runtime(engine)
    phone = "+447700933333"
    await _say(runtime, enrolled.code, phone, 300)
    await _say(runtime, "YES", phone, 301)
    for round_ in range(3):
        base = 310 + round_ * 10
        at = NOW + timedelta(hours=round_)
        assert "mood" in await _say(runtime, "CHECKIN", phone, base, at=at)
        await asyncio.gather(_say(runtime, "6", phone, base + 1, at=at),
                             _say(runtime, "4", phone, base + 2, at=at))
        await _say(runtime, "skip", phone, base + 3, at=at)
    async with session_scope(engine) as session:
        rows = (await session.exec(select(CheckIn).where(
            CheckIn.participant_id == enrolled.participant_id))).all()
    assert len(rows) == 3
    assert all({r.mood, r.craving} == {6, 4} for r in rows)
