"""Broadcasts from coordinators: to a meeting's subscribers, to people near a place, a region."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from meeting_finder.errors import PlaceNotFound
from meeting_finder.geocode import resolve_place
from storage.db import session_scope
from storage.models import Broadcast, MessageKind, Priority
from storage.outbox_q import enqueue_many
from storage.regions_q import get_region, ids_in_region, list_regions, miles_between
from storage.scheduling import (
    Recipient,
    broadcast_report,
    located_participants,
    meeting_by_slug,
    recipients,
    subscriber_ids,
)

__all__ = ["MAX_TEXT", "Audience", "AudienceError", "audience_of", "channel_counts",
           "clean_text", "delivery_report", "miles_between", "queue_broadcast",
           "send_broadcast"]
BROADCAST_LIFETIME = timedelta(days=2)  # older news is no news
MAX_TEXT = 640  # characters: a few SMS at most; longer news belongs in a call
MAX_MILES = 200
_ALLOWED_CONTROLS = frozenset("\n")


class AudienceError(ValueError):
    """The audience or text cannot be used (unknown meeting, place, empty choice or text).

    `field` names what to fix: meeting, near, miles, region, text, or None for the choice.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Audience:
    """Who a broadcast goes to: exactly one of meeting, near (with miles) or region."""

    meeting_slug: str | None = None
    near: str | None = None  # a meeting slug, postcode or town
    miles: float = 5.0
    region: str | None = None

    def describe(self) -> dict[str, Any]:
        """Return the audience as plain data for the Broadcast row."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


async def _region_ids(session: AsyncSession, name: str) -> list[int]:
    region = await get_region(session, name)
    if region is None:
        known = ", ".join(r.name for r in await list_regions(session)) or "none yet"
        raise AudienceError(f"no region called {name.strip()!r}; known regions: {known} "
                            "(add one with `throughcare regions add`)", field="region")
    return await ids_in_region(session, region, active_only=True)


async def _centre(session: AsyncSession, near: str) -> tuple[float, float]:
    meeting = await meeting_by_slug(session, near.strip())
    if meeting is not None and meeting.lat is not None and meeting.lon is not None:
        return meeting.lat, meeting.lon
    try:
        place = resolve_place(near)
    except PlaceNotFound as exc:
        raise AudienceError(f"cannot find a meeting or place called {near.strip()!r}",
                            field="near") from exc
    return place.lat, place.lon


async def audience_of(session: AsyncSession, audience: Audience) -> list[Recipient]:
    """Return the reachable participants in an audience, by id."""
    chosen = [audience.meeting_slug, audience.near, audience.region]
    if sum(x is not None for x in chosen) != 1:
        raise AudienceError("choose exactly one of meeting, near or region")
    if audience.meeting_slug is not None:
        meeting = await meeting_by_slug(session, audience.meeting_slug.strip())
        if meeting is None or meeting.id is None:
            raise AudienceError(f"no meeting with slug {audience.meeting_slug!r}",
                                field="meeting")
        ids = await subscriber_ids(session, meeting.id)
    elif audience.near is not None:
        if not 0 < audience.miles <= MAX_MILES:
            raise AudienceError(f"miles must be more than 0 and at most {MAX_MILES}",
                                field="miles")
        if not audience.near.strip():
            raise AudienceError("say which meeting or place", field="near")
        lat, lon = await _centre(session, audience.near)
        ids = [i for i, la, lo in await located_participants(session)
               if miles_between(lat, lon, la, lo) <= audience.miles]
    else:
        ids = await _region_ids(session, audience.region or "")
    found = await recipients(session, ids) if ids else {}
    return [found[i] for i in sorted(found)]


def clean_text(text: str) -> str:
    """Return a broadcast text as it will be queued, or raise AudienceError(field="text")."""
    text = "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n"))
    text = text.strip()
    if not text:
        raise AudienceError("the broadcast text is empty", field="text")
    if len(text) > MAX_TEXT:
        raise AudienceError(f"the broadcast text must be {MAX_TEXT} characters or fewer "
                            f"(it has {len(text)})", field="text")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn")
           and ch not in _ALLOWED_CONTROLS and ch != "\u200d" for ch in text):
        raise AudienceError("the broadcast text has a hidden or control character: "
                            "type it again without pasting", field="text")
    return text


def channel_counts(people: list[Recipient]) -> dict[str, int]:
    """Return how many people each channel reaches, busiest channel first."""
    counts: dict[str, int] = {}
    for person in people:
        counts[person.channel] = counts.get(person.channel, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


async def queue_broadcast(
    session: AsyncSession,
    *,
    audience: Audience,
    text: str,
    created_by: str,
    now: datetime,
    staff_id: int | None = None,
    region: str | None = None,
) -> dict[str, Any]:
    """Write the Broadcast row and queue one message per person in the audience, now."""
    text = clean_text(text)
    people = await audience_of(session, audience)
    row = Broadcast(created_by=created_by[:100], audience=audience.describe(), text=text,
                    audience_count=len(people), created_at=now, staff_id=staff_id,
                    region=region.strip()[:100] if region and region.strip() else None)
    session.add(row)
    await session.flush()
    queued = await enqueue_many(session, [
        {"channel": r.channel, "address": r.address, "body": text,
         "dedupe_key": f"bc:{row.id}:{r.participant.id}", "participant_id": r.participant.id,
         "kind": str(MessageKind.BROADCAST), "priority": Priority.BULK, "due_at": now,
         "not_after": now + BROADCAST_LIFETIME, "broadcast_id": row.id}
        for r in people], now=now)
    return {"dry_run": False, "broadcast_id": row.id, "audience_count": len(people),
            "queued": queued, "channels": channel_counts(people)}


async def send_broadcast(
    engine: AsyncEngine,
    *,
    audience: Audience,
    text: str,
    created_by: str,
    now: datetime,
    dry_run: bool = False,
    staff_id: int | None = None,
    region: str | None = None,
) -> dict[str, Any]:
    """Queue one message per person in the audience (or just count them with dry_run)."""
    async with session_scope(engine) as session:
        if dry_run:
            clean_text(text)
            people = await audience_of(session, audience)
            return {"dry_run": True, "audience_count": len(people),
                    "channels": channel_counts(people)}
        return await queue_broadcast(session, audience=audience, text=text,
                                     created_by=created_by, now=now, staff_id=staff_id,
                                     region=region)


async def delivery_report(engine: AsyncEngine, broadcast_id: int) -> dict[str, Any]:
    """Return queued, sent, delivered and failed counts (failures by reason) for a broadcast."""
    async with session_scope(engine) as session:
        report = await broadcast_report(session, broadcast_id)
        row = await session.get(Broadcast, broadcast_id)
    by = report["by_status"]
    report["audience_count"] = row.audience_count if row else 0
    for status in ("queued", "sending", "sent", "delivered", "failed", "expired", "cancelled"):
        by.setdefault(status, 0)
    return report
