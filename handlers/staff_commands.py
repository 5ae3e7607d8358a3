"""Coordinators' commands on Telegram: link with a console code, /meetings and /broadcast.

A chat linked to a staff account (storage.staff_telegram_q) is a staff chat: its messages
never reach the participant engine. Everyone else's messages, /meetings and /broadcast
included, go on to the engine as before; only `/staff CODE` (or the `/start staff-CODE`
deep link) is read here from an unlinked chat. Every meeting a button names is checked
against the coordinator's region again when it is pressed.

What a staff chat was last asked lives in the meta of the reply that asked it:
`/broadcast` -> meeting buttons -> "type the news" {at: broadcast_text} -> the preview
{at: broadcast_preview, text} with Send / Cancel -> sent once (claimed, so a second press
does nothing). Changes and broadcasts run through `StaffTools`, which the bot wires to the
scheduler, after the command's own transaction commits; the answer is written after.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.channels import traits
from handlers.engine import HandleResult
from handlers.meeting_text import short_name, when
from handlers.textin import clean, command_word
from handlers.texts import all_texts, t
from handlers.types import Choice, EngineContext, Inbound, Reply
from storage.audit_q import record_staff_action, staff_actor
from storage.db import session_scope
from storage.meeting_scope_q import meeting_for_staff, meetings_for_staff
from storage.models import Meeting, MessageKind, Priority, StaffRole, StaffUser
from storage.norun_q import stale_meetings
from storage.outbox import enqueue
from storage.participants import find_identity, record_inbound
from storage.staff_telegram_q import (
    MAX_FAILED_STAFF_LINKS_PER_HOUR,
    STAFF_KEY_PREFIX,
    claim_once,
    failed_staff_links,
    last_staff_reply,
    record_failed_staff_link,
    redeem_staff_link_code,
    staff_for_chat,
    staff_link_hash,
    staff_reply_by_key,
    staff_step,
)

logger = logging.getLogger(__name__)
STAFF_ROLES = frozenset({StaffRole.COORDINATOR, StaffRole.ADMIN})
PAYLOAD = "staff:"  # every staff button's callback data starts so
DEEP_LINK = "staff-"  # `/start staff-CODE` from the console's link
ASK_TEXT_FOR = timedelta(minutes=30)  # "type the news" waits this long for the text
PREVIEW_FOR = timedelta(hours=1)  # a preview's Send works this long
MAX_STALE = 10  # stale meetings shown, one message each
MAX_BUTTONS = 20  # meetings offered for a broadcast
MAX_TEXT = 640  # characters in a broadcast: a few SMS at most
REPLY_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True)
class BroadcastPreview:
    """What a broadcast would be: its text as queued, people per channel, SMS parts."""

    text: str
    by_channel: Mapping[str, int]
    sms_segments: int


class StaffTools(Protocol):
    """What staff commands need from outside the engine (the bot wires the scheduler in)."""

    @property
    def link_key(self) -> str:
        """Return the secret staff link codes are hashed with."""

    async def suspend(self, *, meeting_id: int, by: str, now: datetime) -> int:
        """Suspend a meeting; return how many people were told."""

    async def confirm_running(self, *, meeting_id: int, by: str, now: datetime) -> None:
        """Record that the meeting runs."""

    async def preview(self, *, meeting_slug: str, text: str) -> BroadcastPreview:
        """Count a broadcast's audience; raise ValueError if the text cannot be sent."""

    async def broadcast(self, *, meeting_slug: str, text: str, by: str, now: datetime) -> int:
        """Queue a broadcast to a meeting's subscribers; return how many were queued."""


@dataclass(frozen=True)
class Said:
    """One reply to a staff chat, and the step it leaves the chat at."""

    reply: Reply
    step: dict[str, Any] | None = None


@dataclass
class Answer:
    """What a staff message leads to: replies now, or an act to run after commit first."""

    said: list[Said] = field(default_factory=list)
    act: Callable[[], Awaitable[Answer]] | None = None  # its answer replaces this one
    audit: tuple[str, dict[str, Any]] | None = None  # what a staff member did, for the trail


def _say(key: str, **values: object) -> Answer:
    return Answer([Said(Reply(t(key, **values)))])


def link_code_in(text: str) -> str | None:
    """Return the code in `/staff CODE` or `/start staff-CODE` ("" if /staff alone), or None."""
    head, rest = command_word(text)
    if not text.startswith("/"):
        return None
    if head == "STAFF":
        return rest
    if head == "START" and rest.lower().startswith(DEEP_LINK):
        return rest[len(DEEP_LINK):]
    return None


async def handle_staff_message(
    engine: AsyncEngine, inbound: Inbound, tools: StaffTools, ctx: EngineContext
) -> HandleResult | None:
    """Answer a staff chat or a staff link code; None means the participant engine's turn."""
    provider_id = inbound.provider_id or f"local-{uuid.uuid4().hex}"
    text = clean(inbound.payload or inbound.text)
    async with session_scope(engine) as session:
        staff = await staff_for_chat(session, inbound.address)
        code = link_code_in(text)
        if staff is None and code is None:
            return None
        if not await record_inbound(session, channel=inbound.channel, provider_id=provider_id,
                                    body=None, now=ctx.now, address=inbound.address):
            return HandleResult(duplicate=True)
        if staff is None:
            answer = await _link(session, inbound, code or "", tools, ctx.now)
        else:
            answer = await _staff_message(session, staff, inbound, text, provider_id, ctx,
                                            tools)
    if answer.act is not None:
        answer = await answer.act()
    async with session_scope(engine) as session:
        if answer.audit is not None and staff is not None and staff.id is not None:
            action, detail = answer.audit
            await record_staff_action(session, staff_id=staff.id, action=action, now=ctx.now,
                                      detail={**detail, "via": "telegram"})
        keys = await _write(session, inbound, provider_id, answer.said, ctx.now)
    return HandleResult(replies=[s.reply for s in answer.said], outbox_keys=keys)


async def _write(session: AsyncSession, inbound: Inbound, provider_id: str,
                 said: list[Said], now: datetime) -> list[str]:
    """Write the replies to the outbox (urgent lane), each noting the step it leaves."""
    keys = []
    for n, item in enumerate(said):
        key = _reply_key(inbound, provider_id, n)
        meta: dict[str, Any] = {"seq": n, "always": True, "staff": item.step or {}}
        await enqueue(session, channel=inbound.channel, address=inbound.address,
                      body=item.reply.text, dedupe_key=key, now=now, kind=MessageKind.REPLY,
                      priority=Priority.REPLY, not_after=now + REPLY_LIFETIME,
                      choices=[[c.label, c.payload] for c in item.reply.choices] or None,
                      meta=meta)
        keys.append(key)
    return keys


def _reply_key(inbound: Inbound, provider_id: str, n: int) -> str:
    return f"{STAFF_KEY_PREFIX}{inbound.channel}:{provider_id}:{n}"


async def _link(session: AsyncSession, inbound: Inbound, code: str, tools: StaffTools,
                now: datetime) -> Answer:
    """Link this chat to the staff account whose live code was sent."""
    where = {"channel": inbound.channel, "address": inbound.address}
    if not code.strip():
        return _say("staff_bot.link_usage")
    if await failed_staff_links(session, now=now, **where) >= MAX_FAILED_STAFF_LINKS_PER_HOUR:
        return _say("staff_bot.link_too_many")
    if await find_identity(session, **where) is not None:
        return _say("staff_bot.link_participant")  # staff chats never reach the engine
    code_hash = staff_link_hash(code, key=tools.link_key)
    staff = None
    if code_hash is not None:
        staff = await redeem_staff_link_code(session, code_hash=code_hash, roles=STAFF_ROLES,
                                             chat_id=inbound.address, now=now)
    if staff is None or staff.id is None:
        await record_failed_staff_link(session, now=now, **where)
        return _say("staff_bot.link_wrong")
    await record_staff_action(session, staff_id=staff.id, action="telegram_linked", now=now,
                              detail={"via": "telegram"})
    logger.info("staff %s linked a telegram chat", staff.id)
    return Answer([Said(Reply(t("staff_bot.linked", name=staff.display_name))),
                   Said(Reply(t("staff_bot.help")))])


async def _staff_message(session: AsyncSession, staff: StaffUser, inbound: Inbound, text: str,
                         provider_id: str, ctx: EngineContext, tools: StaffTools) -> Answer:
    """Answer a message or a button from a linked staff chat."""
    if staff.role not in STAFF_ROLES:
        return _say("staff_bot.not_allowed")
    if inbound.payload is not None and inbound.payload.startswith(PAYLOAD):
        return await _pressed(session, staff, inbound, ctx.now, tools)
    head, rest = command_word(text)
    command = text.startswith("/")
    if command and head == "MEETINGS":
        return await _stale_list(session, staff, ctx)
    if command and head == "BROADCAST":
        return await _choose_meeting(session, staff, rest)
    if command and head == "CANCEL":
        return _say("staff_bot.cancelled")
    if link_code_in(text) is not None:
        return _say("staff_bot.already_linked")
    if not command and inbound.payload is None and inbound.location is None:
        last = await last_staff_reply(session, channel=inbound.channel, address=inbound.address)
        step = staff_step(last, now=ctx.now, within=ASK_TEXT_FOR)
        if step.get("at") == "broadcast_text":
            return await _draft(session, staff, inbound, step, provider_id, tools)
    return _say("staff_bot.help")


async def _stale_list(session: AsyncSession, staff: StaffUser, ctx: EngineContext) -> Answer:
    """List the coordinator's meetings flagged stale, each with Confirm and Suspend."""
    stale = await stale_meetings(session, await meetings_for_staff(session, staff), now=ctx.now)
    if not stale:
        return _say("staff_bot.no_stale")
    said = []
    for item in stale[:MAX_STALE]:
        m = item.meeting
        text = t("staff_bot.stale_meeting", meeting=short_name(m, plain=False),
                 people=item.reporters, reports=item.reports,
                 when=when(item.last_reported_at, ctx.timezone, ctx.now))
        said.append(Said(Reply(text, choices=(
            Choice(t("staff_bot.confirm_label"), f"{PAYLOAD}ok:{m.id}"),
            Choice(t("staff_bot.suspend_label"), f"{PAYLOAD}sus:{m.id}")))))
    if len(stale) > MAX_STALE:
        said.append(Said(Reply(t("staff_bot.stale_more", n=len(stale) - MAX_STALE))))
    return Answer(said)


async def _choose_meeting(session: AsyncSession, staff: StaffUser, words: str) -> Answer:
    """Offer the coordinator's meetings (those whose name has `words`) as buttons."""
    meetings = await meetings_for_staff(session, staff)
    if not meetings:
        return _say("staff_bot.no_meetings")
    wanted = words.strip().lower()
    found = [m for m in meetings if wanted in m.name.lower()]
    if not found:
        return _say("staff_bot.none_match")
    choices = tuple(Choice(short_name(m, plain=False), f"{PAYLOAD}bc:{m.id}")
                    for m in found[:MAX_BUTTONS])
    said = [Said(Reply(t("staff_bot.choose_meeting"), choices=choices))]
    if len(found) > MAX_BUTTONS:
        said.append(Said(Reply(t("staff_bot.choose_more", shown=MAX_BUTTONS, n=len(found)))))
    return Answer(said)


async def _pressed(session: AsyncSession, staff: StaffUser, inbound: Inbound, now: datetime,
                   tools: StaffTools) -> Answer:
    """Act on a staff button, checking the meeting is still the coordinator's."""
    kind, _, arg = (inbound.payload or "").removeprefix(PAYLOAD).partition(":")
    if kind in ("send", "drop"):
        return await _decide(session, staff, inbound, kind, arg, now, tools)
    meeting = await _scoped(session, staff, arg)
    if meeting is None or meeting.id is None or kind not in ("ok", "sus", "bc"):
        return _say("staff_bot.no_meeting")
    name = short_name(meeting, plain=False)
    if kind == "bc":
        ask = Reply(t("staff_bot.ask_text", meeting=name))
        return Answer([Said(ask, step={"at": "broadcast_text", "meeting_id": meeting.id})])
    return _change(meeting.id, name, suspend=kind == "sus", by=staff_actor(staff.id or 0),
                   now=now, tools=tools)


async def _scoped(session: AsyncSession, staff: StaffUser, meeting_id: object) -> Meeting | None:
    """Return the meeting if this staff member may manage it (a forged id finds nothing)."""
    text = str(meeting_id)
    if not text.isdigit() or len(text) > 12:
        return None
    return await meeting_for_staff(session, staff, int(text))


def _change(meeting_id: int, name: str, *, suspend: bool, by: str, now: datetime,
            tools: StaffTools) -> Answer:
    """Return the act of suspending a meeting or confirming it runs."""
    action = "meeting_suspended" if suspend else "meeting_confirmed_running"
    audit = (action, {"meeting_id": meeting_id})

    async def act() -> Answer:
        try:
            if not suspend:
                await tools.confirm_running(meeting_id=meeting_id, by=by, now=now)
                return Answer([Said(Reply(t("staff_bot.confirmed", meeting=name)))], audit=audit)
            told = await tools.suspend(meeting_id=meeting_id, by=by, now=now)
        except ValueError:  # MeetingChangeError: gone since the button was shown
            return _say("staff_bot.no_meeting")
        text = t("staff_bot.suspended_one") if told == 1 else t("staff_bot.suspended", n=told)
        return Answer([Said(Reply(text))], audit=audit)

    return Answer(act=act)


async def _draft(session: AsyncSession, staff: StaffUser, inbound: Inbound,
                 step: dict[str, Any], provider_id: str, tools: StaffTools) -> Answer:
    """Take the typed news for the chosen meeting and show a preview with Send and Cancel."""
    meeting = await _scoped(session, staff, step.get("meeting_id"))
    if meeting is None or meeting.id is None:
        return _say("staff_bot.no_meeting")
    raw = _keep_lines(inbound.text)
    if not raw:
        return Answer([Said(Reply(t("staff_bot.empty")), step=step)])
    if len(raw) > MAX_TEXT:
        return Answer([Said(Reply(t("staff_bot.too_long", n=MAX_TEXT)), step=step)])
    slug, name, meeting_id = meeting.slug, short_name(meeting, plain=False), meeting.id

    async def act() -> Answer:
        try:
            preview = await tools.preview(meeting_slug=slug, text=raw)
        except ValueError as exc:  # the broadcast's own rules for a text
            return Answer([Said(Reply(t("staff_bot.bad_text", reason=str(exc))), step=step)])
        return Answer([Said(_preview_reply(preview, name, provider_id),
                            step={"at": "broadcast_preview", "meeting_id": meeting_id,
                                  "text": preview.text})])

    return Answer(act=act)


def _preview_reply(preview: BroadcastPreview, name: str, draft: str) -> Reply:
    """Show the news as it will go, who gets it by which channel, and its SMS parts."""
    body = t("staff_bot.preview", meeting=name, text=preview.text,
             n=sum(preview.by_channel.values()), channels=channel_line(preview.by_channel))
    if any(n and not traits(ch).rich_text for ch, n in preview.by_channel.items()):
        body += "\n" + t("staff_bot.preview_segments", n=preview.sms_segments)
    return Reply(body, choices=(Choice(t("staff_bot.send_label"), f"{PAYLOAD}send:{draft}"),
                                Choice(t("staff_bot.cancel_label"), f"{PAYLOAD}drop:{draft}")))


def _keep_lines(text: str) -> str:
    """Return typed news with control characters gone but its line breaks kept."""
    lines = [clean(line) for line in text.replace("\r\n", "\n").split("\n")]
    return "\n".join(lines).strip()


async def _decide(session: AsyncSession, staff: StaffUser, inbound: Inbound, kind: str,
                  draft: str, now: datetime, tools: StaffTools) -> Answer:
    """Send or drop a previewed broadcast, once, if it is this chat's and still in scope."""
    key = f"{STAFF_KEY_PREFIX}{inbound.channel}:{draft}:0"
    row = await staff_reply_by_key(session, channel=inbound.channel, address=inbound.address,
                                   dedupe_key=key)
    step = staff_step(row, now=now, within=PREVIEW_FOR)
    if step.get("at") != "broadcast_preview":
        return _say("staff_bot.too_old")
    meeting = await _scoped(session, staff, step.get("meeting_id"))
    if meeting is None or meeting.id is None:
        return _say("staff_bot.no_meeting")
    if not await claim_once(session, channel=inbound.channel, key=key, now=now):
        return _say("staff_bot.already_done")
    if kind == "drop":
        return _say("staff_bot.not_sent")
    slug, text, by = meeting.slug, str(step.get("text", "")), staff_actor(staff.id or 0)

    meeting_id = meeting.id

    async def act() -> Answer:
        try:
            queued = await tools.broadcast(meeting_slug=slug, text=text, by=by, now=now)
        except ValueError as exc:  # AudienceError: the broadcast's own rules said no
            return _say("staff_bot.bad_text", reason=str(exc))
        return Answer([Said(Reply(t("staff_bot.sent", n=queued)))],
                      audit=("broadcast_sent", {"meeting_id": meeting_id, "queued": queued}))

    return Answer(act=act)


def channel_line(by_channel: Mapping[str, int]) -> str:
    """Return e.g. "3 on Telegram, 2 by text message"."""
    known = all_texts()
    parts = [t(f"staff_bot.channel.{ch}", n=n) if f"staff_bot.channel.{ch}" in known
             else t("staff_bot.channel.other", n=n) for ch, n in by_channel.items() if n]
    return ", ".join(parts) or "0"
