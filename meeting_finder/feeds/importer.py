"""Import a meeting feed into the database: add, update by slug, cancel what vanished.

Counting: every row in the file is counted exactly once, so
`added + updated + unchanged + len(skipped) == total_rows`. A row whose `day` is an array
becomes several meetings but still counts once: as added if any of its meetings is new,
else as updated if any changed, else as unchanged. `cancelled` counts meetings (not rows)
of the same source that are no longer in the feed.

Rows without a `timezone` take the import's zone, or keep none (unknown): a zone is never
guessed. A preview runs the whole import and then rolls it back. Besides the counts, the
summary lists each meeting added, updated (with what changed, old and new) or cancelled
(`meeting_finder.feeds.diff`), so a person can read what an import would do before it does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlmodel.ext.asyncio.session import AsyncSession

from meeting_finder.errors import FeedError
from meeting_finder.feeds.diff import Change, MeetingLine, change, diff_lines, meeting_line
from meeting_finder.feeds.meeting_guide import COMPARED, RowError, parse_row
from meeting_finder.spatial import invalidate_index
from storage.meetings_q import meetings_of_source, slug_sources
from storage.models.meetings import Meeting, MeetingStatus

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (rows done, rows in total)
FETCH_TIMEOUT = 30.0
MAX_FEED_BYTES = 8 * 1024 * 1024  # a download larger than this is refused, not read


@dataclass
class ImportSummary:
    """What an import did; the first four counts add up to the rows in the file."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (row id or name, reason)
    cancelled: int = 0  # meetings of this source no longer in the feed
    total_rows: int = 0
    added_meetings: list[MeetingLine] = field(default_factory=list)  # one per meeting
    updated_meetings: list[MeetingLine] = field(default_factory=list)  # with what changed
    cancelled_meetings: list[MeetingLine] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Return the counts alone (what a feed source keeps as its last result)."""
        return {"total_rows": self.total_rows, "added": self.added, "updated": self.updated,
                "unchanged": self.unchanged, "skipped": len(self.skipped),
                "cancelled": self.cancelled}

    def diff_lines(self) -> list[str]:
        """Return each meeting added, updated, cancelled or skipped, as plain text lines."""
        return diff_lines(added=self.added_meetings, updated=self.updated_meetings,
                          cancelled=self.cancelled_meetings, skipped=self.skipped)


def _row_label(row: Any, number: int) -> str:
    if isinstance(row, dict):
        for key in ("slug", "name", "id"):
            value = row.get(key)
            if value not in (None, "") and not isinstance(value, (dict, list)):
                return str(value)[:80]
    return f"row {number}"


def _source_key(source_name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", source_name.lower()).strip("-")[-40:] or "feed"


async def fetch_source(
    source: str | bytes | list[Any], *, client: httpx.AsyncClient | None = None
) -> list[Any]:
    """Read feed rows from a URL, a file path, raw bytes or an already-parsed list."""
    if isinstance(source, list):
        return source
    if isinstance(source, bytes):
        data = source
    elif source.startswith(("http://", "https://")):
        data = await _download(source, client)
    else:
        data = await read_path(source)
    try:
        parsed = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FeedError(f"not valid JSON: {exc}") from None
    if isinstance(parsed, dict) and isinstance(parsed.get("meetings"), list):
        parsed = parsed["meetings"]
    if not isinstance(parsed, list):
        raise FeedError("a Meeting Guide feed is a JSON array of meetings")
    return parsed


async def read_path(path: str) -> bytes:
    """Read a feed file without blocking the event loop; FeedError if it cannot be read."""
    try:
        return await asyncio.to_thread(Path(path).read_bytes)
    except OSError as exc:
        raise FeedError(f"cannot read {path}: {exc.strerror or exc}") from None


async def _download(url: str, client: httpx.AsyncClient | None) -> bytes:
    return await fetch_bytes(url, client=client)


async def fetch_bytes(
    url: str, *, client: httpx.AsyncClient | None = None, max_bytes: int = MAX_FEED_BYTES
) -> bytes:
    """Download a feed; FeedError (worded for people) if unreachable, not 200, or too big."""
    own = client is None
    http = client or httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=True)
    try:
        async with http.stream("GET", url, headers={"Accept": "application/json"}) as response:
            if response.status_code != 200:
                raise FeedError(f"cannot fetch {url}: the server answered HTTP "
                                f"{response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > max_bytes:
                    raise FeedError(f"cannot fetch {url}: the feed is larger than "
                                    f"{max_bytes // (1024 * 1024)} MB")
            return bytes(body)
    except httpx.TimeoutException:
        raise FeedError(f"cannot fetch {url}: no answer within {FETCH_TIMEOUT:g} seconds"
                        ) from None
    except httpx.ConnectError:
        raise FeedError(f"cannot fetch {url}: could not connect to the server") from None
    except httpx.HTTPError as exc:
        raise FeedError(f"cannot fetch {url}: {type(exc).__name__}") from None
    finally:
        if own:
            await http.aclose()


def _apply(meeting: Meeting, fields: dict[str, Any], now: datetime) -> tuple[Change, ...]:
    """Copy changed fields onto a meeting; return what changed (old and new)."""
    changes: list[Change] = []
    for key in COMPARED:
        current = getattr(meeting, key)
        current = getattr(current, "value", current)
        if current != fields[key]:
            changes.append(change(key, current, fields[key]))
            setattr(meeting, key, fields[key])
            if key == "status":
                meeting.status_changed_at = now
    return tuple(changes)


def _fields_of(meeting: Meeting) -> dict[str, Any]:
    return {key: getattr(meeting, key) for key in ("name", "weekday", "start_time", "timezone")}


def _parse_all(
    rows: list[Any], *, default_tz: str | None, phone_region: str | None
) -> list[tuple[str, list[dict[str, Any]] | None, str]]:
    """Parse every row into (label, one field set per day or None, reason it was skipped)."""
    parsed: list[tuple[str, list[dict[str, Any]] | None, str]] = []
    for number, row in enumerate(rows, start=1):
        label = _row_label(row, number)
        try:
            per_day = parse_row(row, default_tz=default_tz, phone_region=phone_region)
            parsed.append((label, per_day, ""))
        except RowError as exc:
            parsed.append((label, None, str(exc)))
    return parsed


async def import_rows(
    session: AsyncSession,
    rows: list[Any],
    *,
    now: datetime,
    source_name: str,
    default_tz: str | None = None,
    phone_region: str | None = None,
    progress: Progress | None = None,
    preview: bool = False,
) -> ImportSummary:
    """Import parsed Meeting Guide rows from one source and commit (or, to preview, not)."""
    summary = ImportSummary(total_rows=len(rows))
    mine = await meetings_of_source(session, source_name)
    parsed = _parse_all(rows, default_tz=default_tz, phone_region=phone_region)
    wanted = [f["slug"] for _, fields, _ in parsed for f in fields or []]
    taken = await slug_sources(session, [s for s in wanted if s not in mine])
    ns = _source_key(source_name)
    seen: set[str] = set()
    for done, (label, meetings, reason) in enumerate(parsed, start=1):
        if meetings is None:
            summary.skipped.append((label, reason))
        elif any(f["slug"] in seen for f in meetings):
            summary.skipped.append((label, "duplicate slug in this feed"))
        else:
            outcome = "unchanged"
            for fields in meetings:
                seen.add(fields["slug"])
                result = _upsert(session, mine, taken, ns, fields, now, source_name, summary)
                if result == "added" or (result == "updated" and outcome == "unchanged"):
                    outcome = result
            setattr(summary, outcome, getattr(summary, outcome) + 1)
        if progress is not None:
            progress(done, len(rows))
    for slug, meeting in mine.items():
        if slug in seen or _base_seen(slug, ns, seen):
            continue
        if str(getattr(meeting.status, "value", meeting.status)) != MeetingStatus.CANCELLED:
            meeting.status = MeetingStatus.CANCELLED
            meeting.updated = meeting.status_changed_at = now
            summary.cancelled += 1
            summary.cancelled_meetings.append(meeting_line(slug, _fields_of(meeting)))
    if preview:
        await session.rollback()
    else:
        await session.commit()
        invalidate_index(session)
    logger.info(
        "%s %s: %d added, %d updated, %d unchanged, %d skipped, %d cancelled",
        "previewed" if preview else "imported", source_name, summary.added, summary.updated,
        summary.unchanged, len(summary.skipped), summary.cancelled,
    )
    return summary


def _base_seen(slug: str, ns: str, seen: set[str]) -> bool:
    suffix = f"--{ns}"
    return slug.endswith(suffix) and slug[: -len(suffix)] in seen


def _upsert(
    session: AsyncSession,
    mine: dict[str, Meeting],
    taken: dict[str, str | None],
    ns: str,
    fields: dict[str, Any],
    now: datetime,
    source_name: str,
    summary: ImportSummary,
) -> str:
    """Add or update one meeting, noting it in the summary; return what happened to it."""
    slug = fields["slug"]
    # A slug another feed already uses gets this source's name appended, so both can coexist.
    stored = slug if slug in mine or slug not in taken else f"{slug}--{ns}"[:200]
    meeting = mine.get(stored)
    if meeting is not None:
        changes = _apply(meeting, fields, now)
        if changes:
            meeting.updated = now
            summary.updated_meetings.append(meeting_line(stored, fields, changes))
            return "updated"
        return "unchanged"
    meeting = Meeting(**{**fields, "slug": stored}, source=source_name, demo=False, updated=now)
    session.add(meeting)
    mine[stored] = meeting
    summary.added_meetings.append(meeting_line(stored, fields))
    return "added"


async def import_meeting_guide(
    session: AsyncSession,
    source: str | bytes | list[Any],
    *,
    now: datetime,
    source_name: str,
    default_tz: str | None = None,
    progress: Progress | None = None,
    client: httpx.AsyncClient | None = None,
) -> ImportSummary:
    """Import a Meeting Guide feed (URL, path, bytes or list); zoneless rows take `default_tz`."""
    rows = await fetch_source(source, client=client)
    return await import_rows(
        session, rows, now=now, source_name=source_name, default_tz=default_tz, progress=progress
    )
