"""Planning: turn release dates, chosen meetings and appointments into outbox rows.

Every planned message has a dedupe key, so planning can run as often as we like: a second
pass adds nothing, and a changed plan (a moved release date) moves the queued rows.

A pass reads first and writes after, in short transactions. The planners read what they
need (no write lock is taken while they work, nor while the meeting finder runs) and write
down what they want in a `Work`; rows already as wanted are left out; the rest is written
in batches of about BATCH_SECONDS each, with a pause between, so the web app's writes (an
inbound SMS) never wait long behind a pass over thousands of people. Each planned change is
decided from the reads alone, so batches do not depend on each other: one lost to a crash
is redone by the next pass, and a dry run rolls each batch back and counts the same.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.channels import traits
from handlers.meeting_text import clip_words, contact_of, tidy, when
from handlers.readers import writing_to
from handlers.texts import current_reader, t
from handlers.tools.discreet import telling
from meeting_finder.search import find_nearest
from scheduler import reminders
from scheduler.quiet import zone_of
from storage.db import is_lock_error, session_factory
from storage.models import Meeting, MessageKind, OutboundMessage, Priority
from storage.outbox import enqueue
from storage.scheduling import (
    Recipient,
    add_planned,
    cancel_queued,
    plan_is_current,
    plan_message,
    planned_rows,
    queued,
    recipients,
    subscriber_ids,
)

logger = logging.getLogger(__name__)

CHECKIN_DAYS = (1, 3, 7, 14, 28)
WELCOME_AT = time(10, 0)  # local time on release day
SUGGEST_AT = time(12, 0)
SUGGEST_AFTER_RELEASE = timedelta(hours=2)  # once the actual release time is known
CHECKIN_AT = time(10, 0)
SUGGEST_WITHIN = timedelta(hours=72)
SUGGEST_NEAR_MILES = 10.0  # further than this is not "near you": an online meeting instead
SUGGEST_LEAD = timedelta(minutes=30)  # a suggested meeting starts at least this long after
HORIZON = timedelta(days=8)  # how far ahead meeting and appointment reminders are written
BATCH_SECONDS = 0.1  # a write transaction commits once it has run this long
BATCH_MAX = 500  # ... or run this many steps
ADD_CHUNK = 100  # new messages added by one statement
# Seconds between batches. Longer than SQLite's busy handler sleeps between tries (100 ms),
# so every writer waiting on the lock gets it before the next batch does.
BATCH_PAUSE = 0.12
BATCH_RETRY_FOR = 60.0  # seconds a batch keeps trying while the database is busy


@dataclass
class PlanStats:
    """What one planning pass did."""

    added: int = 0
    moved: int = 0
    cancelled: int = 0
    notified: int = 0

    def count(self, outcome: str) -> None:
        """Count one plan_message outcome."""
        if outcome == "added":
            self.added += 1
        elif outcome == "moved":
            self.moved += 1

    def merge(self, other: PlanStats) -> None:
        """Add another batch's counts to these."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


Step = Callable[[AsyncSession, PlanStats], Awaitable[None]]


@dataclass
class Work:
    """What a pass wants written, decided from reads alone; `write` puts it in the database."""

    now: datetime
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # by dedupe key
    cancels: list[tuple[OutboundMessage, str]] = field(default_factory=list)
    withdrawals: list[tuple[list[OutboundMessage], str, dict[str, Any] | None]] = field(
        default_factory=list)
    found: set[str] = field(default_factory=set)  # planned keys already in the outbox

    def want(self, **values: Any) -> None:
        """Plan one message (plan_message's arguments); the first plan for a key wins."""
        self.messages.setdefault(values["dedupe_key"], {**values, "now": self.now})

    def cancel(self, rows: Iterable[OutboundMessage], reason: str) -> None:
        """Cancel these queued rows, if still queued when written."""
        self.cancels.extend((row, reason) for row in rows)

    def withdraw(self, rows: Iterable[OutboundMessage], reason: str,
                 notice: dict[str, Any] | None) -> None:
        """Cancel these rows; if any was still queued, tell the person once (the notice)."""
        self.withdrawals.append((list(rows), reason, notice))

    async def drop_current(self, session: AsyncSession) -> None:
        """Leave out messages whose rows are already as planned, so a rerun writes nothing."""
        found = await planned_rows(session, list(self.messages))
        self.found = set(found)
        for key, (status, meta, body) in found.items():
            want = self.messages[key]
            if plan_is_current(status=status, meta=meta, body=body, due_at=want["due_at"],
                               want_body=want.get("body")):
                del self.messages[key]

    def steps(self) -> list[Step]:
        """Return the write steps: new messages a chunk at a time, every other change alone."""
        new = [v for key, v in self.messages.items() if key not in self.found]
        out: list[Step] = [partial(_add_many, new[i : i + ADD_CHUNK])
                           for i in range(0, len(new), ADD_CHUNK)]
        out += [partial(_plan_one, v) for key, v in self.messages.items() if key in self.found]
        out += [partial(_cancel_one, row, reason, self.now) for row, reason in self.cancels]
        out += [partial(_withdraw_one, rows, reason, self.now, notice)
                for rows, reason, notice in self.withdrawals]
        return out


async def _add_many(plans: list[dict[str, Any]], session: AsyncSession, stats: PlanStats
                    ) -> None:
    added = await add_planned(session, plans)
    stats.added += len(added)
    for values in plans:
        if values["dedupe_key"] not in added:  # written since we read: move it if need be
            stats.count(await plan_message(session, **values))


async def _plan_one(values: dict[str, Any], session: AsyncSession, stats: PlanStats) -> None:
    stats.count(await plan_message(session, **values))


async def _cancel_one(row: OutboundMessage, reason: str, now: datetime, session: AsyncSession,
                      stats: PlanStats) -> None:
    stats.cancelled += await cancel_queued(session, [row], reason=reason, now=now)


async def _withdraw_one(rows: list[OutboundMessage], reason: str, now: datetime,
                        notice: dict[str, Any] | None, session: AsyncSession, stats: PlanStats
                        ) -> None:
    cancelled = await cancel_queued(session, rows, reason=reason, now=now)
    stats.cancelled += cancelled
    if cancelled and notice is not None and await enqueue(session, **notice, now=now):
        stats.notified += 1


def at_local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """Return wall-clock `at` on `day` in `zone` as aware UTC."""
    return datetime.combine(day, at).replace(tzinfo=zone).astimezone(UTC)


async def plan(engine: AsyncEngine, *, now: datetime, dry_run: bool = False) -> PlanStats:
    """Run every planner once as of `now`; with dry_run, count and roll back."""
    work = Work(now=now)
    async with session_factory(engine)() as session:  # reads only
        people = await recipients(session)
        for rec in people.values():
            await plan_release(session, rec, now=now, work=work)
        await withdraw_moved_sequences(session, people, work=work)
        await reminders.plan_meetings(session, people, now=now, horizon=HORIZON, work=work)
        await reminders.plan_appointments(session, people, now=now, horizon=HORIZON,
                                          work=work)
        await reminders.plan_followups(session, people, now=now, work=work)
        await work.drop_current(session)
    return await write(engine, work.steps(), dry_run=dry_run)


async def replan_release(engine: AsyncEngine, *, participant_id: int, now: datetime) -> PlanStats:
    """Plan one person's release sequence again now (after a Champion moved the date)."""
    work = Work(now=now)
    async with session_factory(engine)() as session:  # reads only
        people = await recipients(session, [participant_id])
        for rec in people.values():
            await plan_release(session, rec, now=now, work=work)
        await withdraw_moved_sequences(session, people, work=work)
        await work.drop_current(session)
    return await write(engine, work.steps())


async def replan_meeting(engine: AsyncEngine, *, meeting_id: int, now: datetime) -> PlanStats:
    """Plan one meeting's reminders again now (after a coordinator changed it)."""
    work = Work(now=now)
    async with session_factory(engine)() as session:  # reads only
        people = await recipients(session, await subscriber_ids(session, meeting_id))
        await reminders.plan_meetings(session, people, now=now, horizon=HORIZON, work=work,
                                      meeting_id=meeting_id)
        await work.drop_current(session)
    return await write(engine, work.steps())


async def write(engine: AsyncEngine, steps: list[Step], *, dry_run: bool = False) -> PlanStats:
    """Run the steps in short transactions, pausing between them; dry_run rolls each back."""
    stats = PlanStats()
    done = 0
    while done < len(steps):
        if done:
            await asyncio.sleep(BATCH_PAUSE)
        batch, ran = await _batch_with_retry(engine, steps[done:], dry_run=dry_run)
        stats.merge(batch)
        done += ran
    return stats


async def _batch_with_retry(
    engine: AsyncEngine, steps: list[Step], *, dry_run: bool
) -> tuple[PlanStats, int]:
    """Run one batch, starting it again while the database is busy (each step is safe twice)."""
    deadline = monotonic() + BATCH_RETRY_FOR
    pause = 0.05
    while True:
        try:
            return await _batch(engine, steps, dry_run=dry_run)
        except DBAPIError as exc:
            if not is_lock_error(exc) or monotonic() + pause > deadline:
                raise
            logger.warning("planning batch met a busy database; trying again")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)


async def _batch(
    engine: AsyncEngine, steps: list[Step], *, dry_run: bool
) -> tuple[PlanStats, int]:
    """Run steps in one transaction until it has taken BATCH_SECONDS; say how many ran."""
    stats = PlanStats()
    ran = 0
    async with session_factory(engine)() as session:
        try:
            started = monotonic()
            for step in steps[:BATCH_MAX]:
                await step(session, stats)
                ran += 1
                if monotonic() - started >= BATCH_SECONDS:
                    break
            if dry_run:
                await session.rollback()
            else:
                await session.commit()
        except BaseException:
            await session.rollback()
            raise
    return stats, ran


async def withdraw_moved_sequences(
    session: AsyncSession, people: dict[int, Recipient], *, work: Work
) -> None:
    """Cancel queued sequence steps planned for a release date that has since moved.

    plan_release moves the steps it still wants; this catches the rest: steps already past
    for the new date, and whole sequences whose new date is outside the planning window.
    """
    for row in await queued(session, kinds=(MessageKind.SEQUENCE,), key_prefix="seq:"):
        rec = people.get(row.participant_id or 0)
        if rec is None or row.dedupe_key in work.messages:
            continue  # not ours to judge, or planned again (plan_message moves it)
        if (row.meta or {}).get("release_date") != rec.participant.release_date.isoformat():
            work.cancel([row], "release date moved")


async def plan_release(session: AsyncSession, rec: Recipient, *, now: datetime, work: Work
                       ) -> None:
    """Plan the release sequence: welcome, a nearby meeting, check-ins on days 1 to 28."""
    p = rec.participant
    zone = zone_of(p)
    released = p.release_date
    if not (now.date() - timedelta(days=max(CHECKIN_DAYS) + 1) <= released
            <= now.date() + HORIZON):
        return
    items: list[tuple[str, datetime, datetime, str]] = []
    name = reminders.as_sent(p.display_name, rec.channel)
    # Release times are uncertain: once a Champion marks the person released, the sequence
    # starts from that moment (the welcome at once, the meeting suggestion two hours on).
    welcome_due = p.released_at or at_local(released, WELCOME_AT, zone)
    suggest_due = (p.released_at + SUGGEST_AFTER_RELEASE if p.released_at is not None
                   else at_local(released, SUGGEST_AT, zone))
    with writing_to(p, rec.channel):
        items.append(("welcome", welcome_due, welcome_due + timedelta(days=1),
                      t("sequence.welcome", name=name)))
        if suggest_due + SUGGEST_WITHIN > now and suggest_due - now < timedelta(days=2):
            body, until = await _suggestion(session, rec, due=suggest_due, now=now)
            items.append(("suggest", suggest_due, until, body))
        for day in CHECKIN_DAYS:
            due = at_local(released + timedelta(days=day), CHECKIN_AT, zone)
            items.append((f"checkin{day}", due, due + timedelta(hours=10),
                          t(f"sequence.checkin_{day}", name=name)))
    for name, due, not_after, body in items:
        if not_after <= now:
            continue
        work.want(
            dedupe_key=f"seq:{p.id}:{name}", due_at=due, channel=rec.channel,
            address=rec.address, body=body, participant_id=p.id, kind=MessageKind.SEQUENCE,
            priority=Priority.SCHEDULED, not_after=not_after,
            meta={"step": name, "release_date": released.isoformat()})


async def _suggestion(session: AsyncSession, rec: Recipient, *, due: datetime, now: datetime
                      ) -> tuple[str, datetime]:
    """Return a meeting to try soon after release, and the time the text must go by.

    Only a meeting within SUGGEST_NEAR_MILES, else one to join online, that starts at least
    SUGGEST_LEAD after the text could go: the text may not go once that is too late.
    """
    p = rec.participant
    name = reminders.as_sent(p.display_name, rec.channel)
    latest = due + SUGGEST_WITHIN
    if p.release_lat is None or p.release_lon is None:
        return t("sequence.suggest_none", name=name), latest
    after = max(due, now) + SUGGEST_LEAD
    near = await find_nearest(session, lat=p.release_lat, lon=p.release_lon, now=after,
                              limit=5, tz=zone_of(p))
    online = await find_nearest(session, lat=p.release_lat, lon=p.release_lon, now=after,
                                limit=3, online_only=True, tz=zone_of(p))
    close = [(h, True) for h in near.hits if (h.distance_miles or 0.0) <= SUGGEST_NEAR_MILES]
    for hit, is_near in [*close, *((h, False) for h in online.hits)]:
        if hit.next_start is not None and hit.next_start <= latest:
            body = _suggest_text(rec, hit.meeting, hit.next_start, near=is_near)
            return body, min(latest, hit.next_start - SUGGEST_LEAD)
    return t("sequence.suggest_none", name=name), latest


def _suggest_text(rec: Recipient, meeting: Meeting, start: datetime, *, near: bool) -> str:
    """Return the release-day suggestion naming one meeting, with its contact if known."""
    contact = contact_of(meeting, plain=not traits(rec.channel).rich_text)
    if current_reader().discreet and telling(contact):
        contact = ""  # an address like info@smartrecovery.org.uk says what the text is about
    values = {
        "name": reminders.as_sent(rec.participant.display_name, rec.channel),
        "meeting": reminders.name_for(meeting, rec.channel),
        "when": when(start, zone_of(rec.participant)),
        "where": reminders.where_for(meeting, rec.channel, join=not near),
        "contact": t("sequence.contact", contact=clip_words(contact, 90)) if contact else "",
        **reminders.discreet_values(meeting, rec.channel, join=not near),
    }
    return tidy(t("sequence.suggest" if near else "sequence.suggest_online", **values))
