"""Queries for the meeting finder: meetings by id, slug and source, and the search index."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.dialect import run
from storage.models.meetings import Access, Meeting, MeetingStatus

IN_CLAUSE_CHUNK = 500  # keep IN (...) lists well under every driver's parameter limit

# (id, lat, lon, weekday, start_time, timezone, attendance, address, conference_url,
#  conference_phone, types) of one open, active meeting
IndexRow = tuple[int, float | None, float | None, int, time | None, str | None, str,
                 str | None, str | None, str | None, list[str]]


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[i : i + IN_CLAUSE_CHUNK] for i in range(0, len(values), IN_CLAUSE_CHUNK)]


async def meetings_by_id(session: AsyncSession, ids: Sequence[int]) -> dict[int, Meeting]:
    """Return the meetings with these ids, keyed by id (missing ones are left out)."""
    found: dict[int, Meeting] = {}
    for chunk in _chunks(ids):
        rows = await session.exec(select(Meeting).where(col(Meeting.id).in_(chunk)))
        found.update({m.id: m for m in rows if m.id is not None})
    return found


async def slug_sources(session: AsyncSession, slugs: Sequence[str]) -> dict[str, str | None]:
    """Return slug -> source for the meetings that already use any of `slugs`."""
    found: dict[str, str | None] = {}
    for chunk in _chunks(slugs):
        rows = await session.exec(
            select(Meeting.slug, Meeting.source).where(col(Meeting.slug).in_(chunk)))
        found.update(dict(rows.all()))
    return found


async def meetings_of_source(session: AsyncSession, source: str) -> dict[str, Meeting]:
    """Return every meeting imported from one source, keyed by slug."""
    rows = await session.exec(select(Meeting).where(Meeting.source == source))
    return {m.slug: m for m in rows}


async def meeting_table_version(session: AsyncSession) -> tuple[Any, ...]:
    """Return (row count, max id, max updated): it changes whenever a meeting does.

    Every search asks, so it is a Core statement built once: through the ORM it cost
    twice as much."""
    return tuple((await run(session, _VERSION)).one())


_TABLE: Any = Meeting.__table__  # type: ignore[attr-defined]
_VERSION = sa_select(func.count(_TABLE.c.id), func.max(_TABLE.c.id), func.max(_TABLE.c.updated))


async def open_active_index_rows(session: AsyncSession) -> list[IndexRow]:
    """Return the columns the search index needs, for every open, active meeting with a zone."""
    # Without a zone a meeting has no real start time, so it is never offered. (The ignore:
    # sqlmodel's select() overloads stop short of twelve columns.)
    stmt = select(  # type: ignore[call-overload, misc]
        Meeting.id, Meeting.lat, Meeting.lon, Meeting.weekday, Meeting.start_time,
        Meeting.timezone, Meeting.attendance, Meeting.address, Meeting.conference_url,
        Meeting.conference_phone, Meeting.approximate, Meeting.types,
    ).where(
        Meeting.status == MeetingStatus.ACTIVE.value,
        Meeting.access == Access.OPEN.value,
        col(Meeting.timezone).is_not(None),
    )
    rows = (await session.exec(stmt)).all()
    # An approximate address (a town) is not somewhere to go: the index sees no address.
    return [(*row[:7], None if row[10] else row[7], row[8], row[9], list(row[11] or ()))
            for row in rows]


async def slug_taken(session: AsyncSession, slug: str) -> bool:
    """Return whether a meeting already has this slug."""
    found = await session.exec(select(Meeting.id).where(col(Meeting.slug) == slug))
    return found.first() is not None
