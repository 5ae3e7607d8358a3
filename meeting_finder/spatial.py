"""An in-memory index of offerable meetings: sorted latitudes plus numpy ellipsoidal distances.

The index is rebuilt when a version check on the meeting table (row count, max id, max
updated) changes. From BIG_TABLE meetings that check (a table scan) runs at most every
BIG_TABLE_CHECK_SECONDS, so other processes' edits show up within that time; writers in
this process call `invalidate_index()`.
Search results are always re-read from the database and re-checked, so a stale index can
only miss a brand-new meeting for a moment, never offer a stopped one.
"""

from __future__ import annotations

import logging
import time as clock
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
from sqlmodel.ext.asyncio.session import AsyncSession

from meeting_finder.feeds.types import SMART_FAMILY
from meeting_finder.offerable import (
    IN_PERSON,
    ONLINE,
    is_join_link,
    is_real_address,
)
from meeting_finder.recurrence import meeting_zone
from storage.meetings_q import meeting_table_version, open_active_index_rows
from storage.models.meetings import Meeting

logger = logging.getLogger(__name__)

WGS84_A = 6378137.0
WGS84_F = 1 / 298.257223563
METRES_PER_MILE = 1609.344
MILES_PER_DEGREE_LAT = 69.05
WEEK_MINUTES = 7 * 24 * 60
NO_TIME = -1
BIG_TABLE = 20_000  # from this many meetings the version check (a table scan) is throttled
BIG_TABLE_CHECK_SECONDS = 2.0


@dataclass
class PointSet:
    """Meetings as parallel arrays (in-person ones sorted by latitude)."""

    ids: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    weekday: np.ndarray
    start_min: np.ndarray  # minutes after local midnight, NO_TIME if unknown
    zone: np.ndarray  # index into MeetingIndex.zones

    @classmethod
    def build(cls, rows: list[tuple[int, float, float, int, int, int]], by_lat: bool) -> PointSet:
        """Build arrays from (id, lat, lon, weekday, start_min, zone) rows."""
        arr = np.array(rows, dtype=np.float64).reshape(-1, 6)
        if by_lat:
            arr = arr[np.argsort(arr[:, 1], kind="stable")]
        return cls(
            ids=arr[:, 0].astype(np.int64),
            lat=arr[:, 1],
            lon=arr[:, 2],
            weekday=arr[:, 3].astype(np.int8),
            start_min=arr[:, 4].astype(np.int32),
            zone=arr[:, 5].astype(np.int32),
        )


@dataclass
class MeetingIndex:
    """Offerable in-person and online meetings of one database."""

    version: tuple[Any, ...]
    in_person: PointSet
    online: PointSet
    zones: list[str]
    checked_at: float = 0.0
    check_cost: float = 0.0
    stale: bool = False

    def box(self, lat: float, lon: float, miles: float) -> np.ndarray:
        """Return positions of in-person meetings inside a box around (lat, lon)."""
        pts = self.in_person
        dlat = miles / MILES_PER_DEGREE_LAT
        lo, hi = np.searchsorted(pts.lat, [lat - dlat, lat + dlat], side="left")
        idx = np.arange(lo, hi)
        widest = min(89.9, max(abs(lat - dlat), abs(lat + dlat)))
        dlon = miles / (MILES_PER_DEGREE_LAT * float(np.cos(np.radians(widest))))
        if dlon < 180 and idx.size:
            diff = np.abs((pts.lon[idx] - lon + 180.0) % 360.0 - 180.0)
            idx = idx[diff <= dlon]
        return idx

    def miles(self, lat: float, lon: float, idx: np.ndarray) -> np.ndarray:
        """Return miles on the WGS84 ellipsoid (Lambert's formula: within metres of geodesic)."""
        pts = self.in_person
        b1 = np.arctan((1 - WGS84_F) * np.tan(np.radians(lat)))
        b2 = np.arctan((1 - WGS84_F) * np.tan(np.radians(pts.lat[idx])))
        dlam = np.radians(pts.lon[idx] - lon)
        h = np.sin((b2 - b1) / 2) ** 2 + np.cos(b1) * np.cos(b2) * np.sin(dlam / 2) ** 2
        sigma = 2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
        p, q = (b1 + b2) / 2, (b2 - b1) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            x = (sigma - np.sin(sigma)) * np.sin(p) ** 2 * np.cos(q) ** 2 / np.cos(sigma / 2) ** 2
            y = (sigma + np.sin(sigma)) * np.cos(p) ** 2 * np.sin(q) ** 2 / np.sin(sigma / 2) ** 2
            metres = WGS84_A * (sigma - WGS84_F / 2 * (x + y))
        metres = np.where(sigma > 1e-12, metres, 0.0)
        return np.nan_to_num(metres, nan=WGS84_A * sigma) / METRES_PER_MILE

    def week_minutes_now(self, now: datetime) -> np.ndarray:
        """Return, per zone, minutes since local Monday 00:00 at `now`."""
        out = np.zeros(len(self.zones), dtype=np.int64)
        for i, name in enumerate(self.zones):
            local = now.astimezone(_zone(name))
            out[i] = local.weekday() * 1440 + local.hour * 60 + local.minute
        return out


@lru_cache(maxsize=512)
def _zone(name: str) -> Any:
    # Remembered: a Meeting is costly to build, and the zones are few.
    return meeting_zone(Meeting(slug="", name="", weekday=0, timezone=name))


_indexes: weakref.WeakKeyDictionary[Any, MeetingIndex] = weakref.WeakKeyDictionary()


def invalidate_index(session: AsyncSession | None = None) -> None:
    """Drop the cached index (of this session's database, or of every database)."""
    if session is None:
        for index in list(_indexes.values()):
            index.stale = True
        return
    found = _indexes.get(_bind_key(session))
    if found is not None:
        found.stale = True


def _bind_key(session: AsyncSession) -> Any:
    return session.sync_session.get_bind()


async def get_index(session: AsyncSession) -> MeetingIndex:
    """Return an up-to-date index of this session's database, rebuilding it if needed."""
    key = _bind_key(session)
    index = _indexes.get(key)
    started = clock.perf_counter()
    if index is not None and not index.stale:
        big = int(index.version[0] or 0) >= BIG_TABLE
        if big and started - index.checked_at < BIG_TABLE_CHECK_SECONDS:
            return index
    version = await meeting_table_version(session)
    cost = clock.perf_counter() - started
    if index is None or index.stale or index.version != version:
        index = await _build(session, version)
        _indexes[key] = index
    index.checked_at = clock.perf_counter()
    index.check_cost = cost
    return index


async def _build(session: AsyncSession, version: tuple[Any, ...]) -> MeetingIndex:
    started = clock.perf_counter()
    result = await open_active_index_rows(session)
    zones: dict[str, int] = {}
    near: list[tuple[int, float, float, int, int, int]] = []
    remote: list[tuple[int, float, float, int, int, int]] = []
    for mid, lat, lon, weekday, start, tz, attendance, address, url, phone, types in result:
        if SMART_FAMILY in types:
            continue  # never offered to participants: reading them back was wasted
        start_min = start.hour * 60 + start.minute if start is not None else NO_TIME
        zone = zones.setdefault(tz or "Europe/London", len(zones))
        attendance = str(attendance)
        if attendance in IN_PERSON and lat is not None and lon is not None:
            if is_real_address(address):
                near.append((mid, lat, lon, weekday, start_min, zone))
        if attendance in ONLINE and (is_join_link(url) or (phone or "").strip()):
            remote.append((mid, lat or 0.0, lon or 0.0, weekday, start_min, zone))
    index = MeetingIndex(
        version=version,
        in_person=PointSet.build(near, by_lat=True),
        online=PointSet.build(remote, by_lat=False),
        zones=list(zones),
    )
    logger.info(
        "built meeting index: %d in person, %d online in %.0f ms",
        len(near), len(remote), (clock.perf_counter() - started) * 1000,
    )
    return index


@dataclass
class DayFilter:
    """Which local weekdays (and, for today, which start times) a search accepts."""

    weekdays: set[int] | None = None  # None: any day
    after_minute: dict[int, int] = field(default_factory=dict)  # weekday -> must start after

    def mask(self, pts: PointSet, idx: np.ndarray) -> np.ndarray:
        """Return a boolean mask over `idx` of meetings this filter accepts."""
        if self.weekdays is None:
            return np.ones(idx.size, dtype=bool)
        days = pts.weekday[idx]
        keep = np.isin(days, list(self.weekdays))
        for day, minute in self.after_minute.items():
            starts = pts.start_min[idx]
            keep &= ~((days == day) & (starts != NO_TIME) & (starts <= minute))
        return keep
