"""Planning: turn release dates, chosen meetings and appointments into outbox rows.

Every planned message has a dedupe key, so planning can run as often as we like: a second
pass adds nothing, and a changed plan (a moved release date) moves the queued rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.texts import t
from meeting_finder.search import find_nearest
from scheduler import reminders
from scheduler.quiet import zone_of
from storage.db import session_factory
from storage.models import MessageKind, Priority
from storage.outbox_q import cancel_and_free
from storage.scheduling import Recipient, plan_message, queued, recipients

logger = logging.getLogger(__name__)

CHECKIN_DAYS = (1, 3, 7, 14, 28)
WELCOME_AT = time(10, 0)  # local time on release day
SUGGEST_AT = time(12, 0)
CHECKIN_AT = time(10, 0)
SUGGEST_WITHIN = timedelta(hours=72)
HORIZON = timedelta(days=8)  # how far ahead meeting and appointment reminders are written


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


def at_local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """Return wall-clock `at` on `day` in `zone` as aware UTC."""
    return datetime.combine(day, at).replace(tzinfo=zone).astimezone(UTC)


def fmt_when(moment: datetime, zone: ZoneInfo) -> str:
    """Return e.g. `Tue 4 Mar 7pm` in local time."""
    local = moment.astimezone(zone)
    hour = local.strftime("%I").lstrip("0")
    minute = "" if local.minute == 0 else local.strftime(":%M")
    return f"{local:%a} {local.day} {local:%b} {hour}{minute}{local:%p}".replace("AM", "am") \
        .replace("PM", "pm")


async def plan(engine: AsyncEngine, *, now: datetime, dry_run: bool = False) -> PlanStats:
    """Run every planner once as of `now`; with dry_run, count and roll back."""
    stats = PlanStats()
    async with session_factory(engine)() as session:
        try:
            people = await recipients(session)
            for rec in people.values():
                await plan_release(session, rec, now=now, stats=stats)
            await withdraw_moved_sequences(session, people, now=now, stats=stats)
            await reminders.plan_meetings(session, people, now=now, horizon=HORIZON,
                                          stats=stats)
            await reminders.plan_appointments(session, people, now=now, horizon=HORIZON,
                                              stats=stats)
            await reminders.plan_followups(session, people, now=now, stats=stats)
        except BaseException:
            await session.rollback()
            raise
        if dry_run:
            await session.rollback()
        else:
            await session.commit()
    return stats


async def replan_release(engine: AsyncEngine, *, participant_id: int, now: datetime) -> PlanStats:
    """Plan one person's release sequence again now (after a Champion moved the date)."""
    stats = PlanStats()
    async with session_factory(engine)() as session:
        people = await recipients(session, [participant_id])
        for rec in people.values():
            await plan_release(session, rec, now=now, stats=stats)
        await withdraw_moved_sequences(session, people, now=now, stats=stats)
        await session.commit()
    return stats


async def withdraw_moved_sequences(
    session: AsyncSession, people: dict[int, Recipient], *, now: datetime, stats: PlanStats
) -> None:
    """Cancel queued sequence steps planned for a release date that has since moved.

    plan_release moves the steps it still wants; this catches the rest: steps already past
    for the new date, and whole sequences whose new date is outside the planning window.
    """
    for row in await queued(session, kinds=(MessageKind.SEQUENCE,), key_prefix="seq:"):
        rec = people.get(row.participant_id or 0)
        if rec is None:
            continue
        if (row.meta or {}).get("release_date") != rec.participant.release_date.isoformat():
            stats.cancelled += await cancel_and_free(session, [row], now=now,
                                                     reason="release date moved")


async def plan_release(
    session: AsyncSession, rec: Recipient, *, now: datetime, stats: PlanStats
) -> None:
    """Plan the release sequence: welcome, a nearby meeting, check-ins on days 1 to 28."""
    p = rec.participant
    zone = zone_of(p)
    released = p.release_date
    if not (now.date() - timedelta(days=max(CHECKIN_DAYS) + 1) <= released
            <= now.date() + HORIZON):
        return
    items: list[tuple[str, datetime, datetime, str]] = []
    welcome_due = at_local(released, WELCOME_AT, zone)
    items.append(("welcome", welcome_due, welcome_due + timedelta(days=1),
                  t("sequence.welcome", name=p.display_name)))
    suggest_due = at_local(released, SUGGEST_AT, zone)
    if suggest_due + SUGGEST_WITHIN > now and suggest_due - now < timedelta(days=2):
        body = await _suggestion(session, rec, start=suggest_due)
        items.append(("suggest", suggest_due, suggest_due + SUGGEST_WITHIN, body))
    for day in CHECKIN_DAYS:
        due = at_local(released + timedelta(days=day), CHECKIN_AT, zone)
        items.append((f"checkin{day}", due, due + timedelta(hours=10),
                      t(f"sequence.checkin_{day}", name=p.display_name)))
    for name, due, not_after, body in items:
        if not_after <= now:
            continue
        stats.count(await plan_message(
            session, dedupe_key=f"seq:{p.id}:{name}", due_at=due, now=now,
            channel=rec.channel, address=rec.address, body=body, participant_id=p.id,
            kind=MessageKind.SEQUENCE, priority=Priority.SCHEDULED, not_after=not_after,
            meta={"step": name, "release_date": released.isoformat()}))


async def _suggestion(session: AsyncSession, rec: Recipient, *, start: datetime) -> str:
    """Return the nearest meeting within 72 hours of release as one line, or a prompt."""
    p = rec.participant
    if p.release_lat is None or p.release_lon is None:
        return t("sequence.suggest_none", name=p.display_name)
    result = await find_nearest(session, lat=p.release_lat, lon=p.release_lon, now=start,
                                limit=5, tz=zone_of(p))
    for hit in result.hits:
        if hit.next_start is not None and hit.next_start <= start + SUGGEST_WITHIN:
            m = hit.meeting
            where = ", ".join(x for x in (m.venue, m.postcode) if x) or (m.address or "")
            return t("sequence.suggest", name=p.display_name, meeting=m.name[:40],
                     when=fmt_when(hit.next_start, zone_of(p)), where=where[:40])
    return t("sequence.suggest_none", name=p.display_name)
