"""Meeting feeds a coordinator added: read one (preview or apply), and refresh them daily.

The staff page, `throughcare meetings import` and the worker share these functions: the
bytes of a feed (an upload or a download) are read as Meeting Guide JSON or CSV
(`read_feed`), then imported with `meeting_finder.feeds.importer.import_rows`. The daily
job (`refresh_all`) fetches every feed with an address that has not run lately, imports it,
and notes the counts or the error on the feed; several workers may sweep at once, since each
feed is claimed first (`storage.feeds_q.claim_feed`).

Changed and cancelled meetings are told to the people with reminders for them by the
planner's next pass (scheduler.reminders), not here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from meeting_finder.errors import FeedError
from meeting_finder.feeds.csv_feed import CSV_PHONE_REGION, read_csv_rows
from meeting_finder.feeds.importer import (
    FETCH_TIMEOUT,
    ImportSummary,
    fetch_bytes,
    fetch_source,
    import_rows,
)
from storage.db import session_scope
from storage.feeds_q import claim_feed, record_run, url_feeds
from storage.models import FeedSource

logger = logging.getLogger(__name__)

AUTO, MEETING_GUIDE, CSV = "auto", "meeting-guide", "csv"
FORMATS = (AUTO, MEETING_GUIDE, CSV)
FRESH_FOR = timedelta(hours=6)  # a feed run this recently (by hand, say) waits a day


@dataclass(frozen=True)
class FeedRows:
    """A feed's rows, ready for `import_rows`."""

    rows: list[Any]
    format: str  # MEETING_GUIDE or CSV, as read
    phone_region: str | None  # how to read phone numbers with no country code


def detect_format(data: bytes) -> str:
    """Say whether bytes look like JSON (Meeting Guide) or else a CSV sheet."""
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return MEETING_GUIDE if head[:1] in (b"[", b"{") else CSV


async def read_feed(data: bytes, format: str = AUTO, *, region: str | None = None) -> FeedRows:
    """Read a feed's bytes; rows naming no region get `region`; FeedError if unreadable."""
    kind = detect_format(data) if format == AUTO else format
    if kind == CSV and data.lstrip()[:1] == b"<":
        raise FeedError("this is a web page (HTML), not a feed")
    if kind == CSV:
        rows: list[Any] = await read_csv_rows(data)
        phone_region: str | None = CSV_PHONE_REGION
    elif kind == MEETING_GUIDE:
        rows, phone_region = await fetch_source(data), None
    else:
        raise FeedError(f"unknown feed format {format!r}")
    if region:
        rows = [{**row, "region": region} if isinstance(row, dict) and not row.get("region")
                else row for row in rows]
    return FeedRows(rows=rows, format=kind, phone_region=phone_region)


async def import_feed(
    session: AsyncSession,
    data: bytes,
    *,
    source_name: str,
    format: str,
    timezone: str,
    region: str | None,
    now: datetime,
    preview: bool,
) -> ImportSummary:
    """Import (or preview) a feed's bytes as one source; commits unless previewing."""
    feed = await read_feed(data, format, region=region)
    return await import_rows(session, feed.rows, now=now, source_name=source_name,
                             default_tz=timezone, phone_region=feed.phone_region,
                             preview=preview)


def new_client() -> httpx.AsyncClient:
    """Return the HTTP client feeds are fetched with."""
    return httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=True)


async def refresh_feed(
    engine: AsyncEngine, feed: FeedSource, *, now: datetime, client: httpx.AsyncClient
) -> ImportSummary | None:
    """Fetch and import one feed with an address; note the counts or the error on it."""
    assert feed.id is not None and feed.url is not None
    try:
        data = await fetch_bytes(feed.url, client=client)
        async with session_scope(engine) as session:
            rows = await read_feed(data, feed.format, region=feed.region)
            if not rows.rows:
                # An empty answer is more often a broken server than a group that closed
                # every meeting at once: keep the meetings and say so.
                raise FeedError("the feed had no meetings in it, so nothing was changed")
            summary = await import_rows(session, rows.rows, now=now, source_name=feed.name,
                                        default_tz=feed.timezone,
                                        phone_region=rows.phone_region)
            await record_run(session, feed.id, now=now, result=summary.counts())
        return summary
    except FeedError as exc:
        error = str(exc)
    except SQLAlchemyError:
        logger.exception("feed %s could not be saved", feed.id)
        error = "the import could not be saved; it will be tried again tomorrow"
    logger.warning("feed %s not refreshed: %s", feed.id, error)
    async with session_scope(engine) as session:
        await record_run(session, feed.id, now=now, error=error)
    return None


async def refresh_all(
    engine: AsyncEngine, *, now: datetime, client: httpx.AsyncClient | None = None
) -> dict[str, int]:
    """Refresh every feed with an address that has not run within FRESH_FOR; count them."""
    async with session_scope(engine) as session:
        feeds = await url_feeds(session)
    counts = {"refreshed": 0, "failed": 0, "not_due": 0}
    http = client or new_client()
    try:
        for feed in feeds:
            async with session_scope(engine) as session:
                claimed = await claim_feed(session, feed.id or 0, now=now, fresh_for=FRESH_FOR)
            if not claimed:
                counts["not_due"] += 1
                continue
            done = await refresh_feed(engine, feed, now=now, client=http)
            counts["refreshed" if done is not None else "failed"] += 1
    finally:
        if client is None:
            await http.aclose()
    logger.info("feeds: %(refreshed)d refreshed, %(failed)d failed, %(not_due)d not due",
                counts)
    return counts
