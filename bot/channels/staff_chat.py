"""Coordinators' Telegram commands wired to the scheduler (the logic: handlers.staff_commands)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.inbox import ChannelRuntime
from bot.channels.render import render_sms, sms_segments
from handlers.engine import HandleResult
from handlers.staff_commands import BroadcastPreview, handle_staff_message
from handlers.types import Inbound
from scheduler import meeting_changes
from scheduler.broadcast import (
    Audience,
    audience_of,
    channel_counts,
    clean_text,
    send_broadcast,
)
from storage.db import session_scope


@dataclass(frozen=True)
class SchedulerStaffTools:
    """StaffTools on the scheduler: meeting changes, broadcasts, and SMS parts as sent."""

    engine: AsyncEngine
    link_key: str

    async def suspend(self, *, meeting_id: int, by: str, now: datetime) -> int:
        """Suspend a meeting; return how many people were told."""
        result = await meeting_changes.suspend(self.engine, meeting_id=meeting_id, by=by,
                                               now=now)
        return result.told

    async def confirm_running(self, *, meeting_id: int, by: str, now: datetime) -> None:
        """Record that the meeting runs."""
        await meeting_changes.confirm_running(self.engine, meeting_id=meeting_id, by=by,
                                              now=now)

    async def preview(self, *, meeting_slug: str, text: str) -> BroadcastPreview:
        """Count a meeting's subscribers per channel and the SMS parts the text takes."""
        text = clean_text(text)  # as the console and send_broadcast take it (AudienceError)
        async with session_scope(self.engine) as session:
            people = await audience_of(session, Audience(meeting_slug=meeting_slug))
        # As the SMS sender charges it (TwilioSender.cost): the text as rendered for SMS.
        return BroadcastPreview(text=text, by_channel=channel_counts(people),
                                sms_segments=sms_segments(render_sms(text)))

    async def broadcast(self, *, meeting_slug: str, text: str, by: str, now: datetime) -> int:
        """Queue the news to a meeting's subscribers; return how many were queued."""
        result = await send_broadcast(self.engine, audience=Audience(meeting_slug=meeting_slug),
                                      text=text, created_by=by, now=now)
        return int(result.get("queued", 0))


async def receive_staff(runtime: ChannelRuntime, inbound: Inbound) -> HandleResult | None:
    """Answer a staff chat or a staff link code; None if the participant engine should."""
    tools = SchedulerStaffTools(runtime.engine, runtime.settings.secret_key.get_secret_value())
    return await handle_staff_message(runtime.engine, inbound, tools,
                                      runtime.context(inbound.received_at or runtime.clock()))
