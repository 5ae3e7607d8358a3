"""Meeting feed sources: add, list within a staff member's scope, and note each run's result.

A coordinator sees the feeds of their region (same name, any case); an admin sees them all;
a Champion none. `feed_for_staff` returning None is the page's 404.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import FeedSource, StaffRole, StaffUser

MAX_ERROR = 500  # FeedSource.last_error's column width


def _region_key(region: str | None) -> str:
    return (region or "").strip().lower()


def _may_see(staff: StaffUser, feed: FeedSource) -> bool:
    if staff.role == StaffRole.ADMIN:
        return True
    mine = _region_key(staff.region)
    return staff.role == StaffRole.COORDINATOR and bool(mine) and \
        _region_key(feed.region) == mine


async def feeds_for_staff(session: AsyncSession, staff: StaffUser) -> list[FeedSource]:
    """Return the feeds this staff member may see and refresh, by name."""
    if staff.role not in (StaffRole.ADMIN, StaffRole.COORDINATOR):
        return []
    rows = await session.exec(select(FeedSource).order_by(func.lower(FeedSource.name),
                                                          col(FeedSource.id)))
    return [feed for feed in rows if _may_see(staff, feed)]


async def feed_for_staff(
    session: AsyncSession, staff: StaffUser, feed_id: int
) -> FeedSource | None:
    """Return the feed if this staff member may see it, else None (the page's 404)."""
    feed = await session.get(FeedSource, feed_id)
    return feed if feed is not None and _may_see(staff, feed) else None


async def feed_named(session: AsyncSession, name: str) -> FeedSource | None:
    """Return the feed with this name (any case), if there is one."""
    rows = await session.exec(
        select(FeedSource).where(func.lower(FeedSource.name) == name.strip().lower()))
    return rows.first()


async def add_feed(
    session: AsyncSession,
    *,
    name: str,
    url: str | None,
    format: str,
    timezone: str,
    region: str | None,
    created_by: str,
    now: datetime,
) -> FeedSource:
    """Add a feed source (url None for an uploaded file) and flush it."""
    feed = FeedSource(name=name, url=url, format=format, timezone=timezone, region=region,
                      created_by=created_by, created_at=now)
    session.add(feed)
    await session.flush()
    return feed


async def url_feeds(session: AsyncSession) -> list[FeedSource]:
    """Return every feed with an address to fetch (the daily refresh's work), oldest first."""
    rows = await session.exec(
        select(FeedSource).where(col(FeedSource.url).is_not(None)).order_by(col(FeedSource.id)))
    return list(rows.all())


async def claim_feed(
    session: AsyncSession, feed_id: int, *, now: datetime, fresh_for: timedelta
) -> bool:
    """Mark a feed as run now unless it ran within `fresh_for`; say whether this caller won.

    One conditional UPDATE, so of several workers sweeping at once only one refreshes it.
    """
    stale = now - fresh_for
    result = await session.exec(
        update(FeedSource)
        .where(col(FeedSource.id) == feed_id)
        .where(or_(col(FeedSource.last_run_at).is_(None), col(FeedSource.last_run_at) <= stale))
        .values(last_run_at=now))
    await session.commit()
    return bool(result.rowcount)


async def record_run(
    session: AsyncSession,
    feed_id: int,
    *,
    now: datetime,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> FeedSource | None:
    """Note a run: its counts, or why it failed (keeping the last good counts); flush."""
    feed = await session.get(FeedSource, feed_id)
    if feed is None:
        return None
    feed.last_run_at = now
    feed.last_error = error[:MAX_ERROR] if error else None
    if result is not None:
        feed.last_result = result
    session.add(feed)
    await session.flush()
    return feed
