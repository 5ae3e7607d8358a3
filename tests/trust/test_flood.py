"""Floods: one number sending hundreds of texts gets a few answers, one calm text, then
silence until it stops for a while (an SMS-pumping attack is paid per reply); crisis words
are always answered. Messages are driven into `receive` at once, as webhooks arrive."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, func, select

from bot.channels.inbox import (
    FLOOD_WINDOW,
    LINKED_PER_WINDOW,
    UNKNOWN_PER_WINDOW,
    ChannelRuntime,
    receive,
)
from bot.config import Settings
from handlers.engine import HandleResult
from handlers.texts import reading_as, t
from handlers.types import Inbound
from storage.db import session_scope
from storage.inbound_limits_q import count_paused_senders, link_ceiling_state
from storage.models import InboundMessage, OutboundMessage, Participant, ParticipantStatus
from storage.participants import MAX_FAILED_LINKS_ALL_PER_HOUR, audit, hash_address
from tests.auxil.builders import NOW, enrolled_participant

STRANGER = "+447700900666"
LINKED = "+447700900321"  # the builders' phone
FLOOD = 500
BATCH = 20  # webhooks in flight at once
SPACING = timedelta(seconds=60) / FLOOD  # 500 texts in 60 s
CALM = t("limits.calm")
CRISIS = t("crisis.reply")
_ids = iter(range(1, 10**6))


def _runtime(engine: AsyncEngine) -> ChannelRuntime:
    settings = Settings(_env_file=None, database_url="sqlite:///unused.db")  # type: ignore[call-arg]
    return ChannelRuntime(engine=engine, settings=settings, clock=lambda: NOW)


def _inbound(address: str, text: str, at: datetime) -> Inbound:
    return Inbound(channel="sms", address=address, text=text, received_at=at,
                   provider_id=f"SM{next(_ids):032d}")


async def _flood(runtime: ChannelRuntime, address: str, count: int, *, start: datetime = NOW,
                 text: Callable[[int], str] = lambda i: f"hello {i}") -> list[HandleResult]:
    """Send `count` texts from one number, BATCH at a time; return what each led to."""
    results: list[HandleResult] = []
    for first in range(0, count, BATCH):
        results += await asyncio.gather(*(
            receive(runtime, _inbound(address, text(i), start + i * SPACING))
            for i in range(first, min(first + BATCH, count))))
    return results


def _texts(results: list[HandleResult]) -> list[str]:
    return [reply.text for result in results for reply in result.replies]


async def _counts(engine: AsyncEngine, address: str) -> tuple[int, int]:
    """Return (messages recorded from, texts written to) one address."""
    async with session_scope(engine) as session:
        inbound = (await session.exec(
            select(func.count()).select_from(InboundMessage)
            .where(InboundMessage.address_hash == hash_address(f"sms:{address}")))).one()
        outbound = (await session.exec(
            select(func.count()).select_from(OutboundMessage)
            .where(col(OutboundMessage.address) == address))).one()
    return int(inbound), int(outbound)


async def test_a_flood_from_an_unknown_number_gets_the_limit_one_calm_text_and_crisis_help(
    engine: AsyncEngine,
) -> None:
    runtime = _runtime(engine)
    middle = FLOOD // 2
    results = await _flood(runtime, STRANGER, FLOOD,
                           text=lambda i: "I want to die" if i == middle else f"hello {i}")
    texts = _texts(results)
    answered = [r for r in results if r.replies and r.replies[0].text not in (CALM, CRISIS)]
    assert len(answered) == UNKNOWN_PER_WINDOW
    assert texts.count(CALM) == 1
    assert results[middle].replies[0].text == CRISIS  # over the limit, still answered
    assert texts.count(CRISIS) == 1
    recorded, written = await _counts(engine, STRANGER)
    assert recorded == FLOOD  # every message is still written down
    assert written == len(texts) == UNKNOWN_PER_WINDOW + 2  # answers, the calm text, crisis
    # A few minutes on, still over the limit and told: nothing.
    later = await receive(runtime, _inbound(STRANGER, "hello?", NOW + timedelta(minutes=5)))
    assert later.replies == [] and not later.duplicate
    # Once it has been quiet for the window, it is answered again.
    back = NOW + FLOOD * SPACING + FLOOD_WINDOW + timedelta(seconds=1)
    again = await receive(runtime, _inbound(STRANGER, "hello", back))
    assert again.replies and again.replies[0].text == t("welcome.unknown")


async def test_a_linked_person_is_cut_off_later_than_a_stranger(engine: AsyncEngine) -> None:
    async with session_scope(engine) as session:
        person = await enrolled_participant(session)
    runtime = _runtime(engine)
    start = NOW + timedelta(seconds=1)  # after the two messages that linked them
    linked = await _flood(runtime, LINKED, 60, start=start, text=lambda i: "MENU")
    stranger = await _flood(runtime, STRANGER, 60)
    linked_answers = [r for r in linked if r.replies and r.replies[0].text != CALM]
    stranger_answers = [r for r in stranger if r.replies and r.replies[0].text != CALM]
    # The two messages that linked them count towards their window too.
    assert len(linked_answers) == LINKED_PER_WINDOW - 2
    assert len(stranger_answers) == UNKNOWN_PER_WINDOW < LINKED_PER_WINDOW
    assert _texts(linked).count(CALM) == _texts(stranger).count(CALM) == 1
    assert all(r.participant_id == person.id for r in linked)
    async with session_scope(engine) as session:
        assert await count_paused_senders(session, now=start + timedelta(minutes=1)) == 2


async def test_stop_is_honoured_over_the_limit_and_the_calm_text_is_in_welsh(
    engine: AsyncEngine,
) -> None:
    async with session_scope(engine) as session:
        person = await enrolled_participant(session)
        person.language = "cy"
        session.add(person)
    runtime = _runtime(engine)
    start = NOW + timedelta(seconds=1)
    results = await _flood(runtime, LINKED, LINKED_PER_WINDOW + 5, start=start,
                           text=lambda i: "MENU")
    with reading_as("cy"):
        welsh = t("limits.calm")
    assert welsh != CALM and _texts(results).count(welsh) == 1
    stop = await receive(runtime, _inbound(LINKED, "STOP", start + timedelta(minutes=2)))
    assert stop.replies  # answered: STOP stops, limit or not
    async with session_scope(engine) as session:
        stopped = await session.get(Participant, person.id)
        assert stopped is not None and stopped.status == ParticipantStatus.STOPPED
    # A flood of STOPs once stopped earns no more answers than anything else.
    more = await _flood(runtime, LINKED, 40, start=start + timedelta(minutes=3),
                        text=lambda i: "STOP")
    assert _texts(more) == []


async def test_a_webhook_retried_over_the_limit_is_a_duplicate(engine: AsyncEngine) -> None:
    runtime = _runtime(engine)
    await _flood(runtime, STRANGER, UNKNOWN_PER_WINDOW)
    over = _inbound(STRANGER, "again", NOW + timedelta(seconds=30))
    first = await receive(runtime, over)
    second = await receive(runtime, over)
    assert [r.text for r in first.replies] == [CALM]
    assert second.duplicate and second.replies == []
    recorded, _ = await _counts(engine, STRANGER)
    assert recorded == UNKNOWN_PER_WINDOW + 1


async def test_the_link_code_ceiling_is_readable_for_metrics(engine: AsyncEngine) -> None:
    async with session_scope(engine) as session:
        state = await link_ceiling_state(session, now=NOW)
        assert (state.failed_last_hour, state.reached) == (0, False)
        for n in range(3):
            await audit(session, actor=f"address:{n}", action="link_failed", now=NOW)
        state = await link_ceiling_state(session, now=NOW)
    assert state.failed_last_hour == 3
    assert state.ceiling == MAX_FAILED_LINKS_ALL_PER_HOUR
    async with session_scope(engine) as session:
        later = await link_ceiling_state(session, now=NOW + timedelta(minutes=61))
    assert later.failed_last_hour == 0
