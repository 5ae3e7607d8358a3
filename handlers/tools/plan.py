"""PLAN: the aftercare plan as the participant sees it, and sessions toward 10.

Every chosen meeting is listed, soonest first and numbered for INFO n and UNSAVE n. By SMS,
a plan too long for three segments sends the meetings in a message of their own.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from handlers.channels import traits
from handlers.conversation import Conversation
from handlers.meeting_text import (
    clip_words,
    clock,
    day_word,
    fits_sms,
    groups,
    meeting_name,
    mid_sentence,
    next_starts,
    reader_zone,
    short_name,
    tidy,
    when_for,
)
from handlers.registry import keyword, menu_item
from handlers.texts import t
from handlers.types import Reply
from storage.models import Appointment, KeyContact, Meeting
from storage.subscriptions import chosen_meetings
from storage.tools_q import key_contacts, plan_goals, upcoming_appointments

SESSIONS_GOAL = 10
HOURS_GOAL = 20
SHOWN = 2  # appointments and contacts shown in one message
ITEM_MAX = 40
ITEM_LIMITS = (ITEM_MAX, 24, 16)  # goals, places and contacts shortened to fit by SMS
NAME_LEVELS = (0, 4, 5)  # meeting names shortened by these rules until the list fits

menu_item(40, "menu.plan", "PLAN")


def _soonest_first(meetings: list[Meeting], now: datetime) -> list[list[Meeting]]:
    """Gather groups, and order them by next start; those not on or with no time go last."""
    merged = groups(meetings, lambda m: m, lambda m: bool(next_starts([m], now)))

    def key(group: list[Meeting]) -> tuple[bool, datetime]:
        starts = next_starts(group, now)
        return (not starts, starts[0] if starts else now)
    return sorted(merged, key=key)


def _meeting_lines(conv: Conversation, chosen: list[list[Meeting]], zone: ZoneInfo,
                   level: int) -> list[str]:
    plain = not traits(conv.channel).rich_text
    lines = []
    for n, group in enumerate(chosen, start=1):
        key = "meetings.plan_line" if len(group) == 1 else "meetings.plan_line_group"
        name = (meeting_name(group[0], plain=False) if not plain
                else short_name(group[0], plain=True) if level == 0
                else meeting_name(group[0], plain=True, level=level))
        lines.append(t(key, n=n, name=name, when=mid_sentence(when_for(group, zone, conv.now))))
    return lines


def _appointment_line(appt: Appointment, conv: Conversation, zone: ZoneInfo, limit: int
                      ) -> str:
    where = f", {clip_words(conv.echo(appt.place), limit)}" if appt.place else ""
    when = f"{day_word(appt.starts_at, zone, None)} {clock(appt.starts_at, zone)}"
    return t("plan.appointment", kind=t(f"plan.kind_{appt.kind}"), when=when, where=where)


def _contact_line(contact: KeyContact, conv: Conversation, limit: int) -> str:
    role = f" ({clip_words(conv.echo(contact.role), limit)})" if contact.role else ""
    phone = f" {contact.phone}" if contact.phone else ""
    return t("plan.contact", name=clip_words(conv.echo(contact.name), limit), role=role,
             phone=phone)


def _summary(conv: Conversation, goals: list[str], appts: list[Appointment],
             contacts: list[KeyContact], zone: ZoneInfo) -> tuple[list[str], list[str]]:
    """Return the lines before and after the meetings, shortened until three segments hold them."""
    p = conv.participant
    head: list[str] = []
    tail: list[str] = []
    for limit in ITEM_LIMITS:
        shown = "; ".join(clip_words(conv.echo(g), limit) for g in goals[:3])
        head = [t("plan.title", name=clip_words(conv.echo(p.display_name), ITEM_MAX)),
                t("plan.goals", goals=shown) if goals else t("plan.no_goals")]
        tail = [_appointment_line(a, conv, zone, limit) for a in appts]
        tail += [_contact_line(c, conv, limit) for c in contacts]
        tail.append(t("plan.progress", sessions=p.sessions_count, goal=SESSIONS_GOAL,
                      hours=f"{p.hours_total:g}", hours_goal=HOURS_GOAL))
        if traits(conv.channel).rich_text or fits_sms("\n".join([*head, *tail])):
            break
    return head, tail


def _fit(conv: Conversation, head: list[str], tail: list[str], meetings: list[list[Meeting]],
         zone: ZoneInfo) -> list[Reply]:
    """Return one message, or by SMS the plan and then its meetings if one would not fit."""
    footer = [t("meetings.plan_footer")] if meetings else []
    if traits(conv.channel).rich_text:
        lines = _meeting_lines(conv, meetings, zone, 0) or [t("plan.no_meetings")]
        return [Reply(tidy("\n".join([*head, *lines, *tail, *footer])))]
    lines = _meeting_lines(conv, meetings, zone, NAME_LEVELS[0]) or [t("plan.no_meetings")]
    whole = tidy("\n".join([*head, *lines, *tail, *footer]))
    if fits_sms(whole):
        return [Reply(whole)]
    for level in NAME_LEVELS:
        lines = _meeting_lines(conv, meetings, zone, level)
        listed = tidy("\n".join([t("meetings.plan_head"), *lines, *footer]))
        if fits_sms(listed):
            return [Reply(tidy("\n".join([*head, *tail]))), Reply(listed)]
    chunks = _chunks([t("meetings.plan_head"), *lines])
    if fits_sms("\n".join([*chunks[-1], *footer])):
        chunks[-1] += footer
    else:
        tail += footer
    return [Reply(tidy("\n".join(part))) for part in [[*head, *tail], *chunks]]


def _chunks(lines: list[str]) -> list[list[str]]:
    """Split a long list of meetings into parts of three segments each."""
    parts: list[list[str]] = [[]]
    for line in lines:
        if parts[-1] and not fits_sms("\n".join([*parts[-1], line])):
            parts.append([])
        parts[-1].append(line)
    return parts


@keyword("PLAN", "MYPLAN")
async def show_plan(conv: Conversation, args: str) -> list[Reply]:
    """Show goals, chosen meetings, next appointments, key contacts and progress."""
    pid = conv.participant.id or 0
    zone = reader_zone(conv.participant, conv.ctx.timezone)
    meetings = _soonest_first(await chosen_meetings(conv.session, pid), conv.now)
    appts = await upcoming_appointments(conv.session, pid, now=conv.now, limit=SHOWN)
    contacts = (await key_contacts(conv.session, pid))[:SHOWN]
    head, tail = _summary(conv, await plan_goals(conv.session, pid), appts, contacts, zone)
    if meetings:
        conv.update(_plan=[[m.id or 0 for m in g] for g in meetings], _numbers="plan")
    return _fit(conv, head, tail, meetings, zone)
