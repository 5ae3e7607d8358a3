"""Engagement reports: how each participant is getting on, and how the cohort is doing.

Per participant: linked or not and by which channel, last contact, the first meeting they
went to after release and how many hours after release it was, sessions toward 10, hours
toward 20, and open crisis flags where they agreed staff may see them.

The cohort, among those already released: the share linked within 72 hours of release; the
share at a meeting within 3 weeks of release (the NDTMS continuity-of-care measure, about
half nationally); the median number of sessions; the share reaching 10 sessions. A share
counts only people whose window has closed (released at least 72 hours, or 3 weeks, ago),
so a person released this morning is not yet a "no".

Release is when the person walked out, once a Champion records it (`released_at`); until
then, the start (00:00) of the release day in their zone. The page, the CSV download and
any future CLI build the report here; the caller passes the time.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.card import first_name
from handlers.tools.plan import HOURS_GOAL, SESSIONS_GOAL
from storage.models import StaffRole, StaffUser
from storage.reports_q import ParticipantFacts, participant_facts
from storage.staff_q import cohort_scope

LINK_WITHIN = timedelta(hours=72)
MEETING_WITHIN = timedelta(days=21)
NATIONAL_BASELINE = "about half"  # NDTMS continuity of care, adults leaving prison, England
DEFAULT_ZONE = "Europe/London"
MIN_GROUP = 5  # a coordinator sees no figure about fewer people than this
CHANNEL_LABELS = {"sms": "SMS", "telegram": "Telegram", "console": "Console"}
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run these


@dataclass(frozen=True)
class Share:
    """`count` people of `of`, and the percentage (None when `of` is 0)."""

    count: int
    of: int

    @property
    def percent(self) -> int | None:
        """Return the share as a whole percentage, halves rounded up."""
        return None if not self.of else (200 * self.count + self.of) // (2 * self.of)


@dataclass(frozen=True)
class ParticipantRow:
    """One participant's line in the report."""

    participant_id: int
    first_name: str
    released: datetime  # the moment counted as release (UTC)
    linked: bool
    channel: str  # "SMS", "Telegram", "SMS and Telegram", or "" when not linked
    first_linked: datetime | None
    last_contact: datetime | None
    first_meeting: datetime | None  # the first meeting they went to after release
    hours_to_first_meeting: float | None
    sessions: int
    hours: float
    open_crises: int | None  # None: they did not agree to staff seeing crisis flags


@dataclass(frozen=True)
class Cohort:
    """The figures for everyone already released."""

    released: int
    linked_in_72_hours: Share
    meeting_in_3_weeks: Share
    median_sessions: float | None
    reached_10_sessions: Share


@dataclass(frozen=True)
class Report:
    """A report: the rows (empty for a coordinator) and the cohort figures."""

    rows: list[ParticipantRow]
    cohort: Cohort
    named: bool  # False for a coordinator's figures-only report

    def shows(self, share: Share) -> bool:
        """Say whether a figure may be shown: never one about a few people without names."""
        return self.named or share.of >= MIN_GROUP


def release_moment(facts: ParticipantFacts) -> datetime:
    """Return the moment counted as release: when they walked out, if recorded; else 00:00
    on the release day in their zone."""
    if facts.released_at is not None:
        return facts.released_at
    try:
        zone = ZoneInfo(facts.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(DEFAULT_ZONE)
    return datetime.combine(facts.release_date, time(0), tzinfo=zone).astimezone(UTC)


def channel_label(channels: Iterable[str]) -> str:
    """Return channels as people say them: `SMS and Telegram`."""
    return " and ".join(CHANNEL_LABELS.get(c, c) for c in channels)


def participant_row(facts: ParticipantFacts) -> ParticipantRow:
    """Work out one participant's line from the facts."""
    released = release_moment(facts)
    after = [at for at in facts.attended if at >= released]
    first = after[0] if after else None
    hours_to = round((first - released).total_seconds() / 3600, 1) if first else None
    return ParticipantRow(
        participant_id=facts.participant_id, first_name=first_name(facts.display_name),
        released=released, linked=bool(facts.channels), channel=channel_label(facts.channels),
        first_linked=facts.first_linked_at, last_contact=facts.last_contact,
        first_meeting=first, hours_to_first_meeting=hours_to, sessions=facts.sessions,
        hours=facts.hours, open_crises=facts.open_crises if facts.review_consent else None)


def cohort_figures(rows: list[ParticipantRow], *, now: datetime) -> Cohort:
    """Work out the cohort figures among those released by `now`."""
    out = [r for r in rows if r.released <= now]
    link_due = [r for r in out if r.released + LINK_WITHIN <= now]
    meet_due = [r for r in out if r.released + MEETING_WITHIN <= now]
    linked = sum(1 for r in link_due
                 if r.first_linked is not None and r.first_linked <= r.released + LINK_WITHIN)
    met = sum(1 for r in meet_due
              if r.first_meeting is not None and r.first_meeting <= r.released + MEETING_WITHIN)
    return Cohort(
        released=len(out),
        linked_in_72_hours=Share(linked, len(link_due)),
        meeting_in_3_weeks=Share(met, len(meet_due)),
        median_sessions=statistics.median([r.sessions for r in out]) if out else None,
        reached_10_sessions=Share(sum(1 for r in out if r.sessions >= SESSIONS_GOAL), len(out)),
    )


async def build_report(session: AsyncSession, staff: StaffUser, *, now: datetime) -> Report:
    """Return the report this staff member may see: rows and figures, or figures only."""
    facts = await participant_facts(session, scope=await cohort_scope(session, staff))
    rows = sorted((participant_row(f) for f in facts),
                  key=lambda r: (-r.released.timestamp(), r.participant_id))
    named = staff.role != StaffRole.COORDINATOR
    return Report(rows if named else [], cohort_figures(rows, now=now), named)


def _cell(value: str) -> str:
    """Keep a spreadsheet from reading a name as a formula."""
    return f"'{value}" if value.startswith(CSV_FORMULA_STARTS) else value


def _local(moment: datetime | None, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else ""


CSV_COLUMNS = (
    "Participant", "First name", "Released", "Linked", "Channel", "Last contact",
    "First meeting after release", "Hours from release to first meeting",
    f"Sessions (of {SESSIONS_GOAL})", f"Hours (of {HOURS_GOAL})", "Open crisis flags",
)


def report_csv(rows: list[ParticipantRow], *, tz: ZoneInfo) -> str:
    """Return the rows as CSV (times in the service zone; no phone numbers, first names)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        hours_to = "" if r.hours_to_first_meeting is None else f"{r.hours_to_first_meeting:g}"
        crises = "Not shared" if r.open_crises is None else str(r.open_crises)
        writer.writerow([
            r.participant_id, _cell(r.first_name), r.released.astimezone(tz).date().isoformat(),
            "Yes" if r.linked else "No", r.channel, _local(r.last_contact, tz),
            _local(r.first_meeting, tz), hours_to, r.sessions, f"{r.hours:g}", crises])
    return out.getvalue()
