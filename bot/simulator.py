"""The staff simulator: try the real conversation engine as a throwaway participant.

The throwaway person writes on a simulator channel (`sim_sms` or `sim_telegram`, declared
in handlers.channels: they behave and render like SMS and Telegram) that no sender serves.
Each message goes through `handle_inbound` like a webhook's; in the same transaction every
queued row for the person is settled (`storage.simulator_q.take_over_queued`), so no
dispatcher anywhere ever sees one to claim. Ending purges the person and every row naming
them; so do starting another, signing out, and the worker's sweep of idle ones.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.channels.render import render_sms, render_telegram, sms_segments
from handlers.channels import traits
from handlers.engine import handle_inbound
from handlers.texts import t
from handlers.types import EngineContext, Inbound
from storage.audit_q import record_staff_action
from storage.models import Participant
from storage.participants import find_identity
from storage.simulator_q import (
    SimLine,
    create_simulated,
    purge,
    sim_address,
    simulated_of,
    take_over_queued,
    transcript,
)

logger = logging.getLogger(__name__)

# What the page offers -> the simulator channel that renders like it.
RENDERINGS = {"sms": "sim_sms", "telegram": "sim_telegram"}
RENDERING_LABELS = {"sms": "Text message (SMS)", "telegram": "Telegram"}
MAX_MESSAGE = 2000  # longer is refused on the page; over the engine's own limit gets its reply


@dataclass(frozen=True)
class Bubble:
    """One message as the phone shows it."""

    incoming: bool  # typed by the staff member, as the participant
    text: str
    buttons: tuple[tuple[str, str], ...] = ()  # Telegram inline buttons: (label, payload)
    location_button: str | None = None  # Telegram's "share location" keyboard button
    segments: int | None = None  # SMS: how many segments the text takes
    later: bool = False  # the service would send this later; the simulator does not wait


@dataclass(frozen=True)
class Simulation:
    """A staff member's simulated conversation."""

    participant_id: int
    rendering: str  # "sms" or "telegram"
    linked: bool  # has the throwaway person linked (typed the code) yet?
    bubbles: list[Bubble]


def rendering_of(channel: str) -> str:
    """Return how a simulator channel renders: "telegram" (buttons) or "sms"."""
    return "telegram" if traits(channel).buttons else "sms"


def bubble(channel: str, line: SimLine) -> Bubble:
    """Render one stored message the way the phone on this channel would show it."""
    if line.incoming:
        return Bubble(True, line.body)
    if traits(channel).buttons:
        _html, markup = render_telegram(line.body, line.choices, line.request_location)
        buttons = tuple((row[0]["text"], row[0]["callback_data"])
                        for row in (markup or {}).get("inline_keyboard", []))
        location = t("meetings.share_location") if markup and "keyboard" in markup else None
        return Bubble(False, line.body, buttons, location, later=line.later)
    text = render_sms(line.body, line.choices)
    return Bubble(False, text, segments=sms_segments(text), later=line.later)


async def current(session: AsyncSession, staff_id: int) -> Participant | None:
    """Return the staff member's running simulation's participant, if any."""
    found = await simulated_of(session, staff_id)
    return found[0] if found else None


async def simulation(session: AsyncSession, staff_id: int) -> Simulation | None:
    """Return the staff member's running simulation, rendered, if any."""
    p = await current(session, staff_id)
    if p is None or p.id is None:
        return None
    channel = str(p.preferred_channel)
    lines = await transcript(session, p)
    linked = await find_identity(session, channel=channel, address=sim_address(p.id)) is not None
    return Simulation(p.id, rendering_of(channel), linked, [bubble(channel, x) for x in lines])


async def start(
    session: AsyncSession, *, staff_id: int, rendering: str, linked: bool, ctx: EngineContext
) -> str | None:
    """Erase any running simulation and start a new one; return the code to type, if any."""
    await end(session, staff_id=staff_id, now=ctx.now)
    p, code = await create_simulated(session, staff_id=staff_id, channel=RENDERINGS[rendering],
                                     now=ctx.now, linked=linked)
    await record_staff_action(session, staff_id=staff_id, action="simulator_start", now=ctx.now,
                              detail={"rendering": rendering, "linked": linked})
    logger.info("staff %s started a simulation (participant %s)", staff_id, p.id)
    return code


async def say(
    session: AsyncSession, *, staff_id: int, text: str, ctx: EngineContext,
    payload: str | None = None,
) -> bool:
    """Send one message (or button press) as the throwaway person; say if one was running."""
    p = await current(session, staff_id)
    if p is None or p.id is None:
        return False
    channel = str(p.preferred_channel)
    inbound = Inbound(channel=channel, address=sim_address(p.id), text=text,
                      received_at=ctx.now, provider_id=f"sim-{uuid.uuid4().hex}",
                      payload=payload)
    await handle_inbound(session, inbound, ctx)
    await take_over_queued(session, p, now=ctx.now)
    return True


async def end(session: AsyncSession, *, staff_id: int, now: datetime) -> int:
    """Purge every simulated person this staff member started; return how many."""
    done = 0
    for p in await simulated_of(session, staff_id):
        done += await purge(session, p.id or 0)
    if done:
        await record_staff_action(session, staff_id=staff_id, action="simulator_end",
                                  now=now, detail={"erased": done})
    return done
