"""Storage keeps time aware and UTC, and constraints hold on both databases."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import async_url, make_engine
from storage.errors import DatabaseURLError
from storage.models import ChannelIdentity, OutboundMessage, Participant


async def test_datetimes_come_back_aware_utc(session: AsyncSession) -> None:
    bst = timezone(timedelta(hours=1))
    p = Participant(display_name="Sam", release_date=date(2026, 12, 1))
    p.consent_at = datetime(2026, 7, 1, 10, 0, tzinfo=bst)
    session.add(p)
    await session.commit()
    session.expunge_all()
    got = (await session.exec(select(Participant))).one()
    assert got.consent_at == datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    assert got.consent_at.tzinfo is not None
    assert got.reminder_offsets == [1440, 60]


async def test_naive_datetime_is_refused(session: AsyncSession) -> None:
    p = Participant(display_name="Sam", release_date=date(2026, 12, 1))
    p.consent_at = datetime(2026, 7, 1, 10, 0)  # noqa: DTZ001
    session.add(p)
    with pytest.raises(Exception, match="naive"):
        await session.commit()


async def test_identity_unique_per_channel_address(session: AsyncSession) -> None:
    p = Participant(display_name="Sam", release_date=date(2026, 12, 1))
    session.add(p)
    await session.flush()
    session.add(ChannelIdentity(participant_id=p.id, channel="sms", address="+447700900123"))
    session.add(ChannelIdentity(participant_id=p.id, channel="sms", address="+447700900123"))
    with pytest.raises(IntegrityError):
        await session.commit()


async def test_outbox_dedupe_key_unique(session: AsyncSession) -> None:
    for _ in range(2):
        session.add(OutboundMessage(channel="sms", address="+1", body="hi", dedupe_key="k1"))
    with pytest.raises(IntegrityError):
        await session.commit()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgres://u@h:5432/d", "postgresql+asyncpg://u@h:5432/d"),
        ("postgresql://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
    ],
)
def test_async_url_picks_driver(given: str, expected: str) -> None:
    assert async_url(given) == expected


@pytest.mark.parametrize("bad", ["mysql://x/y", "not a url", ""])
def test_async_url_refuses_unknown(bad: str) -> None:
    with pytest.raises(DatabaseURLError):
        async_url(bad)


async def test_a_sqlite_file_that_cannot_open_leaves_no_worker_thread(tmp_path: Path) -> None:
    """aiosqlite 0.22 let the thread of a failed open report to a loop that had closed
    ("Event loop is closed" in the thread, after an outage test or a failed start)."""
    engine = make_engine(f"sqlite:///{tmp_path}/not-mounted/throughcare.db")
    before = set(threading.enumerate())
    try:
        with pytest.raises(OperationalError):
            async with engine.connect():
                pass
        left = [t for t in threading.enumerate()
                if t not in before and "_connection_worker_thread" in t.name and t.is_alive()]
    finally:
        await engine.dispose()
    assert left == []
