"""Reminders for chosen meetings and appointments, "did you make it?", and meeting changes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.channels import traits
from handlers.meeting_text import (
    clip_words,
    clock,
    day_word,
    meeting_place,
    short_name,
    tidy,
    zone_note,
)
from handlers.meeting_text import when as when_text
from handlers.readers import writing_to
from handlers.textin import plain_letters
from handlers.texts import current_reader, t
from handlers.tools.discreet import telling
from meeting_finder.offerable import is_join_link
from meeting_finder.recurrence import local_start, meeting_zone, next_occurrence
from scheduler.quiet import before_quiet, zone_of
from storage.meetings_q import meetings_by_id
from storage.models import (
    Appointment,
    Meeting,
    MeetingStatus,
    MessageKind,
    OutboundMessage,
    Participant,
    Priority,
)
from storage.scheduling import (
    Recipient,
    queued,
    sent_since,
    subscriptions,
    upcoming_appointments,
)

if TYPE_CHECKING:
    from scheduler.planning import Work

DEFAULT_OFFSETS = [1440, 60]
LATE_GRACE = timedelta(minutes=15)  # a reminder planned this late still goes
DAY_BEFORE_AT = time(18, 0)  # appointment reminder the evening before
MORNING_AT = time(8, 0)
FOLLOWUP_AFTER_END = timedelta(hours=1)
DEFAULT_LENGTH = timedelta(minutes=90)
LINK_MAX = 120  # a longer join link is left out when there is a dial-in
TOWN_MAX = 24  # a longer town or region is no short place name
_DEMO = re.compile(r"\s*\(demo(?: address)?\)", re.IGNORECASE)
_UK_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b", re.IGNORECASE)
_COUNTRIES = frozenset({"uk", "united kingdom", "gb", "great britain", "england", "wales",
                        "scotland", "northern ireland", "usa", "us", "united states",
                        "canada", "ireland", "germany", "deutschland", "netherlands",
                        "nederland", "south africa", "mexico", "australia", "new zealand"})


def as_sent(text: str, channel: str) -> str:
    """Return a name or place as the channel shows it cheaply (plain letters by SMS)."""
    return text if traits(channel).rich_text else plain_letters(text)


def _meeting_time(meeting: Meeting, start: datetime, zone: ZoneInfo) -> str:
    """Return e.g. "1:30pm (UK time)": the reader's clock, saying so for another zone's meeting."""
    home = start.astimezone(meeting_zone(meeting))
    return f"{clock(home, zone)}{zone_note([home], zone)}"


def meeting_when(meeting: Meeting, start: datetime, zone: ZoneInfo) -> str:
    """Return e.g. "Tue 1 Dec 1:30pm (UK time)" on the reader's calendar and clock."""
    return when_text(start.astimezone(meeting_zone(meeting)), zone)


def reminder_due(start: datetime, offset_minutes: int, zone: ZoneInfo) -> datetime:
    """Return when a reminder `offset_minutes` before `start` goes.

    Whole days are counted on the wall clock, so "the day before" a 7pm meeting is 7pm local
    the evening before even when the clocks change overnight; the rest is plain minutes.
    """
    days, minutes = divmod(max(0, offset_minutes), 1440)
    local = start.astimezone(zone)
    base = local_start(local.date() - timedelta(days=days), local.time(), zone)
    return (base - timedelta(minutes=minutes)).astimezone(UTC)


def day_start(moment: datetime, zone: ZoneInfo) -> datetime:
    """Return local midnight at the start of `moment`'s day in `zone`, as UTC."""
    return local_start(moment.astimezone(zone).date(), time(0), zone).astimezone(UTC)


def occurrences(meeting: Meeting, *, now: datetime, horizon: timedelta) -> list[datetime]:
    """Return the meeting's starts after `now` and within `horizon`, in UTC."""
    out: list[datetime] = []
    cursor = now
    while True:
        start = next_occurrence(meeting, cursor)
        if start is None or start > now + horizon:
            return out
        out.append(start.astimezone(UTC))
        cursor = start


def where_for(meeting: Meeting, channel: str, *, join: bool = False) -> str:
    """Return where to go, or for an online meeting (or with `join`) how to join it."""
    if join or str(meeting.attendance) == "online":
        url = (meeting.conference_url or "").strip() if is_join_link(meeting.conference_url) \
            else ""
        phone = (meeting.conference_phone or "").strip()
        if phone and len(url) > LINK_MAX:
            url = ""  # the dial-in is enough; a long link would crowd the text out
        if url and phone:
            return t("reminder.join_both", url=url, phone=phone)
        if url or phone:
            return t("reminder.join_link", url=url) if url else t("reminder.join_dial",
                                                                  phone=phone)
        return t("reminder.online")
    plain = not traits(channel).rich_text
    where = meeting_place(meeting, plain=plain)
    return where if len(where) <= 60 else meeting_place(meeting, plain=plain, level=3)


def town_of(meeting: Meeting) -> str:
    """Return a short town for a discreet text: the last plain part of the address (not a
    street, postcode, state or country), else the region, else the postcode; "" if none
    is short and tells nothing."""
    parts = [_UK_POSTCODE.sub("", _DEMO.sub("", p)).strip() for p in
             (meeting.address or "").split(",")]
    towns = [p for p in reversed(parts) if p and not any(c.isdigit() for c in p)
             and p.lower() not in _COUNTRIES and not (len(p) == 2 and p.isupper())]
    for candidate in [*towns, _DEMO.sub("", meeting.region or "").strip(),
                      meeting.postcode or ""]:
        if candidate and len(candidate) <= TOWN_MAX and not telling(candidate):
            return " ".join(candidate.split())
    return ""


def discreet_values(meeting: Meeting, channel: str, *, join: bool = False) -> dict[str, str]:
    """Return `town` ("Hanley", "online", "usual") and `place` (", Hanley", or how to join
    when that tells nothing) for a discreet text about a meeting."""
    if join or str(meeting.attendance) == "online":
        town = t("reminder.online")
        where = where_for(meeting, channel, join=True)
        return {"town": town, "place": f", {town if telling(where) else where}"}
    town = as_sent(town_of(meeting), channel)
    return {"town": town or t("discreet_texts.place_unknown"),
            "place": f", {town}" if town else ""}


def name_for(meeting: Meeting, channel: str) -> str:
    """Return the meeting's name as a text to this channel shows it."""
    return short_name(meeting, plain=not traits(channel).rich_text)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%MZ")


async def plan_meetings(
    session: AsyncSession,
    people: dict[int, Recipient],
    *,
    now: datetime,
    horizon: timedelta,
    work: Work,
    meeting_id: int | None = None,
) -> None:
    """Plan reminders for chosen meetings (or one); cancel or move those whose meeting changed."""
    wanted: dict[tuple[int, int], list[datetime]] = {}
    meetings: dict[int, Meeting] = {}
    for pid, meeting in await subscriptions(session, meeting_id=meeting_id):
        if meeting.id is None:
            continue
        meetings[meeting.id] = meeting
        running = meeting.status == MeetingStatus.ACTIVE and meeting.start_time is not None
        starts = occurrences(meeting, now=now, horizon=horizon) if running else []
        wanted[(pid, meeting.id)] = starts
        rec = people.get(pid)
        if rec is None:
            continue
        offsets = rec.participant.reminder_offsets
        offsets = DEFAULT_OFFSETS if offsets is None else offsets
        zone = zone_of(rec.participant)  # "tomorrow" and the time are the reader's own
        for start in starts:
            for offset in offsets:
                due, not_after = reminder_due(start, offset, zone), start
                if offset >= 1440:  # says "tomorrow": it must go the day before, or not at all
                    due = before_quiet(rec.participant, due)
                    not_after = min(start, day_start(start, zone))
                if due < now - LATE_GRACE or due >= not_after:
                    continue
                key = "meeting_day" if offset >= 1440 else "meeting_soon"
                with writing_to(rec.participant, rec.channel):
                    body = tidy(t(f"reminder.{key}", meeting=name_for(meeting, rec.channel),
                                  time=_meeting_time(meeting, start, zone),
                                  where=where_for(meeting, rec.channel),
                                  day=day_word(start, zone, None).split(" ")[0],
                                  **discreet_values(meeting, rec.channel)))
                work.want(
                    dedupe_key=f"rem:{meeting.id}:{pid}:{stamp(start)}:{offset}",
                    due_at=due, channel=rec.channel, address=rec.address, body=body,
                    participant_id=pid, kind=MessageKind.REMINDER,
                    priority=Priority.SCHEDULED, not_after=not_after, meeting_id=meeting.id,
                    meta={"occurrence": start.isoformat(), "offset": offset})
    await _withdraw_changed(session, people, wanted, meetings, now=now, work=work,
                            meeting_id=meeting_id)


async def _withdraw_changed(
    session: AsyncSession,
    people: dict[int, Recipient],
    wanted: dict[tuple[int, int], list[datetime]],
    meetings: dict[int, Meeting],
    *,
    now: datetime,
    work: Work,
    meeting_id: int | None = None,
) -> None:
    """Cancel queued reminders no plan wants any more; tell people when the meeting changed.

    A person is told once per occurrence, and only if one of its reminders is still queued
    when the cancel is written (a coordinator's change that already cancelled and told wins).
    """
    groups: dict[tuple[int, int, str], list[OutboundMessage]] = {}
    for row in await queued(session, kinds=(MessageKind.REMINDER,), key_prefix="rem:"):
        if meeting_id is not None and row.meeting_id != meeting_id:
            continue
        meta = row.meta or {}
        occurrence = datetime.fromisoformat(meta.get("occurrence", now.isoformat()))
        pid, mid = row.participant_id or 0, row.meeting_id or 0
        if occurrence <= now:
            continue  # started already: the dispatcher expires it
        starts = wanted.get((pid, mid))
        same_time = starts is not None and occurrence in starts
        if same_time:
            rec = people.get(pid)
            offsets = rec.participant.reminder_offsets if rec else None
            offsets = DEFAULT_OFFSETS if offsets is None else offsets
            if meta.get("offset") in offsets and rec is not None:
                continue
        meeting, rec = meetings.get(mid), people.get(pid)
        if same_time or starts is None or meeting is None or rec is None:
            work.cancel([row], "plan changed")  # a changed reminder choice, unsubscribed or
            continue  # unreachable: say nothing
        groups.setdefault((pid, mid, occurrence.isoformat()), []).append(row)
    for (pid, mid, iso), rows in groups.items():
        occurrence = datetime.fromisoformat(iso)
        notice = _change_notice(people[pid], meetings[mid], wanted[(pid, mid)], occurrence)
        work.withdraw(rows, "plan changed", notice)


def _change_notice(rec: Recipient, meeting: Meeting, starts: list[datetime],
                   occurrence: datetime) -> dict[str, Any] | None:
    """Return the one text telling a person their meeting moved or is off, or None."""
    zone, name, mid = zone_of(rec.participant), name_for(meeting, rec.channel), meeting.id
    with writing_to(rec.participant, rec.channel):
        town = discreet_values(meeting, rec.channel)["town"]
        if starts and any(abs(s - occurrence) < timedelta(days=4) for s in starts):
            new = min(starts, key=lambda s: abs(s - occurrence))
            body = t("reminder.meeting_moved", meeting=name, town=town,
                     when=meeting_when(meeting, new, zone))
        elif not starts:
            body = t("reminder.meeting_cancelled", meeting=name, town=town,
                     when=meeting_when(meeting, occurrence, zone))
        else:
            return None  # it runs, just not near that day: the new reminders say enough
    pid = rec.participant.id
    return {"channel": rec.channel, "address": rec.address, "body": body,
            "dedupe_key": f"mchg:{mid}:{pid}:{stamp(occurrence)}", "participant_id": pid,
            "kind": MessageKind.REMINDER, "priority": Priority.SCHEDULED,
            "not_after": occurrence + timedelta(days=1), "meeting_id": mid,
            "meta": {"occurrence": occurrence.isoformat(), "change": True}}


async def plan_appointments(
    session: AsyncSession,
    people: dict[int, Recipient],
    *,
    now: datetime,
    horizon: timedelta,
    work: Work,
) -> None:
    """Plan reminders the evening before and on the morning of each appointment."""
    # One read of every queued appointment reminder, not one per appointment: the key
    # prefix cannot use an index, so each such read scans the whole outbox.
    stale: dict[str, list[OutboundMessage]] = {}
    for row in await queued(session, kinds=(MessageKind.REMINDER,), key_prefix="appt:"):
        stale.setdefault(row.dedupe_key.split(":")[1], []).append(row)
    for appt in await upcoming_appointments(session, start=now, end=now + horizon):
        rec = people.get(appt.participant_id)
        keep = set()
        if rec is not None and not appt.cancelled:
            for name, due, not_after in _appointment_times(appt, rec.participant):
                if due < now - LATE_GRACE or due >= not_after:
                    continue
                key = f"appt:{appt.id}:{name}:{stamp(appt.starts_at)}"
                keep.add(key)
                _plan_appointment(work, rec, appt, name, key, due=due, not_after=not_after)
        work.cancel([r for r in stale.get(str(appt.id), []) if r.dedupe_key not in keep],
                    "appointment changed")


def _appointment_times(
    appt: Appointment, participant: Participant
) -> list[tuple[str, datetime, datetime]]:
    """Return (name, due, not after) for the evening-before and morning reminders."""
    zone = zone_of(participant)
    local = appt.starts_at.astimezone(zone)
    day = local_start(local.date() - timedelta(days=1), DAY_BEFORE_AT, zone).astimezone(UTC)
    # "Tomorrow" must go the day before: before quiet hours, and never after midnight.
    out = [("day", before_quiet(participant, day),
            min(appt.starts_at, day_start(appt.starts_at, zone)))]
    morning = local_start(local.date(), MORNING_AT, zone).astimezone(UTC)
    if appt.starts_at - morning >= timedelta(hours=1):
        out.append(("morning", morning, appt.starts_at))
    return out


def _plan_appointment(
    work: Work, rec: Recipient, appt: Appointment, name: str, key: str, *,
    due: datetime, not_after: datetime,
) -> None:
    """Plan one appointment reminder."""
    zone = zone_of(rec.participant)
    with writing_to(rec.participant, rec.channel):
        shown = appt.place or ""
        if current_reader().discreet and telling(shown):
            shown = ""  # "Stoke Probation Office" says what the appointment is
        place = f", {clip_words(as_sent(shown, rec.channel), 60)}" if shown else ""
        body = tidy(t("reminder.appointment_day" if name == "day"
                      else "reminder.appointment_morning",
                      what=t(f"reminder.what_{appt.kind}"), time=clock(appt.starts_at, zone),
                      place=place))
    work.want(
        dedupe_key=key, due_at=due, channel=rec.channel, address=rec.address, body=body,
        participant_id=rec.participant.id, kind=MessageKind.REMINDER,
        priority=Priority.SCHEDULED, not_after=not_after, appointment_id=appt.id,
        meta={"appointment": appt.starts_at.isoformat()})


async def plan_followups(
    session: AsyncSession, people: dict[int, Recipient], *, now: datetime, work: Work
) -> None:
    """After a meeting someone was reminded of, ask whether they made it."""
    done = await sent_since(session, kind=MessageKind.REMINDER, key_prefix="rem:",
                            since=now - timedelta(days=3))
    meetings = await meetings_by_id(session, sorted({r.meeting_id for r in done
                                                     if r.meeting_id is not None}))
    for row in done:
        rec = people.get(row.participant_id or 0)
        meeting = meetings.get(row.meeting_id or 0)
        occurrence = (row.meta or {}).get("occurrence")
        if rec is None or meeting is None or occurrence is None:
            continue
        if meeting.status != MeetingStatus.ACTIVE:
            continue
        start = datetime.fromisoformat(occurrence)
        due = _meeting_end(meeting, start) + FOLLOWUP_AFTER_END
        with writing_to(rec.participant, rec.channel):
            choices = [[t("followup.went_label"), "WENT"],
                       [t("followup.missed_label"), "MISSED"],
                       [t("followup.norun_label"), "NORUN"]]
            body = t("followup.ask", meeting=name_for(meeting, rec.channel),
                     **discreet_values(meeting, rec.channel))
        work.want(
            dedupe_key=f"fu:{meeting.id}:{rec.participant.id}:{stamp(start)}",
            due_at=due, channel=rec.channel, address=rec.address, body=body,
            participant_id=rec.participant.id,
            kind=MessageKind.FOLLOWUP, priority=Priority.SCHEDULED,
            not_after=start + timedelta(days=2), meeting_id=meeting.id, choices=choices,
            meta={"occurrence": start.isoformat()})


def _meeting_end(meeting: Meeting, start: datetime) -> datetime:
    """Return when an occurrence ends (its end time, else 90 minutes after it starts)."""
    if meeting.end_time is None or meeting.start_time is None:
        return start + DEFAULT_LENGTH
    zone = meeting_zone(meeting)
    local = start.astimezone(zone)
    end = local_start(local.date(), meeting.end_time, zone)
    if end <= start:
        end = local_start(local.date() + timedelta(days=1), meeting.end_time, zone)
    return end.astimezone(UTC)

