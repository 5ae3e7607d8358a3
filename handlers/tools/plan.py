"""PLAN: the aftercare plan as the participant sees it, and sessions toward 10."""

from __future__ import annotations

from datetime import datetime

from handlers.conversation import Conversation
from handlers.registry import keyword, menu_item
from handlers.texts import t
from handlers.tools.common import short
from handlers.types import Reply
from meeting_finder.recurrence import next_occurrence
from storage.models import Appointment, KeyContact, Meeting
from storage.subscriptions import chosen_meetings
from storage.tools_q import key_contacts, plan_goals, upcoming_appointments

SESSIONS_GOAL = 10
HOURS_GOAL = 20
SHOWN = 2  # items of each kind shown in one message
ITEM_MAX = 40

menu_item(40, "menu.plan", "PLAN")


def _when(start: datetime, conv: Conversation) -> str:
    local = start.astimezone(conv.ctx.timezone)
    hour = local.strftime("%I").lstrip("0")
    minute = "" if local.minute == 0 else local.strftime(":%M")
    return f"{local.strftime('%a')} {local.day} {local.strftime('%b')} {hour}{minute}" \
           f"{local.strftime('%p').lower()}"


def _meeting_line(meeting: Meeting, conv: Conversation) -> str:
    start = next_occurrence(meeting, conv.now)
    when = _when(start, conv) if start else t("plan.no_time")
    return t("plan.meeting", name=short(meeting.name, ITEM_MAX), when=when)


def _appointment_line(appt: Appointment, conv: Conversation) -> str:
    where = f", {short(appt.place, 30)}" if appt.place else ""
    return t("plan.appointment", kind=t(f"plan.kind_{appt.kind}"),
             when=_when(appt.starts_at, conv), where=where)


def _contact_line(contact: KeyContact) -> str:
    role = f" ({short(contact.role, 30)})" if contact.role else ""
    phone = f" {contact.phone}" if contact.phone else ""
    return t("plan.contact", name=short(contact.name, 30), role=role, phone=phone)


@keyword("PLAN", "MYPLAN")
async def show_plan(conv: Conversation, args: str) -> list[Reply]:
    """Show goals, chosen meetings, next appointments, key contacts and progress."""
    p = conv.participant
    pid = p.id or 0
    goals = await plan_goals(conv.session, pid)
    meetings = await chosen_meetings(conv.session, pid)
    appts = await upcoming_appointments(conv.session, pid, now=conv.now, limit=SHOWN)
    contacts = (await key_contacts(conv.session, pid))[:SHOWN]
    lines = [t("plan.title", name=p.display_name)]
    lines.append(t("plan.goals", goals="; ".join(short(g, ITEM_MAX) for g in goals[:3]))
                 if goals else t("plan.no_goals"))
    lines += [_meeting_line(m, conv) for m in meetings[:SHOWN]] or [t("plan.no_meetings")]
    lines += [_appointment_line(a, conv) for a in appts]
    lines += [_contact_line(c) for c in contacts]
    hours = f"{p.hours_total:g}"
    lines.append(t("plan.progress", sessions=p.sessions_count, goal=SESSIONS_GOAL,
                   hours=hours, hours_goal=HOURS_GOAL))
    return [Reply("\n".join(lines))]
