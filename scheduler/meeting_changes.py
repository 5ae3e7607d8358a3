"""Changes a coordinator makes to a meeting, each told to the people it affects once.

Every change is one transaction: the meeting row changes, the queued reminders it spoils are
cancelled, and one text per reachable subscriber is written to the outbox (dedupe keys make
a second click, or the worker's planning pass seeing the same change, say nothing more).
Then the meeting's reminders are planned again at once. The result says how many people
were told, for the page to show.

- cancel_date: one local date off ("not this Tuesday"); subscribers told once.
- restore_date: that date back on; nobody told (their reminders come back).
- suspend / cancel_for_good: subscribers told once, with the nearest open alternative.
- resume: back to running; subscribers told it is on again.
- update_meeting: any edit; a move (day, time or place) tells subscribers the new when/where.
- create_meeting: a hand-made meeting (source "console").
- confirm_running: a coordinator checked it runs; earlier "it didn't run" reports answered.

`by` says who made a change for the caller's audit record; it is never logged here.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.meeting_text import when
from handlers.readers import writing_to
from handlers.texts import t
from meeting_finder.recurrence import known_zone, meeting_zone, next_occurrence, occurrence_on
from meeting_finder.search import MeetingHit, find_nearest, invalidate_index
from scheduler import reminders
from scheduler.planning import replan_meeting
from scheduler.quiet import zone_of
from storage.db import session_factory
from storage.meetings_q import slug_taken
from storage.models import Meeting, MeetingStatus, MessageKind, OutboundMessage, Priority
from storage.outbox import enqueue
from storage.scheduling import Recipient, cancel_queued, queued, recipients, subscriber_ids

logger = logging.getLogger(__name__)
NOTICE_LIFETIME = timedelta(days=2)  # news of a change older than this is no news
FAR_AHEAD = timedelta(days=366)  # one date may be cancelled up to a year ahead
WHEN_FIELDS = ("weekday", "start_time", "timezone")
WHERE_FIELDS = ("venue", "address", "postcode", "lat", "lon", "attendance", "approximate",
                "conference_url", "conference_phone")
FIXED_FIELDS = ("id", "slug", "status", "status_changed_at", "cancelled_dates", "updated",
                "confirmed_running_at", "demo")


class MeetingChangeError(ValueError):
    """The change cannot be made (unknown meeting, a date not on its day or in the past)."""


@dataclass(frozen=True)
class ChangeResult:
    """What a change did: people told (one text each) and reminders cancelled."""

    meeting_id: int
    told: int = 0
    reminders_cancelled: int = 0


@dataclass
class _Plan:
    """One change worked out from reads: the rows it spoils and what each person is told."""

    spoiled: list[OutboundMessage]
    notices: list[dict[str, Any]]


async def _load(session: AsyncSession, meeting_id: int) -> Meeting:
    meeting = await session.get(Meeting, meeting_id)
    if meeting is None:
        raise MeetingChangeError("no such meeting")
    return meeting


async def _reminders_of(session: AsyncSession, meeting_id: int) -> list[OutboundMessage]:
    rows = await queued(session, kinds=(MessageKind.REMINDER,), key_prefix="rem:")
    return [r for r in rows if r.meeting_id == meeting_id]


async def _subscribers(session: AsyncSession, meeting_id: int) -> list[Recipient]:
    found = await recipients(session, await subscriber_ids(session, meeting_id))
    return [found[i] for i in sorted(found)]


async def _commit(engine: AsyncEngine, session: AsyncSession, meeting: Meeting, plan: _Plan,
                  *, now: datetime, reason: str) -> ChangeResult:
    """Write the changed meeting, cancel what it spoils and tell people: one transaction."""
    meeting.updated = now
    session.add(meeting)
    cancelled = await cancel_queued(session, plan.spoiled, reason=reason, now=now)
    told = 0
    for notice in plan.notices:
        told += int(await enqueue(session, **notice, now=now))
    await session.commit()
    invalidate_index(session)
    mid = meeting.id or 0
    await replan_meeting(engine, meeting_id=mid, now=now)
    return ChangeResult(meeting_id=mid, told=told, reminders_cancelled=cancelled)


def _notice(rec: Recipient, meeting: Meeting, body: str, key: str, *, now: datetime,
            not_after: datetime | None = None) -> dict[str, Any]:
    """Return one person's notice; `key` is its dedupe key (a second click adds nothing)."""
    return {"channel": rec.channel, "address": rec.address, "body": body, "dedupe_key": key,
            "participant_id": rec.participant.id, "kind": MessageKind.REMINDER,
            "priority": Priority.SCHEDULED, "not_after": not_after or now + NOTICE_LIFETIME,
            "meeting_id": meeting.id, "meta": {"change": key.split(":")[0]}}


def _weekday(n: int) -> str:
    return ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")[n]


def _check_date(meeting: Meeting, day: date, now: datetime) -> datetime:
    """Return the start on `day`; raise MeetingChangeError if it is not one of its dates."""
    if meeting.start_time is None or known_zone(meeting) is None:
        raise MeetingChangeError("this meeting has no set day, time and time zone")
    if day.weekday() != meeting.weekday:
        raise MeetingChangeError(f"{day:%-d %B %Y} is a {_weekday(day.weekday())}; this "
                                 f"meeting is on {_weekday(meeting.weekday)}s")
    start = occurrence_on(meeting, day).astimezone(UTC)
    if start <= now:
        raise MeetingChangeError("that date has already started or passed")
    if start - now > FAR_AHEAD:
        raise MeetingChangeError("choose a date within the next year")
    return start


def _current_dates(meeting: Meeting, now: datetime) -> list[str]:
    """Return the cancelled dates not yet past (older ones are forgotten)."""
    today = now.astimezone(meeting_zone(meeting)).date().isoformat()
    return sorted(d for d in meeting.cancelled_dates or [] if d >= today)


async def cancel_date(engine: AsyncEngine, *, meeting_id: int, day: date, by: str,
                      now: datetime) -> ChangeResult:
    """Cancel one local date of a weekly meeting; tell its subscribers once."""
    async with session_factory(engine)() as session:
        meeting = await _load(session, meeting_id)
        start = _check_date(meeting, day, now)
        dates = _current_dates(meeting, now)
        if day.isoformat() in dates:
            return ChangeResult(meeting_id=meeting_id)  # cancelled already: nothing new
        meeting.cancelled_dates = sorted([*dates, day.isoformat()])
        spoiled = [r for r in await _reminders_of(session, meeting_id)
                   if (r.meta or {}).get("occurrence") == start.isoformat()]
        notices = []
        for rec in await _subscribers(session, meeting_id):
            zone, name = zone_of(rec.participant), reminders.name_for(meeting, rec.channel)
            with writing_to(rec.participant, rec.channel):
                body = t("reminder.meeting_cancelled", meeting=name,
                         when=reminders.meeting_when(meeting, start, zone),
                         **reminders.discreet_values(meeting, rec.channel))
            key = f"mchg:{meeting_id}:{rec.participant.id}:{reminders.stamp(start)}"
            notices.append(_notice(rec, meeting, body, key, now=now, not_after=start))
        logger.info("meeting %s: one date cancelled", meeting_id)
        return await _commit(engine, session, meeting, _Plan(spoiled, notices), now=now,
                             reason="date cancelled")


async def restore_date(engine: AsyncEngine, *, meeting_id: int, day: date, by: str,
                       now: datetime) -> ChangeResult:
    """Put a cancelled date back; reminders for it are planned again."""
    async with session_factory(engine)() as session:
        meeting = await _load(session, meeting_id)
        dates = _current_dates(meeting, now)
        if day.isoformat() not in dates:
            raise MeetingChangeError("that date is not cancelled")
        meeting.cancelled_dates = [d for d in dates if d != day.isoformat()]
        logger.info("meeting %s: a cancelled date restored", meeting_id)
        return await _commit(engine, session, meeting, _Plan([], []), now=now,
                             reason="date restored")


async def _alternative(session: AsyncSession, meeting: Meeting, now: datetime
                       ) -> MeetingHit | None:
    """Return the nearest open meeting running instead (the nearest online one for online)."""
    online = meeting.lat is None or meeting.lon is None or str(meeting.attendance) == "online"
    lat, lon = (meeting.lat or 0.0, meeting.lon or 0.0)
    found = await find_nearest(session, lat=lat, lon=lon, now=now, limit=4,
                               online_only=online)
    for hit in [*found.hits, *found.online]:
        if hit.meeting.id != meeting.id and hit.next_start is not None:
            return hit
    return None


def _alternative_text(hit: MeetingHit | None, rec: Recipient) -> str:
    if hit is None or hit.next_start is None:
        return ""
    zone = zone_of(rec.participant)
    return t("reminder.nearest_other", meeting=reminders.name_for(hit.meeting, rec.channel),
             when=when(hit.next_start.astimezone(zone), zone),
             where=reminders.where_for(hit.meeting, rec.channel),
             **reminders.discreet_values(hit.meeting, rec.channel))


async def _stop(engine: AsyncEngine, *, meeting_id: int, status: MeetingStatus, text: str,
                by: str, now: datetime) -> ChangeResult:
    """Suspend or cancel a meeting; tell each subscriber once, with the nearest alternative."""
    async with session_factory(engine)() as session:
        meeting = await _load(session, meeting_id)
        if meeting.status == status:
            return ChangeResult(meeting_id=meeting_id)  # already so: nothing new to say
        alternative = await _alternative(session, meeting, now)
        notices = []
        for rec in await _subscribers(session, meeting_id):
            with writing_to(rec.participant, rec.channel):
                body = t(text, meeting=reminders.name_for(meeting, rec.channel),
                         alternative=_alternative_text(alternative, rec),
                         **reminders.discreet_values(meeting, rec.channel))
            key = f"mstop:{meeting_id}:{rec.participant.id}:{status}:{reminders.stamp(now)}"
            notices.append(_notice(rec, meeting, body, key, now=now))
        spoiled = await _reminders_of(session, meeting_id)
        meeting.status, meeting.status_changed_at = status, now
        logger.info("meeting %s: %s", meeting_id, status)
        return await _commit(engine, session, meeting, _Plan(spoiled, notices), now=now,
                             reason=f"meeting {status}")


async def suspend(engine: AsyncEngine, *, meeting_id: int, by: str, now: datetime
                  ) -> ChangeResult:
    """Pause a meeting; tell each subscriber once, with the nearest open alternative."""
    return await _stop(engine, meeting_id=meeting_id, status=MeetingStatus.SUSPENDED,
                       text="reminder.meeting_paused", by=by, now=now)


async def cancel_for_good(engine: AsyncEngine, *, meeting_id: int, by: str, now: datetime
                          ) -> ChangeResult:
    """Stop a meeting for good; tell each subscriber once, with the nearest alternative."""
    return await _stop(engine, meeting_id=meeting_id, status=MeetingStatus.CANCELLED,
                       text="reminder.meeting_stopped", by=by, now=now)


def _next_when(meeting: Meeting, rec: Recipient, now: datetime) -> str | None:
    start = next_occurrence(meeting, now)
    if start is None:
        return None
    return reminders.meeting_when(meeting, start.astimezone(UTC), zone_of(rec.participant))


async def resume(engine: AsyncEngine, *, meeting_id: int, by: str, now: datetime
                 ) -> ChangeResult:
    """Set a suspended or cancelled meeting running again; tell its subscribers."""
    async with session_factory(engine)() as session:
        meeting = await _load(session, meeting_id)
        if meeting.status == MeetingStatus.ACTIVE:
            return ChangeResult(meeting_id=meeting_id)
        meeting.status, meeting.status_changed_at = MeetingStatus.ACTIVE, now
        notices = []
        for rec in await _subscribers(session, meeting_id):
            next_when = _next_when(meeting, rec, now)
            if next_when is None:
                continue
            with writing_to(rec.participant, rec.channel):
                body = t("reminder.meeting_resumed",
                         meeting=reminders.name_for(meeting, rec.channel), when=next_when,
                         **reminders.discreet_values(meeting, rec.channel))
            key = f"mres:{meeting_id}:{rec.participant.id}:{reminders.stamp(now)}"
            notices.append(_notice(rec, meeting, body, key, now=now))
        logger.info("meeting %s: resumed", meeting_id)
        return await _commit(engine, session, meeting, _Plan([], notices), now=now,
                             reason="meeting resumed")


def _check_values(values: dict[str, Any]) -> dict[str, Any]:
    """Return the values to set; raise MeetingChangeError for an unknown or fixed field."""
    for name in values:
        if name in FIXED_FIELDS or name not in Meeting.model_fields:
            raise MeetingChangeError(f"{name!r} cannot be set here")
    if "name" in values and not str(values["name"] or "").strip():
        raise MeetingChangeError("a meeting needs a name")
    if "weekday" in values and values["weekday"] not in range(7):
        raise MeetingChangeError("choose a day of the week")
    probe = Meeting(slug="-", name="-", weekday=0, timezone=values.get("timezone"))
    if values.get("timezone") and known_zone(probe) is None:
        raise MeetingChangeError("choose a real time zone, like Europe/London")
    return values


async def update_meeting(engine: AsyncEngine, *, meeting_id: int, values: dict[str, Any],
                         by: str, now: datetime) -> ChangeResult:
    """Change a meeting's fields (Meeting attribute names); a move tells subscribers once."""
    values = _check_values(values)
    async with session_factory(engine)() as session:
        meeting = await _load(session, meeting_id)
        before = {f: getattr(meeting, f) for f in (*WHEN_FIELDS, *WHERE_FIELDS)}
        for name, value in values.items():
            setattr(meeting, name, value)
        moved = [f for f, v in before.items() if getattr(meeting, f) != v]
        if any(f in WHEN_FIELDS for f in moved):
            meeting.cancelled_dates = []  # they were dates of the old day
        plan = _Plan([], [])
        if moved and meeting.status == MeetingStatus.ACTIVE:
            plan.spoiled = await _reminders_of(session, meeting_id)
            for rec in await _subscribers(session, meeting_id):
                next_when = _next_when(meeting, rec, now)
                if next_when is None:
                    continue
                with writing_to(rec.participant, rec.channel):
                    body = t("reminder.meeting_changed",
                             meeting=reminders.name_for(meeting, rec.channel), when=next_when,
                             where=reminders.where_for(meeting, rec.channel),
                             **reminders.discreet_values(meeting, rec.channel))
                key = f"mmove:{meeting_id}:{rec.participant.id}:{reminders.stamp(now)}"
                plan.notices.append(_notice(rec, meeting, body, key, now=now))
        logger.info("meeting %s: edited (moved: %s)", meeting_id, bool(moved))
        return await _commit(engine, session, meeting, plan, now=now, reason="meeting moved")


def _slug_base(name: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return f"console-{words[:50].strip('-') or 'meeting'}"


async def create_meeting(engine: AsyncEngine, *, values: dict[str, Any], by: str,
                         now: datetime) -> Meeting:
    """Add a hand-made meeting (Meeting attribute names); return it with its id and slug."""
    values = _check_values(values)
    if "name" not in values or "weekday" not in values:
        raise MeetingChangeError("a meeting needs a name and a day")
    async with session_factory(engine)() as session:
        base = _slug_base(str(values["name"]))
        slug, n = base, 1
        while await slug_taken(session, slug):
            n += 1
            slug = f"{base}-{n}"
        meeting = Meeting(**{"source": "console", **values}, slug=slug, updated=now)
        session.add(meeting)
        await session.commit()
        invalidate_index(session)
        logger.info("meeting %s: added", meeting.id)
        return meeting


async def confirm_running(engine: AsyncEngine, *, meeting_id: int, by: str, now: datetime
                          ) -> None:
    """Record that a coordinator checked the meeting runs (stale flags clear)."""
    async with session_factory(engine)() as session:
        meeting = await _load(session, meeting_id)
        meeting.confirmed_running_at = now
        session.add(meeting)
        await session.commit()
        logger.info("meeting %s: confirmed running", meeting_id)
