"""Answers to "did you make it?" (WENT, MISSED, NORUN) and choosing reminders (REMIND)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handlers.conversation import Conversation
from handlers.registry import keyword
from handlers.texts import t
from handlers.types import Reply
from meeting_finder.recurrence import local_start, meeting_zone
from storage.models import AttendanceOutcome, AttendanceRecord, AuditEvent, Meeting
from storage.scheduling import attendance_for, cancel_reminders_for, latest_followup

SESSION_MILESTONES = (1, 5, 10)
HOURS_MILESTONE = 20.0
REMIND_CHOICES = {"DAY": [1440], "HOUR": [60], "BOTH": [1440, 60], "ON": [1440, 60],
                  "OFF": [], "NONE": []}


def _hours(meeting: Meeting, start: datetime) -> float:
    """Return an occurrence's length in hours (90 minutes when no end time is listed)."""
    if meeting.start_time is None or meeting.end_time is None:
        return 1.5
    zone = meeting_zone(meeting)
    end = local_start(start.astimezone(zone).date(), meeting.end_time, zone)
    if end <= start:
        end += timedelta(days=1)
    return round((end - start).total_seconds() / 3600, 2)


async def _answer(conv: Conversation, outcome: AttendanceOutcome) -> list[Reply]:
    """Record the answer to the newest follow-up, once."""
    p = conv.participant
    asked = await latest_followup(conv.session, participant_id=p.id or 0, now=conv.now)
    occurrence = (asked.meta or {}).get("occurrence") if asked else None
    if asked is None or asked.meeting_id is None or occurrence is None:
        return [Reply(t("followup.nothing"))]
    start = datetime.fromisoformat(occurrence).astimezone(UTC)
    if await attendance_for(conv.session, participant_id=p.id or 0,
                            meeting_id=asked.meeting_id, occurrence=start):
        return [Reply(t("followup.already"))]
    meeting = await conv.session.get(Meeting, asked.meeting_id)
    hours = _hours(meeting, start) if meeting and outcome == AttendanceOutcome.ATTENDED else 0.0
    conv.session.add(AttendanceRecord(participant_id=p.id, meeting_id=asked.meeting_id,
                                      occurrence_start=start, outcome=outcome, hours=hours,
                                      reported_at=conv.now))
    if outcome == AttendanceOutcome.MISSED:
        return [Reply(t("followup.missed"))]
    if outcome == AttendanceOutcome.NOT_RUNNING:
        conv.session.add(AuditEvent(at=conv.now, actor=f"participant:{p.id}",
                                    action="meeting_not_running", participant_id=p.id,
                                    detail={"meeting_id": asked.meeting_id,
                                            "occurrence": start.isoformat()}))
        return [Reply(t("followup.norun"))]
    before_hours = p.hours_total
    p.sessions_count += 1
    p.hours_total = round(p.hours_total + hours, 2)
    p.updated_at = conv.now
    conv.session.add(p)
    hours_text = f"{p.hours_total:g}"
    replies = [Reply(t("followup.went", name=conv.echo(p.display_name), sessions=p.sessions_count,
                       hours=hours_text))]
    if p.sessions_count in SESSION_MILESTONES:
        replies.append(Reply(t(f"followup.milestone_{p.sessions_count}")))
    if before_hours < HOURS_MILESTONE <= p.hours_total:
        replies.append(Reply(t("followup.milestone_hours")))
    return replies


@keyword("WENT")
async def went_to_meeting(conv: Conversation, args: str) -> list[Reply]:
    """Count a meeting the person went to."""
    return await _answer(conv, AttendanceOutcome.ATTENDED)


@keyword("MISSED")
async def missed_meeting(conv: Conversation, args: str) -> list[Reply]:
    """Note a meeting the person did not make."""
    return await _answer(conv, AttendanceOutcome.MISSED)


@keyword("NORUN")
async def meeting_did_not_run(conv: Conversation, args: str) -> list[Reply]:
    """Flag to coordinators that a meeting did not run."""
    return await _answer(conv, AttendanceOutcome.NOT_RUNNING)


def _describe(offsets: list[int]) -> str:
    if offsets == [1440]:
        return t("remind.day_before")
    if offsets == [60]:
        return t("remind.hour_before")
    return t("remind.both")


@keyword("REMIND", "REMINDERS")
async def choose_reminders(conv: Conversation, args: str) -> list[Reply]:
    """Show or change when meeting reminders come."""
    p = conv.participant
    word = args.strip().upper().split(" ")[0] if args.strip() else ""
    current = [1440, 60] if p.reminder_offsets is None else list(p.reminder_offsets)
    if not word:
        if not current:
            return [Reply(t("remind.status_off"))]
        return [Reply(t("remind.status_on", when=_describe(current)))]
    if word not in REMIND_CHOICES:
        return [Reply(t("remind.bad"))]
    offsets = REMIND_CHOICES[word]
    p.reminder_offsets = list(offsets)
    p.updated_at = conv.now
    conv.session.add(p)
    await cancel_reminders_for(conv.session, participant_id=p.id or 0, keep_offsets=offsets,
                               now=conv.now)
    if not offsets:
        return [Reply(t("remind.off"))]
    return [Reply(t("remind.set", when=_describe(offsets)))]
